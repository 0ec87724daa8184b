#!/usr/bin/env bash
# Fetch the wheels that `python -m benchmarks.gpu_truth` needs on top of the lent GPU machine's
# image (python3.12, torch 2.11 + transformers 5.17 + safetensors + huggingface_hub there; no
# diffusers, pydantic, tenacity or torchao, and no network there). Run it here, from the repo
# root, before the device call; the call carries `.whl` (see docs/performance.md, "Run it").
#
#   bash benchmarks/gpu_truth_wheels.sh          # -> .whl/*.whl (about 20 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
grep -qxF '/.whl/' .gitignore || { echo "add /.whl/ to .gitignore first" >&2; exit 1; }
# (diffusers imports importlib.metadata from the standard library on 3.8+.)
# Versions: the dev environment's (scripts/setup.sh) for the packages the image lacks;
# torchao 0.18.0 is the release built for torch 2.11 (the image's torch).
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  --platform any -d .whl \
  diffusers==0.42.1 typing_extensions==4.16.0 pydantic==2.14.4 pydantic_core==2.50.5 \
  annotated-types==0.8.0 typing-inspection==0.4.5 tenacity==9.2.1 torchao==0.18.0
ls -la .whl
