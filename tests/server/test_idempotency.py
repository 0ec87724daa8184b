"""Idempotency-Key: a repeated request is generated once."""

from __future__ import annotations

import threading

import httpx

from tests.support import FakeEngine

BODY = {"prompt": "a cat", "width": 64, "height": 64}


def test_same_key_generates_once(make_server) -> None:
    engine = FakeEngine()
    server = make_server(engine)
    with httpx.Client(base_url=server.url) as c:
        first = c.post("/v1/generate", json=BODY, headers={"Idempotency-Key": "key-1"})
        second = c.post("/v1/generate", json=BODY, headers={"Idempotency-Key": "key-1"})
    assert first.status_code == second.status_code == 200
    assert engine.calls == 1
    assert first.content == second.content
    assert first.json()["request_id"] == second.json()["request_id"]


def test_different_keys_generate_twice(make_server) -> None:
    engine = FakeEngine()
    server = make_server(engine)
    with httpx.Client(base_url=server.url) as c:
        c.post("/v1/generate", json=BODY, headers={"Idempotency-Key": "key-a"})
        c.post("/v1/generate", json=BODY, headers={"Idempotency-Key": "key-b"})
        c.post("/v1/generate", json=BODY)
        c.post("/v1/generate", json=BODY)
    assert engine.calls == 4


def test_concurrent_repeats_wait_for_the_first_run(make_server) -> None:
    engine = FakeEngine(delay_s=0.5)
    server = make_server(engine)
    bodies: list[bytes] = []

    def call() -> None:
        r = httpx.post(
            f"{server.url}/v1/generate",
            json=BODY,
            headers={"Idempotency-Key": "same"},
            timeout=10,
        )
        assert r.status_code == 200
        bodies.append(r.content)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert engine.calls == 1
    assert len(bodies) == 3 and len(set(bodies)) == 1


def test_failed_run_is_not_stored(make_server) -> None:
    engine = FakeEngine(fail=True)
    server = make_server(engine)
    with httpx.Client(base_url=server.url) as c:
        assert (
            c.post("/v1/generate", json=BODY, headers={"Idempotency-Key": "k"}).status_code == 500
        )
        engine.fail = False
        assert (
            c.post("/v1/generate", json=BODY, headers={"Idempotency-Key": "k"}).status_code == 200
        )
    assert engine.calls == 2
