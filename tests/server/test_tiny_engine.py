"""The server over the real tiny FluxPipeline engine (``tiny_engine`` from tests/conftest.py)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support import LiveServer

BODY = {"prompt": "a tiny jaguar", "width": 64, "height": 80, "steps": 2, "seed": 11}


@pytest.fixture
def tiny_server(tiny_engine: Any, make_server) -> LiveServer:
    return make_server(tiny_engine)  # the service never closes the shared engine


def test_tiny_generate_json(tiny_server: LiveServer) -> None:
    r = httpx.post(f"{tiny_server.url}/v1/generate", json=BODY, timeout=120)
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["seed"] == 11 and payload["request_id"] == r.headers["X-Request-ID"]
    image = Image.open(io.BytesIO(base64.b64decode(payload["images"][0]["data"], validate=True)))
    assert image.size == (64, 80) and image.format == "JPEG"
    assert payload["timings"]["total_s"] > 0


def test_tiny_generate_binary_is_deterministic(tiny_server: LiveServer) -> None:
    headers = {"Accept": "image/png"}
    body = {**BODY, "output_format": "png"}
    first = httpx.post(f"{tiny_server.url}/v1/generate", json=body, headers=headers, timeout=120)
    again = httpx.post(f"{tiny_server.url}/v1/generate", json=body, headers=headers, timeout=120)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(first.content)).size == (64, 80)
    assert first.headers["X-Jaguar-Seed"] == "11"
    assert json.loads(first.headers["X-Jaguar-Result"])["images"][0]["width"] == 64
    assert first.content == again.content  # same seed, same pixels


def test_tiny_info(tiny_server: LiveServer) -> None:
    r = httpx.get(f"{tiny_server.url}/v1/info")
    assert r.status_code == 200
    info = r.json()
    assert info["loaded"] is True and info["device"] == "cpu"
    assert info["model"]["id"]
