"""Bad input is always a 4xx in our error format, naming the field at fault; never a 5xx."""

from __future__ import annotations

import json

import httpx
import pytest

from jaguar_sdk._constants import MAX_REQUEST_BODY_BYTES, SCHEMA_VERSION
from tests.support import FakeEngine

OK = {"prompt": "a cat", "width": 64, "height": 64}


def _with(**fields: object) -> str:
    return json.dumps({**OK, **fields})


# (id, raw body, content-type, expected status, expected error.field)
CASES: list[tuple[str, bytes | str, str, int, str | None]] = [
    ("empty prompt", _with(prompt=""), "application/json", 422, "prompt"),
    ("whitespace prompt", _with(prompt="   \n\t "), "application/json", 422, "prompt"),
    ("prompt too long", _with(prompt="x" * 2001), "application/json", 422, "prompt"),
    ("prompt not a string", _with(prompt=42), "application/json", 422, "prompt"),
    ("missing prompt", json.dumps({"width": 64}), "application/json", 422, "prompt"),
    ("width not multiple of 16", _with(width=100), "application/json", 422, "width"),
    ("width too small", _with(width=32), "application/json", 422, "width"),
    ("height too large", _with(height=4096), "application/json", 422, "height"),
    ("width with a fraction", _with(width=64.5), "application/json", 422, "width"),
    ("width as bool", _with(width=True), "application/json", 422, "width"),
    ("steps 0", _with(steps=0), "application/json", 422, "steps"),
    ("steps 51", _with(steps=51), "application/json", 422, "steps"),
    ("steps as string", _with(steps="4"), "application/json", 422, "steps"),
    (
        "guidance NaN",
        _with(guidance_scale=0).replace(": 0", ": NaN"),
        "application/json",
        422,
        "guidance_scale",
    ),
    (
        "guidance inf",
        _with(guidance_scale=0).replace(": 0", ": Infinity"),
        "application/json",
        422,
        "guidance_scale",
    ),
    (
        "guidance huge literal",
        _with(guidance_scale=0).replace(": 0", ": 1e999"),
        "application/json",
        422,
        "guidance_scale",
    ),
    ("guidance negative", _with(guidance_scale=-1), "application/json", 422, "guidance_scale"),
    ("guidance string", _with(guidance_scale="3.5"), "application/json", 422, "guidance_scale"),
    ("seed -1", _with(seed=-1), "application/json", 422, "seed"),
    ("seed 2**32", _with(seed=2**32), "application/json", 422, "seed"),
    ("seed huge", _with(seed=10**400), "application/json", 422, "seed"),
    ("seed float", _with(seed=1.5), "application/json", 422, "seed"),
    ("num_images 0", _with(num_images=0), "application/json", 422, "num_images"),
    ("num_images 5", _with(num_images=5), "application/json", 422, "num_images"),
    ("output_format gif", _with(output_format="gif"), "application/json", 422, "output_format"),
    ("quality 0", _with(quality=0), "application/json", 422, "quality"),
    ("quality 101", _with(quality=101), "application/json", 422, "quality"),
    (
        "max_sequence_length 600",
        _with(max_sequence_length=600),
        "application/json",
        422,
        "max_sequence_length",
    ),
    ("unknown field", _with(stpes=4), "application/json", 422, "stpes"),
    ("body is an array", json.dumps([OK]), "application/json", 400, None),
    ("body is a string", json.dumps("a cat"), "application/json", 400, None),
    ("body is null", "null", "application/json", 400, None),
    ("malformed JSON", '{"prompt": "a cat",', "application/json", 400, None),
    ("empty body", "", "application/json", 400, None),
    ("not UTF-8", b'{"prompt": "\xff\xfe"}', "application/json", 400, None),
    ("deeply nested", "[" * 50000 + "]" * 50000, "application/json", 413, None),
    ("nested within limit", "[" * 30000 + "]" * 30000, "application/json", 400, None),
    (
        "body too large",
        _with(prompt="x" * (MAX_REQUEST_BODY_BYTES + 10)),
        "application/json",
        413,
        None,
    ),
    ("wrong content type", _with(), "text/plain", 415, None),
    ("form content type", "prompt=a+cat", "application/x-www-form-urlencoded", 415, None),
]


@pytest.fixture(scope="module")
def bad_input_server():
    from jaguar_sdk.server import create_app
    from jaguar_sdk.server._service import JaguarService
    from tests.support import LiveServer

    engine = FakeEngine()
    service = JaguarService(lambda: engine)
    service.start()
    with LiveServer(create_app(service)) as server:
        server.engine = engine  # type: ignore[attr-defined]
        yield server


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_a_clear_4xx(bad_input_server, body, content_type, status, field) -> None:
    calls_before = bad_input_server.engine.calls
    r = httpx.post(
        f"{bad_input_server.url}/v1/generate",
        content=body.encode() if isinstance(body, str) else body,
        headers={"Content-Type": content_type},
    )
    assert r.status_code == status, r.text
    payload = r.json()
    assert payload["schema_version"] == SCHEMA_VERSION
    error = payload["error"]
    assert set(error) == {"code", "message", "field", "request_id"}
    assert error["field"] == field
    assert error["request_id"] == r.headers["X-Request-ID"]
    assert error["message"] and "Traceback" not in error["message"]
    if field:
        assert field in error["message"]
    assert "detail" not in payload  # FastAPI's own 422 format never leaks
    assert bad_input_server.engine.calls == calls_before


def test_oversized_body_streamed_without_content_length(bad_input_server) -> None:
    def chunks():
        for _ in range(200):
            yield b"x" * 1024

    r = httpx.post(
        f"{bad_input_server.url}/v1/generate",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_idempotency_key_must_be_sane(bad_input_server) -> None:
    r = httpx.post(
        f"{bad_input_server.url}/v1/generate",
        json=OK,
        headers={"Idempotency-Key": "x" * 300},
    )
    assert r.status_code == 400


def test_json_with_charset_is_accepted(bad_input_server) -> None:
    r = httpx.post(
        f"{bad_input_server.url}/v1/generate",
        content=_with(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200


def test_unknown_route_and_method(bad_input_server) -> None:
    r = httpx.get(f"{bad_input_server.url}/v1/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert r.headers["X-Request-ID"]
    r = httpx.get(f"{bad_input_server.url}/v1/generate")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in r.headers["Allow"]


def test_an_integral_json_number_is_an_integer(bad_input_server) -> None:
    """JSON has one number type and JSON Schema (the OpenAPI schema) counts 64.0 as the
    integer 64, so the server does too; 64.5 is refused (above)."""
    r = httpx.post(
        f"{bad_input_server.url}/v1/generate",
        content=_with(width=64.0, steps=2.0).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert bad_input_server.engine.requests[-1].width == 64
