#!/usr/bin/env bash
# The main job: set up, then generate one image end to end on the embedded default model
# ("tiny": a randomly initialised FluxPipeline shaped like Shuttle Jaguar, built offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "generate: jaguar generate --local tiny -o jaguar-output/ $* (loads the model in this" \
  "process, then writes one image)" >&2
exec .venv/bin/jaguar generate --local tiny -o jaguar-output/ "$@"
