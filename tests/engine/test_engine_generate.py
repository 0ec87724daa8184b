"""Engine.generate on the tiny model: images, seeds, formats, progress, timings, the lock."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("diffusers")

from jaguar_sdk import GenerateRequest, ProgressEvent
from jaguar_sdk.engine import Engine

PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def request(**fields: Any) -> GenerateRequest:
    base: dict[str, Any] = {"prompt": "a tiny jaguar", "width": 64, "height": 64, "steps": 2}
    return GenerateRequest(**{**base, **fields})


def test_images_have_requested_count_size_and_format(tiny_engine: Engine) -> None:
    result = tiny_engine.generate(
        request(width=128, height=64, num_images=2, seed=3), request_id="req_a"
    )
    assert result.request_id == "req_a" and result.seed == 3
    assert result.prompt == "a tiny jaguar"
    assert result.model == tiny_engine.model_ref
    assert len(result.images) == 2
    for image in result.images:
        assert (image.width, image.height, image.format) == (128, 64, "jpeg")
        decoded = Image.open(io.BytesIO(image.data))
        assert decoded.format == "JPEG" and decoded.size == (128, 64) and decoded.mode == "RGB"
    assert result.images[0].data != result.images[1].data  # two different noise draws


def test_same_seed_same_bytes_other_seed_other_bytes(tiny_engine: Engine) -> None:
    first = tiny_engine.generate(request(seed=7, output_format="png"), request_id="r1")
    again = tiny_engine.generate(request(seed=7, output_format="png"), request_id="r2")
    other = tiny_engine.generate(request(seed=8, output_format="png"), request_id="r3")
    assert first.images[0].data == again.images[0].data
    assert first.images[0].data != other.images[0].data


def test_random_seed_is_reported_and_reproducible(tiny_engine: Engine) -> None:
    result = tiny_engine.generate(request(seed=None), request_id="r")
    assert 0 <= result.seed < 2**32
    replay = tiny_engine.generate(request(seed=result.seed), request_id="r")
    assert replay.images[0].data == result.images[0].data


def test_pixels_match_the_stock_pipeline(tiny_engine: Engine) -> None:
    """Our own decode gives the same pixels as diffusers' output_type="pil" path."""
    import numpy as np
    import torch

    result = tiny_engine.generate(request(seed=5, output_format="png"), request_id="r")
    ours = np.asarray(Image.open(io.BytesIO(result.images[0].data)).convert("RGB"))
    stock = tiny_engine.pipeline(
        prompt="a tiny jaguar",
        width=64,
        height=64,
        num_inference_steps=2,
        guidance_scale=3.5,
        max_sequence_length=256,
        generator=torch.Generator("cpu").manual_seed(5),
    ).images[0]
    assert np.array_equal(ours, np.asarray(stock))


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_every_output_format(tiny_engine: Engine, fmt: str) -> None:
    result = tiny_engine.generate(request(output_format=fmt, seed=1), request_id="r")
    image = result.images[0]
    assert image.format == fmt
    decoded = Image.open(io.BytesIO(image.data))
    assert decoded.format == PIL_FORMAT[fmt] and decoded.size == (64, 64)


def test_quality_changes_jpeg_size(tiny_engine: Engine) -> None:
    low = tiny_engine.generate(request(seed=1, quality=10, width=128), request_id="r")
    high = tiny_engine.generate(request(seed=1, quality=95, width=128), request_id="r")
    assert len(low.images[0].data) < len(high.images[0].data)


def test_progress_events_in_order(tiny_engine: Engine) -> None:
    events: list[ProgressEvent] = []
    tiny_engine.generate(request(steps=3, seed=1), request_id="req_p", on_progress=events.append)
    stages = [e.stage for e in events]
    # "queued" is the job store's event, not the engine's (a job reports it once)
    assert stages == ["running", "running", "running", "decoding", "encoding", "done"]
    assert [e.step for e in events if e.stage == "running"] == [1, 2, 3]
    assert all(e.total_steps == 3 and e.request_id == "req_p" for e in events)
    assert events[-1].fraction == 1.0


def test_timings_are_consistent(tiny_engine: Engine) -> None:
    t = tiny_engine.generate(request(seed=1), request_id="r").timings
    parts = (t.queue_s, t.inference_s, t.decode_s, t.encode_s)
    assert all(value >= 0 for value in (*parts, t.total_s)) and t.load_s == 0
    assert t.inference_s > 0 and t.decode_s > 0
    assert t.total_s >= t.inference_s
    assert t.total_s >= sum(parts) - 1e-6


class _CountingPipeline:
    """Delegates to a real pipeline; records how many calls are inside it at once."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe
        self._guard = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._guard:
            self.active += 1
            self.calls += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(0.2)  # make an overlap certain if the engine did not serialise
            return self._pipe(*args, **kwargs)
        finally:
            with self._guard:
                self.active -= 1


def test_concurrent_requests_are_serialised(tiny_engine: Engine) -> None:
    counting = _CountingPipeline(tiny_engine.pipeline)
    engine = Engine(counting, model_ref=tiny_engine.model_ref, dtype=tiny_engine.dtype)
    start = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        start.wait()
        try:
            results.append(engine.generate(request(seed=seed), request_id=f"r{seed}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(results) == 2
    assert counting.calls == 2 and counting.max_active == 1
    assert max(r.timings.queue_s for r in results) >= 0.15  # the second waited for the first
    assert sorted(r.seed for r in results) == [1, 2]
