"""Credentials never reach a log handler, wherever the handler is attached."""

from __future__ import annotations

import logging

import pytest

import jaguar_sdk._transports.http  # noqa: F401  (creates the jaguar_sdk.http logger)
from jaguar_sdk._logging import get_logger, redact


@pytest.mark.parametrize(
    "name", ["jaguar_sdk.http", "jaguar_sdk.server._service", "jaguar_sdk.server", "jaguar_sdk.new"]
)
def test_child_logger_records_are_redacted_for_root_handlers(caplog, name):
    logger = get_logger(name)
    with caplog.at_level(logging.DEBUG):
        logger.info("headers %s", {"Authorization": "Bearer sekrit-123", "token": "abc"})
        logger.info("Modal-Secret: ws-abcdef123456")
    assert "sekrit-123" not in caplog.text
    assert "ws-abcdef123456" not in caplog.text
    assert "***" in caplog.text


def test_redact_keeps_ordinary_text():
    assert redact("generated 2 images in 1.5s") == "generated 2 images in 1.5s"
    assert redact("api_key=hunter2") == "api_key=***"
