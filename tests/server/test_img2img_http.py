"""Image-to-image, inpainting and LoRA adapters over HTTP, on a real server around the tiny
engine: JSON with base64 images, multipart/form-data with files, jobs, the OpenAI-compatible
``/v1/images/edits`` (with the real ``openai`` package), and every bad input a 4xx naming its
field. The server never fetches a URL; only the routes that take images accept a larger body."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from jaguar_sdk import (
    GenerateRequest,
    GenerationResult,
    InvalidRequestError,
    JaguarClient,
    ModelInfo,
)
from jaguar_sdk._constants import MAX_REQUEST_BODY_BYTES
from jaguar_sdk._inputs import MAX_INPUT_IMAGE_BYTES
from tests.core.test_inputs import encoded, png_header_only
from tests.support import LiveServer, serve_engine
from tests.support.loras import LORA_REPO

TOKEN = "sk-img2img-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Accept": "application/json"}


def rgb(size: tuple[int, int] = (80, 64), colour: Any = (30, 140, 200)) -> bytes:
    return encoded(size, "PNG") if colour is None else _solid(size, colour)


def _solid(size: tuple[int, int], colour: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def half_mask(size: tuple[int, int] = (80, 64)) -> bytes:
    mask = Image.new("L", size, 0)
    mask.paste(255, (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def live(lora_engine: Any) -> Iterator[LiveServer]:
    server = serve_engine(lora_engine, api_key=TOKEN)
    yield server
    server.stop()


def result_of(answer: httpx.Response) -> GenerationResult:
    assert answer.status_code == 200, answer.text
    return GenerationResult.model_validate_json(answer.content)


def test_json_and_multipart_give_the_in_process_bytes(live: LiveServer, lora_engine: Any) -> None:
    fields = {"prompt": "a cat", "seed": 5, "strength": 0.7, "loras": [f"{LORA_REPO}:0.6"]}
    local = lora_engine.generate(
        GenerateRequest.model_validate({**fields, "image": rgb(), "mask": half_mask()}),
        request_id="local",
    )
    body = {
        **fields,
        "image": base64.b64encode(rgb()).decode(),
        "mask": base64.b64encode(half_mask()).decode(),
    }
    over_json = result_of(httpx.post(f"{live.url}/v1/generate", json=body, headers=JSON))
    over_form = result_of(
        httpx.post(
            f"{live.url}/v1/generate",
            data={"prompt": "a cat", "seed": "5", "strength": "0.7", "loras": f"{LORA_REPO}:0.6"},
            files={"image": ("in.png", rgb(), "image/png"), "mask": ("m.png", half_mask())},
            headers=JSON,
        )
    )
    assert over_json.images[0].data == over_form.images[0].data == local.images[0].data
    assert (over_json.images[0].width, over_json.images[0].height) == (80, 64)


def test_no_adapter_leaks_into_the_next_request_over_http(live: LiveServer) -> None:
    body = {"prompt": "a cat", "seed": 21, "width": 64, "height": 64}
    first = result_of(httpx.post(f"{live.url}/v1/generate", json=body, headers=JSON))
    styled = result_of(
        httpx.post(f"{live.url}/v1/generate", json={**body, "loras": [LORA_REPO]}, headers=JSON)
    )
    last = result_of(httpx.post(f"{live.url}/v1/generate", json=body, headers=JSON))
    assert first.images[0].data == last.images[0].data != styled.images[0].data


def test_one_image_comes_back_raw_when_asked(live: LiveServer) -> None:
    answer = httpx.post(
        f"{live.url}/v1/generate",
        data={"prompt": "a cat", "seed": "5", "output_format": "png"},
        files={"image": ("in.png", rgb())},
        headers={**AUTH, "Accept": "image/png"},
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).size == (80, 64)


def test_jobs_take_images_and_adapters_too(live: LiveServer) -> None:
    with JaguarClient(base_url=live.url, api_key=TOKEN, max_retries=0) as client:
        job = client.submit("a cat", image=rgb(), strength=0.5, seed=3, loras=[f"{LORA_REPO}"])
        job.wait(60)
        from_job = job.result()
        direct = client.generate("a cat", image=rgb(), strength=0.5, seed=3, loras=[LORA_REPO])
        many = client.generate_many(
            [{"prompt": "a cat", "image": rgb()}, {"prompt": "a dog", "mask": half_mask()}],
            seed=3,
            strength=0.5,
        )
        info = client.info()
    assert from_job.images[0].data == direct.images[0].data
    assert isinstance(many[0], GenerationResult) and many[0].images[0].width == 80
    assert getattr(many[1], "field", None) == "mask"  # its own error, in place
    assert isinstance(info, ModelInfo)
    assert [item["source"] for item in info.extra["lora"]["cached"]] == [LORA_REPO]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"image": base64.b64encode(b"not an image").decode()}, "image", "not a PNG"),
        ({"image": base64.b64encode(rgb()[:-40]).decode()}, "image", "truncated"),
        ({"image": base64.b64encode(png_header_only(20000, 20000)).decode()}, "image", "bomb"),
        ({"image": "https://images.example.com/cat.png"}, "image", "never by a server"),
        ({"image": "file:///etc/passwd"}, "image", "never by a server"),
        (
            {
                "image": base64.b64encode(rgb()).decode(),
                "mask": base64.b64encode(rgb((8, 8))).decode(),
            },
            "mask",
            "must match",
        ),
        (
            {"image": base64.b64encode(rgb()).decode(), "strength": 1.5},
            "strength",
            "from 0.01 to 1",
        ),
        ({"strength": 0.5}, "strength", "with an image"),
        ({"loras": ["volume:loras/misfit.safetensors"]}, "loras", "does not fit"),
        ({"loras": ["acme/no-such-repo"]}, "loras", "not found"),
        ({"loras": [{"path": "../../etc/passwd.safetensors"}]}, "loras", "relative path"),
    ],
)
def test_bad_inputs_are_4xx_naming_the_field(
    live: LiveServer, fields: dict[str, Any], field: str, words: str
) -> None:
    body = {"prompt": "a cat", "seed": 1, **fields}
    for route in ("/v1/generate", "/v1/jobs"):
        answer = httpx.post(f"{live.url}{route}", json=body, headers=JSON)
        if route == "/v1/jobs" and field == "loras" and answer.status_code == 202:
            continue  # adapters are resolved when the job runs: its error is the job's
        assert answer.status_code == 422, (route, answer.text)
        error = answer.json()["error"]
        assert error["field"] == field and words in error["message"], error
    assert httpx.get(f"{live.url}/v1/health").json()["ready"]


def test_a_failed_adapter_fails_its_job_naming_loras(live: LiveServer) -> None:
    with JaguarClient(base_url=live.url, api_key=TOKEN, max_retries=0) as client:
        job = client.submit("a cat", loras=["volume:loras/misfit.safetensors"])
        status = job.wait(60)
        assert status.state == "failed" and status.failure is not None
        assert status.failure["field"] == "loras"
        with pytest.raises(InvalidRequestError) as info:
            job.result()
        assert info.value.field == "loras"


def test_multipart_fields_are_typed_and_checked(live: LiveServer) -> None:
    def post(data: dict[str, Any], files: dict[str, Any] | None = None) -> httpx.Response:
        files = files if files is not None else {"image": ("in.png", rgb())}
        return httpx.post(f"{live.url}/v1/generate", data=data, files=files, headers=JSON)

    assert post({"prompt": "a cat", "seed": "x"}).json()["error"]["field"] == "seed"
    assert post({"prompt": "a cat", "width": "64.5"}).json()["error"]["field"] == "width"
    assert post({"prompt": "a cat", "colour": "red"}).json()["error"]["field"] == "colour"
    truncated = {"image": ("in.png", rgb()[:-40])}
    assert post({"prompt": "a cat"}, truncated).json()["error"]["field"] == "image"
    two = [
        ("loras", "volume:loras/style.safetensors:0.5"),
        ("loras", '{"repo": "acme/tiny-style"}'),
    ]
    answer = httpx.post(
        f"{live.url}/v1/generate",
        data={"prompt": "a cat", "seed": "2"},
        files=[*[(k, (None, v)) for k, v in two], ("image", ("in.png", rgb()))],
        headers=JSON,
    )
    assert answer.status_code == 200, answer.text  # repeated loras fields: a list


def test_only_the_image_routes_take_a_larger_body(live: LiveServer) -> None:
    big = base64.b64encode(b"\x89PNG" + bytes(MAX_INPUT_IMAGE_BYTES)).decode()
    answer = httpx.post(
        f"{live.url}/v1/generate", json={"prompt": "a cat", "image": big}, headers=JSON
    )
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "image"
    assert "above the limit" in answer.json()["error"]["message"]
    # no image: the ordinary limit; images: no room for more than two
    text_only = {"prompt": "a cat", "seed": 1, "pad": "x" * MAX_REQUEST_BODY_BYTES}
    answer = httpx.post(f"{live.url}/v1/generate", json=text_only, headers=JSON)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"
    padded = {"prompt": "a cat", "image": base64.b64encode(rgb()).decode()}
    padded["prompt"] = "x" * (MAX_REQUEST_BODY_BYTES + 1)
    answer = httpx.post(f"{live.url}/v1/generate", json=padded, headers=JSON)
    assert answer.status_code == 413, answer.text
    three = {name: big for name in ("image", "mask", "extra")}
    answer = httpx.post(f"{live.url}/v1/generate", json={"prompt": "x", **three}, headers=JSON)
    assert answer.status_code == 413
    answer = httpx.post(
        f"{live.url}/v1/images/generations",
        json={"prompt": "x" * (MAX_REQUEST_BODY_BYTES + 1)},
        headers=AUTH,
    )
    assert answer.status_code == 413  # the OpenAI generations route keeps the small limit


# --- OpenAI edits, with the real openai client -------------------------------------------------
@pytest.fixture
def openai_client(live: LiveServer) -> Any:
    openai = pytest.importorskip("openai", reason="the dev extra (openai) is not installed")
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=TOKEN, max_retries=0)


def test_openai_edit_image_to_image_and_inpainting(openai_client: Any, live: LiveServer) -> None:
    edited = openai_client.images.edit(
        image=("in.png", rgb(), "image/png"),
        prompt="a cat",
        extra_body={"seed": 4, "strength": "0.6"},
    )
    picture = Image.open(io.BytesIO(base64.b64decode(edited.data[0].b64_json)))
    assert picture.format == "PNG" and picture.size == (80, 64)  # size "auto": the image's
    again = openai_client.images.edit(
        image=("in.png", rgb(), "image/png"), prompt="a cat", extra_body={"seed": 4}
    )
    assert again.data[0].b64_json == edited.data[0].b64_json  # strength 0.6 is the default

    # OpenAI's mask: transparent pixels are repainted; as the native white-repaints mask
    alpha = Image.new("RGBA", (80, 64), (0, 0, 0, 255))
    alpha.paste((0, 0, 0, 0), (0, 0, 40, 64))
    buffer = io.BytesIO()
    alpha.save(buffer, format="PNG")
    inpainted = openai_client.images.edit(
        image=("in.png", rgb(), "image/png"),
        mask=("mask.png", buffer.getvalue(), "image/png"),
        prompt="a cat",
        n=2,
        size="64x64",
        output_format="jpeg",
        extra_body={"seed": 4},
    )
    native = httpx.post(
        f"{live.url}/v1/generate",
        json={
            "prompt": "a cat",
            "seed": 4,
            "width": 64,
            "height": 64,
            "num_images": 2,
            "output_format": "jpeg",
            "quality": 90,
            "image": base64.b64encode(rgb()).decode(),
            "mask": base64.b64encode(half_mask()).decode(),
        },
        headers=JSON,
    )
    native_images = [image.data for image in result_of(native).images]
    assert [base64.b64decode(d.b64_json) for d in inpainted.data] == native_images


def test_openai_edit_errors_name_the_param(openai_client: Any) -> None:
    import openai

    cases = [
        ({"image": ("x.png", b"not an image", "image/png")}, "image"),
        ({"image": ("x.png", rgb(), "image/png"), "mask": ("m.png", rgb((8, 8)))}, "mask"),
        ({"image": ("x.png", rgb(), "image/png"), "size": "100x100"}, "size"),
        ({"image": ("x.png", rgb(), "image/png"), "n": 9}, "n"),
        ({"image": ("x.png", rgb(), "image/png"), "response_format": "url"}, "response_format"),
        ({"image": [("a.png", rgb()), ("b.png", rgb())]}, "image"),
    ]
    for kwargs, param in cases:
        with pytest.raises(openai.APIStatusError) as info:
            openai_client.images.edit(prompt="a cat", **kwargs)
        assert info.value.status_code == 422, info.value
        assert info.value.body["param"] == param, info.value.body  # type: ignore[index]
