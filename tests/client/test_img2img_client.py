"""The clients' side of image-to-image, inpainting and LoRA: every input form (bytes, a path, a
PIL image, an https URL fetched by the client), sync and async, in-process and over HTTP,
``generate_many`` and the CLI flags (``--image``, ``--mask``, ``--strength``, ``--lora``)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from jaguar_sdk import (
    AsyncJaguarClient,
    GenerationResult,
    InvalidRequestError,
    JaguarClient,
)
from jaguar_sdk import _inputs as inputs
from jaguar_sdk.cli import main
from tests.client.conftest import API_KEY
from tests.support import FakeEngine, serve_engine
from tests.support.loras import LORA_REPO

PUBLIC = "https://images.example.com"


def photo(size: tuple[int, int] = (96, 64)) -> Image.Image:
    image = Image.new("RGB", size, (40, 90, 160))
    image.paste((220, 200, 30), (10, 10, 50, 40))
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def url_server(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """A public https host serving ``/photo.png`` (DNS and server modelled, see test_inputs)."""
    served = {"/photo.png": png_bytes(photo())}

    def handle(request: httpx.Request) -> httpx.Response:
        body = served.get(request.url.path)
        return httpx.Response(200, content=body) if body else httpx.Response(404)

    monkeypatch.setattr(inputs, "resolver", lambda host: ["93.184.216.34"])
    monkeypatch.setattr(inputs, "sync_url_transport", httpx.MockTransport(handle))
    monkeypatch.setattr(inputs, "async_url_transport", httpx.MockTransport(handle))
    return served


def test_every_input_form_gives_the_same_image_in_process(
    tiny_model_dir: Path,
    weights_root: Path,
    tmp_path: Path,
    url_server: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JAGUAR_WEIGHTS_DIR", str(weights_root))  # the local adapter store
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(photo()))
    options: dict[str, Any] = {
        "seed": 9,
        "strength": 0.7,
        "loras": ["volume:loras/style.safetensors"],
    }
    with JaguarClient.local(model=str(tiny_model_dir), device="cpu") as client:
        outputs = {
            kind: client.generate("a cat", image=value, **options).image.data
            for kind, value in {
                "bytes": png_bytes(photo()),
                "path": path,
                "pil": photo(),
                "url": f"{PUBLIC}/photo.png",
            }.items()
        }
        plain = client.generate("a cat", image=path, seed=9, strength=0.7).image.data
        info = client.info()
    assert len(set(outputs.values())) == 1, outputs.keys()
    assert plain not in outputs.values()  # the adapter changed it
    assert [item["source"] for item in info.extra["lora"]["cached"]] == [
        "volume:loras/style.safetensors"
    ]


def test_the_async_client_fetches_urls_and_sends_bytes(url_server: dict[str, bytes]) -> None:
    engine = FakeEngine()
    server = serve_engine(engine, api_key=API_KEY)

    async def go() -> Any:
        async with AsyncJaguarClient(base_url=server.url, api_key=API_KEY) as client:
            result = await client.generate("a cat", image=f"{PUBLIC}/photo.png", strength=0.4)
            job = await client.submit("a cat", image=f"{PUBLIC}/photo.png", mask=photo())
            await job.wait(30)
            with pytest.raises(InvalidRequestError) as refused:
                await client.generate("a cat", image="https://10.0.0.1/photo.png")
            return result, refused.value

    try:
        result, refused = asyncio.run(go())
    finally:
        server.stop()
    assert isinstance(result, GenerationResult)
    assert engine.requests[0].image == url_server["/photo.png"]  # the server got the bytes
    assert engine.requests[0].strength == 0.4
    assert engine.requests[1].mask == png_bytes(photo())
    assert refused.field == "image" and "private" in refused.message
    assert len(engine.requests) == 2  # the refused URL never reached the server


def test_generate_many_fetches_each_items_url_and_keeps_a_bad_one_in_place(
    url_server: dict[str, bytes],
) -> None:
    engine = FakeEngine()
    server = serve_engine(engine, api_key=API_KEY)
    try:
        with JaguarClient(base_url=server.url, api_key=API_KEY) as client:
            outcomes = client.generate_many(
                [
                    {"prompt": "one", "image": f"{PUBLIC}/photo.png"},
                    {"prompt": "two", "image": f"{PUBLIC}/missing.png"},
                    "three",
                ],
                seed=1,
            )
    finally:
        server.stop()
    assert isinstance(outcomes[0], GenerationResult) and isinstance(outcomes[2], GenerationResult)
    assert isinstance(outcomes[1], InvalidRequestError) and outcomes[1].field == "image"
    assert "HTTP 404" in outcomes[1].message
    assert sorted(r.prompt for r in engine.requests) == ["one", "three"]


def test_cli_generate_with_an_image_a_mask_and_an_adapter(
    lora_engine: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve_engine(lora_engine, api_key=API_KEY)
    image, mask = tmp_path / "in.jpg", tmp_path / "mask.png"
    photo().save(image, format="JPEG")
    mask_image = Image.new("L", (96, 64), 0)
    mask_image.paste(255, (0, 0, 48, 64))
    mask_image.save(mask)
    out = tmp_path / "out.png"
    try:
        code = main(
            ["generate", "a cat", "--image", str(image), "--mask", str(mask), "--strength", "0.6",
             "--lora", f"{LORA_REPO}:0.8", "--seed", "4", "-o", str(out), "--url", server.url,
             "--token", API_KEY],
        )  # fmt: skip
        printed = capsys.readouterr()
        assert code == 0, printed.err
        assert Image.open(out).size == (96, 64)
        assert main(["info", "--url", server.url, "--token", API_KEY]) == 0
        info = capsys.readouterr().out
        assert f"lora adapters: eager, 1 cached (at most 8): {LORA_REPO}" in info
        code = main(["generate", "a cat", "--mask", str(mask), "--url", server.url])
        assert code == 2 and "mask: needs an image" in capsys.readouterr().err
        code = main(
            ["generate", "a cat", "--image", str(tmp_path / "nope.png"), "--url", server.url]
        )
        assert code == 2 and "image: cannot read" in capsys.readouterr().err
    finally:
        server.stop()
    request = lora_engine.info().extra["lora"]["cached"][0]
    assert request["uses"] == 1
