"""Timeouts, deadlines, retries and idempotency, with real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import httpx
import pytest

from jaguar_sdk import (
    AsyncJaguarClient,
    AuthenticationError,
    InvalidRequestError,
    JaguarClient,
    JaguarConnectionError,
    JaguarTimeoutError,
    NotReadyError,
    RateLimitError,
    ServerError,
)
from jaguar_sdk._core import RetryPolicy, is_retryable
from jaguar_sdk._exceptions import GenerationError
from tests.client.conftest import API_KEY, FaultProxy

SMALL = {"width": 64, "height": 64}


def client_for(url: str, **kwargs: object) -> JaguarClient:
    kwargs.setdefault("api_key", API_KEY)
    return JaguarClient(base_url=url, **kwargs)  # type: ignore[arg-type]


# --- (1) 503 with Retry-After: 0 ------------------------------------------------------------------
def test_503_then_success_retries_n_times(live, make_proxy, fast_retries) -> None:
    proxy: FaultProxy = make_proxy(live.url, ["status:503:0"] * 3)
    with client_for(proxy.url, max_retries=3) as client:
        result = client.generate("a cat", **SMALL)
    assert result.images[0].width == 64
    assert proxy.requests == 4
    assert live.engine.calls == 1
    # every attempt carried the same idempotency key and request id
    keys = {h["idempotency-key"] for h in proxy.headers}
    assert len(keys) == 1
    assert len({h["x-request-id"] for h in proxy.headers}) == 1


def test_503_more_times_than_max_retries_raises(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["status:503:0"] * 5)
    with client_for(proxy.url, max_retries=2) as client, pytest.raises(NotReadyError) as info:
        client.generate("a cat", **SMALL)
    assert info.value.status_code == 503
    assert isinstance(info.value, ServerError)
    assert proxy.requests == 3
    assert live.engine.calls == 0


def test_per_call_max_retries_overrides_client(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["status:503:0"] * 2)
    with client_for(proxy.url, max_retries=0) as client:
        assert client.generate("a cat", max_retries=2, **SMALL).seed >= 0
    assert proxy.requests == 3


def test_502_retried_but_500_not(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["status:502", "status:500"])
    with client_for(proxy.url, max_retries=3) as client, pytest.raises(ServerError) as info:
        client.generate("a cat", **SMALL)
    assert info.value.status_code == 500
    assert proxy.requests == 2


# --- (2) the connection drops after the server generated: no double generation -----------------
def test_dropped_reply_is_retried_and_generated_once(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["drop_after"])
    with client_for(proxy.url, max_retries=2) as client:
        result = client.generate("a cat", seed=5, **SMALL)
    assert result.seed == 5
    assert proxy.requests == 2
    assert live.engine.calls == 1  # the retry was answered from the idempotency store
    assert live.service.idempotency.hits == 1


def test_user_idempotency_key_is_sent(live, make_proxy) -> None:
    proxy = make_proxy(live.url, [])
    with client_for(proxy.url) as client:
        client.generate("a cat", idempotency_key="my-key-1", request_id="my-req-1", **SMALL)
        again = client.generate("a cat", idempotency_key="my-key-1", **SMALL)
    assert proxy.headers[0]["idempotency-key"] == "my-key-1"
    assert proxy.headers[0]["x-request-id"] == "my-req-1"
    assert live.engine.calls == 1 and again.images


def test_each_generate_gets_a_fresh_key(live, make_proxy) -> None:
    proxy = make_proxy(live.url, [])
    with client_for(proxy.url) as client:
        client.generate("a cat", **SMALL)
        client.generate("a cat", **SMALL)
    assert proxy.headers[0]["idempotency-key"] != proxy.headers[1]["idempotency-key"]
    assert live.engine.calls == 2


# --- (3) slow server: attempt timeouts and the total deadline --------------------------------
def test_read_timeout_raises_after_retries(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["sleep:2"] * 3)
    started = time.monotonic()
    with (
        client_for(proxy.url, timeout=0.3, max_retries=1) as client,
        pytest.raises(JaguarTimeoutError) as info,
    ):
        client.generate("a cat", **SMALL)
    elapsed = time.monotonic() - started
    assert proxy.requests == 2
    assert 0.55 <= elapsed < 1.5, elapsed
    assert info.value.code == "timeout"
    assert isinstance(info.value, TimeoutError)


def test_per_call_timeout_override(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["sleep:1"])
    with client_for(proxy.url, timeout=30, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(JaguarTimeoutError):
            client.generate("a cat", timeout=0.2, **SMALL)
        assert time.monotonic() - started < 0.8


def test_deadline_stops_retries(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["sleep:3"] * 10)
    started = time.monotonic()
    with (
        client_for(proxy.url, timeout=0.4, max_retries=10) as client,
        pytest.raises(JaguarTimeoutError) as info,
    ):
        client.generate("a cat", deadline=1.0, **SMALL)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1.5, elapsed
    assert info.value.code == "deadline_exceeded"
    assert 2 <= proxy.requests <= 4  # 10 retries allowed, the deadline stopped them


def test_connect_timeout_is_separate(fast_retries) -> None:
    # A listening socket whose backlog is full never completes new handshakes quickly; an
    # unroutable address is not available offline, so check the mapping on a refused port and
    # that connect_timeout is used (and never longer than the attempt's read timeout).
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    with client_for(f"http://127.0.0.1:{port}", connect_timeout=0.5, max_retries=1) as client:
        started = time.monotonic()
        with pytest.raises(JaguarConnectionError):
            client.health()
        assert time.monotonic() - started < 1.0


# --- (4) server killed mid-request ---------------------------------------------------------
def test_server_killed_mid_request(make_proxy, fast_retries) -> None:
    proxy = make_proxy(None, ["kill"])
    with (
        client_for(proxy.url, max_retries=2) as client,
        pytest.raises(JaguarConnectionError) as info,
    ):
        client.generate("a cat", **SMALL)
    assert proxy.requests == 1  # later attempts were refused: nothing listens any more
    assert "Could not talk to" in str(info.value)
    assert isinstance(info.value, ConnectionError)


# --- (5) non-retryable errors ---------------------------------------------------------------
def test_401_not_retried(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, [])
    with (
        client_for(proxy.url, api_key="wrong", max_retries=3) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.generate("a cat", **SMALL)
    assert proxy.requests == 1
    assert info.value.status_code == 401
    assert "wrong" not in str(info.value)


def test_422_not_retried_and_names_field(live, make_proxy, fast_retries) -> None:
    # The client validates first, so the server's 422 is injected by the proxy.
    proxy = make_proxy(live.url, ["status:422"])
    with client_for(proxy.url, max_retries=3) as client, pytest.raises(InvalidRequestError) as info:
        client.generate("a cat", **SMALL)
    assert info.value.field == "width" and info.value.status_code == 422
    assert proxy.requests == 1


def test_generation_error_not_retried(make_live, make_proxy, fast_retries) -> None:
    from tests.support import FakeEngine

    server = make_live(FakeEngine(fail=True))
    proxy = make_proxy(server.url, [])
    with client_for(proxy.url, max_retries=3) as client, pytest.raises(GenerationError):
        client.generate("a cat", **SMALL)
    assert proxy.requests == 1


def test_validation_happens_before_the_network(live, make_proxy) -> None:
    proxy = make_proxy(live.url, [])
    with client_for(proxy.url) as client:
        with pytest.raises(InvalidRequestError) as info:
            client.generate("x", width=1000)
        assert info.value.field == "width"
        with pytest.raises(InvalidRequestError) as info:
            client.generate("   ")
        assert info.value.field == "prompt"
        with pytest.raises(InvalidRequestError) as info:
            client.generate("x", deadline=-1)
        assert info.value.field == "deadline"
    assert proxy.requests == 0


# --- (6) 429 with Retry-After -------------------------------------------------------------
def test_429_retry_after_is_honoured(live, make_proxy, monkeypatch) -> None:
    from jaguar_sdk._core import ClientCore

    monkeypatch.setattr(ClientCore, "policy", RetryPolicy(initial_backoff_s=0.01))
    proxy = make_proxy(live.url, ["status:429:1"])
    started = time.monotonic()
    with client_for(proxy.url) as client:
        client.generate("a cat", **SMALL)
    assert time.monotonic() - started >= 1.0
    assert proxy.requests == 2


def test_429_retry_after_is_capped(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["status:429:3600"])
    started = time.monotonic()
    with client_for(proxy.url) as client:
        client.generate("a cat", **SMALL)
    assert time.monotonic() - started < 1.0  # capped at 0.3 s by the fixture's policy
    assert proxy.requests == 2


def test_429_exhausted_raises_rate_limit_error(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["status:429:0"] * 5)
    with client_for(proxy.url, max_retries=1) as client, pytest.raises(RateLimitError) as info:
        client.generate("a cat", **SMALL)
    assert info.value.retry_after == 0.0
    assert proxy.requests == 2


def test_retry_after_beyond_deadline_gives_up_early(live, make_proxy) -> None:
    proxy = make_proxy(live.url, ["status:429:30"])
    started = time.monotonic()
    with client_for(proxy.url) as client, pytest.raises(JaguarTimeoutError) as info:
        client.generate("a cat", deadline=2.0, **SMALL)
    assert time.monotonic() - started < 0.5  # did not sleep into the deadline
    assert info.value.code == "deadline_exceeded"
    assert isinstance(info.value.__cause__, RateLimitError)


# --- async: the same policy ---------------------------------------------------------------------
def test_async_retries_and_idempotency(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["status:503:0", "drop_after"])

    async def main() -> int:
        async with AsyncJaguarClient(base_url=proxy.url, api_key=API_KEY) as client:
            result = await client.generate("a cat", seed=9, **SMALL)
            return result.seed

    assert asyncio.run(main()) == 9
    assert proxy.requests == 3
    assert live.engine.calls == 1


def test_async_deadline(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, ["sleep:3"] * 10)

    async def main() -> None:
        async with AsyncJaguarClient(
            base_url=proxy.url, api_key=API_KEY, timeout=0.3, max_retries=10
        ) as client:
            await client.generate("a cat", deadline=0.8, **SMALL)

    started = time.monotonic()
    with pytest.raises(JaguarTimeoutError):
        asyncio.run(main())
    assert time.monotonic() - started < 1.4


def test_async_401_not_retried(live, make_proxy, fast_retries) -> None:
    proxy = make_proxy(live.url, [])

    async def main() -> None:
        async with AsyncJaguarClient(base_url=proxy.url, api_key="nope") as client:
            await client.info()

    with pytest.raises(AuthenticationError):
        asyncio.run(main())
    assert proxy.requests == 1


# --- the policy itself --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (JaguarConnectionError("x"), True),
        (JaguarTimeoutError("x"), True),
        (JaguarTimeoutError("x", code="deadline_exceeded"), False),
        (RateLimitError("x"), True),
        (NotReadyError("x"), True),
        (ServerError("x", status_code=502), True),
        (ServerError("x", status_code=504), True),
        (ServerError("x", status_code=500), False),
        (GenerationError("x"), False),
        (InvalidRequestError("x", field="width"), False),
        (AuthenticationError("x"), False),
        (ValueError("x"), False),
    ],
)
def test_is_retryable(error: BaseException, expected: bool) -> None:
    assert is_retryable(error) is expected


def test_backoff_is_full_jitter_and_capped() -> None:
    from tenacity import RetryCallState, Retrying

    policy = RetryPolicy()
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.set_exception((JaguarConnectionError, JaguarConnectionError("x"), None))
    for attempt, bound in ((1, 0.5), (2, 1.0), (3, 2.0), (6, 8.0), (20, 8.0)):
        state.attempt_number = attempt
        waits = [policy.wait(state) for _ in range(200)]
        assert all(0 <= w <= bound for w in waits)
        assert max(waits) > bound * 0.5
    state.set_exception((RateLimitError, RateLimitError("x", retry_after=1000.0), None))
    assert policy.wait(state) == 60.0


# --- the first attempt runs outside tenacity ------------------------------------------------------
def test_attempts_are_counted_from_the_first_one(live, make_proxy, fast_retries, caplog) -> None:
    caplog.set_level(logging.INFO, logger="jaguar_sdk")
    proxy = make_proxy(live.url, ["status:503:0"] * 5)
    with client_for(proxy.url, max_retries=2) as client, pytest.raises(NotReadyError) as info:
        client.generate("a cat", **SMALL)
    messages = [record.getMessage() for record in caplog.records]
    assert sum("attempt 1 of 3 failed" in m for m in messages) == 1
    assert sum("attempt 2 of 3 failed" in m for m in messages) == 1
    assert sum("gave up after 3 attempt(s)" in m for m in messages) == 1
    assert proxy.requests == 3
    # The error raised is the last attempt's, not chained onto the first one's.
    assert not isinstance(info.value.__context__, NotReadyError)


def test_no_retry_left_after_the_first_attempt(live, make_proxy, fast_retries, caplog) -> None:
    caplog.set_level(logging.INFO, logger="jaguar_sdk")
    proxy = make_proxy(live.url, ["status:503:0"])
    with client_for(proxy.url, max_retries=0) as client, pytest.raises(NotReadyError):
        client.generate("a cat", **SMALL)
    assert proxy.requests == 1
    assert any("gave up after 1 attempt(s)" in r.getMessage() for r in caplog.records)


def test_a_given_http_client_still_sends_the_standard_headers(live, make_proxy) -> None:
    proxy = make_proxy(live.url, [])
    with (
        httpx.Client() as http,
        JaguarClient(base_url=proxy.url, api_key=API_KEY, http_client=http) as client,
    ):
        client.health()
    with client_for(proxy.url) as client:  # its own pool: the same headers, as defaults
        client.health()
    for headers in proxy.headers:
        assert headers["user-agent"].startswith("jaguar-sdk/")
        assert headers["x-jaguar-schema-version"] == "1"
        assert headers["accept"] == "application/json"
        assert headers["authorization"] == f"Bearer {API_KEY}"
    assert len(proxy.headers) == 2
