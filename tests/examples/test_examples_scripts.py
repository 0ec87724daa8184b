"""``examples/quickstart.py`` and ``examples/batch_progress.py`` run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.examples._support import EXAMPLES, assert_images


def run_example(name: str, cwd: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_quickstart_writes_one_jpeg(tmp_path: Path, example_env: dict[str, str]) -> None:
    out = run_example("quickstart.py", tmp_path, example_env, "--size", "128")

    written = sorted((tmp_path / "jaguar-output").rglob("*"))
    assert written == [tmp_path / "jaguar-output" / "quickstart.jpg"]
    assert_images(written, fmt="JPEG", size=(128, 128))
    assert "seed 42" in out
    assert "model tiny from local" in out


def test_batch_progress_saves_the_good_items_and_reports_the_bad_one(
    tmp_path: Path, example_env: dict[str, str]
) -> None:
    out = run_example("batch_progress.py", tmp_path, example_env)

    written = sorted((tmp_path / "jaguar-output" / "batch").iterdir())
    assert [p.name for p in written] == [f"item{i}.jpg" for i in range(4)]
    assert_images(written, fmt="JPEG", size=(256, 256))
    assert "[4] failed: width: must be a multiple of 16" in out


def test_img2img_lora_writes_both_images_and_lists_the_adapter(
    tmp_path: Path, example_env: dict[str, str]
) -> None:
    out = run_example("img2img_lora.py", tmp_path, example_env)

    folder = tmp_path / "jaguar-output" / "img2img"
    written = [folder / "img2img.jpg", folder / "img2img-lora.jpg"]
    assert_images(written, fmt="JPEG", size=(320, 192))  # the starting image's own size
    assert written[0].read_bytes() != written[1].read_bytes()
    assert "the adapter changed the image: True" in out
    assert "cached adapters: volume:loras/tiny-style.safetensors" in out
