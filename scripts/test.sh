#!/usr/bin/env bash
# Set up, then run the whole test suite: ruff, mypy, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# One worker per core, at most 4 (pytest-xdist); each worker builds its own session fixtures
# (the tiny model, about 1 s). Pass -n 0 to run in one process.
.venv/bin/pytest -q -n auto --maxprocesses=4 "$@"
