"""Image-to-image and inpainting on the tiny model: the real diffusers pipelines, built with
``from_pipe`` over the loaded one, sharing its weights (no second copy), deterministic."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from jaguar_sdk import GenerateRequest, ProgressEvent
from jaguar_sdk.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("img2img_probe.py")


def png(size: tuple[int, int], colour: Any = (200, 80, 20), mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, colour)
    if mode == "L":  # left half white: repaint it
        image.paste(255, (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def run(engine: Engine, **fields: Any) -> Any:
    request = GenerateRequest.model_validate({"prompt": "a cat", "seed": 7, **fields})
    return engine.generate(request, request_id="req_i2i")


def test_image_to_image_is_deterministic_and_keeps_the_image_size(tiny_engine: Engine) -> None:
    image = png((100, 60))
    first = run(tiny_engine, image=image, strength=0.6)
    again = run(tiny_engine, image=image, strength=0.6)
    assert first.images[0].data == again.images[0].data  # same seed + same input = same bytes
    assert (first.images[0].width, first.images[0].height) == (96, 64)  # 100x60 to /16
    stronger = run(tiny_engine, image=image, strength=1.0)
    other_input = run(tiny_engine, image=png((100, 60), (10, 200, 90)), strength=0.6)
    text = run(tiny_engine, width=96, height=64)
    outputs = {r.images[0].data for r in (first, stronger, other_input, text)}
    assert len(outputs) == 4  # strength, the input and the mode each change the result
    sized = run(tiny_engine, image=image, width=128, height=64)
    assert (sized.images[0].width, sized.images[0].height) == (128, 64)


def test_inpainting_is_deterministic_and_differs_from_image_to_image(tiny_engine: Engine) -> None:
    image, mask = png((64, 64)), png((64, 64), 0, "L")
    first = run(tiny_engine, image=image, mask=mask, num_images=2)
    again = run(tiny_engine, image=image, mask=mask, num_images=2)
    assert [i.data for i in first.images] == [i.data for i in again.images]
    assert len(first.images) == 2 and first.images[0].data != first.images[1].data
    assert first.images[0].data != run(tiny_engine, image=image).images[0].data


def test_progress_counts_the_steps_image_to_image_runs(tiny_engine: Engine) -> None:
    events: list[ProgressEvent] = []
    request = GenerateRequest(prompt="a cat", image=png((64, 64)), steps=4, strength=0.5)
    tiny_engine.generate(request, request_id="req_p", on_progress=events.append)
    running = [e for e in events if e.stage == "running"]
    # diffusers runs int(steps * strength) of them: t_start = int(steps - steps * strength)
    assert [(e.step, e.total_steps) for e in running] == [(1, 2), (2, 2)]
    assert [e.stage for e in events[-3:]] == ["decoding", "encoding", "done"]


def test_the_derived_pipelines_share_every_weight_in_bfloat16(tiny_model_dir: Path) -> None:
    engine = Engine.load(tiny_model_dir, device="cpu", dtype="bfloat16")
    pipe = engine.pipeline
    before = {
        name: (param.data_ptr(), param.dtype)
        for name, component in pipe.components.items()
        if isinstance(component, torch.nn.Module)
        for param in component.parameters()
    }
    image = png((64, 64))
    run(engine, image=image)
    run(engine, image=image, mask=png((64, 64), 0, "L"))
    derived = engine._derived
    assert set(derived) == {"image", "inpaint"}
    for other in derived.values():
        for name, component in pipe.components.items():
            assert other.components[name] is component, name
    after = {
        name: (param.data_ptr(), param.dtype)
        for name, component in pipe.components.items()
        if isinstance(component, torch.nn.Module)
        for param in component.parameters()
    }
    assert after == before  # no storage replaced, nothing converted to float32
    assert pipe.transformer.dtype == torch.bfloat16
    engine.close()


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_peak_memory_does_not_grow_by_a_second_copy(
    dtype: str, record_property: pytest.RecordProperty
) -> None:
    out = subprocess.run(
        [sys.executable, str(PROBE), dtype],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    grown = probe["peak_rss_kib"] - probe["rss_before_kib"]
    record_property(
        "img2img_peak_growth_kib", {dtype: grown, "transformer": probe["transformer_kib"]}
    )
    assert probe["derived"] == ["image", "inpaint"] and probe["shared_components"]
    assert probe["transformer_dtype"] == dtype
    # a copy of the transformer (or its conversion to float32) adds at least transformer_kib
    assert grown < probe["transformer_kib"] / 2, probe
