"""Weight loading: engine load + first use of every weight vs a raw safetensors read + touch,
at two model sizes, with the engine's fixed cost measured apart from its byte rate.

Random-weight Flux pipelines of realistic structure are built once and cached in
``benchmarks/.cache/``: ``medium`` (~0.3 GB) and ``large`` (~1.1 GB) share one structure (4 double
+ 8 single transformer blocks...) and differ only in width; ``skeleton`` has that structure at the
narrowest widths (~0.6 MB), and ``flux1-skeleton`` FLUX.1's structure (19 + 38 blocks, 24 T5 and
12 CLIP layers) at the narrowest widths (~7 MB). Each measurement runs in a fresh subprocess
(imports excluded from the timing, including the pipeline and component classes the engine
imports lazily: see :func:`preimport`) and times *load + touch*: diffusers/safetensors map files
lazily, so a bare load time would measure set-up, not I/O (tiny-flux.md section 4). "Touch" sums
every parameter and buffer.

* baseline: ``safetensors.torch.load_file`` of every ``*.safetensors`` file + sum every tensor;
* subject: ``jaguar_sdk.engine.Engine.load_to_cpu(folder)`` + sum every weight of the pipeline
  (falls back to ``FluxPipeline.from_pretrained`` while the engine is not importable, and says so);
* fixed cost: the subject on a skeleton: every config, module, tensor, tokenizer and the
  scheduler, and almost no bytes. The engine's byte rate is then ``bytes / (seconds - fixed)``.

Cold = every weight file's page cache evicted first (``posix_fadvise(DONTNEED)``, checked with
``fincore`` where available); warm = files already in the page cache. Rounds interleave every
variant of a cache state (the order rotates). Goals: the engine's byte rate >= 0.9x the raw
read's at both sizes, and the whole load projected to the 33.7 GB bf16 pipeline (its fixed
cost included) >= 0.9x the raw read.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._common import REPO_ROOT, goal, interleave, new_result, noise_note, row

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


def read_bytes() -> int | None:
    """Bytes this process has read from storage so far (``/proc/self/io``), if available."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
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


#: The library calls a pipeline load is made of: part name -> (module, owner, attribute).
#: ``pipeline`` holds all the others; ``conversion`` is inside ``text_encoders``.
_PARTS: dict[str, tuple[str, str | None, str]] = {
    "pipeline": ("diffusers", "FluxPipeline", "from_pretrained"),
    "diffusers_models": ("diffusers.models.modeling_utils", "ModelMixin", "from_pretrained"),
    "text_encoders": ("transformers.modeling_utils", "PreTrainedModel", "from_pretrained"),
    "conversion": ("transformers.modeling_utils", None, "get_model_conversion_mapping"),
    "tokenizers": (
        "transformers.tokenization_utils_base",
        "PreTrainedTokenizerBase",
        "from_pretrained",
    ),
    "scheduler": ("diffusers.schedulers.scheduling_utils", "SchedulerMixin", "from_pretrained"),
}


def _instrument(totals: dict[str, float]) -> None:
    """Wrap each call of :data:`_PARTS` to add its seconds (outermost call only) to ``totals``.

    The wrappers replace the attribute where the caller looks it up: the class (subclasses
    inherit the classmethod; diffusers' ``load_sub_model`` calls ``class_obj.from_pretrained``)
    or, for a function imported by name, the importing module.
    """
    import importlib

    for part, (module_name, owner_name, attribute) in _PARTS.items():
        module = importlib.import_module(module_name)
        owner = getattr(module, owner_name) if owner_name else module
        original = getattr(owner, attribute)
        is_classmethod = owner_name is not None and isinstance(
            owner.__dict__.get(attribute), classmethod
        )
        function = original.__func__ if is_classmethod else original
        totals.setdefault(part, 0.0)
        depth = [0]

        def timed(
            *args: Any, _part: str = part, _fn: Any = function, _depth: Any = depth, **kwargs: Any
        ) -> Any:
            _depth[0] += 1
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                _depth[0] -= 1
                if _depth[0] == 0:
                    totals[_part] += time.perf_counter() - t0

        setattr(owner, attribute, classmethod(timed) if is_classmethod else timed)


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
    parts: dict[str, float] = {}  # seconds in each library call the load makes (see _PARTS)
    if variant == "engine":
        try:
            from jaguar_sdk.engine import Engine

            info["preimported"] = preimport(folder)
            _instrument(parts)
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
    read_before = read_bytes()
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
        if load_to_cpu is not None:
            info["parts"] = parts
            info["ours_s"] = info["load_only_s"] - parts.get("pipeline", 0.0)
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
    read_after = read_bytes()
    if read_before is not None and read_after is not None:
        info["storage_read_bytes"] = read_after - read_before
    info["checksum"] = checksum
    info["touched_bytes"] = touched
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return info


# --- parent side ----------------------------------------------------------------------------
#: The real bf16 pipeline (perf.md section 0), for the projection.
FULL_GB = 33.7
FULL_ROUNDS, QUICK_ROUNDS = 8, 2


def _spawn(variant: str, folder: Path, cold: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.load", "--worker", variant, "--dir", str(folder)]
    if cold:
        cmd.append("--cold")
    # One intra-op thread: with torch's default two OpenMP threads on a 2-core VM shared with
    # other jobs, the touch (a sum over every weight) took 0.05 s or 1 s for the same 0.29 GB,
    # depending on whether another process held a core (an OpenMP barrier waits for its
    # descheduled twin). It is the measuring device on both sides, not the subject.
    env = dict(os.environ, PYTHONWARNINGS="ignore", TQDM_DISABLE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return dict(json.loads(line[len(_MARK) :]))
    raise RuntimeError(
        f"load worker failed (rc={proc.returncode}): {proc.stderr[-2000:] or proc.stdout[-2000:]}"
    )


def _fixed_parts(runs: list[dict[str, Any]]) -> list[tuple[str, list[float]]]:
    """The parts of the engine runs' load + touch, as (label, seconds per run)."""
    if not runs:
        return []

    def part(name: str) -> list[float]:
        return [float(r["parts"].get(name, 0.0)) for r in runs]

    inner = ("diffusers_models", "text_encoders", "tokenizers", "scheduler")
    rest = [r["parts"]["pipeline"] - sum(r["parts"].get(name, 0.0) for name in inner) for r in runs]
    return [
        ("FluxPipeline.from_pretrained", part("pipeline")),
        ("  transformer + VAE (diffusers ModelMixin.from_pretrained)", part("diffusers_models")),
        ("  text encoders (transformers PreTrainedModel.from_pretrained)", part("text_encoders")),
        ("    of which transformers' checkpoint-conversion table", part("conversion")),
        ("  tokenizers", part("tokenizers")),
        ("  scheduler", part("scheduler")),
        ("  the rest (model_index, dispatch)", rest),
        ("the engine's own code", [float(r["ours_s"]) for r in runs]),
        ("the touch (sum of every weight)", [r["seconds"] - r["load_only_s"] for r in runs]),
    ]


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def run(quick: bool = False, *, rounds: int | None = None) -> dict[str, Any]:
    """Cold and warm load throughput, engine vs raw, at two sizes, and the fixed cost apart.

    Args:
        quick: The ``medium`` size only and 2 rounds, instead of ``medium`` and ``large`` and 8.
        rounds: Override the number of rounds per cache state.

    Returns:
        The result record (GB/s per variant, seconds, the ratio engine / raw throughput, the
        fixed cost, the byte-rate ratio and the projection to 33.7 GB).
    """
    from ._flux_builder import ensure_pipeline, weight_files

    started = time.perf_counter()
    sizes = ["medium"] if quick else ["medium", "large"]
    n = rounds if rounds is not None else (QUICK_ROUNDS if quick else FULL_ROUNDS)
    folders = {size: ensure_pipeline(size) for size in [*sizes, "skeleton", "flux1-skeleton"]}
    gigabytes = {
        size: sum(f.stat().st_size for f in weight_files(folder)) / 1e9
        for size, folder in folders.items()
    }
    result = new_result(
        NAME,
        f"{TITLE} ({', '.join(f'{s} {gigabytes[s]:.2f} GB' for s in sizes)} random Flux pipelines)",
        baseline="raw safetensors.torch.load_file + sum, same size and cache state",
        unit="GB/s",
    )
    records: list[dict[str, Any]] = []

    def measure(variant: str, size: str, cold: bool) -> Any:
        def call() -> float:
            info = _spawn(variant, folders[size], cold)
            info["size"] = size
            records.append(info)
            return float(info["seconds"])

        return call

    largest = sizes[-1]
    variants = {f"{v} {s}": (v, s) for s in sizes for v in ("raw", "engine")}
    cold = interleave({k: measure(v, s, True) for k, (v, s) in variants.items()}, n, warmup=0)
    for size in folders:  # warm the page cache
        for path in weight_files(folders[size]):
            with open(path, "rb") as handle:
                while handle.read(1 << 24):
                    pass
    warm_variants = {k: measure(v, s, False) for k, (v, s) in variants.items()}
    warm_variants["engine skeleton"] = measure("engine", "skeleton", False)
    warm_variants["engine flux1-skeleton"] = measure("engine", "flux1-skeleton", False)
    warm = interleave(warm_variants, n, warmup=0)

    fixed_s = _median(warm["engine skeleton"])
    fixed_full_s = _median(warm["engine flux1-skeleton"])
    byte_ratios: dict[tuple[str, str], float] = {}
    for state, samples in (("cold", cold), ("warm", warm)):
        for size in sizes:
            gb = gigabytes[size]
            raw_s, engine_s = samples[f"raw {size}"], samples[f"engine {size}"]
            raw_gbps = [gb / t for t in raw_s]

            def gbps_row(
                label: str,
                times: list[float],
                prefix: str = f"{state} {size}",
                gb: float = gb,
                raw_gbps: list[float] = raw_gbps,
                **extra: Any,
            ) -> dict[str, Any]:
                gbps = [gb / t for t in times]
                return row(f"{prefix} {label}", gbps, raw_gbps, higher_is_better=True, **extra)

            excess = [e - r for e, r in zip(engine_s, raw_s, strict=True)]
            result["rows"].append(
                gbps_row("raw safetensors", raw_s, seconds=round(_median(raw_s), 3))
            )
            result["rows"].append(
                gbps_row(
                    "engine load",
                    engine_s,
                    seconds=round(_median(engine_s), 3),
                    excess_s=round(_median(excess), 3),
                )
            )
            # The engine's byte rate: its seconds less the fixed cost (measured on the skeleton).
            byte_row = gbps_row(
                "engine, fixed cost taken out", [max(t - fixed_s, 1e-3) for t in engine_s]
            )
            result["rows"].append(byte_row)
            byte_ratios[(state, size)] = byte_row["ratio"]
    fixed = new_result(
        f"{NAME}_fixed",
        "the engine's fixed cost: load + touch of skeletons (every module and tensor, ~no bytes)",
        baseline="none (seconds)",
        unit="s",
    )
    for label, size in (("this structure", "skeleton"), ("FLUX.1 structure", "flux1-skeleton")):
        fixed["rows"].append(
            row(
                f"engine, skeleton of {label} ({gigabytes[size] * 1000:.1f} MB)",
                warm[f"engine {size}"],
            )
        )
        ran = [r for r in records if r["size"] == size and "parts" in r]
        for part_label, values in _fixed_parts(ran):
            fixed["rows"].append(row(f"  {part_label}", values))
    fixed["notes"].append(
        "warm page cache, fresh process, imports excluded; each part is the time inside that "
        "library call (its outermost call), measured in the same runs; 'engine's own code' = "
        "Engine.load_to_cpu outside FluxPipeline.from_pretrained (model resolution, dtype)"
    )
    result["sub_results"] = [fixed]
    for state in ("cold", "warm"):
        result["goals"].append(
            goal(
                f"{state}: engine byte rate / raw read ({largest}, fixed cost taken out)",
                byte_ratios[(state, largest)],
                GOAL_RATIO,
                at_most=False,
            )
        )
    for state, samples in (("cold", cold), ("warm", warm)):
        raw_rate = gigabytes[largest] / _median(samples[f"raw {largest}"])
        raw_full_s = FULL_GB / raw_rate
        projected = raw_full_s / (fixed_full_s + raw_full_s / byte_ratios[(state, largest)])
        result["goals"].append(
            goal(
                f"{state}: projected {FULL_GB} GB load / raw read (at {raw_rate:.2f} GB/s, "
                f"fixed {fixed_full_s:.2f} s)",
                round(projected, 3),
                GOAL_RATIO,
                at_most=False,
            )
        )
    subject = next((r["subject"] for r in records if r["variant"] == "engine"), "engine")
    result["notes"].append(
        f"subject: {subject}; touch: "
        f"{next((r['touch'] for r in records if r['variant'] == 'engine'), '?')}"
    )
    result["notes"].append(
        "fixed cost = the engine's load + touch of the skeleton (same structure, "
        f"{gigabytes['skeleton'] * 1000:.1f} MB; warm); 'fixed cost taken out' = bytes / "
        "(engine seconds - fixed cost); excess_s = engine - raw seconds, paired per round"
    )
    result["notes"].append(
        f"projection to {FULL_GB} GB: raw seconds at this run's raw rate, vs FLUX.1-skeleton "
        "fixed cost + raw seconds / byte-rate ratio; the skeleton's tokenizers are built in "
        "memory with small vocabularies (the real CLIP BPE / T5 tokenizer files load slower)"
    )
    fallback = next((r["fallback_reason"] for r in records if "fallback_reason" in r), None)
    if fallback:
        result["notes"].append(f"engine not importable: {fallback}")
    residents = [r.get("resident_after_evict") for r in records if r["cold"]]
    result["notes"].append(
        "each sample is a fresh subprocess, imports excluded; cold = posix_fadvise(DONTNEED) "
        f"first (resident bytes after eviction per fincore: {sorted(set(residents), key=str)})"
    )
    result["notes"].append("ratio = engine GB/s / raw GB/s in the same round; >= 0.9 is the goal")
    result["notes"].append("workers run with OMP_NUM_THREADS=1 (a one-thread touch, both sides)")
    result["samples"] = records  # every worker's report: load-only seconds, bytes read...
    if quick:
        result["notes"].append(noise_note(n, FULL_ROUNDS, "rounds") + "; medium size only")
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
