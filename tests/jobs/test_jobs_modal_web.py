"""The web function's ``/v1/jobs`` spawn the GPU class's ``generate`` (``deploy/jobs.py``).

Modal is replaced by the stand-ins of ``tests/support/modal_standin.py``. The web app is the real
one (``deploy.app.web``, a CPU function), served over a LiveServer and called by the HTTP client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import deploy.app as deploy_app
from deploy.idempotency import SharedIdempotency
from deploy.jobs import ModalJobBackend
from jaguar_sdk import (
    GenerateRequest,
    GenerationResult,
    InvalidRequestError,
    JaguarClient,
    JobCancelledError,
    NotFoundError,
)
from jaguar_sdk._transports._modal_jobs import job_key
from jaguar_sdk.server import JobBackend
from tests.deploy.fixtures import TOKEN
from tests.support import LiveServer
from tests.support.modal_standin import StandInCls, StandInDict

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")

SMALL = {"width": 64, "height": 64}


@pytest.fixture
def web(standin: StandInCls) -> Iterator[LiveServer]:
    app = deploy_app.web.local()
    assert isinstance(app.state.jaguar_job_backend, ModalJobBackend)
    with LiveServer(app) as server:
        yield server


def test_modal_backend_is_a_job_backend() -> None:
    state = StandInDict()
    backend = ModalJobBackend(
        lambda: None,
        state=state,
        idempotency=SharedIdempotency(state),
        app_name="app",
        class_name="Cls",
    )
    assert isinstance(backend, JobBackend)
    with pytest.raises(InvalidRequestError, match="webhook"):
        backend.submit(GenerateRequest(prompt="x"), "https://example.org/hook", None)


def test_web_jobs_are_spawned_calls(web: LiveServer, standin: StandInCls) -> None:
    with JaguarClient(base_url=web.url, api_key=TOKEN) as client:
        job = client.submit("a jaguar", seed=5, **SMALL)
        assert job.id.startswith("fc-") and job.id in standin.modal.calls
        assert job.wait(timeout=60).state == "succeeded"
        assert standin.modal.calls[job.id].downloads == 0  # polls never pull the images
        result = job.result(timeout=60)
        assert isinstance(result, GenerationResult) and result.seed == 5
        assert client.get_job(job.id).last_status.state == "succeeded"
        with pytest.raises(NotFoundError):
            client.get_job("fc-missing")
        # generate_many goes through the same spawned jobs
        out = client.generate_many(["a", {"prompt": "b", "width": 65}], seed=2, **SMALL)
    assert isinstance(out[0], GenerationResult) and out[0].seed == 2
    assert getattr(out[1], "field", None) == "width"
    assert standin.invocations == [("spawn", "generate")] * 2


def test_web_job_pending_then_cancelled(web: LiveServer, standin: StandInCls) -> None:
    standin.modal.gate.clear()  # the spawned call waits
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with JaguarClient(base_url=web.url, api_key=TOKEN, max_retries=0) as client:
        job = client.submit("a jaguar", **SMALL)
        assert job.status().state == "running"
        pending = httpx.get(f"{web.url}/v1/jobs/{job.id}/result", headers=headers)
        assert pending.status_code == 409
        assert job.cancel().state == "cancelled"
        assert standin.modal.calls[job.id].status.name == "TERMINATED"
        with pytest.raises(JobCancelledError):
            job.result(timeout=10)


def test_an_expired_job_answers_410(web: LiveServer, standin: StandInCls) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with JaguarClient(base_url=web.url, api_key=TOKEN) as client:
        job = client.submit("a jaguar", **SMALL)
        job.wait(timeout=60)
    standin.modal.calls[job.id].expired = True
    standin.modal.state.pop(job_key(job.id))
    for path in (f"/v1/jobs/{job.id}", f"/v1/jobs/{job.id}/result"):
        answer = httpx.get(f"{web.url}{path}", headers=headers)
        assert answer.status_code == 410
        assert answer.json()["error"]["code"] == "job_expired"
    client = JaguarClient(base_url=web.url, api_key=TOKEN)
    with client, pytest.raises(NotFoundError) as info:
        client.get_job(job.id)
    assert (info.value.status_code, info.value.code) == (410, "job_expired")


def test_idempotent_submit_holds_across_web_containers(
    standin: StandInCls,
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "same"}
    body: dict[str, Any] = {"prompt": "x", **SMALL}
    with LiveServer(deploy_app.web.local()) as one, LiveServer(deploy_app.web.local()) as two:
        first = httpx.post(f"{one.url}/v1/jobs", json=body, headers=headers)
        again = httpx.post(f"{two.url}/v1/jobs", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert standin.invocations == [("spawn", "generate")]


def test_a_job_key_reused_with_another_body_is_refused_across_web_containers(
    standin: StandInCls,
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "same-2"}
    body: dict[str, Any] = {"prompt": "x", **SMALL}
    with LiveServer(deploy_app.web.local()) as one, LiveServer(deploy_app.web.local()) as two:
        first = httpx.post(f"{one.url}/v1/jobs", json=body, headers=headers)
        other = httpx.post(f"{two.url}/v1/jobs", json={**body, "prompt": "y"}, headers=headers)
    assert first.status_code == 202
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert standin.invocations == [("spawn", "generate")]
