"""Build random-weight Flux pipelines of realistic structure offline ("medium", "large").

The transformer matches FLUX.1 / Shuttle Jaguar in structure (double + single blocks, 64 latent
channels in, schnell scheduler, no guidance embedding) at a smaller width, so loading it exercises
the same code paths with ~0.3 GB ("medium") or ~1.1 GB ("large") of fp32 weights. The build itself
is :func:`jaguar_sdk.engine.tiny.build_random_flux_pipeline` (the tiny model's builder, offline,
tokenizers built in memory); this module only picks the sizes and caches the saved folders.
Builds are cached under ``benchmarks/.cache/`` and published atomically with one rename.
"""

from __future__ import annotations

import json
import os
import shutil
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
SIZES: dict[str, RandomFluxSizes] = {"medium": MEDIUM, "large": LARGE}
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
