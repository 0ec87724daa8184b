"""POST /v1/generate: binary vs JSON negotiation, headers, request ids, failures."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from PIL import Image

from jaguar_sdk import GenerationResult
from jaguar_sdk._constants import SCHEMA_VERSION
from tests.support import FakeEngine

BODY = {"prompt": "a jaguar in the rain", "width": 64, "height": 96, "seed": 7}


@pytest.mark.parametrize("accept", ["image/jpeg", "image/*", "image/jpeg, */*;q=0.5"])
def test_generate_binary(client: httpx.Client, accept: str) -> None:
    r = client.post("/v1/generate", json=BODY, headers={"Accept": accept})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "JPEG" and image.size == (64, 96)
    assert r.headers["X-Jaguar-Seed"] == "7"
    assert r.headers["X-Jaguar-Schema-Version"] == str(SCHEMA_VERSION)
    assert r.headers["X-Request-ID"].startswith("req_")
    meta = json.loads(r.headers["X-Jaguar-Result"])
    assert meta["seed"] == 7 and meta["request_id"] == r.headers["X-Request-ID"]
    assert meta["images"] == [{"format": "jpeg", "width": 64, "height": 96}]
    assert meta["prompt"] == BODY["prompt"]


def test_generate_binary_png(client: httpx.Client) -> None:
    r = client.post(
        "/v1/generate", json={**BODY, "output_format": "png"}, headers={"Accept": "image/png"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).format == "PNG"


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", "image/*, application/json", "image/*;q=0"],
)
def test_generate_json(client: httpx.Client, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    r = client.post("/v1/generate", json=BODY, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    payload = r.json()
    assert payload["schema_version"] == SCHEMA_VERSION
    assert payload["seed"] == 7 and payload["request_id"] == r.headers["X-Request-ID"]
    image = Image.open(io.BytesIO(base64.b64decode(payload["images"][0]["data"])))
    assert image.size == (64, 96)
    result = GenerationResult.model_validate_json(r.content)  # the client's parse path
    assert result.image.to_pil().size == (64, 96)


def test_several_images_are_always_json(client: httpx.Client) -> None:
    r = client.post(
        "/v1/generate", json={**BODY, "num_images": 3}, headers={"Accept": "image/jpeg"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert len(r.json()["images"]) == 3


def test_client_request_id_is_used(client: httpx.Client, fake_engine: FakeEngine) -> None:
    r = client.post("/v1/generate", json=BODY, headers={"X-Request-ID": "my-req.1_a"})
    assert r.headers["X-Request-ID"] == "my-req.1_a"
    assert r.json()["request_id"] == "my-req.1_a"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", "ü"])
def test_insane_request_id_is_replaced(client: httpx.Client, bad: str) -> None:
    r = client.post("/v1/generate", json=BODY, headers={"X-Request-ID": bad.encode()})
    assert r.status_code == 200
    assert r.headers["X-Request-ID"].startswith("req_")


def test_binary_metadata_header_survives_unicode_and_long_prompts(client: httpx.Client) -> None:
    prompt = ("jaguar 🐆 «über» \n" * 200)[:2000]
    r = client.post("/v1/generate", json={**BODY, "prompt": prompt}, headers={"Accept": "image/*"})
    assert r.status_code == 200
    assert json.loads(r.headers["X-Jaguar-Result"])["prompt"] == prompt.strip()


def test_generation_failure_is_a_safe_500(make_server) -> None:
    server = make_server(FakeEngine(fail=True))
    r = httpx.post(f"{server.url}/v1/generate", json=BODY)
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["code"] == "generation_failed"
    assert error["request_id"] == r.headers["X-Request-ID"]
    assert "Traceback" not in r.text and 'File "' not in r.text


def test_not_ready_is_503_with_retry_after(make_server) -> None:
    server = make_server(started=False)
    r = httpx.post(f"{server.url}/v1/generate", json=BODY)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "not_ready"
    assert int(r.headers["Retry-After"]) > 0
    assert r.headers["X-Request-ID"]
