"""Fixtures for the job tests: a stepping fake engine, live servers and a webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jaguar_sdk._request import GenerateRequest
from jaguar_sdk._results import GenerationResult, ProgressEvent
from jaguar_sdk.server._service import EngineLike, ProgressCallback
from tests.support import FakeEngine, LiveServer, serve_engine

ServerFactory = Callable[..., LiveServer]
GATE_TIMEOUT_S = 10.0


class SteppingEngine(FakeEngine):
    """A fake engine that reports every denoising step, like the real one.

    With ``hold_at_step`` set, each generation blocks right after reporting that step until
    :meth:`release` is called, so a test can act while a job is known to be mid-run.

    Attributes:
        reached: Set once a generation has reported ``hold_at_step``.
        steps_run: Denoising steps reported by the last generation.
    """

    def __init__(self, hold_at_step: int | None = None) -> None:
        super().__init__()
        self.hold_at_step = hold_at_step
        self.reached = threading.Event()
        self._gate = threading.Event()
        self.steps_run = 0

    def release(self) -> None:
        """Let held generations go on."""
        self._gate.set()

    def generate(
        self,
        request: GenerateRequest,
        *,
        request_id: str,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        def emit(stage: Any, step: int) -> None:
            if on_progress is not None:
                on_progress(
                    ProgressEvent(
                        stage=stage, step=step, total_steps=request.steps, request_id=request_id
                    )
                )

        self.steps_run = 0
        for step in range(1, request.steps + 1):
            emit("running", step)
            self.steps_run = step
            if step == self.hold_at_step:
                self.reached.set()
                assert self._gate.wait(GATE_TIMEOUT_S), "test never released the engine"
        emit("encoding", request.steps)
        return super().generate(request, request_id=request_id, on_progress=None)


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """``make_server(engine, max_jobs=..., **create_app_kwargs)``; ``server.service`` is set."""
    servers: list[LiveServer] = []
    engines: list[Any] = []

    def factory(engine: EngineLike | None = None, *, max_jobs: int = 16, **kwargs: Any) -> Any:
        chosen = engine if engine is not None else FakeEngine()
        engines.append(chosen)
        server = serve_engine(chosen, service_options={"max_jobs": max_jobs}, **kwargs)
        servers.append(server)
        return server

    yield factory
    for engine in engines:
        if isinstance(engine, SteppingEngine):
            engine.release()  # never leave a worker blocked
    for server in servers:
        server.stop()
        server.service.close()  # type: ignore[attr-defined]


class Receiver:
    """A tiny ASGI app that records every POST (raw body and headers) and answers 204."""

    def __init__(self) -> None:
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.arrived = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.posts.append((body, headers))
        self.arrived.set()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def document(self, index: int = 0) -> Any:
        """The JSON of one recorded post."""
        return json.loads(self.posts[index][0])


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, LiveServer]]:
    app = Receiver()
    with LiveServer(app) as server:
        yield app, server
