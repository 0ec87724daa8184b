"""``generate_many``: direct calls by default, jobs (long-polled) on request, errors in place."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from jaguar_sdk import (
    AsyncJaguarClient,
    ConfigurationError,
    GenerationResult,
    InvalidRequestError,
    JaguarClient,
)
from jaguar_sdk._transports.http import HttpTransport
from jaguar_sdk.server import create_app
from jaguar_sdk.server._service import JaguarService
from tests.jobs.conftest import SteppingEngine
from tests.support import LiveServer

SMALL: dict[str, Any] = {"width": 64, "height": 64, "steps": 2}
ITEMS: list[Any] = ["one", {"prompt": "bad", "width": 65}, {"prompt": "three", "seed": 3}, "four"]


class Recorder:
    """An ASGI wrapper that records ``(method, path)`` and the query of every HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str]] = []
        self.queries: list[tuple[str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
            self.queries.append((scope["path"], scope["query_string"].decode()))
        await self.app(scope, receive, send)

    def count(self, method: str, path: str) -> int:
        return sum(1 for seen in self.seen if seen == (method, path))

    def status_polls(self) -> list[str]:
        """The query strings of every ``GET /v1/jobs/{id}`` (status) request."""
        return [
            query
            for path, query in self.queries
            if path.startswith("/v1/jobs/") and path.count("/") == 3
        ]


@pytest.fixture
def served() -> Iterator[tuple[Recorder, LiveServer]]:
    service = JaguarService(lambda: SteppingEngine(), max_jobs=16)
    service.start()
    recorder = Recorder(create_app(service))
    with LiveServer(recorder) as server:
        yield recorder, server
    service.close()


def _check(out: list[Any]) -> None:
    assert len(out) == 4
    assert isinstance(out[0], GenerationResult) and out[0].seed == 1
    assert isinstance(out[1], InvalidRequestError) and out[1].field == "width"
    assert isinstance(out[2], GenerationResult) and out[2].seed == 3
    assert isinstance(out[3], GenerationResult) and out[3].seed == 1


def test_generate_many_calls_generate_directly_by_default(
    served: tuple[Recorder, LiveServer],
) -> None:
    recorder, server = served
    with JaguarClient(base_url=server.url) as client:
        out = client.generate_many(ITEMS, concurrency=2, seed=1, **SMALL)
    _check(out)
    assert recorder.count("POST", "/v1/generate") == 3  # the bad item never left the client
    assert recorder.count("POST", "/v1/jobs") == 0


def test_generate_many_on_jobs_waits_with_one_long_poll_per_job(
    served: tuple[Recorder, LiveServer],
) -> None:
    recorder, server = served
    with JaguarClient(base_url=server.url) as client:
        out = client.generate_many(ITEMS, concurrency=2, use_jobs=True, seed=1, **SMALL)
    _check(out)
    assert recorder.count("POST", "/v1/jobs") == 3
    assert recorder.count("POST", "/v1/generate") == 0
    results = [path for method, path in recorder.seen if path.endswith("/result")]
    assert len(results) == 3
    # Event-driven: each job's one status call is held by the server until the job ends
    # (no progress bar: no `after`), so there is no polling loop at all.
    polls = recorder.status_polls()
    assert len(polls) == 3
    assert all(query.startswith("wait=") and "after=" not in query for query in polls)


def test_async_generate_many_on_jobs(served: tuple[Recorder, LiveServer]) -> None:
    recorder, server = served

    async def main() -> list[Any]:
        async with AsyncJaguarClient(base_url=server.url) as client:
            return await client.generate_many(ITEMS, concurrency=2, use_jobs=True, seed=1, **SMALL)

    _check(asyncio.run(main()))
    assert recorder.count("POST", "/v1/jobs") == 3
    assert recorder.count("POST", "/v1/generate") == 0
    assert len(recorder.status_polls()) == 3


def test_async_generate_many_calls_generate_directly(served: tuple[Recorder, LiveServer]) -> None:
    recorder, server = served

    async def main() -> list[Any]:
        async with AsyncJaguarClient(base_url=server.url) as client:
            return await client.generate_many(ITEMS, concurrency=2, seed=1, **SMALL)

    _check(asyncio.run(main()))
    assert recorder.count("POST", "/v1/generate") == 3
    assert recorder.count("POST", "/v1/jobs") == 0


def test_use_jobs_false_calls_generate_directly(served: tuple[Recorder, LiveServer]) -> None:
    recorder, server = served
    with JaguarClient(base_url=server.url) as client:
        out = client.generate_many(ITEMS, use_jobs=False, seed=1, **SMALL)
    _check(out)
    assert recorder.count("POST", "/v1/jobs") == 0
    assert recorder.count("POST", "/v1/generate") == 3


def test_progress_bar_counts_finished_items(
    served: tuple[Recorder, LiveServer], capsys: pytest.CaptureFixture[str]
) -> None:
    _, server = served
    with JaguarClient(base_url=server.url) as client:
        client.generate_many(ITEMS, progress=True, seed=1, **SMALL)
    assert "4/4" in capsys.readouterr().err


def test_progress_bar_on_jobs_follows_the_steps(
    served: tuple[Recorder, LiveServer], capsys: pytest.CaptureFixture[str]
) -> None:
    recorder, server = served
    with JaguarClient(base_url=server.url) as client:
        client.generate_many(ITEMS, progress=True, use_jobs=True, seed=1, **SMALL)
    assert "4/4" in capsys.readouterr().err
    # With a bar, each status call also returns at the job's next progress event.
    assert recorder.status_polls()
    assert all("wait=" in query and "after=" in query for query in recorder.status_polls())


def test_a_job_past_its_wait_is_cancelled_and_times_out() -> None:
    engine = SteppingEngine(hold_at_step=1)
    service = JaguarService(lambda: engine, max_jobs=16)
    service.start()
    try:
        with LiveServer(create_app(service)) as server:
            with JaguarClient(base_url=server.url) as client:
                out = client.generate_many(["slow"], deadline=0.5, use_jobs=True, **SMALL)
            engine.release()
            assert out[0].__class__.__name__ == "JaguarTimeoutError"
            (job,) = service.jobs._jobs.values()  # the store's only job
            assert service.jobs.wait(job.id, timeout=10).state == "cancelled"
    finally:
        engine.release()
        service.close()


def test_use_jobs_true_needs_a_transport_with_jobs() -> None:
    class Plain:
        name = "plain"

        def send(self, call: Any) -> Any:  # pragma: no cover - never called
            raise AssertionError

        def close(self) -> None:
            pass

    with JaguarClient(transport=Plain()) as client, pytest.raises(ConfigurationError):
        client.generate_many(["a"], use_jobs=True)


class NoJobRoutes(Recorder):
    """A server from before jobs: ``POST /v1/jobs`` answers 404."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/jobs":
            self.seen.append((scope["method"], scope["path"]))
            body = b'{"detail":"Not Found"}'
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await super().__call__(scope, receive, send)


class JobsFirst(HttpTransport):
    """An HTTP transport that prefers jobs for batches (``batch_via_jobs = True``)."""

    batch_via_jobs = True


def test_a_transport_that_prefers_jobs_gets_them_by_default(
    served: tuple[Recorder, LiveServer],
) -> None:
    recorder, server = served
    with JaguarClient(transport=JobsFirst(server.url)) as client:
        _check(client.generate_many(ITEMS, concurrency=2, seed=1, **SMALL))
    assert recorder.count("POST", "/v1/jobs") == 3
    assert recorder.count("POST", "/v1/generate") == 0


def test_a_server_without_job_routes_is_called_directly() -> None:
    service = JaguarService(lambda: SteppingEngine(), max_jobs=16)
    service.start()
    recorder = NoJobRoutes(create_app(service))
    try:
        with LiveServer(recorder) as server, JaguarClient(transport=JobsFirst(server.url)) as c:
            _check(c.generate_many(ITEMS, concurrency=1, seed=1, **SMALL))
    finally:
        service.close()
    assert recorder.count("POST", "/v1/jobs") == 1  # learnt once, then direct calls
    assert recorder.count("POST", "/v1/generate") == 3
