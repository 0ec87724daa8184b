"""Jobs through the Modal transport, with Modal replaced by the stand-ins of
``tests/support/modal_standin.py``: ``generate.spawn`` runs the REAL ``deploy.app.JaguarModel``
in a thread; ``FunctionCall`` objects answer ``get(timeout)``, ``get_call_graph()`` and
``cancel()`` as modal 1.6.4 does, and count every download of an output.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

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
from jaguar_sdk._transports._modal_jobs import job_key
from jaguar_sdk._transports.modal import AsyncModalTransport, ModalTransport
from tests.support.modal_standin import StandInCls

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")

SMALL = {"width": 64, "height": 64}


def test_submit_wait_result_and_from_id(standin: StandInCls) -> None:
    with JaguarClient(transport=ModalTransport()) as client:
        job = client.submit("a jaguar", seed=21, **SMALL)
        assert job.id.startswith("fc-") and standin.invocations == [("spawn", "generate")]
        stages = [event.stage for event in job.events(timeout=60)]
        call = standin.modal.calls[job.id]
        assert call.downloads == 0  # every status poll answered without the images
        result = job.result(timeout=60)
        assert call.downloads == 1  # the result, once
    assert stages[-1] == "done"
    assert isinstance(result, GenerationResult) and result.seed == 21
    # another process: only the id travels
    with JaguarClient(transport=ModalTransport()) as other:
        again = Job.from_id(job.id, other)
        assert again.last_status.state == "succeeded"
        assert other.get_job(job.id).result(timeout=5).seed == 21
        with pytest.raises(NotFoundError, match="No job 'fc-missing'"):
            other.get_job("fc-missing")
    assert set(standin.modal.dict_names) == {"shuttle-jaguar-state"}  # one per client


def test_without_a_record_status_comes_from_the_call_graph(
    standin: StandInCls,
) -> None:
    standin.modal.gate.clear()
    with JaguarClient(transport=ModalTransport(), max_retries=0) as client:
        job = client.submit("a jaguar", **SMALL)
        call = standin.modal.calls[job.id]
        assert job.status().state == "running"  # PENDING in the call graph
        job.cancel()
        assert client.get_job(job.id).last_status.state == "cancelled"  # TERMINATED
        assert call.gets == 0  # neither poll asked for the output
        standin.modal.gate.set()
        done = client.submit("a jaguar", **SMALL)
        assert done.wait(timeout=60).state == "succeeded"
        standin.modal.state.pop(job_key(done.id))  # a deployment that records no outcomes
        assert client.get_job(done.id).last_status.state == "succeeded"
    # SUCCESS in the graph cannot tell a result from an error envelope: the one fallback
    assert standin.modal.calls[done.id].downloads == 1


def test_running_job_is_pending_then_cancelled(standin: StandInCls) -> None:
    standin.modal.gate.clear()  # the spawned input waits in the queue
    with JaguarClient(transport=ModalTransport(), max_retries=0) as client:
        job = client.submit("a jaguar", **SMALL)
        assert job.status().state == "running"
        with pytest.raises(JobPendingError):
            client._run(client._core.plan_job("job_result", job.id))
        assert job.cancel().state == "cancelled"
        assert standin.modal.calls[job.id].status.name == "TERMINATED"
        standin.modal.gate.set()
        assert job.wait(timeout=10).state == "cancelled"
        with pytest.raises(JobCancelledError):
            job.result(timeout=10)


def test_cancel_of_a_finished_job_reports_it_finished(standin: StandInCls) -> None:
    with JaguarClient(transport=ModalTransport()) as client:
        job = client.submit("a jaguar", seed=4, **SMALL)
        assert job.wait(timeout=60).state == "succeeded"
        assert job.cancel().state == "succeeded"  # nothing was cancelled
        assert standin.modal.calls[job.id].status.name == "SUCCESS"
        assert job.result(timeout=5).seed == 4


def test_failed_remote_generation_is_a_failed_job_without_a_download(
    standin: StandInCls,
) -> None:
    with JaguarClient(transport=ModalTransport()) as client:
        with pytest.raises(InvalidRequestError, match="webhook_url"):
            client.submit("x", webhook_url="https://example.org/hook", **SMALL)
        job = client.submit("a jaguar", **SMALL)
        assert job.wait(timeout=60).state == "succeeded"
        # an error envelope answered by the method, recorded by the GPU class
        standin.modal.state.put(
            job_key(job.id),
            {"state": "failed", "failure": {"code": "generation_failed", "message": "boom"}},
        )
        status = client.get_job(job.id).last_status
        assert status.state == "failed"
        assert status.failure is not None and status.failure["message"] == "boom"
        assert standin.modal.calls[job.id].downloads == 0


def test_an_expired_result_is_not_found_not_a_timeout(standin: StandInCls) -> None:
    with JaguarClient(transport=ModalTransport(), max_retries=0) as client:
        job = client.submit("a jaguar", **SMALL)
        job.wait(timeout=60)
        standin.modal.calls[job.id].expired = True
        standin.modal.state.pop(job_key(job.id))
        with pytest.raises(NotFoundError) as info:
            job.result(timeout=5)
        assert info.value.code == "job_expired"
        with pytest.raises(NotFoundError):
            job.status()


def test_async_client_over_modal_jobs(standin: StandInCls) -> None:
    async def go() -> tuple[GenerationResult, Any]:
        async with AsyncJaguarClient(transport=AsyncModalTransport()) as client:
            job = await client.submit("a jaguar", seed=8, **SMALL)
            return await job.result(timeout=60), job.id

    result, job_id = asyncio.run(go())
    assert result.seed == 8
    assert standin.modal.calls[job_id].downloads == 1


def test_waiting_on_a_modal_job_is_one_status_call_and_no_download(
    standin: StandInCls, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from jaguar_sdk._transports import _modal_jobs

    statuses: list[float | None] = []
    original = _modal_jobs.run_job_operation

    def counting(call: Any, *args: Any, **kwargs: Any) -> Any:
        if call.operation == "job_status":
            statuses.append(call.wait)
        return original(call, *args, **kwargs)

    monkeypatch.setattr(_modal_jobs, "run_job_operation", counting)
    monkeypatch.setattr("jaguar_sdk._transports.modal.run_job_operation", counting)
    standin.modal.gate.clear()  # the spawned call waits, like a queued input
    with JaguarClient(transport=ModalTransport()) as client:
        job = client.submit("a jaguar", **SMALL)
        threading.Timer(0.3, standin.modal.gate.set).start()  # ends while the status call waits
        assert job.wait(60).state == "succeeded"
        call = standin.modal.calls[job.id]
    # One long-polled status call (it re-read the outcome record inside) and no image bytes.
    assert len(statuses) == 1 and (statuses[0] or 0) > 0
    assert call.downloads == 0


def test_modal_batches_are_direct_calls_by_default(
    standin: StandInCls, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jaguar_sdk._transports import _modal_jobs

    job_calls: list[str] = []
    original = _modal_jobs.run_job_operation

    def counting(call: Any, *args: Any, **kwargs: Any) -> Any:
        job_calls.append(call.operation)
        return original(call, *args, **kwargs)

    monkeypatch.setattr("jaguar_sdk._transports.modal.run_job_operation", counting)
    with JaguarClient(transport=ModalTransport()) as client:
        out = client.generate_many(["a", "b"], seed=4, **SMALL)
        assert all(isinstance(r, GenerationResult) and r.seed == 4 for r in out)
        assert job_calls == []  # each item spawned and awaited once: no job calls by id
        on_jobs = client.generate_many(["c"], seed=4, use_jobs=True, **SMALL)
    assert isinstance(on_jobs[0], GenerationResult)
    assert "job_status" in job_calls and "job_result" in job_calls
