"""Weight loading: engine load + first use of every weight vs a raw safetensors read + touch.

A random-weight Flux pipeline of realistic structure (``large``: 4 double + 8 single blocks,
16 heads x 64, ~1.1 GB fp32; ``medium`` (~0.3 GB) with ``--quick``) is built once and cached in
``benchmarks/.cache/``. Each measurement runs in a fresh subprocess (imports excluded from the
timing, including the pipeline and component classes the engine imports lazily: see
:func:`preimport`) and times *load + touch*: diffusers/safetensors map files lazily, so a bare
load time would measure set-up, not I/O (tiny-flux.md section 4). "Touch" sums every parameter
and buffer.

* baseline: ``safetensors.torch.load_file`` of every ``*.safetensors`` file + sum every tensor;
* subject: ``jaguar_sdk.engine.Engine.load_to_cpu(folder)`` + sum every weight of the pipeline
  (falls back to ``FluxPipeline.from_pretrained`` while the engine is not importable, and says so).

Cold = every weight file's page cache evicted first (``posix_fadvise(DONTNEED)``, checked with
``fincore`` where available); warm = files already in the page cache. Rounds interleave baseline
and subject. Goal: load throughput >= 0.9x raw read throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._common import REPO_ROOT, goal, interleave, new_result, row

NAME = "load"
TITLE = "engine load + touch vs raw safetensors read + touch"
GOAL_RATIO = 0.9
_MARK = "LOAD_RESULT "


# --- worker side (fresh process) ------------------------------------------------------------
def evict(files: list[Path]) -> None:
    """Drop the files' pages from the page cache (flushes them first)."""
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident_bytes(files: list[Path]) -> int | None:
    """Bytes of the files now in the page cache (via ``fincore``), or None if unavailable."""
    tool = shutil.which("fincore")
    if tool is None:
        return None
    try:
        out = subprocess.run(
            [tool, "--bytes", "--noheadings", "--output", "RES", *map(str, files)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        return sum(int(tok) for tok in out.split())
    except (subprocess.SubprocessError, ValueError, OSError):
        return None


def _touch_modules(modules: list[Any]) -> tuple[float, int]:
    total = 0.0
    touched = 0
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            total += float(tensor.detach().sum())
            touched += tensor.numel() * tensor.element_size()
    return total, touched


def preimport(folder: Path) -> list[str]:
    """Import what loading ``folder`` imports lazily, so that no side times imports.

    ``Engine.load_to_cpu`` resolves ``diffusers.FluxPipeline`` on first use, and
    ``from_pretrained`` then imports each component's class (``transformers.CLIPTextModel``...)
    through the libraries' lazy modules: about 3 s in a fresh process on the development VM,
    which the baseline (``safetensors.torch.load_file``, imported up front) never pays. Importing
    them here, before the clock starts, makes both sides time the same work: load + touch.

    Returns:
        The ``library.Class`` names imported.
    """
    import importlib

    importlib.import_module("diffusers").FluxPipeline  # noqa: B018 - the import is the point
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    names: list[str] = ["diffusers.FluxPipeline"]
    for value in index.values():
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            library, class_name = value
            getattr(importlib.import_module(library), class_name)
            names.append(f"{library}.{class_name}")
    return names


def _find_pipeline(engine: Any) -> Any:
    for name in ("pipe", "pipeline", "_pipe", "_pipeline"):
        value = getattr(engine, name, None)
        if value is not None and hasattr(value, "components"):
            return value
    for value in vars(engine).values():
        if hasattr(value, "components") and isinstance(value.components, dict):
            return value
    return None


def _worker(variant: str, folder: Path, cold: bool) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    from ._flux_builder import weight_files

    files = weight_files(folder)
    info: dict[str, Any] = {"variant": variant, "cold": cold}
    load_to_cpu = None
    if variant == "engine":
        try:
            from jaguar_sdk.engine import Engine

            load_to_cpu = Engine.load_to_cpu
            info["subject"] = "jaguar_sdk.engine.Engine.load_to_cpu"
        except Exception as exc:
            from diffusers import FluxPipeline

            info["subject"] = "diffusers FluxPipeline.from_pretrained (engine not importable)"
            info["fallback_reason"] = f"{type(exc).__name__}: {exc}"
        info["preimported"] = preimport(folder)
    if cold:
        evict(files)
        info["resident_after_evict"] = resident_bytes(files)
    started = time.perf_counter()
    if variant == "raw":
        checksum, touched = 0.0, 0
        for path in files:
            for tensor in load_file(str(path)).values():
                checksum += float(tensor.sum())
                touched += tensor.numel() * tensor.element_size()
        info["touch"] = "sum of every tensor"
    else:
        if load_to_cpu is not None:
            engine = load_to_cpu(str(folder))
            pipe = _find_pipeline(engine)
        else:
            engine = None
            pipe = FluxPipeline.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
        info["load_only_s"] = time.perf_counter() - started
        if pipe is not None:
            modules = [m for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
            checksum, touched = _touch_modules(modules)
            info["touch"] = "sum of every parameter and buffer"
        else:  # no pipeline handle on the engine: use every weight through a tiny generate
            from jaguar_sdk import GenerateRequest

            assert engine is not None
            request = GenerateRequest(prompt="a cat", width=64, height=64, steps=1)
            engine.generate(request, request_id="bench-load")
            checksum, touched = 0.0, 0
            info["touch"] = "one 64x64 1-step generate (no pipeline handle on the engine)"
    info["seconds"] = time.perf_counter() - started
    info["checksum"] = checksum
    info["touched_bytes"] = touched
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return info


# --- parent side ----------------------------------------------------------------------------
def _spawn(variant: str, folder: Path, cold: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.load", "--worker", variant, "--dir", str(folder)]
    if cold:
        cmd.append("--cold")
    env = dict(os.environ, PYTHONWARNINGS="ignore", TQDM_DISABLE="1")
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return dict(json.loads(line[len(_MARK) :]))
    raise RuntimeError(
        f"load worker failed (rc={proc.returncode}): {proc.stderr[-2000:] or proc.stdout[-2000:]}"
    )


def run(quick: bool = False, *, rounds: int | None = None) -> dict[str, Any]:
    """Cold and warm load throughput, engine vs raw, each in fresh subprocesses.

    Args:
        quick: Use the ``medium`` (~0.3 GB) pipeline and 2 rounds instead of ``large`` and 3.
        rounds: Override the number of rounds per cache state.

    Returns:
        The result record (GB/s per variant, seconds, and the ratio engine / raw throughput).
    """
    from ._flux_builder import ensure_pipeline, weight_files

    started = time.perf_counter()
    size = "medium" if quick else "large"
    folder = ensure_pipeline(size)
    files = weight_files(folder)
    total_bytes = sum(f.stat().st_size for f in files)
    n = rounds if rounds is not None else (2 if quick else 3)
    result = new_result(
        NAME,
        f"{TITLE} ({size} random Flux pipeline, {total_bytes / 1e9:.2f} GB of safetensors)",
        baseline="raw safetensors.torch.load_file + sum, same cache state",
        unit="GB/s",
    )
    records: list[dict[str, Any]] = []

    def measure(variant: str, cold: bool) -> Any:
        def call() -> float:
            info = _spawn(variant, folder, cold)
            records.append(info)
            return total_bytes / 1e9 / info["seconds"]  # GB/s, higher is better

        return call

    cold = interleave({"raw": measure("raw", True), "engine": measure("engine", True)}, n, warmup=0)
    for path in files:  # warm the page cache
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass
    warm = interleave(
        {"raw": measure("raw", False), "engine": measure("engine", False)}, n, warmup=0
    )
    subject = next((r["subject"] for r in records if r["variant"] == "engine"), "engine")
    for state, samples in (("cold", cold), ("warm", warm)):
        for variant in ("raw", "engine"):
            secs = [
                r["seconds"]
                for r in records
                if r["variant"] == variant and r["cold"] == (state == "cold")
            ]
            rss = max(
                r["peak_rss_mb"]
                for r in records
                if r["variant"] == variant and r["cold"] == (state == "cold")
            )
            label = f"{state} {'raw safetensors' if variant == 'raw' else 'engine load'}"
            result["rows"].append(
                row(
                    label,
                    samples[variant],
                    samples["raw"],
                    higher_is_better=True,
                    seconds=round(sorted(secs)[len(secs) // 2], 3),
                    peak_rss_mb=round(rss),
                )
            )
    cold_ratio = result["rows"][1].get("ratio")
    warm_ratio = result["rows"][3].get("ratio")
    result["goals"].append(
        goal("cold: engine / raw read throughput", cold_ratio, GOAL_RATIO, at_most=False)
    )
    result["goals"].append(
        goal("warm: engine / raw read throughput", warm_ratio, GOAL_RATIO, at_most=False)
    )
    residents = [r.get("resident_after_evict") for r in records if r["cold"]]
    result["notes"].append(
        f"subject: {subject}; touch: "
        f"{next((r['touch'] for r in records if r['variant'] == 'engine'), '?')}"
    )
    for state in ("cold", "warm"):
        split = sorted(
            r["load_only_s"]
            for r in records
            if "load_only_s" in r and r["cold"] == (state == "cold")
        )
        if split:
            result["notes"].append(
                f"{state}: engine load alone (before the touch) median "
                f"{split[len(split) // 2]:.3f} s"
            )
    fallback = next((r["fallback_reason"] for r in records if "fallback_reason" in r), None)
    if fallback:
        result["notes"].append(f"engine not importable: {fallback}")
    result["notes"].append(
        "each sample is a fresh subprocess, imports excluded; cold = posix_fadvise(DONTNEED) "
        f"first (resident bytes after eviction per fincore: {sorted(set(residents))})"
    )
    result["notes"].append("ratio = engine GB/s / raw GB/s in the same round; >= 0.9 is the goal")
    result["elapsed_s"] = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> None:
    """Worker entry point: ``python -m benchmarks.load --worker raw|engine --dir D [--cold]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", choices=["raw", "engine"], required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args(argv)
    info = _worker(args.worker, args.dir, args.cold)
    print(_MARK + json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
