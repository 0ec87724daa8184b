"""What the engine runs of a request follows the model's own config, and the VAE decodes one
image at a time (bounded memory for 4 x 2048x2048).

The tiny model is built like Shuttle Jaguar: a timestep-distilled transformer without a guidance
embedding (``guidance_embeds=False``), so ``guidance_scale`` is ignored and the T5 prompt is
capped at 256 tokens (``jaguar_sdk/engine/_limits.py`` cites why).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from jaguar_sdk import GenerateRequest
from jaguar_sdk.engine import Engine
from jaguar_sdk.engine._limits import DISTILLED_MAX_SEQUENCE_LENGTH, warmup_request


def request(**kw: Any) -> GenerateRequest:
    return GenerateRequest(prompt="a tiny jaguar", width=64, height=64, steps=2, **kw)


def test_info_says_what_is_ignored_and_capped(tiny_engine: Engine) -> None:
    limits = tiny_engine.info().extra["model_limits"]
    assert limits["guidance_scale"].startswith("ignored: the model is timestep-distilled")
    assert limits["max_sequence_length"] == DISTILLED_MAX_SEQUENCE_LENGTH == 256
    assert tiny_engine.pipeline.transformer.config.guidance_embeds is False


def test_the_pipeline_runs_with_the_capped_sequence_length(
    tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    pipeline = tiny_engine.pipeline
    real_call = type(pipeline).__call__

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["max_sequence_length"])
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(type(pipeline), "__call__", spy)
    capped = tiny_engine.generate(request(seed=1, max_sequence_length=512), request_id="a")
    short = tiny_engine.generate(request(seed=1, max_sequence_length=64), request_id="b")
    assert seen == [256, 64]
    assert capped.seed == short.seed == 1
    # guidance_scale changes nothing for a model without a guidance embedding
    low = tiny_engine.generate(request(seed=2, guidance_scale=0.0), request_id="c")
    high = tiny_engine.generate(request(seed=2, guidance_scale=12.0), request_id="d")
    assert low.images[0].data == high.images[0].data


def test_the_vae_decodes_one_image_at_a_time(
    tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    vae = tiny_engine.pipeline.vae
    batches: list[int] = []
    real_decode = vae.decode

    def spy(latents: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        batches.append(int(latents.shape[0]))
        return real_decode(latents, *args, **kwargs)

    monkeypatch.setattr(vae, "decode", spy)
    result = tiny_engine.generate(request(seed=6, num_images=4), request_id="r")
    assert batches == [1, 1, 1, 1]
    assert len(result.images) == 4


def test_per_image_decode_gives_the_stock_pixels(tiny_engine: Engine) -> None:
    """Decoding one latent at a time matches the batched decode of ``output_type="pil"`` to
    within one level of rounding (batched and single convolutions sum in different orders)."""
    result = tiny_engine.generate(
        request(seed=5, num_images=2, output_format="png"), request_id="r"
    )
    stock = tiny_engine.pipeline(
        prompt="a tiny jaguar",
        width=64,
        height=64,
        num_inference_steps=2,
        num_images_per_prompt=2,
        max_sequence_length=256,
        generator=torch.Generator("cpu").manual_seed(5),
    ).images
    for ours, theirs in zip(result.images, stock, strict=True):
        pixels = np.asarray(Image.open(io.BytesIO(ours.data)).convert("RGB")).astype(int)
        diff = np.abs(pixels - np.asarray(theirs).astype(int))
        assert diff.max() <= 1
        assert (diff == 0).mean() > 0.99


def test_the_warm_up_runs_at_the_serving_shape_when_asked() -> None:
    serving = warmup_request(serving_shape=True)
    assert (serving.width, serving.height, serving.steps) == (1024, 1024, 4)
    cheap = warmup_request(serving_shape=False)
    assert (cheap.width, cheap.height, cheap.steps) == (64, 64, 1)
