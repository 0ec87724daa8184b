"""Generation waits in its own bounded queue; cheap routes never wait behind it (issue 14, #9)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from jaguar_sdk.server import create_app
from jaguar_sdk.server._service import JaguarService
from tests.support import FakeEngine, LiveServer

BODY = {"prompt": "a queued cat", "width": 64, "height": 64}


class GatedEngine(FakeEngine):
    """Every generation blocks until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = 0

    def generate(self, request, *, request_id, on_progress=None):
        self.entered += 1
        assert self.gate.wait(30), "the test never opened the gate"
        return super().generate(request, request_id=request_id, on_progress=on_progress)


class CountArrivals:
    """ASGI wrapper counting the generate requests that reached the app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.generate_arrived = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/generate":
            self.generate_arrived += 1
        await self.app(scope, receive, send)


def _wait_for(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _serve(engine: FakeEngine, **app_options: Any) -> tuple[LiveServer, CountArrivals]:
    service = JaguarService(lambda: engine)
    service.start()
    wrapped = CountArrivals(create_app(service, **app_options))
    return LiveServer(wrapped).start(), wrapped


def test_info_and_job_status_answer_while_sixty_generations_wait() -> None:
    engine = GatedEngine()
    server, arrivals = _serve(engine)
    try:
        with httpx.Client(
            base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=100)
        ) as client:
            job = client.post("/v1/jobs", json=BODY).json()["id"]
            with ThreadPoolExecutor(60) as pool:
                futures = [
                    pool.submit(client.post, "/v1/generate", json={**BODY, "seed": i})
                    for i in range(60)
                ]
                _wait_for(lambda: arrivals.generate_arrived == 60 and engine.entered >= 1)
                # The generations are all held at the gate: the cheap routes must still answer.
                # (The timeout only keeps a broken server from hanging the test.)
                info = client.get("/v1/info", timeout=10)
                status = client.get(f"/v1/jobs/{job}", timeout=10)
                health = client.get("/v1/health", timeout=10)
                assert not engine.gate.is_set()
                engine.gate.set()
                answers = [f.result() for f in futures]
        assert info.status_code == 200 and status.status_code == 200
        assert health.status_code == 200
        assert [a.status_code for a in answers] == [200] * 60
    finally:
        engine.gate.set()
        server.stop()


def test_a_full_generation_queue_answers_503_overloaded_at_once() -> None:
    engine = GatedEngine()
    server, arrivals = _serve(engine, max_queued_generations=4, generation_workers=1)
    try:
        with (
            httpx.Client(base_url=server.url, timeout=60) as client,
            ThreadPoolExecutor(10) as pool,
        ):
            futures = [
                pool.submit(client.post, "/v1/generate", json={**BODY, "seed": i})
                for i in range(10)
            ]
            _wait_for(lambda: arrivals.generate_arrived == 10)
            refused = []
            _wait_for(lambda: sum(f.done() for f in futures) >= 5)
            refused = [f.result() for f in futures if f.done()]
            engine.gate.set()
            answers = [f.result() for f in futures]
        assert all(r.status_code == 503 for r in refused)
        assert {r.json()["error"]["code"] for r in refused} == {"overloaded"}
        assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
        ok = [a for a in answers if a.status_code == 200]
        assert len(ok) == 5  # one running + four queued
    finally:
        engine.gate.set()
        server.stop()
