"""The HTTP client against Modal's web limit: a 303 to the result URL is followed with GET.

The server is a real uvicorn on 127.0.0.1 emulating Modal's web proxy (guide/webhook-timeouts):
a request still running after the limit (150 s on Modal, ``LIMIT_S`` here) is answered 303 to
"the original URL with a special query parameter linking it to that request"; that result URL
"can be reloaded without triggering a new request. It will block until the request completes"
(here: up to the limit again, then another 303). Every POST starts a generation, so a client
that re-POSTs would generate twice; the counters show it does not.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from jaguar_sdk import (
    AsyncJaguarClient,
    GenerateRequest,
    GenerationResult,
    JaguarClient,
    JaguarError,
    JaguarTimeoutError,
)
from jaguar_sdk.server._routes import result_json
from tests.support import FakeEngine, LiveServer

LIMIT_S = 0.25


class ModalWebEmulator:
    """Modal's 303 behaviour in front of a generation that takes ``work_s``."""

    def __init__(self, work_s: float, *, location_host: str | None = None) -> None:
        self.work_s = work_s
        self.location_host = location_host
        self.posts = 0
        self.generations = 0
        self.result_gets = 0
        self._ids = itertools.count(1)
        self._running: dict[str, asyncio.Task[bytes]] = {}
        self._engine = FakeEngine()
        self.app = FastAPI()
        self.app.add_api_route("/v1/generate", self._post, methods=["POST"])
        self.app.add_api_route("/v1/generate", self._get, methods=["GET"])

    async def _generate(self, body: bytes, request_id: str) -> bytes:
        self.generations += 1
        await asyncio.sleep(self.work_s)
        request = GenerateRequest.model_validate_json(body)
        return result_json(self._engine.generate(request, request_id=request_id))

    async def _answer(self, call_id: str, url: str) -> Response:
        task = self._running[call_id]
        done, _ = await asyncio.wait({task}, timeout=LIMIT_S)
        if not done:
            location = f"{url}?__modal_function_call_id={call_id}"
            if self.location_host:
                location = f"http://{self.location_host}{location}"
            return Response(status_code=303, headers={"Location": location})
        return Response(task.result(), media_type="application/json")

    async def _post(self, request: Request) -> Response:
        self.posts += 1
        call_id = f"fc-{next(self._ids)}"
        rid = request.headers.get("x-request-id", "req_x")
        self._running[call_id] = asyncio.create_task(self._generate(await request.body(), rid))
        return await self._answer(call_id, request.url.path)

    async def _get(self, request: Request) -> Response:
        self.result_gets += 1
        call_id = request.query_params.get("__modal_function_call_id", "")
        if call_id not in self._running:
            return JSONResponse({"detail": "POST expected"}, status_code=405)
        return await self._answer(call_id, request.url.path)


@pytest.fixture
def slow() -> Iterator[tuple[ModalWebEmulator, LiveServer]]:
    emulator = ModalWebEmulator(work_s=3 * LIMIT_S + 0.1)
    with LiveServer(emulator.app) as server:
        yield emulator, server


def test_a_long_generation_is_fetched_from_the_result_url_once(
    slow: tuple[ModalWebEmulator, LiveServer],
) -> None:
    emulator, server = slow
    with JaguarClient(base_url=server.url, timeout=10) as client:
        result = client.generate("a jaguar", width=64, height=64, seed=9)
    assert isinstance(result, GenerationResult) and result.seed == 9
    assert emulator.posts == 1 and emulator.generations == 1  # never POSTed again
    assert emulator.result_gets >= 3  # followed each 303 with a GET


def test_the_async_client_follows_too(slow: tuple[ModalWebEmulator, LiveServer]) -> None:
    emulator, server = slow

    async def go() -> GenerationResult:
        async with AsyncJaguarClient(base_url=server.url, timeout=10) as client:
            return await client.generate("a jaguar", width=64, height=64, seed=4)

    assert asyncio.run(go()).seed == 4
    assert (emulator.posts, emulator.generations) == (1, 1)


def test_following_stops_at_the_callers_deadline(
    slow: tuple[ModalWebEmulator, LiveServer],
) -> None:
    emulator, server = slow
    client = JaguarClient(base_url=server.url, timeout=10)
    with client, pytest.raises(JaguarTimeoutError) as info:
        client.generate("a jaguar", width=64, height=64, deadline=2 * LIMIT_S)
    assert info.value.code == "deadline_exceeded"
    assert (emulator.posts, emulator.generations) == (1, 1)  # no retry started another one


def test_a_redirect_to_another_origin_is_not_followed() -> None:
    emulator = ModalWebEmulator(work_s=1.0, location_host="elsewhere.invalid")
    with (
        LiveServer(emulator.app) as server,
        JaguarClient(base_url=server.url) as client,
        pytest.raises(JaguarError, match="another origin") as info,
    ):
        client.generate("a jaguar", width=64, height=64, max_retries=0)
    assert info.value.status_code == 303
    assert emulator.result_gets == 0
