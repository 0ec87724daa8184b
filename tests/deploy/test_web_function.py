"""The HTTP API on a CPU web function (``deploy.app.web``), calling the GPU class.

Modal is replaced by the stand-ins of ``tests/support/modal_standin.py``; ``standin.invocations``
lists every call that reached the GPU class. Several web containers are several apps from
``web.local()`` sharing the one state Dict, as Modal's containers share the app's Dict.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

import deploy.app as deploy_app
from deploy.aio import raise_thread_limit
from jaguar_sdk import GenerationResult, HealthStatus, JaguarClient, ModelInfo
from tests.deploy.fixtures import SHA, TOKEN, new_container, payload
from tests.support import LiveServer
from tests.support.modal_standin import StandInCls

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY: dict[str, Any] = {"prompt": "a jaguar", "width": 64, "height": 64, "seed": 11}


@pytest.fixture
def web(standin: StandInCls) -> Iterator[LiveServer]:
    with LiveServer(deploy_app.web.local()) as server:
        yield server


def test_health_and_readiness_never_reach_the_gpu(
    web: LiveServer,
    standin: StandInCls,
) -> None:
    for route in ("/v1/health", "/v1/ready"):
        answer = httpx.get(f"{web.url}{route}")
        assert answer.status_code == 200
        health = HealthStatus.model_validate(answer.json())
        assert health.ready and "GPU containers start on demand" in (health.detail or "")
    assert standin.invocations == []


def test_generate_and_info_are_calls_to_the_gpu_class(
    web: LiveServer,
    standin: StandInCls,
) -> None:
    with JaguarClient(base_url=web.url, api_key=TOKEN) as client:
        info = client.info()
        result = client.generate(
            "a jaguar", width=64, height=64, seed=3, idempotency_key=None, max_retries=0
        )
    assert isinstance(info, ModelInfo) and info.model.revision == SHA
    assert info.extra["weights_from"] == "volume"
    assert isinstance(result, GenerationResult) and result.seed == 3
    assert ("remote", "info") in standin.invocations
    generated = [kind for kind, name in standin.invocations if name == "generate"]
    assert generated == ["spawn"]  # the client sends an idempotency key: spawned and claimed


def test_a_retried_post_after_a_dropped_response_generates_once(
    standin: StandInCls,
) -> None:
    headers = {**AUTH, "Idempotency-Key": "k-1", "Accept": "application/json"}
    standin.modal.gate.clear()  # the generation is still running when the client gives up
    with LiveServer(deploy_app.web.local()) as one, LiveServer(deploy_app.web.local()) as two:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{one.url}/v1/generate", json=BODY, headers=headers, timeout=0.5)
        standin.modal.gate.set()
        retry = httpx.post(f"{two.url}/v1/generate", json=BODY, headers=headers, timeout=60)
    assert retry.status_code == 200
    assert GenerationResult.model_validate_json(retry.content).seed == 11
    assert standin.invocations == [("spawn", "generate")]  # one generation, two containers
    assert len(standin.modal.calls) == 1


def test_without_a_key_each_post_generates(web: LiveServer, standin: StandInCls) -> None:
    for _ in range(2):
        assert httpx.post(f"{web.url}/v1/generate", json=BODY, headers=AUTH).status_code == 200
    assert standin.invocations == [("remote", "generate")] * 2


def test_a_missing_web_token_answers_503_and_spares_the_python_api(
    modal_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JAGUAR_SERVER_TOKEN")
    app = deploy_app.web.local()  # building the app never raises
    with LiveServer(app) as server:
        for method, route in (("GET", "/v1/health"), ("POST", "/v1/generate")):
            answer = httpx.request(method, f"{server.url}{route}", json=BODY)
            assert answer.status_code == 503
            message = answer.json()["error"]["message"]
            assert "modal secret create jaguar-api-token JAGUAR_SERVER_TOKEN=" in message
    # The GPU class has no web endpoint to build, so its containers start and serve.
    out = new_container().generate.local(payload(seed=2))
    assert GenerationResult.model_validate(out).seed == 2


def test_the_thread_limit_covers_every_concurrent_input() -> None:
    async def go() -> float:
        raise_thread_limit(deploy_app.settings.web_max_inputs + 16)
        return float(anyio.to_thread.current_default_thread_limiter().total_tokens)

    assert anyio.run(go) == deploy_app.settings.web_max_inputs + 16


def test_a_key_reused_with_another_body_is_refused_across_containers(
    standin: StandInCls,
) -> None:
    headers = {**AUTH, "Idempotency-Key": "k-2", "Accept": "application/json"}
    with LiveServer(deploy_app.web.local()) as one, LiveServer(deploy_app.web.local()) as two:
        first = httpx.post(f"{one.url}/v1/generate", json=BODY, headers=headers, timeout=60)
        other = httpx.post(
            f"{two.url}/v1/generate", json={**BODY, "prompt": "a dog"}, headers=headers
        )
    assert first.status_code == 200
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert standin.invocations == [("spawn", "generate")]  # the second body never ran
