"""One generation in two timed halves: denoising (to latents) and VAE decode (to pixels).

The pipeline runs with ``output_type="latent"`` and the decode is done here, so the two stages
are timed separately and the float-to-uint8 conversion happens on the device (4x less data to
copy back than float32). The same two halves serve text-to-image (``FluxPipeline``),
image-to-image and inpainting (their ``from_pipe`` twins, see ``_img2img.py``): all three return
packed latents for ``output_type="latent"`` and share the VAE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from .._request import GenerateRequest
from ._img2img import Inputs

__all__ = ["StepCallback", "decode_latents", "denoise", "make_generator", "sync"]

#: Called with (steps finished, total steps) after each denoising step.
StepCallback = Callable[[int, int], None]


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator: the same seed gives the same initial noise on every device."""
    return torch.Generator("cpu").manual_seed(seed)


def sync(device: str) -> None:
    """Wait for queued GPU work, so wall-clock timings are honest."""
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def denoise(
    pipe: Any,
    request: GenerateRequest,
    seed: int,
    on_step: StepCallback | None = None,
    inputs: Inputs | None = None,
) -> torch.Tensor:
    """Encode the prompt and run the denoising loop.

    Args:
        pipe: A FluxPipeline, or its image-to-image / inpainting twin for ``inputs``.
        request: The validated request.
        seed: The seed of the initial noise (and of the input image's VAE sample).
        on_step: Called after each step with (finished, total).
        inputs: The output size and input images (default: text-to-image at the request's
            size).

    Returns:
        Packed latents, shape ``(num_images, seq_len, 64)`` for the 16-channel VAE.
    """

    def callback(
        pipeline: Any, step_index: int, timestep: Any, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if on_step is not None:
            on_step(step_index + 1, int(pipeline.num_timesteps))
        return kwargs

    inputs = inputs or Inputs("text", request.width, request.height)
    with torch.inference_mode():
        output = pipe(
            prompt=request.prompt,
            width=inputs.width,
            height=inputs.height,
            num_inference_steps=request.steps,
            guidance_scale=request.guidance_scale,
            max_sequence_length=request.max_sequence_length,
            num_images_per_prompt=request.num_images,
            generator=make_generator(seed),
            output_type="latent",
            return_dict=False,
            callback_on_step_end=callback,
            **inputs.pipeline_kwargs(),
        )
    latents: torch.Tensor = output[0]
    return latents


def decode_latents(pipe: Any, latents: torch.Tensor, width: int, height: int) -> list[Image.Image]:
    """Decode packed latents to RGB PIL images (same pixels as ``output_type="pil"``).

    Args:
        pipe: The FluxPipeline whose VAE decodes.
        latents: The packed latents from :func:`denoise`.
        width: Image width in pixels.
        height: Image height in pixels.

    Returns:
        One RGB image per latent.
    """
    vae = pipe.vae
    images: list[Image.Image] = []
    with torch.inference_mode():
        unpacked = pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)
        unpacked = (unpacked / vae.config.scaling_factor) + vae.config.shift_factor
        # One image at a time: the decoder's activations at full resolution (its last up block)
        # dominate its memory and grow with the batch, so 4 images of 2048x2048 at once would
        # hold 4x what one does; per image, the peak is one image's.
        for index in range(unpacked.shape[0]):
            one = unpacked[index : index + 1].to(device=vae.device, dtype=vae.dtype)
            pixels = vae.decode(one, return_dict=False)[0]
            # diffusers' postprocess: [-1, 1] -> [0, 1] -> round(x * 255) as uint8, on device
            pixels = (pixels.float() / 2 + 0.5).clamp(0, 1)
            frame = (pixels * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()[0]
            del pixels
            images.append(Image.fromarray(np.ascontiguousarray(frame)))
    return images
