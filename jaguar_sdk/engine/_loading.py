"""Loading a FluxPipeline from a local folder, and the optional GPU speed-ups."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from .._exceptions import ConfigurationError
from .._logging import get_logger
from ._quiet import quiet_progress_bars

__all__ = ["apply_gpu_options", "load_pipeline", "move_pipeline"]

logger = get_logger("jaguar_sdk.engine")


def load_pipeline(folder: Path, dtype: torch.dtype) -> Any:
    """Load a FluxPipeline on CPU from a local diffusers folder, never touching the network.

    Weights are memory-mapped (safetensors): for a matching dtype on CPU the parameters are
    zero-copy views of the files, and the bytes are read on first use.

    Args:
        folder: A folder with ``model_index.json`` and the component sub-folders.
        dtype: The weight dtype.

    Returns:
        The ``diffusers.FluxPipeline`` (progress bars disabled).

    Raises:
        ConfigurationError: If the folder is not a loadable Flux pipeline.
    """
    flux_pipeline: Any = importlib.import_module("diffusers").FluxPipeline
    try:
        with quiet_progress_bars():
            pipe = flux_pipeline.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(
            f"could not load a FluxPipeline from {str(folder)!r}: {type(exc).__name__}: {exc}. "
            "Expected a folder in diffusers layout (model_index.json plus transformer/, vae/, "
            "text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/)."
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe


def move_pipeline(pipe: Any, device: str) -> None:
    """Move every component of the pipeline to ``device`` (in place)."""
    pipe.to(device)


def apply_gpu_options(
    pipe: Any, *, fuse_qkv: bool = False, channels_last: bool = False, compile: bool = False
) -> dict[str, Any]:
    """Optional speed-ups for a pipeline already on the GPU; each is off by default.

    Args:
        pipe: The FluxPipeline.
        fuse_qkv: Fuse the attention q/k/v projections (``pipe.fuse_qkv_projections()``).
        channels_last: Put the VAE in ``channels_last`` memory format.
        compile: Compile the transformer: regional compilation
            (``compile_repeated_blocks(fullgraph=True)``) where diffusers has it, else
            ``torch.compile``. The first generations afterwards are slow (compilation).

    Returns:
        Which options were applied, for :meth:`Engine.info`'s ``extra``.
    """
    applied: dict[str, Any] = {}
    if fuse_qkv:
        pipe.fuse_qkv_projections()
        applied["fuse_qkv"] = True
    if channels_last:
        pipe.vae.to(memory_format=torch.channels_last)
        applied["channels_last"] = True
    if compile:
        transformer = pipe.transformer
        if hasattr(transformer, "compile_repeated_blocks"):
            transformer.compile_repeated_blocks(fullgraph=True)
            applied["compile"] = "compile_repeated_blocks(fullgraph=True)"
        else:
            pipe.transformer = torch.compile(transformer)
            applied["compile"] = "torch.compile(transformer)"
    if applied:
        logger.info("GPU options applied: %s", applied)
    return applied
