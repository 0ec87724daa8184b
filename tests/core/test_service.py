"""JaguarService: idempotency, reload without dropping requests, health, plain-data envelope."""

from __future__ import annotations

import threading
import time

import pytest

from jaguar_sdk import (
    GeneratedImage,
    GenerateRequest,
    GenerationError,
    GenerationResult,
    ModelInfo,
    ModelRef,
    NotReadyError,
    Timings,
)
from jaguar_sdk._constants import SCHEMA_VERSION
from jaguar_sdk.server._service import IdempotencyStore, JaguarService


class StubEngine:
    """Counts generations; can be slowed down or made to fail."""

    def __init__(self, name: str = "a", delay_s: float = 0.0, fail: bool = False) -> None:
        self.name, self.delay_s, self.fail = name, delay_s, fail
        self.calls = 0
        self.closed = False

    def generate(self, request, *, request_id, on_progress=None):
        self.calls += 1
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("CUDA out of memory")
        image = GeneratedImage(data=b"\xff\xd8fake", format="jpeg", width=64, height=64)
        return GenerationResult(
            request_id=request_id,
            prompt=request.prompt,
            seed=request.seed or 0,
            images=[image],
            timings=Timings(),
            model=ModelRef(id=self.name),
        )

    def info(self):
        return ModelInfo(
            model=ModelRef(id=self.name), device="cpu", dtype="float32", loaded=True, version="x"
        )

    def close(self):
        self.closed = True


REQ = GenerateRequest(prompt="cat", width=64, height=64, seed=1)


def test_not_ready_until_started_then_ok():
    service = JaguarService(StubEngine)
    assert service.health().status == "loading"
    with pytest.raises(NotReadyError):
        service.generate(REQ)
    service.start()
    assert service.health().ready
    assert service.generate(REQ).prompt == "cat"


def test_failed_load_is_reported_by_health():
    def broken():
        raise OSError("no weights at /weights")

    service = JaguarService(broken)
    with pytest.raises(OSError):
        service.start()
    health = service.health()
    assert health.status == "error" and "no weights" in (health.detail or "")


def test_idempotent_repeat_generates_once_even_while_running():
    engine = StubEngine(delay_s=0.3)
    service = JaguarService(lambda: engine)
    service.start()
    results: list[GenerationResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(service.generate(REQ, idempotency_key="k1")))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert engine.calls == 1
    assert len({r.request_id for r in results}) == 1
    service.generate(REQ, idempotency_key="k2")
    service.generate(REQ)
    assert engine.calls == 3


def test_failures_are_not_cached_and_are_wrapped():
    engine = StubEngine(fail=True)
    service = JaguarService(lambda: engine)
    service.start()
    for _ in range(2):
        with pytest.raises(GenerationError, match="CUDA out of memory") as info:
            service.generate(REQ, idempotency_key="same", request_id="req_x")
        assert info.value.request_id == "req_x"
    assert engine.calls == 2


def test_store_is_bounded_and_expires():
    store = IdempotencyStore(ttl_s=0.05, max_entries=2)
    counter = {"n": 0}

    def work():
        counter["n"] += 1
        return counter["n"]

    assert store.run("a", work) == 1
    assert store.run("a", work) == 1
    time.sleep(0.1)
    assert store.run("a", work) == 2  # expired
    for key in "bcd":
        store.run(key, work)
    assert len(store._entries) <= 2


def test_a_full_store_drops_the_oldest_finished_key_never_a_running_one():
    store = IdempotencyStore(max_entries=3)
    gate, started = threading.Event(), threading.Event()

    def held() -> str:
        started.set()
        assert gate.wait(10)
        return "a"

    runner = threading.Thread(target=store.run, args=("a", held))
    runner.start()
    try:
        assert started.wait(10)
        store.run("b", lambda: "b")
        store.run("c", lambda: "c")
        store.run("d", lambda: "d")  # full: "a" is the oldest but still running
        assert list(store._entries) == ["a", "c", "d"]
    finally:
        gate.set()
        runner.join(10)
    store.run("e", lambda: "e")
    assert list(store._entries) == ["c", "d", "e"]  # now "a" is finished and the oldest


def test_reload_swaps_only_when_the_new_engine_is_ready():
    engines = iter([StubEngine("old"), StubEngine("new", delay_s=0.0)])
    first = next(engines)
    gate = threading.Event()

    def slow_reload():
        gate.wait(2)
        return next(engines)

    service = JaguarService(lambda: first, reloader=slow_reload)
    service.start()
    done: list[ModelInfo] = []
    t = threading.Thread(target=lambda: done.append(service.reload()))
    t.start()
    time.sleep(0.05)
    assert service.generate(REQ).model.id == "old"  # still served during the reload
    gate.set()
    t.join()
    assert done[0].model.id == "new"
    assert service.generate(REQ).model.id == "new"
    assert first.closed


def test_call_plain_returns_data_and_error_envelopes():
    service = JaguarService(StubEngine)
    service.start()
    ok = service.call_plain(
        "generate",
        {"schema_version": SCHEMA_VERSION, "request": {"prompt": "x", "width": 64, "height": 64}},
    )
    assert isinstance(ok["images"][0]["data"], bytes)
    assert GenerationResult.model_validate(ok).prompt == "x"
    bad = service.call_plain("generate", {"request": {"prompt": "x", "width": 1000}})
    assert bad["error"]["code"] == "invalid_request" and bad["error"]["field"] == "width"
    assert bad["error"]["request_id"]
    old = service.call_plain("info", {"schema_version": 99})
    assert old["error"]["code"] == "incompatible_version"
    unknown = service.call_plain("explode")
    assert unknown["error"]["code"] == "not_found"
    assert service.call_plain("health")["ready"] is True
