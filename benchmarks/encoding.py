"""Image encoding cost at 1024x1024: every output format and setting vs the engine's default.

Baseline: the engine's default encoder, ``jaguar_sdk.engine.encode_image(img, "jpeg", 90)``.
Subjects: Pillow encodes of the same image (PNG level 6 = Pillow's default, PNG level 1, JPEG
q90/q95, WebP q90 method 0 and 4) and the engine's own PNG and WebP paths. All variants run
interleaved on one photo-like synthetic image (smooth gradients, soft blobs, mild grain; a random-
weight pipeline output is noise, which no real image looks like). Goal: default encode <= 25 ms.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from ._common import goal, interleave, new_result, noise_note, row

NAME = "encoding"
TITLE = "encode one image (time and size per format)"
GOAL_MS = 25.0


def synthetic_image(size: int = 1024, seed: int = 0) -> Image.Image:
    """A deterministic photo-like RGB image: gradients + 25 soft blobs + Gaussian grain (σ=4).

    Args:
        size: Width and height in pixels.
        seed: Seed of every random choice.

    Returns:
        The image.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
        channels.append(110 + 70 * np.sin(2 * np.pi * (fx * x + fy * y) + phase))
    img = np.stack(channels, axis=-1)
    for _ in range(25):
        cx, cy = rng.uniform(0, 1, size=2)
        radius = rng.uniform(0.03, 0.2)
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        weight = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))[..., None]
        img = img * (1 - 0.8 * weight) + colour * 0.8 * weight
    img += rng.normal(0, 4.0, size=img.shape).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _reference_encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    """Stand-in for the engine's encoder while it is not importable (same documented defaults)."""
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", compress_level=1)
    elif fmt == "webp":
        image.save(buffer, format="WEBP", quality=quality, method=0)
    else:
        image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _engine_encoder() -> tuple[Callable[[Image.Image, str, int], bytes], str | None]:
    try:
        from jaguar_sdk.engine import encode_image
    except Exception as exc:  # the engine is optional here; fall back and say so
        note = (
            f"jaguar_sdk.engine.encode_image not importable ({type(exc).__name__}: {exc}); "
            "the 'engine' rows used a Pillow stand-in (JPEG q90, PNG level 1, WebP method 0)"
        )
        return _reference_encode, note
    return encode_image, None


def _pil(image: Image.Image, **kwargs: Any) -> Callable[[], bytes]:
    def encode() -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, **kwargs)
        return buffer.getvalue()

    return encode


def run(quick: bool = False, *, size: int = 1024, repeats: int | None = None) -> dict[str, Any]:
    """Time every format and setting against the engine's default encode.

    Args:
        quick: Fewer repetitions.
        size: Image side in pixels (1024 for the real benchmark; tests use less).
        repeats: Measured rounds; defaults to 5 with ``quick``, else 15.

    Returns:
        The result record (times in ms, ``bytes`` per variant, ratio vs the default).
    """
    started = time.perf_counter()
    result = new_result(
        NAME,
        f"{TITLE}, {size}x{size} synthetic photo-like image",
        baseline='engine default encode_image(img, "jpeg", 90)',
        unit="ms",
    )
    image = synthetic_image(size)
    encode, note = _engine_encoder()
    if note:
        result["notes"].append(note)

    def engine(fmt: str, quality: int = 90) -> Callable[[], bytes]:
        return lambda: encode(image, fmt, quality)

    encoders: dict[str, Callable[[], bytes]] = {
        "engine default (jpeg q90)": engine("jpeg", 90),
        "PNG level 6 (Pillow default)": _pil(image, format="PNG"),
        "PNG level 1": _pil(image, format="PNG", compress_level=1),
        "JPEG q90": _pil(image, format="JPEG", quality=90),
        "JPEG q95": _pil(image, format="JPEG", quality=95),
        "WebP q90 method 0": _pil(image, format="WEBP", quality=90, method=0),
        "WebP q90 method 4": _pil(image, format="WEBP", quality=90, method=4),
        'engine "png"': engine("png"),
        'engine "webp" q90': engine("webp", 90),
    }
    sizes = {label: len(fn()) for label, fn in encoders.items()}

    def timed(fn: Callable[[], bytes]) -> Callable[[], float]:
        def call() -> float:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0

        return call

    n = repeats if repeats is not None else (5 if quick else 15)
    samples = interleave({k: timed(v) for k, v in encoders.items()}, n, warmup=1)
    base = samples["engine default (jpeg q90)"]
    raw = size * size * 3
    for label, values in samples.items():
        result["rows"].append(
            row(
                label,
                values,
                base,
                scale=1000.0,
                bytes=sizes[label],
                compression=round(raw / sizes[label], 1),
            )
        )
    default_ms = result["rows"][0]["median"]
    result["goals"].append(
        goal(
            f"default encode (jpeg q90) at {size}x{size}, ms",
            default_ms,
            GOAL_MS,
            at_most=True,
        )
    )
    result["notes"].append(
        "ratio = variant time / default time in the same round; > 1 is slower than the default"
    )
    if quick and repeats is None:
        result["notes"].append(noise_note(5, 15, "rounds"))
    result["elapsed_s"] = time.perf_counter() - started
    return result
