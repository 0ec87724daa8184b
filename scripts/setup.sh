#!/usr/bin/env bash
# Create .venv (if needed) and install jaguar-sdk with every extra, pinned torch first.
# torch is pinned to 2.13.0: on the project's machines that is a CPU wheel on local disk; a bare
# "torch" requirement would pull a multi-GB CUDA build.
# Says on stderr what it installs (the first run takes minutes); silent when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
say() { echo "setup: $*" >&2; }
started=$SECONDS
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
# Quiet, but keep errors; stamp the install so repeated runs are fast.
stamp=.venv/.jaguar-installed
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing into .venv (first run, or pyproject.toml changed); this takes minutes"
  say "step 1/2: torch==2.13.0"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0" 2>&1 \
    | grep -v "^WARNING: Location" || true
  say "step 2/2: jaguar-sdk[all,dev] (diffusers, transformers, fastapi, uvicorn, modal, tqdm," \
    "and the dev tools)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[all,dev]" 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import torch, diffusers, fastapi, modal, jaguar_sdk" >/dev/null
  echo "$want" > "$stamp"
  say "done in $((SECONDS - started))s"
fi
