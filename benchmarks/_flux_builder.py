"""Build random-weight Flux pipelines offline: "medium", "large", and full-size FLUX.1 ("flux1").

The transformer matches FLUX.1 / Shuttle Jaguar in structure (double + single blocks, 64 latent
channels in, schnell scheduler, no guidance embedding) at a smaller width, so loading it exercises
the same code paths with ~0.3 GB ("medium") or ~1.1 GB ("large") of fp32 weights. The build itself
is :func:`jaguar_sdk.engine.tiny.build_random_flux_pipeline` (the tiny model's builder, offline,
tokenizers built in memory); this module only picks the sizes and caches the saved folders.
Builds are cached under ``benchmarks/.cache/`` and published atomically with one rename.

:data:`FLUX1` holds the real component configs of Shuttle Jaguar / FLUX.1-schnell (33.7 GB in
bf16); :func:`build_pipeline_on` materialises any size straight on a device in a dtype (on the
GPU in bf16 it skips the 67 GB fp32 host copy), or on ``"meta"`` to count parameters and FLOPs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from jaguar_sdk.engine.tiny import RandomFluxSizes, build_random_flux_pipeline

from ._common import CACHE_DIR

#: 4 double + 8 single blocks, 8 heads x 64: ~0.3 GB of fp32 weights.
MEDIUM = RandomFluxSizes(
    num_layers=4,
    num_single_layers=8,
    num_attention_heads=8,
    attention_head_dim=64,
    axes_dims_rope=(16, 24, 24),
    vae_block_out_channels=(32, 32, 64, 64),
    vae_norm_num_groups=32,
    clip_hidden_size=64,
    clip_intermediate_size=128,
    clip_num_hidden_layers=2,
    clip_num_attention_heads=4,
    t5_d_model=256,
    t5_d_kv=32,
    t5_d_ff=512,
    t5_num_layers=2,
    t5_num_heads=8,
)
#: 4 double + 8 single blocks, 16 heads x 64: ~1.1 GB of fp32 weights.
LARGE = replace(MEDIUM, num_attention_heads=16)
#: FLUX.1 / Shuttle Jaguar at full size, checked against the signatures of diffusers 0.42.1
#: ``FluxTransformer2DModel.__init__`` / ``AutoencoderKL.__init__`` and transformers 5
#: ``T5Config`` / ``CLIPTextConfig`` (the FLUX.1 transformer defaults ARE the FLUX.1 config):
#: transformer 19 double + 38 single blocks, 24 heads x 128, joint_attention_dim 4096 (= T5
#: d_model), pooled 768 (= CLIP hidden); T5-XXL encoder d_model 4096, d_ff 10240, 24 layers,
#: 64 heads x 64, vocab 32128, gated-gelu, 32 buckets; CLIP-L text 768 wide, 12 layers, 12 heads,
#: MLP 3072, projection 768, vocab 49408, quick_gelu; VAE 16 latent channels, blocks
#: (128, 256, 512, 512), 2 layers per block, scaling 0.3611, shift 0.1159. 11.90 B + 4.76 B +
#: 0.12 B + 0.08 B parameters: 33.7 GB in bf16 (perf.md section 0).
FLUX1 = RandomFluxSizes(
    num_layers=19,
    num_single_layers=38,
    num_attention_heads=24,
    attention_head_dim=128,
    axes_dims_rope=(16, 56, 56),
    vae_block_out_channels=(128, 256, 512, 512),
    vae_norm_num_groups=32,
    vae_layers_per_block=2,
    clip_hidden_size=768,
    clip_intermediate_size=3072,
    clip_num_hidden_layers=12,
    clip_num_attention_heads=12,
    clip_vocab_size=49408,
    t5_d_model=4096,
    t5_d_kv=64,
    t5_d_ff=10240,
    t5_num_layers=24,
    t5_num_heads=64,
    t5_vocab_size=32128,
    t5_relative_attention_num_buckets=32,
)
#: The tiny model's sizes with FLUX.1's structural knobs (2 VAE layers per block, 32 T5
#: buckets): the CPU stand-in of :data:`FLUX1` for ``python -m benchmarks.gpu_truth --small``.
SMALL = RandomFluxSizes(vae_layers_per_block=2, t5_relative_attention_num_buckets=32)
#: The narrowest widths the components allow, keeping every block, layer and tensor: a
#: "skeleton" loads with all of a pipeline's fixed costs (configs, module construction, one
#: call per tensor, tokenizers, scheduler) and almost no bytes (``benchmarks/load.py``).
_NARROW: dict[str, Any] = {
    "num_attention_heads": 1,
    "attention_head_dim": 16,
    "axes_dims_rope": (4, 6, 6),
    "vae_block_out_channels": (8, 8, 8, 8),
    "vae_norm_num_groups": 4,
    "clip_hidden_size": 16,
    "clip_intermediate_size": 16,
    "clip_num_attention_heads": 2,
    "t5_d_model": 16,
    "t5_d_kv": 8,
    "t5_d_ff": 16,
    "t5_num_heads": 2,
}
#: MEDIUM/LARGE's structure (4 + 8 transformer blocks...) at the narrowest widths (~3 MB).
SKELETON = replace(MEDIUM, **_NARROW)
#: FLUX.1's structure (19 + 38 transformer blocks, 24 T5 and 12 CLIP layers, the real vocab
#: sizes) at the narrowest widths (~7 MB): the fixed cost of loading the real pipeline.
FLUX1_SKELETON = replace(FLUX1, **_NARROW)
SIZES: dict[str, RandomFluxSizes] = {
    "medium": MEDIUM,
    "large": LARGE,
    "flux1": FLUX1,
    "skeleton": SKELETON,
    "flux1-skeleton": FLUX1_SKELETON,
}
# Bump when the build changes, so stale caches are rebuilt. 2: the builder moved to
# jaguar_sdk.engine.tiny.build_random_flux_pipeline (its tokenizers: slightly larger vocabs).
_FORMAT = 2


def build_pipeline(size: str) -> Any:
    """Build (in memory) a random-weight FluxPipeline of the given size.

    Args:
        size: ``"medium"`` or ``"large"``.

    Returns:
        The ``FluxPipeline`` (fp32, CPU), built with seed 0.
    """
    return build_random_flux_pipeline(SIZES[size], seed=0)


@contextmanager
def materialised_on(device: Any, dtype: Any = None) -> Iterator[None]:
    """Modules constructed inside are created on ``device`` in ``dtype`` (no CPU fp32 copy).

    ``torch.device`` as a context manager makes it the default device of every factory call
    (``nn.Linear`` allocates its weight there, and the random init runs there);
    ``torch.set_default_dtype`` sets the floating dtype of new parameters. Integer buffers
    (CLIP's position ids) keep their dtype.

    Args:
        device: ``"cuda"``, ``"cpu"``, ``"meta"``... (or a ``torch.device``).
        dtype: A floating ``torch.dtype``, or ``None`` to keep the default (float32).
    """
    import torch

    previous = torch.get_default_dtype()
    if dtype is not None:
        torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def build_pipeline_on(
    sizes: RandomFluxSizes, *, device: Any = "cpu", dtype: Any = None, seed: int = 0
) -> Any:
    """Build a random-weight FluxPipeline of ``sizes`` directly on ``device`` in ``dtype``.

    Args:
        sizes: The component sizes (:data:`FLUX1` for full size).
        device: Where the weights are created (``"cuda"`` initialises them on the GPU).
        dtype: Their floating dtype (``torch.bfloat16``), or ``None`` for float32.
        seed: Seed for the random weights.

    Returns:
        The ``FluxPipeline`` (eval mode).
    """
    with materialised_on(device, dtype):
        return build_random_flux_pipeline(sizes, seed=seed)


def component_parameters(pipe: Any) -> dict[str, int]:
    """Parameters (plus buffers) per ``torch.nn.Module`` component of a pipeline."""
    import torch

    counts: dict[str, int] = {}
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            counts[name] = sum(p.numel() for p in component.parameters()) + sum(
                b.numel() for b in component.buffers()
            )
    return counts


def ensure_pipeline(size: str, cache_dir: Path = CACHE_DIR) -> Path:
    """The folder of a saved random pipeline of ``size``, building it once.

    Args:
        size: ``"medium"`` or ``"large"``.
        cache_dir: Where builds are cached.

    Returns:
        The pipeline folder (``save_pretrained`` layout, safetensors).
    """
    target = cache_dir / f"flux-{size}-v{_FORMAT}"
    marker = target / "benchmark_build.json"
    if marker.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".staging-{size}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    pipe = build_pipeline(size)
    pipe.save_pretrained(staging, safe_serialization=True)
    total = sum(f.stat().st_size for f in staging.rglob("*.safetensors"))
    (staging / "benchmark_build.json").write_text(
        json.dumps({"size": size, "config": asdict(SIZES[size]), "safetensors_bytes": total})
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def weight_files(folder: Path) -> list[Path]:
    """Every safetensors file of a pipeline folder, sorted."""
    return sorted(folder.rglob("*.safetensors"))
