"""Image-to-image, inpainting and LoRA through the Modal deployment, run by the real
``deploy.app`` code: the class methods take plain data (image bytes as ``bytes``), the adapter
is downloaded once into the Volume by the GPU container, and the web function takes multipart
bodies and passes plain data on to the GPU class."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

import deploy.app as deploy_app
from jaguar_sdk import GenerationResult, JaguarClient
from jaguar_sdk._transports.modal import ModalTransport
from tests.deploy.fixtures import TOKEN, new_container, payload
from tests.support import LiveServer
from tests.support.loras import LORA_REPO, LORA_SHA
from tests.support.modal_standin import StandInCls

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")


def png(size: tuple[int, int] = (80, 64), colour: Any = (180, 60, 30), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def hub_with_lora(modal_env: dict[str, Any], lora_hub: Path) -> dict[str, Any]:
    """The deployment's Hub stand-in also holds the tiny LoRA repo."""
    hub = Path(modal_env["fetcher"].source_root)
    shutil.copytree(lora_hub / LORA_REPO, hub / LORA_REPO)
    return modal_env


def test_the_class_methods_take_image_bytes_and_download_an_adapter_once(
    hub_with_lora: dict[str, Any],
) -> None:
    model = new_container()
    request = {"image": png(), "mask": png(colour=255, mode="L"), "seed": 2}
    plain = model.generate.local(payload(**request))
    styled = model.generate.local(payload(**request, loras=[{"repo": LORA_REPO, "scale": 0.8}]))
    again = model.generate.local(payload(**request, loras=[{"repo": LORA_REPO, "scale": 0.8}]))
    assert "error" not in styled, styled
    assert styled["images"][0]["data"] == again["images"][0]["data"] != plain["images"][0]["data"]
    assert model.generate.local(payload(**request))["images"] == plain["images"]  # no leak
    fetcher = hub_with_lora["fetcher"]
    lora_fetches = [p for p in (hub_with_lora["volume"] / "adapters").rglob("*.safetensors")]
    assert len(lora_fetches) == 1 and LORA_SHA in str(lora_fetches[0])
    info = model.info.local()
    assert [item["source"] for item in info["extra"]["lora"]["cached"]] == [LORA_REPO]
    assert fetcher.fetches == 2  # the weights step, then the adapter: once
    bad = model.generate.local(payload(image=b"not an image"))
    assert bad["error"]["field"] == "image" and bad["error"]["code"] == "invalid_request"
    path = model.generate.local(payload(image=Path("/etc/hostname")))
    assert path["error"]["field"] == "image"  # a server reads no file for a caller


def test_the_client_over_modal_sends_plain_bytes(standin: StandInCls, hub_with_lora: Any) -> None:
    small = {"seed": 3, "width": 64, "height": 64, "loras": [f"{LORA_REPO}:0.5"]}
    with JaguarClient(transport=ModalTransport()) as client:
        result = client.generate("a cat", image=png(), **small)
        job = client.submit("a cat", image=png(), **small)
        from_job = job.result(60)
        many = client.generate_many([{"prompt": "a cat", "image": png()}], **small)
    assert isinstance(result, GenerationResult) and result.images[0].width == 64
    assert from_job.images[0].data == result.images[0].data
    assert isinstance(many[0], GenerationResult) and many[0].images == result.images
    assert ("spawn", "generate") in standin.invocations


def test_the_web_function_takes_multipart_and_passes_plain_data(
    standin: StandInCls, hub_with_lora: Any
) -> None:
    with LiveServer(deploy_app.web.local()) as web:
        answer = httpx.post(
            f"{web.url}/v1/generate",
            data={"prompt": "a cat", "seed": "2", "loras": f"{LORA_REPO}:0.8"},
            files={"image": ("in.png", png())},
            headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
            timeout=60,
        )
        edited = httpx.post(
            f"{web.url}/v1/images/edits",
            data={"prompt": "a cat", "seed": "2"},
            files={"image": ("in.png", png())},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )
    assert answer.status_code == 200, answer.text
    result = GenerationResult.model_validate_json(answer.content)
    assert (result.images[0].width, result.images[0].height) == (80, 64)  # the image's own
    assert edited.status_code == 200, edited.text
    assert any(name == "generate" for _, name in standin.invocations)
