"""The snapshot-phase rule of Modal memory snapshots, checked on real hardware.

On Modal, ``@enter(snap=True)`` runs with no GPU visible and the memory snapshot is taken after
it; ``@enter(snap=False)`` runs after the restore, with the GPU. CUDA reads
``CUDA_VISIBLE_DEVICES`` once, when the driver is first initialised: torch 2.13
``torch.cuda.is_available()`` calls ``torch._C._cuda_getDeviceCount()`` (``cudaGetDeviceCount``,
which runs ``cuInit``) unless ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` (torch/cuda/__init__.py,
``is_available``). So any CUDA query in the pre-snapshot code leaves the process with 0 devices
for good, as on a restored container, and the post-restore move to the GPU fails.

The check starts a subprocess with ``CUDA_VISIBLE_DEVICES=""``, runs :func:`pre_snapshot`
(imports, CPU load), removes the variable, runs :func:`post_restore`, and reports where the
engine ended, plus every ``torch.cuda`` query the pre-snapshot code made and from where.
The two phases are the deployment's own: ``no_cuda_query`` + ``Engine.load_to_cpu`` before,
``require_cuda`` + ``to_device`` after (``jaguar_sdk/engine/_snapshot.py``).

Run directly (what the parent does)::

    CUDA_VISIBLE_DEVICES= python -m benchmarks.gpu_truth._snapshot MODEL_FOLDER
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .._common import REPO_ROOT

MARK = "SNAPSHOT_RESULT "
#: Public ``torch.cuda`` functions that query (and may initialise) the driver.
QUERIES = (
    "is_available",
    "device_count",
    "is_bf16_supported",
    "get_device_capability",
    "get_device_name",
    "get_device_properties",
    "current_device",
    "mem_get_info",
    "synchronize",
    "init",
)
_MAX_LOGGED = 25


def pre_snapshot(folder: Path) -> tuple[Any, list[str]]:
    """What the deployment runs before its memory snapshot (``deploy/container.py``): imports
    and the CPU load (every weight read into RAM) inside the engine's ``no_cuda_query`` guard.

    Args:
        folder: A diffusers pipeline folder.

    Returns:
        The engine, on CPU, and the device queries the guard answered (who asked).
    """
    from jaguar_sdk.engine import Engine, no_cuda_query

    with no_cuda_query() as guard:
        import diffusers  # noqa: F401 - importing it is part of the phase

        engine = Engine.load_to_cpu(folder, dtype="bfloat16", mmap=False)
    return engine, list(guard.queries)


def post_restore(engine: Any) -> Any:
    """What the deployment runs after the restore: check CUDA, then move the engine to the GPU.

    Args:
        engine: The engine :func:`pre_snapshot` returned.

    Returns:
        The engine.

    Raises:
        ConfigurationError: No CUDA device visible (``require_cuda``), as the container fails.
    """
    from jaguar_sdk.engine import require_cuda

    require_cuda("benchmarks.gpu_truth snapshot check")
    return engine.to_device("cuda")


class CudaQueryLog:
    """Records calls to :data:`QUERIES` (made through ``torch.cuda``) and their callers."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self.count = 0

    def install(self) -> CudaQueryLog:
        """Wrap the functions in ``torch.cuda`` (they keep working as before)."""
        import torch

        for name in QUERIES:
            original = getattr(torch.cuda, name, None)
            if callable(original):
                setattr(torch.cuda, name, self._wrap(name, original))
        return self

    def _wrap(self, name: str, original: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            if len(self.calls) < _MAX_LOGGED:
                self.calls.append({"query": f"torch.cuda.{name}", "caller": _caller()})
            return original(*args, **kwargs)

        return wrapper


def _caller() -> str:
    """The innermost stack frame outside torch and this file, as ``path:line in function``."""
    here = Path(__file__).resolve()
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = Path(frame.filename)
        if path.resolve() == here or "torch" in path.parts:
            continue
        short = "/".join(path.parts[-3:])
        return f"{short}:{frame.lineno} in {frame.name}"
    return "unknown"


def child(folder: Path) -> dict[str, Any]:
    """The subprocess side: both phases, with the query log; never raises."""
    out: dict[str, Any] = {
        "cuda_visible_devices_at_start": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "error": None,
    }
    engine = None
    try:
        import torch

        log = CudaQueryLog().install()
        started = time.perf_counter()
        engine, answered = pre_snapshot(folder)
        out["pre_snapshot_s"] = time.perf_counter() - started
        out["cuda_queries_answered_by_guard"] = answered[:_MAX_LOGGED]
        out["cuda_queries_before_restore"] = list(log.calls)
        out["cuda_query_count_before_restore"] = log.count
        out["cuda_initialized_before_restore"] = bool(torch.cuda.is_initialized())
        out["engine_device_before_restore"] = engine.device
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        out["cuda_visible_devices_removed"] = "CUDA_VISIBLE_DEVICES" not in os.environ
        started = time.perf_counter()
        try:
            post_restore(engine)
        finally:
            out["post_restore_s"] = time.perf_counter() - started
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    if engine is not None:
        out["engine_device"] = str(engine.device)
        pipe = getattr(engine, "pipeline", None)
        if pipe is not None:
            out["transformer_device"] = str(next(pipe.transformer.parameters()).device)
    try:
        import torch

        out["device_count_after"] = torch.cuda.device_count()
    except Exception as exc:  # pragma: no cover - torch itself broken
        out["device_count_after"] = f"{type(exc).__name__}: {exc}"
    return out


def run_check(folder: Path, *, timeout_s: float, gpu_here: bool) -> dict[str, Any]:
    """Run :func:`child` in a fresh process started with ``CUDA_VISIBLE_DEVICES=""``.

    Args:
        folder: The model folder both phases load.
        timeout_s: Limit for the subprocess.
        gpu_here: Whether this (parent) process sees a CUDA GPU, i.e. whether ending on the
            CPU is a failure of the rule or just this machine.

    Returns:
        The child's report plus ``verdict`` (``"pass"``, ``"fail"`` or ``"no GPU here"``) and
        ``explanation``.

    Raises:
        RuntimeError: If the subprocess printed no report (its stderr tail is in the message).
    """
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_truth._snapshot", str(folder)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if not lines:
        raise RuntimeError(
            f"snapshot child exited {proc.returncode} without a report: {proc.stderr[-2000:]}"
        )
    report: dict[str, Any] = json.loads(lines[-1][len(MARK) :])
    on_gpu = str(report.get("transformer_device", "")).startswith("cuda")
    if on_gpu:
        verdict, why = "pass", "the engine ended on the GPU after the variable was removed"
    elif gpu_here:
        queries = report.get("cuda_query_count_before_restore")
        verdict = "fail"
        why = (
            f"the engine ended on {report.get('transformer_device')} although this machine has "
            f"a GPU: CUDA was initialised while no device was visible ({queries} torch.cuda "
            f"queries before the restore; see cuda_queries_before_restore). Error: "
            f"{report.get('error')}"
        )
    else:
        verdict = "no GPU here"
        why = (
            "this machine has no CUDA GPU, so the post-restore step cannot reach one; both "
            f"phases ran (post-restore error: {report.get('error')})"
        )
    report.update(verdict=verdict, explanation=why, child_exit=proc.returncode)
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.gpu_truth._snapshot FOLDER``: print the child's report."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m benchmarks.gpu_truth._snapshot MODEL_FOLDER", file=sys.stderr)
        return 2
    print(MARK + json.dumps(child(Path(args[0])), default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
