"""Measuring helpers: FLOPs per stage, memory, text-encoding time, per-image rows.

Every helper works on CPU too (that is what the ``--small`` run in the test suite exercises);
only the CUDA calls themselves (``torch.cuda.*``) are left to the GPU run.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._common import percentile

#: Achievable bf16 dense matmul rate of an H100 / H200, measured (perf.md section 3b: 798 on a
#: lent H100, 769-798 on the H200s of the device notes): the floor's denominator.
ACHIEVABLE_TFLOPS = 798.0
#: The capacity the memory figures are compared with: an H100 80GB (nominal bytes).
H100_BYTES = 80e9
GB = 1e9


def is_cuda(device: str) -> bool:
    """Whether ``device`` names a CUDA device."""
    return device.startswith("cuda")


def sync(device: str) -> None:
    """Wait for queued GPU work (a no-op off CUDA), so wall-clock timings are honest."""
    if is_cuda(device):
        import torch

        torch.cuda.synchronize()


def count_stage_flops(sizes: Any, width: int, height: int, text_tokens: int) -> dict[str, float]:
    """FLOPs of each stage of one image, counted on the meta device (no memory, no GPU).

    Args:
        sizes: The pipeline's ``RandomFluxSizes``.
        width: Image width (a multiple of 16).
        height: Image height (a multiple of 16).
        text_tokens: T5 tokens (the request's ``max_sequence_length``).

    Returns:
        ``transformer_step``, ``vae_decode``, ``t5``, ``clip`` in FLOPs.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .._flux_builder import build_pipeline_on
    from ..gpu import count_flops_per_step

    pipe = build_pipeline_on(sizes, device="meta")
    flops = {
        "transformer_step": count_flops_per_step(
            pipe.transformer, image_tokens=(width // 16) * (height // 16), text_tokens=text_tokens
        )
    }
    calls = {
        "vae_decode": lambda: pipe.vae.decode(
            torch.empty(1, 16, height // 8, width // 8, device="meta"), return_dict=False
        ),
        "t5": lambda: pipe.text_encoder_2(
            input_ids=torch.zeros(1, text_tokens, dtype=torch.long, device="meta")
        ),
        "clip": lambda: pipe.text_encoder(
            input_ids=torch.zeros(
                1, pipe.tokenizer.model_max_length, dtype=torch.long, device="meta"
            )
        ),
    }
    for name, call in calls.items():
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            call()
        flops[name] = float(counter.get_total_flops())
    return flops


def stage_floors(flops: dict[str, float], steps: int, tflops: float = ACHIEVABLE_TFLOPS) -> dict:
    """Seconds each stage needs at ``tflops`` (the compute floor), and their sum."""
    rate = tflops * 1e12
    floors = {
        "text_encode_s": (flops["t5"] + flops["clip"]) / rate,
        "denoise_s": steps * flops["transformer_step"] / rate,
        "decode_s": flops["vae_decode"] / rate,
    }
    floors["image_s"] = sum(floors.values())
    return floors


def reset_peak(device: str) -> None:
    """Start a new peak-memory window (CUDA only; host peaks cannot be reset)."""
    if is_cuda(device):
        import torch

        torch.cuda.reset_peak_memory_stats()


def memory(device: str, moment: str) -> dict[str, Any]:
    """Memory now and the peak since :func:`reset_peak`, in GB.

    Always: the process's host resident set and its lifetime peak. On CUDA also: allocated /
    reserved by PyTorch, their peaks, the device's used total (which includes the CUDA
    context), and the headroom an 80 GB H100 would have at the reserved peak plus this context.

    Args:
        device: The engine's device.
        moment: What is being measured (a label for the table).

    Returns:
        One memory record.
    """
    record: dict[str, Any] = {
        "moment": moment,
        "device": device,
        "rss_gb": _rss_bytes() / GB,
        "peak_rss_gb": _peak_rss_bytes() / GB,
    }
    if is_cuda(device):
        import torch

        free, total = torch.cuda.mem_get_info()
        reserved = torch.cuda.memory_reserved()
        context = max(0, (total - free) - reserved)  # CUDA context, cuBLAS workspaces...
        peak_reserved = torch.cuda.max_memory_reserved()
        record.update(
            allocated_gb=torch.cuda.memory_allocated() / GB,
            reserved_gb=reserved / GB,
            peak_allocated_gb=torch.cuda.max_memory_allocated() / GB,
            peak_reserved_gb=peak_reserved / GB,
            device_used_gb=(total - free) / GB,
            device_total_gb=total / GB,
            non_torch_gb=context / GB,
            headroom_80gb_gb=(H100_BYTES - peak_reserved - context) / GB,
        )
        record["fits_80gb"] = record["headroom_80gb_gb"] > 0
    return record


def _rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux


def time_text_encoding(pipe: Any, prompt: str, max_sequence_length: int, device: str) -> float:
    """Seconds of ``FluxPipeline.encode_prompt`` (CLIP + T5) for one prompt, synchronised.

    The engine reports text encoding inside ``inference_s`` (the pipeline call encodes the
    prompt, then denoises); timing ``encode_prompt`` alone, with the same prompt and length,
    splits it out (diffusers 0.42.1 ``pipeline_flux.FluxPipeline.encode_prompt``).
    """
    import torch

    sync(device)
    started = time.perf_counter()
    with torch.inference_mode():
        pipe.encode_prompt(
            prompt=prompt,
            prompt_2=None,
            device=torch.device(device),
            num_images_per_prompt=1,
            max_sequence_length=max_sequence_length,
        )
    sync(device)
    return time.perf_counter() - started


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def variant_row(
    variant: str,
    timings: Sequence[Any],
    *,
    walls: Sequence[float],
    text_s: Sequence[float],
    floors: dict[str, float] | None,
    first: Any = None,
    first_wall_s: float | None = None,
    images_per_call: int = 1,
) -> dict[str, Any]:
    """One per-image row: medians of the engine's stage timings and the split of inference.

    Args:
        variant: The row's name.
        timings: ``Timings`` of the timed calls (``inference_s`` = text encoding + denoising).
        walls: Wall seconds of the same calls, measured by the caller (client overhead shows
            as ``wall_s - total_s``).
        text_s: Seconds of text encoding measured apart (:func:`time_text_encoding`).
        floors: :func:`stage_floors` output, or ``None``.
        first: ``Timings`` of the first call (compilation, autotuning), reported apart.
        first_wall_s: Its wall seconds.
        images_per_call: Images per call (per-image figures divide by it).

    Returns:
        The row.
    """
    per = float(images_per_call)

    def median_per_image(values: Sequence[float]) -> float | None:
        middle = _median(values)
        return None if middle is None else middle / per

    totals = [t.total_s / per for t in timings]
    text = median_per_image(text_s)
    inference = median_per_image([t.inference_s for t in timings])
    row: dict[str, Any] = {
        "variant": variant,
        "n": len(timings),
        "image_s": _median(totals),
        "image_s_p10": percentile(totals, 10) if totals else None,
        "image_s_p90": percentile(totals, 90) if totals else None,
        "wall_s": median_per_image(walls),
        "text_encode_s": text,
        "denoise_s": (inference - text) if inference is not None and text is not None else None,
        "inference_s": inference,
        "decode_s": median_per_image([t.decode_s for t in timings]),
        "encode_s": median_per_image([t.encode_s for t in timings]),
        "first_call_s": first.total_s if first is not None else None,
        "first_call_wall_s": first_wall_s,
        "images_per_call": images_per_call,
    }
    if floors and row["image_s"]:
        row["floor_s"] = floors["image_s"]
        row["floor_ratio"] = floors["image_s"] / row["image_s"]
    return row
