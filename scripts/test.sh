#!/usr/bin/env bash
# Set up, then run the whole test suite: ruff, mypy, pytest.
# mypy runs beside pytest: both are mostly single-threaded or waiting on sockets and
# subprocesses, so on 2 cores the pair takes ~175 s instead of ~190 s one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
mypy_log="$(mktemp)"
trap 'rm -f "$mypy_log"' EXIT
.venv/bin/mypy >"$mypy_log" 2>&1 &
mypy_pid=$!
# One pytest-xdist worker per core plus one (many tests wait on servers and subprocesses), at
# most 6; each worker builds its own session fixtures (the tiny model, about 1 s).
# JAGUAR_TEST_WORKERS overrides; -n 0 in the arguments runs everything in one process.
workers="${JAGUAR_TEST_WORKERS:-$(( $(nproc) + 1 > 6 ? 6 : $(nproc) + 1 ))}"
echo "== pytest ($workers workers; mypy alongside)"
pytest_status=0
.venv/bin/pytest -q -n "$workers" "$@" || pytest_status=$?
mypy_status=0
wait "$mypy_pid" || mypy_status=$?
echo "== mypy"
cat "$mypy_log"
if [ "$mypy_status" -ne 0 ] || [ "$pytest_status" -ne 0 ]; then
  echo "failed: pytest exit $pytest_status, mypy exit $mypy_status" >&2
  exit 1
fi
