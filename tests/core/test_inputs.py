"""Input images and LoRA adapters on the request: what is accepted, what is refused, by name.

URLs are fetched by the client only. The network is modelled: ``_inputs.resolver`` answers DNS
(a public address for ``images.example.com``), and an ``httpx.MockTransport`` is the https
server behind it, so the real checks (scheme, address, redirects, size) run unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from jaguar_sdk import GenerateRequest, InvalidRequestError, LoraAdapter, validate_request
from jaguar_sdk import _inputs as inputs
from jaguar_sdk._inputs import MAX_INPUT_IMAGE_BYTES, MAX_INPUT_IMAGE_PIXELS

PUBLIC_HOST = "images.example.com"
PUBLIC_IP = "93.184.216.34"


def encoded(size: tuple[int, int] = (64, 48), fmt: str = "PNG", mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, format=fmt)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (PIL reads the size before any pixel)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def refused(fields: dict[str, Any], **kwargs: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        validate_request({"prompt": "a cat", **fields}, **kwargs)
    return info.value


# --- images ----------------------------------------------------------------------------------
def test_an_image_is_accepted_as_bytes_base64_a_path_or_a_pil_image(tmp_path: Path) -> None:
    data = encoded()
    path = tmp_path / "in.png"
    path.write_bytes(data)
    pil = Image.open(io.BytesIO(data))
    for value in (data, base64.b64encode(data).decode(), path, pil):
        request = validate_request({"prompt": "a cat", "image": value})
        assert Image.open(io.BytesIO(request.image or b"")).size == (64, 48)
    # JSON carries standard base64; plain data the bytes themselves
    request = validate_request({"prompt": "a cat", "image": data})
    assert request.wire_fields("json")["image"] == base64.b64encode(data).decode("ascii")
    assert request.wire_fields()["image"] == data


def test_a_server_takes_bytes_or_base64_only(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(encoded())
    assert refused({"image": path}, remote=True).field == "image"
    assert "bytes or base64" in refused({"image": Image.new("RGB", (8, 8))}, remote=True).message
    assert validate_request({"prompt": "x", "image": encoded()}, remote=True).image == encoded()


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (b"not an image at all", "not a PNG, JPEG or WebP"),
        (encoded()[:-30], "truncated or corrupt"),
        (encoded(fmt="GIF"), "GIF image"),
        (png_header_only(20_000, 20_000), "decompression bomb"),
        (png_header_only(4097, 4097), f"above the limit of {MAX_INPUT_IMAGE_PIXELS} pixels"),
        (b"\x89PNG" + bytes(MAX_INPUT_IMAGE_BYTES), "above the limit"),
        (b"", "is empty"),
        ("@@not base64@@", "must be base64"),
    ],
)
def test_bad_images_are_refused_naming_the_field(image: Any, words: str) -> None:
    for field in ("image", "mask"):
        fields = {"image": encoded(), field: image}
        error = refused(fields)
        assert error.field == field and words in error.message, error.message
        assert "PNG, JPEG or WEBP image of at most 10 MiB" in error.message or field == "mask"


def test_the_mask_must_match_the_image_and_strength_needs_one() -> None:
    error = refused({"image": encoded((64, 48)), "mask": encoded((48, 64), mode="L")})
    assert error.field == "mask" and "is 48x64 but the image is 64x48" in error.message
    assert refused({"mask": encoded()}).field == "mask"
    assert refused({"strength": 0.5}).field == "strength"
    for strength in (0.0, 1.5, float("nan")):
        assert refused({"image": encoded(), "strength": strength}).field == "strength"
    ok = validate_request({"prompt": "a", "image": encoded(), "mask": encoded(), "strength": 1})
    assert ok.strength == 1.0 and ok.mask is not None


# --- URLs: the client fetches, never the server ------------------------------------------------
def test_a_url_in_a_request_is_refused_the_server_never_fetches() -> None:
    error = refused({"image": f"https://{PUBLIC_HOST}/cat.png"}, remote=True)
    assert error.field == "image" and "never by a server" in error.message


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """DNS and an https server for the client's fetches; records what was asked."""
    served: dict[str, Any] = {"requests": [], "image": encoded((40, 24), "JPEG")}
    addresses = {PUBLIC_HOST: [PUBLIC_IP], "cdn.example.com": [PUBLIC_IP]}
    addresses["intranet.example.com"] = ["10.0.0.7"]
    addresses["mixed.example.com"] = [PUBLIC_IP, "127.0.0.1"]

    def resolve(host: str) -> list[str]:
        if host not in addresses:
            raise OSError(f"no such host {host}")
        return addresses[host]

    def handle(request: httpx.Request) -> httpx.Response:
        served["requests"].append(request)
        path = request.url.path
        if path == "/cat.jpg":
            return httpx.Response(200, content=served["image"])
        if path == "/moved":
            return httpx.Response(302, headers={"location": "https://cdn.example.com/cat.jpg"})
        if path == "/inside":
            return httpx.Response(302, headers={"location": "https://intranet.example.com/x"})
        if path == "/loop":
            return httpx.Response(302, headers={"location": "/loop"})
        if path == "/huge":
            return httpx.Response(200, content=b"x" * (MAX_INPUT_IMAGE_BYTES + 1))
        return httpx.Response(404)

    monkeypatch.setattr(inputs, "resolver", resolve)
    monkeypatch.setattr(inputs, "sync_url_transport", httpx.MockTransport(handle))
    monkeypatch.setattr(inputs, "async_url_transport", httpx.MockTransport(handle))
    return served


def test_the_client_fetches_public_https_urls_and_follows_checked_redirects(web: Any) -> None:
    assert inputs.fetch_image_url(f"https://{PUBLIC_HOST}/cat.jpg") == web["image"]
    assert inputs.fetch_image_url(f"https://{PUBLIC_HOST}/moved") == web["image"]
    assert [str(r.url) for r in web["requests"]][-2:] == [
        f"https://{PUBLIC_HOST}/moved",
        "https://cdn.example.com/cat.jpg",
    ]
    assert all("authorization" not in r.headers for r in web["requests"])
    got = asyncio.run(inputs.aresolve_image_urls({"image": f"https://{PUBLIC_HOST}/cat.jpg"}))
    assert got["image"] == web["image"]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"http://{PUBLIC_HOST}/cat.jpg", "only https URLs"),
        ("https://127.0.0.1/cat.jpg", "private or local address"),
        ("https://[::1]/cat.jpg", "private or local address"),
        ("https://169.254.169.254/latest/meta-data", "private or local address"),
        ("https://intranet.example.com/cat.jpg", "private or local address"),
        ("https://mixed.example.com/cat.jpg", "private or local address"),
        ("https://nowhere.example.com/cat.jpg", "cannot resolve"),
        (f"https://{PUBLIC_HOST}/inside", "private or local address"),
        (f"https://{PUBLIC_HOST}/huge", "above the limit"),
        (f"https://{PUBLIC_HOST}/loop", "more than 3 redirects"),
        (f"https://{PUBLIC_HOST}/missing.jpg", "HTTP 404"),
    ],
)
def test_refused_urls_name_the_field(web: Any, url: str, words: str) -> None:
    for fetch in (
        lambda: inputs.resolve_image_urls({"mask": url}),
        lambda: asyncio.run(inputs.aresolve_image_urls({"mask": url})),
    ):
        with pytest.raises(InvalidRequestError) as info:
            fetch()
        assert info.value.field == "mask" and words in info.value.message, info.value.message
    assert not [r for r in web["requests"] if r.url.host in ("127.0.0.1", "intranet.example.com")]


# --- LoRA adapters -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("owner/repo", {"repo": "owner/repo", "scale": 1.0}),
        ("owner/repo:0.8", {"repo": "owner/repo", "scale": 0.8}),
        (
            "owner/repo/sub/style.safetensors@v1.2:-0.5",
            {"repo": "owner/repo", "weight_name": "sub/style.safetensors", "revision": "v1.2"},
        ),
        ("volume:loras/mine.safetensors:1.5", {"path": "loras/mine.safetensors", "scale": 1.5}),
        ("volume:loras/mine.safetensors", {"path": "loras/mine.safetensors"}),
    ],
)
def test_the_string_form_of_an_adapter(text: str, fields: dict[str, Any]) -> None:
    adapter = LoraAdapter.parse(text)
    for name, value in fields.items():
        assert getattr(adapter, name) == value
    assert LoraAdapter.parse(adapter.label() + f":{adapter.scale}") == adapter


@pytest.mark.parametrize(
    ("loras", "words"),
    [
        (["nope"], "is not 'owner/name"),
        ([{"repo": "a/b", "path": "x.safetensors"}], "exactly one of repo"),
        ([{"path": "../escape.safetensors"}], "relative path"),
        ([{"path": "/abs.safetensors"}], "relative path"),
        ([{"path": ".staging/x.safetensors"}], "hidden folders"),
        ([{"repo": "a/b", "weight_name": "model.bin"}], ".safetensors"),
        ([{"repo": "a/b", "scale": 3}], "loras[0].scale"),
        ([{"repo": "a/b", "strength": 1}], "loras[0].strength: unknown key"),
        (["a/b", "a/c", "a/d", "a/e"], "at most 3"),
        (["a/b:0.5", "a/b:1"], "listed twice"),
    ],
)
def test_bad_adapters_are_refused_naming_loras(loras: Any, words: str) -> None:
    error = refused({"loras": loras})
    assert error.field == "loras" and words in error.message, error.message


def test_only_what_the_caller_set_travels() -> None:
    request = GenerateRequest(prompt="a cat", image=encoded(), loras=["a/b:0.5"])
    wire = request.wire_fields("json")
    assert set(wire) == {"prompt", "image", "loras"}
    assert wire["loras"] == [{"repo": "a/b", "scale": 0.5}]
    assert GenerateRequest(prompt="a cat").wire_fields() == {"prompt": "a cat"}
    big = GenerateRequest(prompt="a cat", image=encoded((2048, 2048)))
    assert f"image=<{len(big.image or b'')} bytes>" in repr(big) and len(repr(big)) < 500
