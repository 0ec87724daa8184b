"""The Modal web endpoint's ``/v1/jobs`` spawn the class method (``deploy/jobs.py``).

Modal is replaced by the stand-in of ``test_jobs_modal.py``: ``generate.spawn`` runs the real
``JaguarModel.generate`` in a thread and answers a FunctionCall-like object. The web app is the
real one (``JaguarModel.web``), served over a LiveServer and called by the HTTP client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import deploy.app as deploy_app
from deploy.jobs import ModalJobBackend
from jaguar_sdk import GenerationResult, JaguarClient, JobCancelledError, NotFoundError
from jaguar_sdk.server import JobBackend
from tests.deploy.test_lifecycle import TOKEN, fake_hub, modal_env  # noqa: F401  (fixtures)
from tests.jobs.test_jobs_modal import StandIn, stand_in  # noqa: F401  (fixture)
from tests.support import LiveServer

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")

SMALL = {"width": 64, "height": 64}


@pytest.fixture
def web(stand_in: StandIn) -> Iterator[LiveServer]:  # noqa: F811
    app = deploy_app.JaguarModel().web.local()
    assert isinstance(app.state.jaguar_job_backend, ModalJobBackend)
    with LiveServer(app) as server:
        yield server


def test_modal_backend_is_a_job_backend() -> None:
    assert isinstance(ModalJobBackend("app", "Cls"), JobBackend)


def test_web_jobs_are_spawned_calls(web: LiveServer, stand_in: StandIn) -> None:  # noqa: F811
    with JaguarClient(base_url=web.url, api_key=TOKEN) as client:
        job = client.submit("a jaguar", seed=5, **SMALL)
        assert job.id.startswith("fc-") and stand_in.spawned == 1
        assert job.id in stand_in.calls
        result = job.result(timeout=60)
        assert isinstance(result, GenerationResult) and result.seed == 5
        assert client.get_job(job.id).last_status.state == "succeeded"
        with pytest.raises(NotFoundError):
            client.get_job("fc-missing")
        # generate_many on jobs goes through the same spawned calls...
        items: list[Any] = ["a", {"prompt": "b", "width": 65}]
        out = client.generate_many(items, seed=2, use_jobs=True, **SMALL)
        assert stand_in.spawned == 2
        # ...and by default calls /v1/generate directly (no status calls queued on the GPU)
        direct = client.generate_many(items, seed=2, **SMALL)
    for outcome in (out, direct):
        assert isinstance(outcome[0], GenerationResult) and outcome[0].seed == 2
        assert getattr(outcome[1], "field", None) == "width"
    assert stand_in.spawned == 2


def test_web_job_pending_then_cancelled(web: LiveServer, stand_in: StandIn) -> None:  # noqa: F811
    stand_in.gate.clear()  # the spawned call waits
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with JaguarClient(base_url=web.url, api_key=TOKEN, max_retries=0) as client:
        job = client.submit("a jaguar", **SMALL)
        assert job.status().state == "running"
        pending = httpx.get(f"{web.url}/v1/jobs/{job.id}/result", headers=headers)
        assert pending.status_code == 409
        assert job.cancel().state == "cancelled"
        assert stand_in.calls[job.id].cancelled
        with pytest.raises(JobCancelledError):
            job.result(timeout=10)


def test_web_jobs_refuse_webhooks_and_honour_idempotency(
    web: LiveServer,
    stand_in: StandIn,  # noqa: F811
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "same"}
    body: dict[str, Any] = {"prompt": "x", **SMALL}
    first = httpx.post(f"{web.url}/v1/jobs", json=body, headers=headers)
    again = httpx.post(f"{web.url}/v1/jobs", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and stand_in.spawned == 1
    # a webhook cannot be posted for a spawned call: refused, not dropped
    backend = ModalJobBackend("app", "Cls")
    from jaguar_sdk import GenerateRequest, InvalidRequestError

    with pytest.raises(InvalidRequestError, match="webhook"):
        backend.submit(GenerateRequest(prompt="x"), "https://example.org/hook", None)
