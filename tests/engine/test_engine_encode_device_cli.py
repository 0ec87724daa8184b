"""encode_image, device/dtype selection and ``jaguar model tiny``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from jaguar_sdk import ConfigurationError, InvalidRequestError
from jaguar_sdk.engine import encode_image


def _picture() -> Image.Image:
    image = Image.linear_gradient("L").resize((96, 64)).convert("RGB")
    return image


@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_encode_formats(fmt: str, pil: str) -> None:
    data = encode_image(_picture(), fmt, 90)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == pil and decoded.size == (96, 64)


def test_png_is_lossless() -> None:
    picture = _picture()
    decoded = Image.open(io.BytesIO(encode_image(picture, "png", 90))).convert("RGB")
    assert decoded.tobytes() == picture.tobytes()


def test_quality_matters_for_lossy() -> None:
    noisy = Image.effect_noise((128, 128), 60).convert("RGB")
    for fmt in ("jpeg", "webp"):
        assert len(encode_image(noisy, fmt, 10)) < len(encode_image(noisy, fmt, 95))


def test_unknown_format() -> None:
    with pytest.raises(InvalidRequestError, match="output_format"):
        encode_image(_picture(), "gif", 90)


def test_device_and_dtype_selection() -> None:
    torch = pytest.importorskip("torch")
    from jaguar_sdk.engine import select_device, select_dtype

    assert select_device("cpu") == "cpu"
    assert select_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_dtype("cpu") is torch.float32
    assert select_dtype("cuda") is torch.bfloat16
    assert select_dtype("cpu", "bf16") is torch.bfloat16
    with pytest.raises(ConfigurationError, match="unknown dtype"):
        select_dtype("cpu", "int3")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigurationError, match="CUDA is not available"):
            select_device("cuda")


def test_importing_jaguar_sdk_engine_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, jaguar_sdk, jaguar_sdk.engine;"
        "from jaguar_sdk.engine import encode_image, resolve_model, TINY_MODEL_NAME;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_cli_model_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("diffusers")
    from jaguar_sdk.cli import main

    target = tmp_path / "tiny-out"
    assert main(["model", "tiny", str(target)]) == 0
    assert (target / "model_index.json").is_file()
    out = capsys.readouterr().out
    assert str(target) in out and "KiB" in out


def test_cli_model_without_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    from jaguar_sdk.cli import main

    assert main(["model"]) == 2
    assert "tiny" in capsys.readouterr().out
