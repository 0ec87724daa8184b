"""The LiveServer helper itself: ephemeral port, clean start and stop."""

from __future__ import annotations

import httpx
import pytest

from jaguar_sdk.server import create_app
from jaguar_sdk.server._service import JaguarService
from tests.support import FakeEngine, LiveServer


def test_start_serve_stop() -> None:
    service = JaguarService(FakeEngine)
    service.start()
    server = LiveServer(create_app(service))
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    with server:
        assert httpx.get(f"{server.url}/v1/health").json()["status"] == "ok"
        with pytest.raises(RuntimeError):
            server.start()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/v1/health", timeout=2)
    server.stop()  # idempotent
