"""Quiet the libraries where the project, not the user, makes them talk.

- :func:`quiet_progress_bars`: the diffusers/transformers progress bars around loads and saves.
- :func:`flux_pipeline_class`: ``diffusers.FluxPipeline``, imported without the two
  "``CLIPImageProcessor`` / ``SiglipImageProcessor`` requires torchvision" warnings.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["TORCHVISION_FALLBACK", "flux_pipeline_class", "quiet_progress_bars"]

#: The start of transformers' warning when an image processor falls back to its PIL twin.
TORCHVISION_FALLBACK = "requires torchvision (not installed); falling back to"

# transformers/utils/import_utils.py, _LazyModule.__getattr__, logs the fallback with
# `logger.warning_once` on this module's logger (logging.get_logger(__name__)).
_IMPORT_UTILS_LOGGER = "transformers.utils.import_utils"


class _TorchvisionFallbackFilter(logging.Filter):
    """Drops the torchvision fallback warning; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return TORCHVISION_FALLBACK not in record.getMessage()


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Disable the "Loading pipeline components" / "Loading weights" / "Writing model shards"
    bars inside the block; bars that were enabled before are enabled again afterwards.

    The switch is process-wide (these libraries have no per-call option), so a load running in
    another thread at the same moment is silenced too; nothing else changes.
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    modules = (diffusers_logging, transformers_logging)
    enabled = [module.is_progress_bar_enabled() for module in modules]
    for module in modules:
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module, was_enabled in zip(modules, enabled, strict=True):
            if was_enabled:
                module.enable_progress_bar()


def flux_pipeline_class() -> Any:
    """``diffusers.FluxPipeline``, imported without the torchvision fallback warnings.

    Importing the Flux pipeline module imports ``CLIPImageProcessor`` and
    ``SiglipImageProcessor`` from transformers (for the IP-adapter, which Jaguar does not use);
    without torchvision each falls back to its PIL twin with a warning. The filter sits on the
    one logger that emits them, matches only that message, and is removed afterwards: other
    warnings, and this one for anyone else's import, still show.
    """
    logger = logging.getLogger(_IMPORT_UTILS_LOGGER)
    only_this = _TorchvisionFallbackFilter()
    logger.addFilter(only_this)
    try:
        return importlib.import_module("diffusers").FluxPipeline
    finally:
        logger.removeFilter(only_this)
