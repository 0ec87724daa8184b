"""Run ``python -m benchmarks.gpu_truth`` on a Modal GPU and write its output here.

From the repository root, with a Modal token::

    modal run benchmarks/gpu_truth_modal.py                       # H100, --budget-s 480
    modal run benchmarks/gpu_truth_modal.py --out gpu-truth-h100 --budget-s 420
    JAGUAR_TRUTH_GPU=H200 modal run benchmarks/gpu_truth_modal.py --extra "--skip fp8"

The container uses the deployment's pinned packages (``deploy/app.py``: torch, diffusers,
transformers..., plus torchao for fp8), the same sources (``jaguar_sdk``, ``benchmarks``), an
80 GiB ephemeral disk for the 33.7 GB random pipeline and 96 GiB of host memory. The files the
script writes (``gpu_truth.jsonl``, ``.json``, ``.md`` and its console ``log.txt``) come back
as bytes and are written under ``--out`` locally; a run cut by its budget still returns them.

Importing this module needs no Modal token and no network (Modal objects are lazy): the test
suite imports it, and runs :func:`run_truth` (the function's body) with ``--small`` on CPU.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import modal

if __package__ in (None, ""):  # `modal run benchmarks/gpu_truth_modal.py` loads it as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.app import ENGINE_PACKAGES, FP8_PACKAGES, SERVER_PACKAGES

#: The GPU type, read when this module is imported (``JAGUAR_TRUTH_GPU``, default H100).
GPU = os.environ.get("JAGUAR_TRUTH_GPU", "H100")
#: Seconds the Modal function may run: the script's budget plus set-up and a margin.
TIMEOUT_S = 20 * 60
#: The files the script writes, plus its console log.
OUTPUT_NAMES = ("gpu_truth.jsonl", "gpu_truth.json", "gpu_truth.md", "log.txt")

image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(*ENGINE_PACKAGES, *SERVER_PACKAGES, *FP8_PACKAGES)
    .env({"HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1"})
    .add_local_python_source("jaguar_sdk", "benchmarks", "deploy")
)
app = modal.App("jaguar-gpu-truth")


def source_root() -> Path:
    """The folder holding the ``benchmarks`` package: the repo root here, ``/root`` on Modal."""
    spec = importlib.util.find_spec("benchmarks")
    if spec is None or spec.origin is None:
        raise RuntimeError("the benchmarks package is not importable")
    return Path(spec.origin).resolve().parent.parent


def run_truth(argv: list[str], out_dir: Path | None = None) -> dict[str, bytes]:
    """Run the script in a subprocess and return its output files.

    Args:
        argv: Options for ``python -m benchmarks.gpu_truth`` (``--out`` is set here).
        out_dir: Where the script writes; a new temporary folder by default.

    Returns:
        File name to contents, for every file of :data:`OUTPUT_NAMES` that exists (all of
        them unless the script failed before writing).
    """
    out = out_dir or Path(tempfile.mkdtemp(prefix="gpu-truth-out-"))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "log.txt", "w", encoding="utf-8") as log:
        completed = subprocess.run(
            [sys.executable, "-m", "benchmarks.gpu_truth", *argv, "--out", str(out)],
            cwd=source_root(),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
        log.write(f"\n[exit status {completed.returncode}]\n")
    return {name: (out / name).read_bytes() for name in OUTPUT_NAMES if (out / name).is_file()}


@app.function(
    image=image,
    gpu=GPU,
    timeout=TIMEOUT_S,
    cpu=16,
    memory=96 * 1024,
    ephemeral_disk=80 * 1024,
)
def gpu_truth(argv: list[str]) -> dict[str, bytes]:
    """The remote side: :func:`run_truth` on the GPU container."""
    return run_truth(argv)


def write_outputs(files: dict[str, bytes], out: Path) -> list[Path]:
    """Write the returned files under ``out`` (only the known names; nothing else).

    Args:
        files: File name to contents, as :func:`run_truth` returns them.
        out: The local folder (created).

    Returns:
        The paths written.

    Raises:
        ValueError: If a name is not one of :data:`OUTPUT_NAMES`.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        if name not in OUTPUT_NAMES:
            raise ValueError(f"unexpected output file {name!r}; expected one of {OUTPUT_NAMES}")
        (out / name).write_bytes(data)
        written.append(out / name)
    return written


@app.local_entrypoint()
def main(out: str = "gpu-truth-modal", budget_s: float = 480.0, extra: str = "") -> None:
    """``modal run benchmarks/gpu_truth_modal.py [--out DIR] [--budget-s S] [--extra "..."]``."""
    argv = ["--budget-s", f"{budget_s:g}", *extra.split()]
    files = gpu_truth.remote(argv)
    for path in write_outputs(files, Path(out)):
        print(f"wrote {path}")
    table = files.get("gpu_truth.md")
    if table:
        print(table.decode("utf-8"))
