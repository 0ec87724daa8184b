"""The wire contract: bounds, messages naming the field and range, plain/JSON round trips."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from pydantic import ValidationError

from jaguar_sdk import (
    GeneratedImage,
    GenerateRequest,
    GenerationResult,
    IncompatibleVersionError,
    InvalidRequestError,
    ModelRef,
    Timings,
    validate_request,
)
from jaguar_sdk import _constants as C
from jaguar_sdk._request import MAX_PROMPT_CHARS, allowed_range
from jaguar_sdk._results import check_schema_version

BAD_INPUTS = [
    ({"prompt": ""}, "prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt"),
    ({"prompt": "a", "width": 1000}, "width"),
    ({"prompt": "a", "width": 48}, "width"),
    ({"prompt": "a", "height": 4096}, "height"),
    ({"prompt": "a", "steps": 0}, "steps"),
    ({"prompt": "a", "steps": 51}, "steps"),
    ({"prompt": "a", "steps": "4"}, "steps"),
    ({"prompt": "a", "steps": True}, "steps"),
    ({"prompt": "a", "guidance_scale": float("nan")}, "guidance_scale"),
    ({"prompt": "a", "guidance_scale": float("inf")}, "guidance_scale"),
    ({"prompt": "a", "guidance_scale": -0.5}, "guidance_scale"),
    ({"prompt": "a", "seed": -1}, "seed"),
    ({"prompt": "a", "seed": 2**32}, "seed"),
    ({"prompt": "a", "seed": 1.5}, "seed"),
    ({"prompt": "a", "num_images": 0}, "num_images"),
    ({"prompt": "a", "num_images": 5}, "num_images"),
    ({"prompt": "a", "output_format": "gif"}, "output_format"),
    ({"prompt": "a", "quality": 0}, "quality"),
    ({"prompt": "a", "quality": 101}, "quality"),
    ({"prompt": "a", "max_sequence_length": 600}, "max_sequence_length"),
    ({"prompt": "a", "stpes": 4}, "stpes"),
    ({"width": 512}, "prompt"),
]


@pytest.mark.parametrize(("data", "field"), BAD_INPUTS)
def test_every_bound_names_the_field_and_range(data, field):
    with pytest.raises(InvalidRequestError) as info:
        validate_request(data)
    err = info.value
    assert err.field == field
    assert str(err).startswith(f"{field}:")
    rule = allowed_range(field)
    if rule is not None:
        assert rule in err.message
    else:
        assert "unknown field" in err.message
    assert err.status_code is None  # raised on the client: no HTTP status


def test_defaults_follow_the_model_card():
    req = GenerateRequest(prompt="a jaguar")
    assert (req.width, req.height, req.steps) == (1024, 1024, 4)
    assert req.guidance_scale == 3.5
    assert req.max_sequence_length == 256
    assert req.seed is None and req.num_images == 1
    assert req.output_format == "jpeg"


def test_normalisation():
    req = validate_request({"prompt": "  cat  ", "output_format": "JPG", "seed": 2**32 - 1})
    assert req.prompt == "cat"
    assert req.output_format == "jpeg"
    assert req.seed == 2**32 - 1


def test_non_object_body_is_refused():
    with pytest.raises(InvalidRequestError, match="JSON object"):
        validate_request(["prompt"])  # type: ignore[arg-type]


def _result(fmt: str = "png") -> GenerationResult:
    buf = io.BytesIO()
    Image.new("RGB", (32, 16), (200, 10, 10)).save(buf, format=fmt.upper())
    image = GeneratedImage(data=buf.getvalue(), format=fmt, width=32, height=16)  # type: ignore[arg-type]
    return GenerationResult(
        request_id="req_1",
        prompt="red",
        seed=3,
        images=[image],
        timings=Timings(inference_s=0.1, total_s=0.2),
        model=ModelRef(id="tiny", revision="abc", source="local"),
    )


def test_json_round_trip_uses_base64_and_plain_keeps_bytes():
    result = _result()
    text = result.model_dump_json()
    assert isinstance(json.loads(text)["images"][0]["data"], str)
    assert GenerationResult.model_validate_json(text) == result
    plain = result.model_dump()
    assert isinstance(plain["images"][0]["data"], bytes)
    assert GenerationResult.model_validate(plain) == result


def test_schema_version_mismatch_is_a_clear_error():
    with pytest.raises(IncompatibleVersionError, match="v99"):
        check_schema_version({"schema_version": 99})
    check_schema_version({"schema_version": C.SCHEMA_VERSION})


def test_image_save_to_folder_file_and_conversion(tmp_path):
    result = _result("png")
    img = result.image
    written = img.save(tmp_path / "out")
    assert written.suffix == ".png" and written.read_bytes() == img.data
    as_jpeg = img.save(tmp_path / "x.jpg")
    with Image.open(as_jpeg) as opened:
        assert opened.format == "JPEG" and opened.size == (32, 16)
    assert not list(tmp_path.rglob("*.partial"))
    with pytest.raises(ValueError, match=r"\.gif"):
        img.save(tmp_path / "x.gif")
    paths = result.save(tmp_path / "single.png")
    assert paths[0].name == "single.png"


def test_jupyter_display():
    result = _result("jpeg")
    bundle = result.image._repr_mimebundle_()
    assert bundle["image/jpeg"] == result.image.data
    html = result._repr_html_()
    assert "data:image/jpeg;base64," in html and "seed 3" in html and "red" in html
    assert result.image.to_pil().size == (32, 16)


def test_json_uses_the_standard_base64_alphabet():
    data = bytes(range(256)) * 4  # has bytes that encode to '+' and '/' in standard base64
    image = GeneratedImage(data=data, format="png", width=1, height=1)
    text = json.loads(image.model_dump_json())["data"]
    import base64

    assert text == base64.b64encode(data).decode()
    assert GeneratedImage.model_validate_json(image.model_dump_json()).data == data
    urlsafe = base64.urlsafe_b64encode(data).decode()
    assert GeneratedImage.model_validate({**image.model_dump(), "data": urlsafe}).data == data
    unpadded = base64.b64encode(b"ab").decode().rstrip("=")
    assert GeneratedImage.model_validate({**image.model_dump(), "data": unpadded}).data == b"ab"
    for bad in ("abc!", "YW Jj", "YQ==YQ==", "é"):
        with pytest.raises(ValidationError, match="base64"):
            GeneratedImage.model_validate({**image.model_dump(), "data": bad})
