"""The JobStore alone and the in-process transport: TTL, bound, idempotency, plain data."""

from __future__ import annotations

import pytest

from jaguar_sdk import JaguarClient, JobCancelledError, NotFoundError, RateLimitError
from jaguar_sdk._request import GenerateRequest
from jaguar_sdk._transports.local import LocalTransport
from jaguar_sdk.server._service import JaguarService
from tests.jobs.conftest import SteppingEngine
from tests.support import FakeEngine

REQUEST = GenerateRequest(prompt="a cat", width=64, height=64, steps=2)


def _service(engine: FakeEngine, **kwargs: object) -> JaguarService:
    service = JaguarService(lambda: engine, **kwargs)  # type: ignore[arg-type]
    service.start()
    return service


def test_finished_jobs_expire_after_their_ttl() -> None:
    service = _service(FakeEngine(), job_ttl_s=0.0)
    try:
        first = service.jobs.submit(REQUEST)
        assert service.jobs.wait(first.id, timeout=10).state == "succeeded"
        service.jobs.submit(REQUEST)  # submitting sweeps expired jobs
        with pytest.raises(NotFoundError, match="expired"):
            service.jobs.status(first.id)
    finally:
        service.close()


def test_idempotency_key_returns_the_same_job_and_bound_counts_unfinished() -> None:
    engine = SteppingEngine(hold_at_step=1)
    service = _service(engine, max_jobs=1)
    try:
        first = service.jobs.submit(REQUEST, idempotency_key="k1")
        again = service.jobs.submit(REQUEST, idempotency_key="k1")
        assert again.id == first.id
        with pytest.raises(RateLimitError) as info:
            service.jobs.submit(REQUEST, idempotency_key="k2")
        assert info.value.code == "job_store_full"
        engine.release()
        assert service.jobs.wait(first.id, timeout=10).state == "succeeded"
        assert len(service.jobs) == 1
        service.jobs.submit(REQUEST)  # the finished job makes room
        assert len(service.jobs) == 1
    finally:
        engine.release()
        service.close()


def test_in_process_client_jobs_and_cancel() -> None:
    engine = SteppingEngine(hold_at_step=1)
    service = _service(engine)
    with JaguarClient(transport=LocalTransport(service)) as client:
        running = client.submit("runs", steps=2, width=64, height=64)
        assert engine.reached.wait(10)
        queued = client.submit("queued", width=64, height=64)
        assert queued.cancel().state == "cancelled"
        engine.release()
        assert running.result(timeout=10).images
        with pytest.raises(JobCancelledError):
            queued.result(timeout=10)
        assert client.get_job(running.id).last_status.state == "succeeded"


def test_job_error_codes_map_back_to_their_classes() -> None:
    from jaguar_sdk import JobPendingError, WebhookVerificationError
    from jaguar_sdk._exceptions import error_from_payload

    assert isinstance(error_from_payload({"code": "job_cancelled"}), JobCancelledError)
    assert isinstance(error_from_payload({"code": "job_pending"}), JobPendingError)
    full = error_from_payload({"code": "job_store_full", "message": "full"}, status_code=429)
    assert isinstance(full, RateLimitError) and full.code == "job_store_full"
    bad = error_from_payload({"code": "webhook_verification_failed"})
    assert isinstance(bad, WebhookVerificationError)
