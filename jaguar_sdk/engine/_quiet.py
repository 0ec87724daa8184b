"""Quiet the libraries where the project, not the user, makes them talk.

- :func:`quiet_progress_bars`: the diffusers/transformers progress bars around loads and saves.
- :func:`flux_pipeline_class`: ``diffusers.FluxPipeline``, imported without the two
  "``CLIPImageProcessor`` / ``SiglipImageProcessor`` requires torchvision" warnings.
- :func:`quiet_empty_fp32_warning`: ``from_pipe`` without "modules that should be kept in
  float32: []" (an empty list: nothing to keep).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "TORCHVISION_FALLBACK",
    "drop_log_records",
    "flux_pipeline_class",
    "quiet_empty_fp32_warning",
    "quiet_progress_bars",
]

#: The start of transformers' warning when an image processor falls back to its PIL twin.
TORCHVISION_FALLBACK = "requires torchvision (not installed); falling back to"

# transformers/utils/import_utils.py, _LazyModule.__getattr__, logs the fallback with
# `logger.warning_once` on this module's logger (logging.get_logger(__name__)).
_IMPORT_UTILS_LOGGER = "transformers.utils.import_utils"


class _DropFilter(logging.Filter):
    """Drops the records whose message contains one of ``fragments``; every other passes."""

    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


@contextlib.contextmanager
def drop_log_records(fragments: Mapping[str, tuple[str, ...]]) -> Iterator[None]:
    """Inside the block, drop the records of each named logger that contain a fragment.

    Args:
        fragments: ``{logger name: message fragments}``; the filters are removed afterwards.
    """
    installed = [(logging.getLogger(name), _DropFilter(parts)) for name, parts in fragments.items()]
    for logger, only_these in installed:
        logger.addFilter(only_these)
    try:
        yield
    finally:
        for logger, only_these in installed:
            logger.removeFilter(only_these)


def quiet_empty_fp32_warning() -> contextlib.AbstractContextManager[None]:
    """Inside the block, drop diffusers' float32 warning when it names no module.

    diffusers ``models/modeling_utils.py`` ``ModelMixin.to`` warns "There are modules in ...
    that should be kept in float32: [...]" on every ``.to(dtype)`` of a model whose
    ``_keep_in_fp32_modules`` is set, even to an empty list; ``from_pipe`` calls ``.to(dtype)``
    (a no-op here: the same dtype). A warning that names modules still shows.
    """
    return drop_log_records({"diffusers.models.modeling_utils": ("should be kept in float32: []",)})


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
    with drop_log_records({_IMPORT_UTILS_LOGGER: (TORCHVISION_FALLBACK,)}):
        return importlib.import_module("diffusers").FluxPipeline
