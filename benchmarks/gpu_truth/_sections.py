"""The sections of a GPU-truth run, in run order; each returns its figures or raises.

Only public entry points of the project are used: ``jaguar_sdk`` top-level names,
``jaguar_sdk.engine.Engine`` and ``jaguar_sdk.engine.build_tiny_model``. The random full-size
pipeline comes from ``benchmarks._flux_builder`` (the project's one random-Flux builder).
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._measure import (
    ACHIEVABLE_TFLOPS,
    GB,
    count_stage_flops,
    is_cuda,
    memory,
    reset_peak,
    stage_floors,
    sync,
    time_text_encoding,
    variant_row,
)
from ._report import Section


class SectionSkipped(Exception):
    """Raised by a section that cannot run here (the message says why)."""


@dataclass
class RunConfig:
    """What one run measures.

    Attributes:
        small: The CPU-sized configuration (``--small``).
        device: ``"cuda"`` or ``"cpu"``.
        sizes: The pipeline's ``RandomFluxSizes``.
        width: Image width.
        height: Image height.
        steps: Denoising steps.
        reps: Timed generations per variant (after the first call).
        batch_images: Images in the batched request (memory while generating).
        max_sequence_length: T5 tokens per prompt.
        prompt: The prompt.
        work_dir: Where the pipeline is saved.
    """

    small: bool
    device: str
    sizes: Any
    width: int
    height: int
    steps: int
    reps: int
    batch_images: int
    max_sequence_length: int
    prompt: str
    work_dir: Path

    def summary(self) -> str:
        """One line for the table."""
        return (
            f"{'small (CPU-sized)' if self.small else 'full-size FLUX.1'} random pipeline, "
            f"{self.width}x{self.height}, {self.steps} steps, {self.max_sequence_length} T5 "
            f"tokens, {self.reps} timed calls per variant, device {self.device}"
        )


@dataclass
class State:
    """What sections hand to later sections."""

    cfg: RunConfig
    remaining: Callable[[], float]
    floors: dict[str, float] | None = None
    built: Any = None
    weight_bytes: int = 0
    folder: Path | None = None
    files: list[Path] = field(default_factory=list)
    write_gbps: float | None = None
    engine: Any = None
    text_s: list[float] = field(default_factory=list)


# --- helpers ----------------------------------------------------------------------------------
def _request(cfg: RunConfig, num_images: int = 1) -> Any:
    from jaguar_sdk import GenerateRequest

    return GenerateRequest(
        prompt=cfg.prompt,
        width=cfg.width,
        height=cfg.height,
        steps=cfg.steps,
        seed=0,
        num_images=num_images,
        max_sequence_length=cfg.max_sequence_length,
    )


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = call()
    return value, time.perf_counter() - started


def _timed_calls(call: Callable[[int], Any], n: int) -> tuple[list[Any], list[float]]:
    """``call(0)`` ... ``call(n - 1)``, each timed: their results' ``timings`` and wall seconds."""
    timings, walls = [], []
    for index in range(n):
        result, wall = _timed(lambda i=index: call(i))
        timings.append(result.timings)
        walls.append(wall)
    return timings, walls


def _engine_variant(state: State, engine: Any, variant: str) -> dict[str, Any]:
    """First call apart, then ``reps`` timed calls through ``engine.generate``."""
    cfg = state.cfg
    request = _request(cfg)
    first, first_wall = _timed(lambda: engine.generate(request, request_id="first"))
    timings, walls = _timed_calls(
        lambda i: engine.generate(request, request_id=f"timed-{i}"), cfg.reps
    )
    image = first.images[0]
    row = variant_row(
        variant,
        timings,
        walls=walls,
        text_s=state.text_s,
        floors=state.floors,
        first=first.timings,
        first_wall_s=first_wall,
    )
    row["image_size"] = f"{image.width}x{image.height}"
    return row


def _release_engine(state: State) -> None:
    """Close the shared engine and drop compiled code, freeing the GPU for the next load."""
    if state.engine is not None:
        state.engine.close()
        state.engine = None
    gc.collect()
    import torch

    if hasattr(torch, "compiler") and hasattr(torch.compiler, "reset"):
        torch.compiler.reset()
    if is_cuda(state.cfg.device):
        torch.cuda.empty_cache()


def _row_summary(row: dict[str, Any]) -> str:
    ratio = row.get("floor_ratio")
    return (
        f"{row['image_s']:.3f} s/image (p10-p90 {row['image_s_p10']:.3f}-"
        f"{row['image_s_p90']:.3f}); first call {row['first_call_s']:.1f} s"
        + (f"; floor/measured {ratio:.2f}" if ratio else "")
    )


def _fs_type(path: Path) -> str | None:
    """The filesystem type of the mount holding ``path`` (from /proc/mounts)."""
    try:
        best, kind = "", None
        target = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and target.startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
        return kind
    except OSError:
        return None


def _torchao() -> dict[str, Any]:
    if importlib.util.find_spec("torchao") is None:
        return {"installed": False}
    try:
        import torchao

        return {"installed": True, "version": getattr(torchao, "__version__", None)}
    except Exception as exc:  # installed but broken (e.g. built for another torch)
        return {"installed": True, "import_error": f"{type(exc).__name__}: {exc}"}


# --- sections ---------------------------------------------------------------------------------
def environment(state: State) -> dict[str, Any]:
    """Machine, versions, GPU, torchao, disk: what the figures were measured on."""
    import torch

    from .._common import machine_info

    cfg = state.cfg
    figures: dict[str, Any] = {
        "machine": machine_info(),
        "device": cfg.device,
        "torchao": _torchao(),
        "work_dir": str(cfg.work_dir),
        "work_dir_fs": _fs_type(cfg.work_dir),
        "disk_free_gb": shutil.disk_usage(cfg.work_dir).free / GB,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    if is_cuda(cfg.device):
        props = torch.cuda.get_device_properties(0)
        figures["gpu"] = {
            "name": props.name,
            "total_gb": props.total_memory / GB,
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
        }
    gpu = figures.get("gpu", {}).get("name", "no GPU")
    figures["summary"] = (
        f"{gpu}; torch {torch.__version__}; torchao {figures['torchao']}; "
        f"work dir on {figures['work_dir_fs']} ({figures['disk_free_gb']:.0f} GB free)"
    )
    return figures


def floor(state: State) -> dict[str, Any]:
    """FLOPs per stage counted on the meta device, and the compute floor they imply."""
    cfg = state.cfg
    flops = count_stage_flops(cfg.sizes, cfg.width, cfg.height, cfg.max_sequence_length)
    floors = stage_floors(flops, cfg.steps)
    state.floors = floors
    image_flops = cfg.steps * flops["transformer_step"] + flops["vae_decode"]
    image_flops += flops["t5"] + flops["clip"]
    return {
        "flops": flops,
        "image_flops": image_flops,
        "floors": floors,
        "summary": f"{image_flops / 1e12:.4g} TFLOP per image -> floor "
        f"{floors['image_s']:.3g} s at {ACHIEVABLE_TFLOPS:g} TFLOP/s "
        f"(text {floors['text_encode_s']:.3g} s, denoise {floors['denoise_s']:.3g} s, "
        f"decode {floors['decode_s']:.3g} s)",
    }


def snapshot_phase(state: State) -> dict[str, Any]:
    """Pre-snapshot code with no GPU visible, then the post-restore move (subprocess)."""
    import torch

    from jaguar_sdk.engine import build_tiny_model

    from ._snapshot import run_check

    folder = build_tiny_model(state.cfg.work_dir / "tiny-snapshot")
    report = run_check(
        folder,
        timeout_s=max(30.0, min(180.0, state.remaining())),
        gpu_here=bool(torch.cuda.is_available()),
    )
    report["model"] = "tiny (the rule concerns CUDA queries, not the model's size)"
    report["summary"] = (
        f"{report['verdict']}: ended on {report.get('transformer_device')}; "
        f"{report.get('cuda_query_count_before_restore')} torch.cuda queries before the restore"
    )
    return report


def build(state: State) -> dict[str, Any]:
    """The random pipeline, initialised directly on the device in bf16."""
    import torch

    from .._flux_builder import build_pipeline_on, component_parameters

    cfg = state.cfg
    pipe, seconds = _timed(
        lambda: build_pipeline_on(cfg.sizes, device=cfg.device, dtype=torch.bfloat16, seed=0)
    )
    sync(cfg.device)
    state.built = pipe
    params = component_parameters(pipe)
    state.weight_bytes = sum(
        t.numel() * t.element_size()
        for c in pipe.components.values()
        if isinstance(c, torch.nn.Module)
        for t in (*c.parameters(), *c.buffers())
    )
    return {
        "seconds": seconds,
        "parameters": params,
        "total_parameters": sum(params.values()),
        "weight_gb": state.weight_bytes / GB,
        "memory": [memory(cfg.device, "random pipeline built (bf16)")],
        "summary": f"{sum(params.values()) / 1e9:.2f} B parameters, "
        f"{state.weight_bytes / GB:.1f} GB, built in {seconds:.1f} s",
    }


def save(state: State) -> dict[str, Any]:
    """``save_pretrained`` in the diffusers layout, then fsync: the disk's write rate."""
    cfg = state.cfg
    free = shutil.disk_usage(cfg.work_dir).free
    need = state.weight_bytes * 1.05 + 1e9
    if free < need:
        raise RuntimeError(
            f"not enough disk in {cfg.work_dir}: the pipeline needs {need / GB:.1f} GB, "
            f"{free / GB:.1f} GB free (use --work-dir)"
        )
    folder = cfg.work_dir / "flux-random"
    importlib.import_module("transformers").utils.logging.disable_progress_bar()  # shard bars
    _, save_s = _timed(lambda: state.built.save_pretrained(str(folder), safe_serialization=True))

    def fsync_all() -> None:
        for path in folder.rglob("*"):
            if path.is_file():
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    _, fsync_s = _timed(fsync_all)
    state.files = sorted(folder.rglob("*.safetensors"))
    total = sum(p.stat().st_size for p in state.files)
    state.folder = folder
    state.write_gbps = total / GB / (save_s + fsync_s)
    state.built = None  # free the builder's copy before the engine loads its own
    gc.collect()
    if is_cuda(cfg.device):
        import torch

        torch.cuda.empty_cache()
    return {
        "folder": str(folder),
        "safetensors_gb": total / GB,
        "files": len(state.files),
        "save_s": save_s,
        "fsync_s": fsync_s,
        "write_gbps": state.write_gbps,
        "summary": f"{total / GB:.1f} GB in {len(state.files)} files: save {save_s:.1f} s + "
        f"fsync {fsync_s:.1f} s = {state.write_gbps:.2f} GB/s",
    }


def load(state: State) -> dict[str, Any]:
    """``Engine.load_to_cpu`` then ``to_device`` (the container's path), then warm-up."""
    from jaguar_sdk.engine import Engine

    from ..load import resident_bytes

    cfg = state.cfg
    resident = resident_bytes(state.files)
    engine = Engine.load_to_cpu(state.folder, dtype="bfloat16")
    reset_peak(cfg.device)
    engine.to_device(cfg.device)
    state.engine = engine
    at_rest = memory(cfg.device, "engine loaded (weights only)")
    _, warmup_s = _timed(engine.warmup)
    timings = engine.load_timings
    bytes_ = sum(p.stat().st_size for p in state.files)
    seconds = timings["load_s"] + timings["to_device_s"]
    moved = timings.get("to_device_gb") or 0.0
    figures = {
        "page_cache_resident_gb_before": None if resident is None else resident / GB,
        "load_to_cpu_s": timings["load_s"],
        "to_device_s": timings["to_device_s"],
        "to_device_gb": moved,
        "to_device_gbps": moved / timings["to_device_s"] if moved else None,
        "load_gbps": bytes_ / GB / seconds,
        "warmup_s": warmup_s,
        "engine_device": engine.device,
        "engine_extra": engine.info().extra,
        "memory": [at_rest, memory(cfg.device, "engine at rest after warm-up")],
    }
    figures["summary"] = (
        f"load_to_cpu {timings['load_s']:.1f} s + to_device {timings['to_device_s']:.1f} s "
        f"({moved:.1f} GB moved) = {figures['load_gbps']:.2f} GB/s; page cache warm "
        f"(files just written); warm-up {warmup_s:.1f} s; ended on {engine.device}"
    )
    return figures


def eager(state: State) -> dict[str, Any]:
    """Seconds per image through ``Engine.generate``, bf16 eager, split by stage."""
    cfg = state.cfg
    engine = state.engine
    state.text_s = [
        time_text_encoding(engine.pipeline, cfg.prompt, cfg.max_sequence_length, engine.device)
        for _ in range(max(2, cfg.reps))
    ]
    row = _engine_variant(state, engine, "Engine.generate, bf16 eager")
    return {"rows": [row], "summary": _row_summary(row)}


def batch(state: State) -> dict[str, Any]:
    """Peak memory while generating ``batch_images`` images in one request."""
    cfg = state.cfg
    engine = state.engine
    request = _request(cfg, num_images=cfg.batch_images)
    reset_peak(cfg.device)
    timings, walls = _timed_calls(lambda i: engine.generate(request, request_id=f"batch-{i}"), 2)
    mem = memory(cfg.device, f"generating {cfg.batch_images} x {cfg.width}x{cfg.height}")
    row = variant_row(
        f"Engine.generate, {cfg.batch_images} images per request (per image, 2nd call)",
        timings[1:],
        walls=walls[1:],
        text_s=[],
        floors=state.floors,
        images_per_call=cfg.batch_images,
    )
    return {
        "rows": [row],
        "memory": [mem],
        "summary": f"{row['image_s']:.3f} s per image at {cfg.batch_images} per request; "
        + (
            f"peak {mem['peak_reserved_gb']:.1f} GB reserved"
            if "peak_reserved_gb" in mem
            else f"host RSS {mem['rss_gb']:.2f} GB"
        ),
    }


def compiled(state: State) -> dict[str, Any]:
    """Regional compile through ``to_device(compile=True)``, interleaved with eager rounds."""
    import torch

    cfg = state.cfg
    engine = state.engine
    _, apply_s = _timed(lambda: engine.to_device(cfg.device, compile=True))
    applied = engine.info().extra.get("compile")
    request = _request(cfg)
    first, first_wall = _timed(lambda: engine.generate(request, request_id="compile-first"))
    stance = getattr(torch.compiler, "set_stance", None)
    eager_t, eager_w, comp_t, comp_w = [], [], [], []
    for index in range(cfg.reps):  # E C, E C ...: same moment of the machine for both
        if stance is not None:
            with stance("force_eager"):
                result, wall = _timed(lambda i=index: engine.generate(request, request_id=f"e{i}"))
            eager_t.append(result.timings)
            eager_w.append(wall)
        result, wall = _timed(lambda i=index: engine.generate(request, request_id=f"c{i}"))
        comp_t.append(result.timings)
        comp_w.append(wall)
    label = f"Engine.generate, bf16 compiled ({applied or 'not applied off CUDA'})"
    comp_row = variant_row(
        label,
        comp_t,
        walls=comp_w,
        text_s=state.text_s,
        floors=state.floors,
        first=first.timings,
        first_wall_s=first_wall,
    )
    comp_row["apply_s"] = apply_s
    rows = [comp_row]
    if eager_t:
        eager_row = variant_row(
            "Engine.generate, bf16 eager (interleaved with compiled)",
            eager_t,
            walls=eager_w,
            text_s=state.text_s,
            floors=state.floors,
        )
        pairs = [c.total_s / e.total_s for c, e in zip(comp_t, eager_t, strict=True)]
        comp_row["ratio_vs_eager"] = float(statistics.median(pairs))
        rows.insert(0, eager_row)
    return {
        "applied": applied,
        "rows": rows,
        "summary": _row_summary(comp_row)
        + (f"; {comp_row['ratio_vs_eager']:.2f}x eager" if "ratio_vs_eager" in comp_row else ""),
    }


def client_reload(state: State) -> dict[str, Any]:
    """``JaguarClient.local`` from a cold page cache, generation through it, then a reload."""
    from jaguar_sdk import JaguarClient

    from ..load import evict, resident_bytes

    cfg = state.cfg
    _release_engine(state)
    total = sum(p.stat().st_size for p in state.files)
    cold_estimate = total / GB / state.write_gbps if state.write_gbps else None
    if cold_estimate is not None and cold_estimate < 0.4 * state.remaining():
        evict(state.files)
        cache = "cold (page cache evicted)"
    else:
        cache = f"warm (a cold read was estimated at {_fmt_s(cold_estimate)}, over budget)"
    resident = resident_bytes(state.files)
    reset_peak(cfg.device)
    client, open_s = _timed(lambda: JaguarClient.local(model=str(state.folder), device=cfg.device))
    try:
        info = client.info()
        opened = memory(cfg.device, "JaguarClient.local open (one engine)")
        kwargs = {
            "width": cfg.width,
            "height": cfg.height,
            "steps": cfg.steps,
            "seed": 0,
            "max_sequence_length": cfg.max_sequence_length,
        }
        first, first_wall = _timed(lambda: client.generate(cfg.prompt, **kwargs))
        timings, walls = _timed_calls(lambda _: client.generate(cfg.prompt, **kwargs), cfg.reps)
        row = variant_row(  # text encoding stays inside inference_s: the engine is the client's
            f"JaguarClient.local, {info.dtype} eager",
            timings,
            walls=walls,
            text_s=[],
            floors=state.floors,
            first=first.timings,
            first_wall_s=first_wall,
        )
        reset_peak(cfg.device)
        reloaded, reload_s = _timed(client.reload_model)
        during = memory(cfg.device, "reload_model(): old and new engine at once")
    finally:
        client.close()
    load_s = info.load_timings.get("load_s", 0.0) + info.load_timings.get("to_device_s", 0.0)
    return {
        "cache": cache,
        "page_cache_resident_gb_before": None if resident is None else resident / GB,
        "open_s": open_s,
        "load_timings": info.load_timings,
        "load_gbps": total / GB / load_s if load_s else None,
        "reload_s": reload_s,
        "reload_timings": reloaded.load_timings,
        "device": info.device,
        "rows": [row],
        "memory": [opened, during],
        "summary": f"open {open_s:.1f} s ({cache}); {_row_summary(row)}; reload {reload_s:.1f} s",
    }


def fp8(state: State) -> dict[str, Any]:
    """``Engine.load(fp8=True, compile=True)``: torchao fp8 + regional compile."""
    from jaguar_sdk.engine import Engine

    cfg = state.cfg
    _release_engine(state)
    engine, load_s = _timed(
        lambda: Engine.load(
            state.folder, device=cfg.device, dtype="bfloat16", compile=True, fp8=True
        )
    )
    try:
        at_rest = memory(cfg.device, "fp8 engine loaded")
        extra = engine.info().extra
        row = _engine_variant(state, engine, f"Engine.generate, {extra.get('fp8')} + compile")
    finally:
        engine.close()
    return {
        "load_s": load_s,
        "applied": extra,
        "rows": [row],
        "memory": [at_rest],
        "summary": _row_summary(row),
    }


def h2d(state: State) -> dict[str, Any]:
    """Pinned vs pageable host-to-GPU copies of an 8 GB state dict (``benchmarks.gpu``)."""
    if not is_cuda(state.cfg.device):
        raise SectionSkipped("needs CUDA: pinned vs pageable host-to-GPU copies")
    from .. import gpu

    holder: dict[str, Any] = {}
    gpu._h2d(holder, quick=state.cfg.small)
    sub = holder["sub_results"][0]
    return {
        "title": sub["title"],
        "copies": sub["rows"],
        "notes": sub["notes"],
        "summary": "; ".join(f"{r['label']} {r['median']:.1f} GB/s" for r in sub["rows"]),
    }


def _fmt_s(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f} s"


#: Run order. Estimates: seconds on an H100/H200 (full) and on a 2-core CPU (``--small``).
SECTIONS: tuple[Section, ...] = (
    Section("environment", "machine and versions", 10, 8, False, (), environment),
    Section("floor", "FLOPs per stage (meta device)", 15, 2, False, (), floor),
    Section(
        "snapshot_phase", "snapshot-phase rule (subprocess)", 30, 12, False, (), snapshot_phase
    ),
    Section("build", "random pipeline on the device, bf16", 20, 2, False, (), build),
    Section("save", "save_pretrained + fsync", 60, 2, False, ("build",), save),
    Section("load", "Engine.load_to_cpu + to_device + warmup", 25, 2, False, ("save",), load),
    Section("eager", "generate via Engine, bf16 eager", 20, 3, False, ("load",), eager),
    Section("batch", "4 images per request: memory", 15, 2, True, ("load",), batch),
    Section("compiled", "regional compile", 75, 3, True, ("load",), compiled),
    Section("client_reload", "JaguarClient.local + reload", 70, 6, True, ("save",), client_reload),
    Section("fp8", "torchao fp8 + compile", 100, 2, True, ("save",), fp8),
    Section("h2d", "pinned vs pageable copies", 20, 1, True, (), h2d),
)
