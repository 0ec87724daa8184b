"""The OpenAI-compatible route: POST /v1/images/generations."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from tests.support import FakeEngine

URL = "/v1/images/generations"


def test_happy_path(client: httpx.Client, fake_engine: FakeEngine) -> None:
    r = client.post(
        URL,
        json={
            "prompt": "a jaguar",
            "n": 2,
            "size": "128x64",
            "model": "dall-e-3",
            "quality": "hd",
            "style": "vivid",
            "seed": 3,
        },
    )
    assert r.status_code == 200, r.text
    payload = r.json()
    assert isinstance(payload["created"], int)
    assert len(payload["data"]) == 2
    for item in payload["data"]:
        assert item["revised_prompt"] is None
        image = Image.open(io.BytesIO(base64.b64decode(item["b64_json"], validate=True)))
        assert image.format == "PNG" and image.size == (128, 64)
    request = fake_engine.requests[-1]
    assert request.num_images == 2 and request.seed == 3 and request.output_format == "png"


def test_defaults_and_output_format(client: httpx.Client, fake_engine: FakeEngine) -> None:
    r = client.post(
        URL,
        json={
            "prompt": "a jaguar",
            "size": "64x64",
            "output_format": "jpeg",
            "output_compression": 70,
        },
    )
    assert r.status_code == 200
    data = base64.b64decode(r.json()["data"][0]["b64_json"])
    assert Image.open(io.BytesIO(data)).format == "JPEG"
    assert fake_engine.requests[-1].quality == 70
    r = client.post(URL, json={"prompt": "a jaguar", "size": "auto", "response_format": "b64_json"})
    assert r.status_code == 200
    assert fake_engine.requests[-1].width == 1024


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x", "size": "100x100"}, "size"),
        ({"prompt": "x", "size": "big"}, "size"),
        ({"prompt": "x", "size": "4096x64"}, "size"),
        ({"prompt": "x", "size": 512}, "size"),
        ({"prompt": "x", "n": 0}, "n"),
        ({"prompt": "x", "n": 5}, "n"),
        ({"prompt": "x", "n": "2"}, "n"),
        ({"prompt": "x", "response_format": "url"}, "response_format"),
        ({"prompt": ""}, "prompt"),
        ({"n": 1}, "prompt"),
        ({"prompt": "x", "seed": -4}, "seed"),
        ({"prompt": "x", "output_compression": 0}, "output_compression"),
        ({"prompt": "x", "colour": "red"}, "colour"),
    ],
)
def test_errors_in_openai_shape(client: httpx.Client, body: dict, param: str) -> None:
    r = client.post(URL, json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param in error["message"] or param == "output_compression"


def test_url_format_explains_b64_only(client: httpx.Client) -> None:
    r = client.post(URL, json={"prompt": "x", "response_format": "url"})
    assert r.status_code == 422
    assert "b64_json" in r.json()["error"]["message"]


def test_malformed_json_and_auth_in_openai_shape(make_server) -> None:
    server = make_server(api_key="sk-test-123")
    r = httpx.post(f"{server.url}{URL}", json={"prompt": "x"})
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    r = httpx.post(
        f"{server.url}{URL}",
        content=b"{oops",
        headers={"Authorization": "Bearer sk-test-123", "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_official_openai_client(make_server) -> None:
    openai = pytest.importorskip("openai")
    server = make_server(api_key="sk-test-123")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test-123", max_retries=0)
    response = client.images.generate(
        prompt="a jaguar", n=1, size="256x256", response_format="b64_json"
    )
    image = Image.open(io.BytesIO(base64.b64decode(response.data[0].b64_json)))
    assert image.size == (256, 256)
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.images.generate(prompt="a jaguar", response_format="url")
    assert "b64_json" in str(info.value)
    bad = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.images.generate(prompt="a jaguar")
