"""Both directions of version skew (see "Compatibility" in docs/architecture.md).

- New client -> old server: the client sends only the fields the caller set, so a server
  deployed before a field existed never sees it unless the caller uses it.
- Old client -> new server: every body an old client sent (all fields, defaults included) is
  still accepted, over HTTP and as a Modal plain-data payload.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jaguar_sdk import GenerateRequest, InvalidRequestError, JaguarClient
from jaguar_sdk._constants import SCHEMA_VERSION
from tests.compat.wire_v1 import V1_CLIENT_BODY, old_server_app
from tests.support.fake_engine import FakeEngine
from tests.support.live_server import LiveServer, serve_engine


def test_the_old_server_stand_in_refuses_fields_it_does_not_know() -> None:
    received: list[dict[str, Any]] = []
    with LiveServer(old_server_app(received)) as server:
        answer = httpx.post(f"{server.url}/v1/generate", json={"prompt": "x", "strength": 0.5})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "strength"


def test_a_new_client_sends_only_what_the_caller_set() -> None:
    received: list[dict[str, Any]] = []
    with (
        LiveServer(old_server_app(received)) as server,
        JaguarClient(base_url=server.url, max_retries=0) as client,
    ):
        result = client.generate("a cat", width=64, height=64)
        client.generate(GenerateRequest(prompt="a dog", seed=5), quality=80)
    assert result.image.width == 64
    assert received == [
        {"prompt": "a cat", "width": 64, "height": 64},
        {"prompt": "a dog", "seed": 5, "quality": 80},
    ]


def test_a_new_client_reaches_an_old_server_until_the_caller_uses_a_newer_field() -> None:
    received: list[dict[str, Any]] = []
    with LiveServer(old_server_app(received)) as server:
        with JaguarClient(base_url=server.url, max_retries=0) as client:
            # an explicit default is sent (the caller asked for it) and v1 knows it
            assert client.generate("a cat", width=64, height=64, steps=4).seed == 42
        # A field newer than v1, set by a caller, is what an old server refuses, by name.
        body = {**V1_CLIENT_BODY, "strength": 0.5}
        answer = httpx.post(f"{server.url}/v1/generate", json=body)
    assert received[0] == {"prompt": "a cat", "width": 64, "height": 64, "steps": 4}
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "strength"


def test_an_old_client_body_is_accepted_by_the_new_server() -> None:
    engine = FakeEngine()
    server = serve_engine(engine)
    try:
        answer = httpx.post(
            f"{server.url}/v1/generate",
            json=V1_CLIENT_BODY,
            headers={"X-Jaguar-Schema-Version": "1", "Accept": "application/json"},
        )
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    assert answer.json()["images"][0]["width"] == 64
    assert engine.requests[-1] == GenerateRequest.model_validate(V1_CLIENT_BODY)


def test_an_old_client_plain_payload_is_accepted_by_the_new_service() -> None:
    from jaguar_sdk.server import JaguarService

    service = JaguarService(FakeEngine)
    service.start()
    out = service.call_plain(
        "generate",
        {
            "schema_version": 1,
            "request": V1_CLIENT_BODY,
            "request_id": "r",
            "idempotency_key": None,
        },
    )
    assert "error" not in out, out
    assert out["schema_version"] == SCHEMA_VERSION and out["images"][0]["width"] == 64


def test_the_client_still_validates_before_the_network() -> None:
    with (
        JaguarClient(base_url="http://127.0.0.1:9", max_retries=0) as client,
        pytest.raises(InvalidRequestError) as info,
    ):
        client.generate("a cat", width=100)
    assert info.value.field == "width" and info.value.status_code is None


def test_the_new_fields_are_refused_by_an_old_server_by_name_and_text_still_works() -> None:
    """Image-to-image, inpainting and LoRA (wire v1 + optional fields): a caller who uses them
    against a server deployed before them gets a 422 naming the field; one who does not, gets
    served as before."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, format="PNG")
    received: list[dict[str, Any]] = []
    with (
        LiveServer(old_server_app(received)) as server,
        JaguarClient(base_url=server.url, max_retries=0) as client,
    ):
        for fields, name in (
            ({"image": buffer.getvalue()}, "image"),
            ({"image": buffer.getvalue(), "strength": 0.5}, "image"),
            ({"loras": ["owner/style:0.8"]}, "loras"),
        ):
            with pytest.raises(InvalidRequestError) as info:
                client.generate("a cat", width=64, height=64, **fields)  # type: ignore[arg-type]
            assert info.value.field == name and info.value.status_code == 422
        assert client.generate("a cat", width=64, height=64).image.width == 64
    assert received[-1] == {"prompt": "a cat", "width": 64, "height": 64}  # nothing new sent
    assert received[0]["image"] == base64_of(buffer.getvalue())  # standard base64 on the wire
    assert received[2]["loras"] == [{"repo": "owner/style", "scale": 0.8}]


def base64_of(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")
