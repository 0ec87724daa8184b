"""Helpers shared by the example tests."""

from __future__ import annotations

import io
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def assert_images(paths: list[Path], *, fmt: str, size: tuple[int, int]) -> None:
    """Every path is a real image file of this format and size."""
    from PIL import Image

    assert paths, "no image was written"
    for path in paths:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert (image.format, image.size) == (fmt, size), path
