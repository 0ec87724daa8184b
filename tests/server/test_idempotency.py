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


# --- a key is bound to its request and route (issue 14, #2) -----------------------------------


def test_key_reused_with_another_body_is_refused_422(make_server) -> None:
    engine = FakeEngine()
    server = make_server(engine)
    key = {"Idempotency-Key": "bound-1"}
    with httpx.Client(base_url=server.url) as c:
        cat = c.post("/v1/generate", json=BODY, headers=key)
        dog = c.post(
            "/v1/generate", json={"prompt": "a dog", "width": 128, "height": 128}, headers=key
        )
        # the same request spelled differently (a default written out) is the same request
        again = c.post("/v1/generate", json={**BODY, "steps": 4}, headers=key)
    assert cat.status_code == 200 and again.status_code == 200
    assert again.json()["request_id"] == cat.json()["request_id"]
    assert dog.status_code == 422
    error = dog.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in error["message"]
    assert engine.calls == 1
    assert [r.prompt for r in engine.requests] == ["a cat"]


def test_key_reused_on_another_route_is_refused_in_that_routes_shape(make_server) -> None:
    engine = FakeEngine()
    server = make_server(engine)
    key = {"Idempotency-Key": "bound-2"}
    with httpx.Client(base_url=server.url) as c:
        native = c.post("/v1/generate", json=BODY, headers=key)
        openai = c.post(
            "/v1/images/generations",
            json={"prompt": "a cat", "size": "64x64", "n": 3},
            headers=key,
        )
    assert native.status_code == 200
    assert openai.status_code == 422
    error = openai.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "idempotency_key_reused"
    assert error["type"] == "invalid_request_error"
    assert engine.calls == 1


def test_job_key_reused_with_another_body_is_refused_422(make_server) -> None:
    engine = FakeEngine()
    server = make_server(engine)
    key = {"Idempotency-Key": "bound-3"}
    with httpx.Client(base_url=server.url) as c:
        first = c.post("/v1/jobs", json=BODY, headers=key)
        repeat = c.post("/v1/jobs", json=BODY, headers=key)
        other = c.post("/v1/jobs", json={**BODY, "prompt": "a dog"}, headers=key)
    assert first.status_code == repeat.status_code == 202
    assert repeat.json()["id"] == first.json()["id"]
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
