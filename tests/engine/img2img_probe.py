"""Peak memory of image-to-image and inpainting next to text-to-image (one process).

Run: ``.venv/bin/python tests/engine/img2img_probe.py DTYPE``; prints one JSON line.

A random Flux pipeline large enough to measure (about 25M parameters: a second copy of its
transformer would add ~50 MB in bfloat16, ~100 MB in float32) is built in memory; after one
text-to-image generation (the activations' own peak), the kernel's peak-RSS mark is reset
(``/proc/self/clear_refs`` ``5``, ``Documentation/admin-guide/mm/soft-dirty.rst``: "reset the
peak resident set size"), then an image-to-image and an inpainting generation run. A
``from_pipe`` that copied weights, or converted the shared ones to another dtype, would raise
the new peak (``VmHWM``) above the RSS before them by about a transformer.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main(dtype_name: str) -> dict[str, object]:
    import gc

    import torch
    from PIL import Image

    from jaguar_sdk import GenerateRequest, ModelRef
    from jaguar_sdk.engine import Engine
    from jaguar_sdk.engine.tiny import RandomFluxSizes, build_random_flux_pipeline

    torch.set_num_threads(1)
    dtype = getattr(torch, dtype_name)
    sizes = RandomFluxSizes(
        num_layers=2, num_single_layers=4, num_attention_heads=4, attention_head_dim=128,
        axes_dims_rope=(16, 56, 56),
    )  # fmt: skip
    pipe = build_random_flux_pipeline(sizes, seed=0).to(dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    engine = Engine(pipe, model_ref=ModelRef(id="probe", source="local"), dtype=dtype)
    transformer_bytes = sum(p.numel() * p.element_size() for p in pipe.transformer.parameters())
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 60, 30)).save(buffer, format="PNG")
    image = buffer.getvalue()
    base = {"prompt": "a cat", "width": 64, "height": 64, "steps": 2, "seed": 1}

    engine.generate(GenerateRequest.model_validate(base), request_id="t2i")
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    engine.generate(GenerateRequest.model_validate({**base, "image": image}), request_id="i2i")
    engine.generate(
        GenerateRequest.model_validate({**base, "image": image, "mask": image}), request_id="inp"
    )
    peak = _status_kib("VmHWM")
    shared = all(
        derived.transformer is pipe.transformer and derived.vae is pipe.vae
        for derived in engine._derived.values()
    )
    return {
        "dtype": dtype_name,
        "transformer_kib": transformer_bytes // 1024,
        "rss_before_kib": before,
        "peak_rss_kib": peak,
        "derived": sorted(engine._derived),
        "shared_components": shared,
        "transformer_dtype": str(pipe.transformer.dtype).removeprefix("torch."),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
