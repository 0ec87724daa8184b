"""Silence the diffusers/transformers progress bars around loads and saves, then restore them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["quiet_progress_bars"]


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
