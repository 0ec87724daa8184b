"""Request logging, unexpected failures, and background loading."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest

from jaguar_sdk.server._serve import start_loading
from jaguar_sdk.server._service import JaguarService
from tests.support import FakeEngine

TOKEN = "super-secret-token-42"


def test_one_log_line_per_request_without_tokens(make_server, caplog) -> None:
    server = make_server(api_key=TOKEN)
    with caplog.at_level(logging.INFO, logger="jaguar_sdk.server"):
        r = httpx.post(
            f"{server.url}/v1/generate",
            json={"prompt": "a cat", "width": 64, "height": 64},
            headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "log-test-1"},
        )
        httpx.get(f"{server.url}/v1/info", headers={"Authorization": "Bearer wrong-guess"})
        deadline = time.monotonic() + 2
        while len([x for x in caplog.records if x.name == "jaguar_sdk.server"]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert r.status_code == 200
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "jaguar_sdk.server"]
    assert any(
        "POST /v1/generate 200" in line and "log-test-1" in line and "ms" in line for line in lines
    )
    assert any("GET /v1/info 401" in line for line in lines)
    assert all(TOKEN not in line and "wrong-guess" not in line for line in lines)


class _BrokenInfo(FakeEngine):
    def info(self):  # type: ignore[override]
        raise RuntimeError("boom at /internal/path")


def test_unexpected_error_is_a_generic_500(make_server) -> None:
    server = make_server(_BrokenInfo())
    r = httpx.get(f"{server.url}/v1/info")
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["code"] == "internal_error"
    assert "boom" not in r.text and "/internal/path" not in r.text
    assert error["request_id"] == r.headers["X-Request-ID"]


def test_background_loading_reports_loading_then_ok() -> None:
    gate = threading.Event()
    engine = FakeEngine()

    def loader() -> FakeEngine:
        gate.wait(5)
        return engine

    service = JaguarService(loader)
    thread = start_loading(service)
    assert service.health().status == "loading"
    gate.set()
    thread.join(5)
    assert service.health().status == "ok"


def test_background_loading_failure_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    def loader() -> FakeEngine:
        raise OSError("no weights")

    service = JaguarService(loader)
    start_loading(service).join(5)
    health = service.health()
    assert health.status == "error" and "no weights" in (health.detail or "")
