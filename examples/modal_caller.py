"""Another Modal app that calls the Shuttle Jaguar deployment from inside its own function.

Inside a Modal container the app's credentials are already there, so ``JaguarClient.from_modal``
works as is (``.remote()`` from Modal to Modal). Deploy the model first
(``modal deploy deploy/app.py``), then:

    modal run examples/modal_caller.py --prompt "a jaguar made of stained glass"

This file imports and defines its app offline (no Modal token needed), so CI checks it.
"""

from __future__ import annotations

from pathlib import Path

import modal

app = modal.App("jaguar-caller-example")

# The caller needs only the light client: no torch, no diffusers.
image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install("httpx>=0.27", "pydantic>=2.7", "tenacity>=8.2", "pillow>=10", "modal>=1.6")
    .add_local_python_source("jaguar_sdk")
)


@app.function(image=image, timeout=600)
def thumbnail(prompt: str, size: int = 512) -> bytes:
    """Generate one image with the deployed model and return its JPEG bytes."""
    from jaguar_sdk import JaguarClient

    with JaguarClient.from_modal() as client:
        result = client.generate(prompt, width=size, height=size, deadline=300)
    print(f"seed {result.seed}, {result.timings.total_s:.2f}s on {result.model.source} weights")
    return result.image.data


@app.local_entrypoint()
def main(prompt: str = "white cat holding a sign reading Scuffed", out: str = "thumb.jpg") -> None:
    Path(out).write_bytes(thumbnail.remote(prompt))
    print(f"wrote {out}")
