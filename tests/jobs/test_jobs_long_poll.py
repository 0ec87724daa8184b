"""Waiting on a job is event-driven: the store's condition, ``GET /v1/jobs/{id}?wait=``, and a
client that falls back to backing off where the backend cannot hold a status call."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from jaguar_sdk import InvalidRequestError, JaguarClient
from jaguar_sdk._job_poller import JobPoller
from jaguar_sdk._request import GenerateRequest
from jaguar_sdk._results import JobStatus
from jaguar_sdk._transports.local import LocalTransport
from jaguar_sdk.server import create_app
from jaguar_sdk.server._job_routes import StoreJobBackend
from jaguar_sdk.server._job_store import check_job_wait
from jaguar_sdk.server._service import JaguarService
from tests.jobs.conftest import ServerFactory, SteppingEngine
from tests.support import FakeEngine, LiveServer

REQUEST = GenerateRequest(prompt="a cat", width=64, height=64, steps=3)
SMALL = {"width": 64, "height": 64, "steps": 3}


def _service(engine: FakeEngine) -> JaguarService:
    service = JaguarService(lambda: engine)
    service.start()
    return service


# --- the store ----------------------------------------------------------------------------------
def test_store_wait_answers_at_the_next_event_when_asked() -> None:
    engine = SteppingEngine(hold_at_step=1)
    service = _service(engine)
    try:
        job = service.jobs.submit(REQUEST)
        assert engine.reached.wait(10)
        seen = len(service.jobs.status(job.id).events)
        # Held at step 1, the job cannot end: only a new event can answer the wait early.
        held = service.jobs.wait(job.id, 0.0, after_events=seen)
        assert held.state == "running" and len(held.events) == seen
        waiter: dict[str, JobStatus] = {}
        thread = threading.Thread(
            target=lambda: waiter.update(s=service.jobs.wait(job.id, 30, after_events=seen))
        )
        thread.start()
        engine.release()
        thread.join(10)
        assert not thread.is_alive()
        assert len(waiter["s"].events) > seen
    finally:
        engine.release()
        service.close()


def test_closing_the_store_wakes_its_waiters() -> None:
    engine = SteppingEngine(hold_at_step=1)
    service = _service(engine)
    job = service.jobs.submit(REQUEST)
    assert engine.reached.wait(10)
    answers: list[JobStatus] = []
    thread = threading.Thread(target=lambda: answers.append(service.jobs.wait(job.id, 60)))
    thread.start()
    try:
        service.jobs.close()
        thread.join(10)
        assert not thread.is_alive() and answers[0].state == "running"
    finally:
        engine.release()
        service.close()


def test_long_poll_parameters_are_checked_naming_the_field() -> None:
    assert check_job_wait("2.5", "3") == (2.5, 3)
    assert check_job_wait(0) == (0.0, None)
    for wait, after, field in (
        ("soon", None, "wait"),
        (61, None, "wait"),
        (-1, None, "wait"),
        (True, None, "wait"),
        (1, "-1", "after"),
        (1, 2.5, "after"),
    ):
        with pytest.raises(InvalidRequestError) as info:
            check_job_wait(wait, after)
        assert info.value.field == field
        assert "0" in str(info.value)  # the allowed range is in the message


# --- HTTP ---------------------------------------------------------------------------------------
def test_status_route_long_polls_and_validates(make_server: ServerFactory) -> None:
    engine = SteppingEngine(hold_at_step=1)
    server = make_server(engine)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        job = http.post("/v1/jobs", json={"prompt": "a cat", **SMALL}).json()
        assert engine.reached.wait(10)
        path = f"/v1/jobs/{job['id']}"
        seen = len(http.get(path).json()["events"])
        bad = http.get(path, params={"wait": "61"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "wait"
        bad = http.get(path, params={"wait": "1", "after": "x"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "after"
        held = http.get(path, params={"wait": "0", "after": str(seen)}).json()
        assert held["state"] == "running"
        engine.release()
        done = http.get(path, params={"wait": "30"}).json()  # answered when the job ends
        assert done["state"] == "succeeded"


class NoWaitBackend(StoreJobBackend):
    """A job backend without ``wait`` (like the Modal web endpoint's): answers at once."""

    def __getattribute__(self, name: str) -> Any:
        if name == "wait":
            raise AttributeError(name)
        return super().__getattribute__(name)


def test_a_backend_that_cannot_wait_answers_at_once_and_the_client_backs_off() -> None:
    engine = SteppingEngine(hold_at_step=1)
    service = _service(engine)
    app = create_app(service, job_backend=NoWaitBackend(lambda: service.jobs))
    try:
        with LiveServer(app) as server, JaguarClient(base_url=server.url) as client:
            job = client.submit("a cat", **SMALL)
            assert engine.reached.wait(10)
            with httpx.Client(base_url=server.url) as http:
                answer = http.get(f"/v1/jobs/{job.id}", params={"wait": "30"})
                assert answer.json()["state"] == "running"  # not held: the backend cannot
            engine.release()
            assert job.wait(30).state == "succeeded"
    finally:
        engine.release()
        service.close()


# --- the client's poller ------------------------------------------------------------------------
def test_poller_asks_again_at_once_when_held_or_told_news_else_backs_off() -> None:
    poller = JobPoller("job_1", timeout=None, long_poll_s=20.0, initial_s=0.05, max_s=1.0)
    assert poller.next_wait() == 20.0
    assert poller.next_delay(fresh=True) == 0.0  # the answer brought an event
    poller.next_wait()
    # Answered long before half the 20 s asked, with nothing new: the backend did not hold it.
    assert poller.next_delay(fresh=False) == 0.05
    poller.next_wait()
    assert poller.next_delay(fresh=False) == pytest.approx(0.075)
    held = JobPoller("job_2", timeout=None, long_poll_s=0.0)
    held.next_wait()
    assert held.next_delay(fresh=False) == 0.0  # a zero-second wait counts as held


def test_poller_never_asks_past_its_timeout() -> None:
    poller = JobPoller("job_1", timeout=5.0, long_poll_s=20.0)
    assert 0 < poller.next_wait() <= 5.0


# --- in-process ---------------------------------------------------------------------------------
def test_in_process_wait_is_one_held_status_call() -> None:
    engine = SteppingEngine(hold_at_step=1)
    service = _service(engine)
    calls: list[dict[str, Any]] = []
    call_plain = service.call_plain

    def spy(operation: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        if operation == "job_status":
            calls.append(dict(payload or {}))
        return call_plain(operation, payload)

    service.call_plain = spy  # type: ignore[method-assign]
    try:
        with JaguarClient(transport=LocalTransport(service)) as client:
            job = client.submit("a cat", **SMALL)
            assert engine.reached.wait(10)
            threading.Timer(0.2, engine.release).start()  # released while the call is held
            assert job.wait(30).state == "succeeded"
        assert len(calls) == 1 and calls[0]["wait"] > 0 and "after" not in calls[0]
    finally:
        engine.release()
        service.close()
