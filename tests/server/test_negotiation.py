"""``Accept`` picks the image format when the request leaves it open; a conflict is a 406."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from jaguar_sdk.server._negotiate import negotiate_format, requested_format
from tests.support import FakeEngine

BODY = {"prompt": "a jaguar in the rain", "width": 64, "height": 64, "seed": 7}
PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@pytest.mark.parametrize("fmt", ["png", "webp", "jpeg"])
def test_accept_names_the_format_when_the_request_does_not(
    client: httpx.Client, fake_engine: FakeEngine, fmt: str
) -> None:
    r = client.post("/v1/generate", json=BODY, headers={"Accept": f"image/{fmt}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == f"image/{fmt}"
    assert Image.open(io.BytesIO(r.content)).format == PIL_FORMAT[fmt]
    assert fake_engine.requests[-1].output_format == fmt  # made in that format, not converted


def test_the_highest_quality_image_type_wins(client: httpx.Client) -> None:
    accept = "image/jpeg;q=0.5, image/webp;q=0.9, application/json;q=0.1"
    r = client.post("/v1/generate", json=BODY, headers={"Accept": accept})
    assert r.headers["content-type"] == "image/webp"


def test_a_conflict_with_an_explicit_output_format_is_406(
    client: httpx.Client, fake_engine: FakeEngine
) -> None:
    calls = fake_engine.calls
    r = client.post(
        "/v1/generate", json={**BODY, "output_format": "jpg"}, headers={"Accept": "image/png"}
    )
    assert r.status_code == 406, r.text
    error = r.json()["error"]
    assert error["field"] == "output_format"
    assert "image/png" in error["message"] and "'jpg'" in error["message"]
    assert "image/jpeg" in error["message"]
    assert fake_engine.calls == calls  # refused before any work


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("image/png, application/json", "application/json"),  # JSON is acceptable: no 406
        ("image/png, image/jpeg;q=0.5", "image/jpeg"),  # the explicit format is acceptable
        ("image/*", "image/jpeg"),
        ("*/*", "application/json"),
    ],
)
def test_an_explicit_format_is_kept_when_the_answer_is_acceptable(
    client: httpx.Client, accept: str, content_type: str
) -> None:
    r = client.post(
        "/v1/generate", json={**BODY, "output_format": "jpeg"}, headers={"Accept": accept}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(content_type)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, None),
        ("", None),
        ("*/*", None),
        ("image/*", None),  # names no format
        ("application/json", None),
        ("image/png", "png"),
        ("IMAGE/PNG", "png"),
        ("image/png;q=0.5, application/json", None),  # JSON preferred
        ("image/png, image/webp", "png"),  # a tie: the first listed
        ("image/gif", None),  # not a format the server makes
        ("image/png;q=0", None),
    ],
)
def test_requested_format(accept: str | None, expected: str | None) -> None:
    assert requested_format(accept) == expected


def test_negotiate_leaves_other_fields_and_invalid_formats_to_validation() -> None:
    body = {"prompt": "a cat", "output_format": "gif"}
    assert negotiate_format(body, "image/png") == body  # validation names the allowed formats
    assert negotiate_format({"prompt": "a cat"}, None) == {"prompt": "a cat"}
