#!/usr/bin/env bash
# Create .venv (if needed) and install jaguar-sdk with every extra, pinned torch first.
# torch is pinned to 2.13.0: on the project's machines that is a CPU wheel on local disk; a bare
# "torch" requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Quiet, but keep errors; stamp the install so repeated runs are fast.
stamp=.venv/.jaguar-installed
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0" 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[all,dev]" 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import torch, diffusers, fastapi, modal, jaguar_sdk" >/dev/null
  echo "$want" > "$stamp"
fi
