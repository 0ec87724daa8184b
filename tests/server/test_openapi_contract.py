"""The published OpenAPI schema says what the server does (issue 14, #11)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from jaguar_sdk._request import SIZE_MULTIPLE
from tests.support import FakeEngine, LiveServer, serve_engine


@pytest.fixture(scope="module")
def served() -> Iterator[LiveServer]:
    server = serve_engine(FakeEngine())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def schema(served: LiveServer) -> dict:
    return httpx.get(f"{served.url}/openapi.json").json()


@pytest.fixture
def client(served: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as c:
        yield c


def _op(schema: dict, path: str, method: str) -> dict:
    return schema["paths"][path][method]


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["components"]["schemas"][name]
    return node


def _body_schema(schema: dict, path: str) -> dict:
    body = _op(schema, path, "post")["requestBody"]["content"]["application/json"]["schema"]
    return _resolve(schema, body)


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        ("/v1/jobs", "post", {"400", "401", "413", "415", "422", "429"}),
        ("/v1/jobs/{job_id}", "get", {"401", "404"}),
        ("/v1/jobs/{job_id}/result", "get", {"401", "404", "409"}),
        ("/v1/jobs/{job_id}/cancel", "post", {"401", "404"}),
        ("/v1/generate", "post", {"400", "401", "413", "415", "422", "503"}),
        ("/v1/images/generations", "post", {"400", "401", "413", "415", "422", "503"}),
    ],
)
def test_error_responses_are_documented(schema: dict, path: str, method: str, codes: set) -> None:
    documented = set(_op(schema, path, method)["responses"])
    assert codes <= documented, codes - documented


def test_submit_documents_its_body(schema: dict) -> None:
    body = _body_schema(schema, "/v1/jobs")
    assert body["required"] == ["prompt"]
    assert {"prompt", "width", "height", "webhook_url"} <= set(body["properties"])
    assert body.get("additionalProperties") is False


@pytest.mark.parametrize("path", ["/v1/generate", "/v1/jobs"])
def test_sizes_carry_their_multiple_of_rule(schema: dict, path: str) -> None:
    props = _body_schema(schema, path)["properties"]
    for side in ("width", "height"):
        assert props[side]["multipleOf"] == SIZE_MULTIPLE
        assert props[side]["minimum"] == 64 and props[side]["maximum"] == 2048


@pytest.mark.parametrize("path", ["/v1/generate", "/v1/jobs", "/v1/images/generations"])
def test_idempotency_key_format_is_documented(schema: dict, path: str) -> None:
    params = {p["name"]: p for p in _op(schema, path, "post").get("parameters", [])}
    key = params["Idempotency-Key"]["schema"]
    assert key["minLength"] == 1 and key["maxLength"] == 255
    assert key["pattern"]


def test_openai_prompt_and_model_are_typed(schema: dict, client: httpx.Client) -> None:
    props = _body_schema(schema, "/v1/images/generations")["properties"]
    assert props["prompt"]["minLength"] == 1
    model = props["model"]
    assert {"type": "string"} in model.get("anyOf", [model])
    r = client.post(
        "/v1/images/generations", json={"prompt": "a cat", "size": "64x64", "model": 123}
    )
    assert r.status_code == 422
    assert r.json()["error"]["param"] == "model"


def test_a_whitespace_prompt_is_refused_by_the_schema_too(schema: dict) -> None:
    # The server strips the prompt, so "   " is refused: the schema says so with a pattern.
    import re

    for path in ("/v1/generate", "/v1/images/generations"):
        prompt = _body_schema(schema, path)["properties"]["prompt"]
        assert re.search(prompt["pattern"], "  a  ") and not re.search(prompt["pattern"], "   ")
