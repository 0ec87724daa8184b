"""GPU: the full-size Flux transformer at 1024x1024, 4 steps, vs the physical floor; H2D copies.

Runs only where ``torch.cuda.is_available()``; elsewhere it records ``skipped: no CUDA GPU``.

* Transformer: FLUX.1 config (19 double + 38 single blocks, 24 heads x 128, joint_attention_dim
  4096, pooled 768, in_channels 64, no guidance embedding) with random bf16 weights; one image =
  4 forwards on 4096 image + 256 text tokens with an Euler update between them. T5, CLIP and
  the VAE are excluded from that figure; a random-weight full-size VAE decode is timed apart.
  Variants: eager (baseline), regional ``torch.compile`` (``compile_repeated_blocks(fullgraph=
  True)`` where diffusers has it, else ``torch.compile``), interleaved with eager via
  ``torch.compiler.set_stance("force_eager")``; then torchao fp8 (dynamic activation + weight)
  + compile where torchao is importable. Each is compared to the floor: FLOPs (counted with
  ``torch.utils.flop_counter`` on the meta device) / 798 TFLOP/s (measured H100 bf16 matmul).
* Host-to-GPU: a CPU state dict (8 GB, less if memory is short; 2 GB with --quick) copied with
  pageable ``.to("cuda")`` (baseline) vs pinned memory + ``non_blocking=True``, interleaved.
"""

from __future__ import annotations

import time
from typing import Any

from ._common import goal, new_result, row, skipped_result, summarize
from ._flux_builder import materialised_on

NAME = "gpu"
TITLE = "full-size Flux transformer on GPU (1024x1024, 4 steps) and host-to-GPU copies"
ACHIEVABLE_TFLOPS = 798.0  # measured H100 bf16 8192^3 matmul (perf.md section 3b)
PERF_MD_FLOPS_PER_IMAGE = 312.8e12  # whole pipeline, 512 text tokens (perf.md section 3a)
GOAL_S = 0.5  # per 1024^2 image on an H100
STEPS = 4
IMAGE_TOKENS = 4096  # (1024 / 8 / 2) ** 2
TEXT_TOKENS = 256

FLUX1_CONFIG: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": False,
    "axes_dims_rope": (16, 56, 56),
}
FLUX_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 16,
    "norm_num_groups": 32,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "shift_factor": 0.1159,
    "scaling_factor": 0.3611,
}


def cuda_available() -> bool:
    """Whether torch is importable and sees a CUDA GPU."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _inputs(
    device: Any,
    dtype: Any,
    *,
    image_tokens: int = IMAGE_TOKENS,
    text_tokens: int = TEXT_TOKENS,
    joint_attention_dim: int = 4096,
    pooled_projection_dim: int = 768,
) -> dict[str, Any]:
    """Random transformer inputs: a square grid of image tokens (FLUX.1 1024x1024 by default)."""
    import torch

    side = int(image_tokens**0.5)
    rows = torch.arange(side, device=device).repeat_interleave(side)
    cols = torch.arange(side, device=device).repeat(side)
    img_ids = torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).to(dtype)
    gen = torch.Generator(device="cpu").manual_seed(0)
    return {
        "hidden_states": torch.randn(1, image_tokens, 64, generator=gen).to(device, dtype),
        "encoder_hidden_states": torch.randn(1, text_tokens, joint_attention_dim, generator=gen).to(
            device, dtype
        ),
        "pooled_projections": torch.randn(1, pooled_projection_dim, generator=gen).to(
            device, dtype
        ),
        "img_ids": img_ids,
        "txt_ids": torch.zeros(text_tokens, 3, device=device, dtype=dtype),
    }


def count_flops_per_step(
    model: Any = None, *, image_tokens: int = IMAGE_TOKENS, text_tokens: int = TEXT_TOKENS
) -> float:
    """FLOPs of one transformer forward, counted on the meta device (no memory, no GPU).

    Args:
        model: A ``FluxTransformer2DModel`` on ``meta``; ``None`` builds the FLUX.1 one.
        image_tokens: Image tokens (4096 at 1024x1024: (1024 / 16) ** 2); a square number.
        text_tokens: T5 tokens.

    Returns:
        The FLOPs ``torch.utils.flop_counter.FlopCounterMode`` counts for one forward.
    """
    import torch
    from diffusers import FluxTransformer2DModel
    from torch.utils.flop_counter import FlopCounterMode

    if model is None:
        with torch.device("meta"):
            model = FluxTransformer2DModel(**FLUX1_CONFIG)
    inputs = _inputs(
        "meta",
        torch.float32,
        image_tokens=image_tokens,
        text_tokens=text_tokens,
        joint_attention_dim=model.config.joint_attention_dim,
        pooled_projection_dim=model.config.pooled_projection_dim,
    )
    timestep = torch.ones(1, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**inputs, timestep=timestep, return_dict=False)
    return float(counter.get_total_flops())


def _image(model: Any, inputs: dict[str, Any]) -> Any:
    """One 4-step image: 4 transformer forwards with an Euler update (schnell sigmas)."""
    import torch

    latents = inputs["hidden_states"]
    sigmas = [1.0, 0.75, 0.5, 0.25, 0.0]
    with torch.inference_mode():
        for i in range(STEPS):
            t = torch.full((1,), sigmas[i], device=latents.device, dtype=latents.dtype)
            noise = model(**{**inputs, "hidden_states": latents}, timestep=t, return_dict=False)[0]
            latents = latents + (sigmas[i + 1] - sigmas[i]) * noise
    return latents


def _timed(fn: Any) -> float:
    import torch

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def _transformer(result: dict[str, Any], quick: bool, floor_s: float) -> list[float]:
    import torch
    from diffusers import FluxTransformer2DModel

    reps = 3 if quick else 10
    dtype = torch.bfloat16
    with materialised_on("cuda", dtype):  # build straight in bf16 on the GPU (no fp32 copy)
        model = FluxTransformer2DModel(**FLUX1_CONFIG).eval().requires_grad_(False)
    inputs = _inputs("cuda", dtype)
    for _ in range(2):
        _timed(lambda: _image(model, inputs))

    stance = getattr(torch.compiler, "set_stance", None)
    if hasattr(model, "compile_repeated_blocks"):
        model.compile_repeated_blocks(fullgraph=True)
        compiled, how = model, "regional: compile_repeated_blocks(fullgraph=True)"
    else:
        compiled, how = torch.compile(model, fullgraph=True), "torch.compile(fullgraph=True)"
    first_compiled = _timed(lambda: _image(compiled, inputs))
    _timed(lambda: _image(compiled, inputs))

    def eager_run() -> float:
        if stance is not None:
            with stance("force_eager"):
                return _timed(lambda: _image(compiled, inputs))
        return _timed(lambda: _image(model, inputs))

    eager: list[float] = []
    comp: list[float] = []
    for _ in range(reps):  # interleaved E C E C ...
        eager.append(eager_run())
        comp.append(_timed(lambda: _image(compiled, inputs)))
    peak_gb = torch.cuda.max_memory_allocated() / 1e9
    result["rows"].append(
        row("bf16 eager, 4 steps", eager, eager, floor_ratio=floor_s / statistics_median(eager))
    )
    result["rows"].append(
        row(
            f"bf16 compiled ({how})",
            comp,
            eager,
            floor_ratio=floor_s / statistics_median(comp),
            first_call_s=round(first_compiled, 1),
        )
    )
    result["notes"].append(f"peak GPU memory (bf16 phase): {peak_gb:.1f} GB")
    best = min(statistics_median(eager), statistics_median(comp))

    fp8_s = _fp8(result, compiled, model, inputs, reps, eager, floor_s)
    if fp8_s is not None:
        best = min(best, fp8_s)
    result["goals"].append(
        goal(
            f"transformer 4 steps, best variant, s per image ({torch.cuda.get_device_name(0)})",
            best,
            GOAL_S,
            at_most=True,
        )
    )
    return eager


def _vae(result: dict[str, Any], quick: bool, eager: list[float]) -> None:
    import torch
    from diffusers import AutoencoderKL

    torch.cuda.empty_cache()
    reps = 3 if quick else 10
    dtype = torch.bfloat16
    with materialised_on("cuda", dtype):
        vae = AutoencoderKL(**FLUX_VAE_CONFIG).eval().requires_grad_(False)
    latent = torch.randn(1, 16, 128, 128, device="cuda", dtype=dtype)

    def decode() -> None:
        with torch.inference_mode():
            vae.decode(latent, return_dict=False)

    _timed(decode)
    vae_times = [_timed(decode) for _ in range(reps)]
    result["rows"].append(
        row("VAE decode 1024x1024 (bf16 eager, random weights)", vae_times, eager[:reps])
    )


def statistics_median(values: list[float]) -> float:
    """Median of samples."""
    return float(summarize(values)["median"])


def _fp8(
    result: dict[str, Any],
    compiled: Any,
    model: Any,
    inputs: dict[str, Any],
    reps: int,
    eager: list[float],
    floor_s: float,
) -> float | None:
    import torch

    try:
        from torchao.quantization import quantize_
    except Exception as exc:
        result["notes"].append(f"fp8 not measured: torchao not importable ({exc})")
        return None
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig

        config: Any = Float8DynamicActivationFloat8WeightConfig()
    except ImportError:
        from torchao.quantization import float8_dynamic_activation_float8_weight

        config = float8_dynamic_activation_float8_weight()
    try:
        torch._dynamo.reset()
        quantize_(model, config)
        first = _timed(lambda: _image(compiled, inputs))  # recompiles the quantised blocks
        _timed(lambda: _image(compiled, inputs))
        times = [_timed(lambda: _image(compiled, inputs)) for _ in range(reps)]
    except Exception as exc:  # e.g. a GPU without fp8 tensor cores
        result["notes"].append(f"fp8 failed: {type(exc).__name__}: {exc}")
        return None
    median = statistics_median(times)
    # Not interleaved with eager (the weights were quantised in place); the ratio uses the
    # eager rounds measured just before, in the same run.
    result["rows"].append(
        row(
            "fp8 dynamic act+weight (torchao) + compile",
            times,
            eager[: len(times)],
            floor_ratio=floor_s / median,
            first_call_s=round(first, 1),
        )
    )
    return median


def _h2d(result: dict[str, Any], quick: bool) -> None:
    import torch

    free_gpu, _ = torch.cuda.mem_get_info()
    try:
        import os

        host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        host = 16e9
    target = 2e9 if quick else 8e9
    total = int(min(target, 0.3 * host, 0.4 * free_gpu))
    chunk = 256 * 2**20  # 256 MiB tensors, like large weight shards
    count = max(1, total // chunk)
    gb = count * chunk / 1e9
    pageable = [torch.empty(chunk // 2, dtype=torch.bfloat16).normal_() for _ in range(count)]
    t0 = time.perf_counter()
    pinned = [t.pin_memory() for t in pageable]
    pin_s = time.perf_counter() - t0

    def copy(tensors: list[Any], non_blocking: bool) -> float:
        def go() -> None:
            out = [t.to("cuda", non_blocking=non_blocking) for t in tensors]
            torch.cuda.synchronize()
            del out

        seconds = _timed(go)
        torch.cuda.empty_cache()
        return gb / seconds

    copy(pageable, False)
    copy(pinned, True)
    page: list[float] = []
    pin: list[float] = []
    for _ in range(2 if quick else 5):
        page.append(copy(pageable, False))
        pin.append(copy(pinned, True))
    h2d = new_result(
        "gpu_h2d",
        f"host-to-GPU copy of a {gb:.1f} GB state dict",
        baseline="pageable .to('cuda')",
        unit="GB/s",
    )
    h2d["rows"].append(
        row(
            "pageable .to('cuda')",
            page,
            page,
            higher_is_better=True,
            s_for_33_7_GB=round(33.7 / statistics_median(page), 2),
        )
    )
    h2d["rows"].append(
        row(
            "pinned + non_blocking",
            pin,
            page,
            higher_is_better=True,
            s_for_33_7_GB=round(33.7 / statistics_median(pin), 2),
        )
    )
    h2d["notes"].append(f"pin_memory() of the {gb:.1f} GB took {pin_s:.2f} s (not in the rate)")
    result["sub_results"] = [h2d]
    del pageable, pinned


def run(quick: bool = False, *, count_flops: bool = True) -> dict[str, Any]:
    """Run the GPU benchmarks, or record that there is no GPU.

    Args:
        quick: Fewer repetitions and a 2 GB host-to-GPU copy.
        count_flops: Count the transformer's FLOPs on the meta device (a few seconds; works
            without a GPU and is recorded even when the GPU part is skipped).

    Returns:
        The result record (seconds per image; ``ratio`` vs eager; ``floor_ratio`` = floor /
        measured, 1.0 = at the floor).
    """
    started = time.perf_counter()
    flops_step: float | None = None
    flop_note = None
    if count_flops:
        try:
            flops_step = count_flops_per_step()
        except Exception as exc:
            flop_note = f"FLOP count failed: {type(exc).__name__}: {exc}"
    flops_image = flops_step * STEPS if flops_step else None
    floor_s = (flops_image or PERF_MD_FLOPS_PER_IMAGE) / (ACHIEVABLE_TFLOPS * 1e12)
    if not cuda_available():
        print("skipped: no CUDA GPU")
        result = skipped_result(NAME, TITLE, "no CUDA GPU")
        result["goals"].append(goal("s per 1024x1024 image on an H100", None, GOAL_S, at_most=True))
    else:
        result = new_result(NAME, TITLE, baseline="bf16 eager", unit="s per image")
        eager = _transformer(result, quick, floor_s)  # frees the transformer on return
        _vae(result, quick, eager)
        _h2d(result, quick)
    result["flops_per_step"] = flops_step
    result["flops_per_image_transformer"] = flops_image
    result["floor_s"] = floor_s
    if flops_image:
        result["notes"].append(
            f"counted on meta: {flops_step / 1e12:.2f} TFLOP per transformer step, "
            f"{flops_image / 1e12:.1f} TFLOP for 4 steps (transformer only, 256 text tokens); "
            f"floor at {ACHIEVABLE_TFLOPS:.0f} TFLOP/s = {floor_s:.3f} s "
            "(perf.md whole image, 512 tokens: 312.8 TFLOP -> 0.39 s)"
        )
    if flop_note:
        result["notes"].append(flop_note)
    result["notes"].append("T5, CLIP and VAE excluded from the transformer rows (VAE timed apart)")
    result["elapsed_s"] = time.perf_counter() - started
    return result
