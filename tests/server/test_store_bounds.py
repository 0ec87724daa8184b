"""The idempotency store and the job store are bounded by bytes as well as entries
(issue 14, #10): finished results with their images never exceed the budget."""

from __future__ import annotations

import time

import pytest

from jaguar_sdk._exceptions import RateLimitError
from jaguar_sdk._request import GenerateRequest
from jaguar_sdk.server import IdempotencyStore, JobStore
from tests.support import FakeEngine


def _result(engine: FakeEngine, size: int, seed: int = 1):
    req = GenerateRequest(prompt="a cat", width=size, height=size, output_format="png", seed=seed)
    return engine.generate(req, request_id=f"req_{seed}")


def _bytes(result) -> int:
    return sum(len(image.data) for image in result.images)


def test_idempotency_store_keeps_results_within_its_byte_budget() -> None:
    engine = FakeEngine()
    one = _bytes(_result(engine, 256))
    store = IdempotencyStore(max_entries=100, max_bytes=3 * one + one // 2)
    for i in range(10):
        store.run(f"k{i}", lambda i=i: _result(engine, 256, seed=i))
        assert store.stored_bytes <= 3 * one + one // 2
    assert len(store) == 3
    # the newest keys are kept (a repeat is answered from the store), the oldest were dropped
    calls = engine.calls
    store.run("k9", lambda: _result(engine, 256, seed=9))
    assert engine.calls == calls
    store.run("k0", lambda: _result(engine, 256, seed=0))
    assert engine.calls == calls + 1


def test_a_result_larger_than_the_whole_budget_is_answered_but_not_kept() -> None:
    engine = FakeEngine()
    big = _result(engine, 512)
    store = IdempotencyStore(max_bytes=_bytes(big) - 1)
    assert store.run("big", lambda: big) is big
    assert len(store) == 0 and store.stored_bytes == 0


def test_job_store_drops_the_oldest_finished_jobs_to_stay_within_its_byte_budget() -> None:
    engine = FakeEngine()
    one = _bytes(_result(engine, 256))
    store = JobStore(
        lambda req, rid, cb: engine.generate(req, request_id=rid, on_progress=cb),
        max_jobs=100,
        max_bytes=2 * one + one // 2,
    )
    try:
        ids = []
        for i in range(6):
            req = GenerateRequest(prompt=f"job {i}", width=256, height=256, output_format="png")
            ids.append(store.submit(req).id)
            assert store.wait(ids[-1], timeout=10).state == "succeeded"
            assert store.stored_bytes <= 2 * one + one // 2
        assert store.status(ids[-1]).state == "succeeded"
        assert store.result(ids[-1]).images
        with pytest.raises(Exception, match="expired"):
            store.status(ids[0])
    finally:
        store.close()


def test_defaults_are_bounded_by_bytes() -> None:
    from jaguar_sdk import _constants as C

    assert IdempotencyStore().max_bytes == C.IDEMPOTENCY_MAX_BYTES <= 512 * 1024 * 1024
    store = JobStore(lambda req, rid, cb: None)  # type: ignore[arg-type,return-value]
    assert store.max_bytes == C.JOB_MAX_BYTES <= 512 * 1024 * 1024
    store.close()


def test_a_full_job_store_still_refuses_with_429() -> None:
    import threading

    gate = threading.Event()

    def runner(req, rid, cb):
        gate.wait(10)
        return FakeEngine().generate(req, request_id=rid)

    store = JobStore(runner, max_jobs=2, max_bytes=1)
    try:
        store.submit(GenerateRequest(prompt="a"))
        store.submit(GenerateRequest(prompt="b"))
        with pytest.raises(RateLimitError):
            store.submit(GenerateRequest(prompt="c"))
    finally:
        gate.set()
        time.sleep(0.05)
        store.close()
