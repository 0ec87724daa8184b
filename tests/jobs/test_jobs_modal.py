"""Jobs through the Modal transport, with Modal replaced by a stand-in.

``modal.Cls.from_name`` returns an object whose ``generate.spawn`` runs the REAL
``deploy.app.JaguarModel.generate`` in-process and answers a FunctionCall-like object
(``object_id``, ``get(timeout)`` raising builtin ``TimeoutError`` while running, ``cancel()``);
``modal.FunctionCall.from_id`` looks those objects up by id, as Modal does across processes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from typing import Any

import modal
import modal.exception as me
import pytest

import deploy.app as deploy_app
from jaguar_sdk import (
    AsyncJaguarClient,
    GenerationResult,
    InvalidRequestError,
    JaguarClient,
    Job,
    JobCancelledError,
    JobPendingError,
    NotFoundError,
)
from jaguar_sdk._transports.modal import AsyncModalTransport, ModalTransport
from tests.deploy.test_lifecycle import fake_hub, modal_env  # noqa: F401  (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")

SMALL = {"width": 64, "height": 64}


class StandInCall:
    """A ``modal.FunctionCall``: ``get(timeout)``, ``cancel()``, ``object_id``."""

    _ids = itertools.count(1)

    def __init__(self, future: concurrent.futures.Future[Any]) -> None:
        self.object_id = f"fc-{next(self._ids):06d}"
        self._future = future
        self.cancelled = False
        self.gets: list[float | None] = []  # the timeout of every get()

    def get(self, timeout: float | None = None) -> Any:
        self.gets.append(timeout)
        if self.cancelled:
            raise me.InputCancellation("Input was cancelled")
        try:
            return self._future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError("not ready") from None  # builtin, as modal raises

    def cancel(self) -> None:
        self.cancelled = True
        self._future.cancel()


class StandIn:
    """``modal.Cls.from_name`` + ``modal.FunctionCall.from_id`` over one local container."""

    def __init__(self) -> None:
        self.calls: dict[str, StandInCall] = {}
        self.gate = threading.Event()
        self.gate.set()
        self.spawned = 0
        self.looked_up = 0  # FunctionCall.from_id calls: job operations by id
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        self._container = deploy_app.JaguarModel()

    def from_name(self, app: str, name: str, *, environment_name: str | None = None) -> Any:
        return lambda: self

    def from_id(self, function_call_id: str, client: Any = None) -> StandInCall:
        self.looked_up += 1
        if function_call_id not in self.calls:
            raise me.NotFoundError(f"No FunctionCall {function_call_id}")
        return self.calls[function_call_id]

    @property
    def generate(self) -> Any:
        stand_in = self

        class _Method:
            @staticmethod
            def spawn(payload: dict[str, Any]) -> StandInCall:
                stand_in.spawned += 1

                def run() -> Any:
                    assert stand_in.gate.wait(10)
                    return stand_in._container.generate.local(payload)

                call = StandInCall(stand_in._pool.submit(run))
                stand_in.calls[call.object_id] = call
                return call

        return _Method()

    def close(self) -> None:
        self.gate.set()
        self._pool.shutdown(wait=True)


@pytest.fixture
def stand_in(modal_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    s = StandIn()
    monkeypatch.setattr(modal.Cls, "from_name", s.from_name)
    monkeypatch.setattr(modal.FunctionCall, "from_id", s.from_id)
    yield s
    s.close()


def test_submit_wait_result_and_from_id(stand_in: StandIn) -> None:
    with JaguarClient(transport=ModalTransport()) as client:
        job = client.submit("a jaguar", seed=21, **SMALL)
        assert job.id.startswith("fc-") and stand_in.spawned == 1
        stages = [event.stage for event in job.events(timeout=60)]
        result = job.result(timeout=60)
    assert stages[-1] == "done"
    assert isinstance(result, GenerationResult) and result.seed == 21
    # another process: only the id travels
    with JaguarClient(transport=ModalTransport()) as other:
        again = Job.from_id(job.id, other)
        assert again.last_status.state == "succeeded"
        assert other.get_job(job.id).result(timeout=5).seed == 21
        with pytest.raises(NotFoundError):
            other.get_job("fc-missing")


def test_running_job_is_pending_then_cancel(stand_in: StandIn) -> None:
    stand_in.gate.clear()  # the spawned call waits, like a queued input
    with JaguarClient(transport=ModalTransport(), max_retries=0) as client:
        job = client.submit("a jaguar", **SMALL)
        assert job.status().state == "running"
        with pytest.raises(JobPendingError):
            client._run(client._core.plan_job("job_result", job.id))
        assert job.cancel().state == "cancelled"
        assert stand_in.calls[job.id].cancelled
        assert job.wait(timeout=10).state == "cancelled"
        with pytest.raises(JobCancelledError):
            job.result(timeout=10)


def test_failed_remote_generation_is_a_failed_job(stand_in: StandIn) -> None:
    with JaguarClient(transport=ModalTransport()) as client:
        with pytest.raises(InvalidRequestError, match="webhook_url"):
            client.submit("x", webhook_url="https://example.org/hook", **SMALL)
        job = client.submit("a jaguar", **SMALL)
        # an error envelope answered by the method fails the job
        call = stand_in.calls[job.id]
        call._future = concurrent.futures.Future()
        call._future.set_result(
            {"schema_version": 1, "error": {"code": "generation_failed", "message": "boom"}}
        )
        status = job.wait(timeout=10)
    assert status.state == "failed"
    assert status.failure is not None and status.failure["message"] == "boom"


def test_async_client_over_modal_jobs(stand_in: StandIn) -> None:
    async def go() -> GenerationResult:
        async with AsyncJaguarClient(transport=AsyncModalTransport()) as client:
            job = await client.submit("a jaguar", seed=8, **SMALL)
            return await job.result(timeout=60)

    assert asyncio.run(go()).seed == 8


def test_waiting_on_a_modal_job_is_one_long_get(stand_in: StandIn) -> None:
    stand_in.gate.clear()  # the spawned call waits, like a queued input
    with JaguarClient(transport=ModalTransport()) as client:
        job = client.submit("a jaguar", **SMALL)
        call = stand_in.calls[job.id]
        threading.Timer(0.2, stand_in.gate.set).start()  # ends while the get is held
        assert job.wait(60).state == "succeeded"
    # One status call: FunctionCall.get held until the call ended (event-driven, no polling).
    assert len(call.gets) == 1 and (call.gets[0] or 0) > 0


def test_modal_batches_are_direct_calls_by_default(stand_in: StandIn) -> None:
    with JaguarClient(transport=ModalTransport()) as client:
        out = client.generate_many(["a", "b"], seed=4, **SMALL)
        assert all(isinstance(r, GenerationResult) and r.seed == 4 for r in out)
        assert stand_in.looked_up == 0  # spawned and awaited once each: no job calls by id
        on_jobs = client.generate_many(["c"], seed=4, use_jobs=True, **SMALL)
    assert isinstance(on_jobs[0], GenerationResult)
    assert stand_in.looked_up >= 2  # a status call and the result, by id
