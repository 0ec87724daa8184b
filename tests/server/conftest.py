"""Fixtures: a real uvicorn server (127.0.0.1, ephemeral port) around a FakeEngine service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from jaguar_sdk.server._service import EngineLike
from tests.support import FakeEngine, LiveServer, serve_engine

ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """Start a live server: ``make_server(engine=..., started=True, **create_app_kwargs)``.

    ``started=False`` leaves the service unloaded (health "loading", generation 503).
    The service is reachable as ``server.service``.
    """
    servers: list[LiveServer] = []

    def factory(
        engine: EngineLike | None = None, *, started: bool = True, **kwargs: Any
    ) -> LiveServer:
        chosen = engine if engine is not None else FakeEngine()
        server = serve_engine(chosen, started=started, **kwargs)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: ServerFactory, fake_engine: FakeEngine) -> LiveServer:
    return make_server(fake_engine)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c
