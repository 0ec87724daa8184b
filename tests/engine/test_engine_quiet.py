"""The project silences the torchvision fallback warnings its own import triggers, and no more.

The real import path (``jaguar generate --local``, no warning on stderr) is checked in
``tests/client/test_cli_first_use.py``; here a stand-in import shows what the filter lets by.
"""

from __future__ import annotations

import logging
import sys
import types

from jaguar_sdk.engine._quiet import TORCHVISION_FALLBACK, flux_pipeline_class

LOGGER = "transformers.utils.import_utils"  # where transformers logs the fallback
FALLBACK = f"`CLIPImageProcessor` {TORCHVISION_FALLBACK} `CLIPImageProcessorPil`"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_only_the_fallback_warning_is_dropped_and_only_during_the_import(monkeypatch) -> None:
    logger = logging.getLogger(LOGGER)
    seen = Records()
    logger.addHandler(seen)

    class Pipeline:
        pass

    def attribute(name: str) -> object:
        # a stand-in for diffusers' lazy FluxPipeline: its import logs on transformers' logger
        logger.warning(FALLBACK)
        logger.warning("a real problem the user must see")
        return Pipeline

    stand_in = types.ModuleType("diffusers")
    stand_in.__getattr__ = attribute  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "diffusers", stand_in)
    try:
        assert flux_pipeline_class() is Pipeline
        logger.warning(FALLBACK)  # the same warning from anyone else's import afterwards
    finally:
        logger.removeHandler(seen)
    assert seen.messages == ["a real problem the user must see", FALLBACK]
    assert not logger.filters  # the filter went away with the import
