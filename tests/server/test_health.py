"""Info, health, readiness, OpenAPI, and liveness while a generation runs."""

from __future__ import annotations

import contextlib
import threading
import time

import httpx

from jaguar_sdk import HealthStatus, ModelInfo
from jaguar_sdk._version import __version__
from tests.support import FakeEngine


def test_info(client: httpx.Client) -> None:
    r = client.get("/v1/info")
    assert r.status_code == 200
    info = ModelInfo.model_validate_json(r.content)
    assert info.model.id == "fake" and info.loaded and info.version == __version__
    assert r.headers["X-Request-ID"] and r.headers["X-Jaguar-Schema-Version"] == "1"


def test_health_and_ready_when_loaded(client: httpx.Client) -> None:
    health = client.get("/v1/health")
    assert health.status_code == 200
    assert HealthStatus.model_validate_json(health.content).status == "ok"
    ready = client.get("/v1/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_health_and_ready_while_loading(make_server) -> None:
    server = make_server(started=False)
    with httpx.Client(base_url=server.url) as c:
        health = c.get("/v1/health")
        assert health.status_code == 200
        assert health.json()["status"] == "loading" and health.json()["ready"] is False
        ready = c.get("/v1/ready")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"
        assert int(ready.headers["Retry-After"]) > 0
        assert c.get("/v1/info").status_code == 503
        server.service.start()
        assert c.get("/v1/ready").status_code == 200


def test_health_reports_a_failed_load(make_server) -> None:
    def broken() -> FakeEngine:
        raise RuntimeError("weights missing")

    from jaguar_sdk.server import create_app
    from jaguar_sdk.server._service import JaguarService
    from tests.support import LiveServer

    service = JaguarService(broken)
    with contextlib.suppress(RuntimeError):
        service.start()
    with LiveServer(create_app(service)) as server:
        health = httpx.get(f"{server.url}/v1/health")
        assert health.status_code == 200
        assert health.json()["status"] == "error" and "weights missing" in health.json()["detail"]
        assert httpx.get(f"{server.url}/v1/ready").status_code == 503


def test_health_answers_during_a_slow_generation(make_server) -> None:
    engine = FakeEngine(delay_s=2.0)
    server = make_server(engine)
    outcome: dict[str, int] = {}

    def slow() -> None:
        r = httpx.post(
            f"{server.url}/v1/generate",
            json={"prompt": "slow", "width": 64, "height": 64},
            timeout=10,
        )
        outcome["status"] = r.status_code

    worker = threading.Thread(target=slow)
    worker.start()
    deadline = time.monotonic() + 2
    while engine.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.calls == 1
    started = time.perf_counter()
    health = httpx.get(f"{server.url}/v1/health", timeout=5)
    ready = httpx.get(f"{server.url}/v1/ready", timeout=5)
    elapsed = time.perf_counter() - started
    assert health.status_code == 200 and ready.status_code == 200
    assert elapsed < 1.0, f"health blocked for {elapsed:.2f}s during generation"
    assert worker.is_alive(), "the generation should still be running"
    worker.join(10)
    assert outcome["status"] == 200


def test_openapi_schema_and_docs(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/v1/generate",
        "/v1/info",
        "/v1/health",
        "/v1/ready",
        "/v1/admin/reload",
        "/v1/images/generations",
    ):
        assert path in paths
    body = paths["/v1/generate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "prompt" in body["properties"]
    assert "BearerToken" in schema["components"]["securitySchemes"]
    assert "image/jpeg" in paths["/v1/generate"]["post"]["responses"]["200"]["content"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
