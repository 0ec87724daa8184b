"""Image-to-image and inpainting: the pipelines that share the loaded one, and their inputs.

``FluxImg2ImgPipeline`` and ``FluxInpaintPipeline`` are built with ``from_pipe`` from the loaded
``FluxPipeline``: diffusers ``pipeline_utils.py`` ``DiffusionPipeline.from_pipe`` passes the same
component objects (``pipeline.components``) to the new pipeline's ``__init__``, so no weight is
loaded or copied. It then calls ``new_pipeline.to(dtype=dtype)`` with ``dtype`` defaulting to
float32; ``.to`` acts in place on the *shared* modules, so a bfloat16 model would be converted
for every pipeline (twice the memory). The dtype is therefore always passed: the model's own,
which makes that ``.to`` a no-op (``tests/engine/test_engine_img2img.py`` checks the parameters
keep their storage and dtype, and that peak memory does not grow by a copy).
"""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, ImageOps

from .._request import DEFAULT_STRENGTH, MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, GenerateRequest
from ._quiet import quiet_empty_fp32_warning

__all__ = ["Inputs", "Mode", "derived_pipeline", "fit_size", "prepare_inputs"]

Mode = Literal["text", "image", "inpaint"]

_CLASSES: dict[Mode, str] = {"image": "FluxImg2ImgPipeline", "inpaint": "FluxInpaintPipeline"}


@dataclass(frozen=True)
class Inputs:
    """What the pipeline call needs beyond the prompt.

    Attributes:
        mode: ``"text"``, ``"image"`` (image-to-image) or ``"inpaint"``.
        width: Output width in pixels.
        height: Output height in pixels.
        image: The decoded input image (RGB), where there is one.
        mask: The decoded mask (L: white repaints), for inpainting.
        strength: How much of the image is repainted (with an image).
    """

    mode: Mode
    width: int
    height: int
    image: Image.Image | None = None
    mask: Image.Image | None = None
    strength: float = 1.0

    def pipeline_kwargs(self) -> dict[str, Any]:
        """The extra keyword arguments of the pipeline call."""
        if self.mode == "text":
            return {}
        kwargs: dict[str, Any] = {"image": self.image, "strength": self.strength}
        if self.mode == "inpaint":
            kwargs["mask_image"] = self.mask
        return kwargs


def fit_size(width: int, height: int) -> tuple[int, int]:
    """The output size for an input image when the request sets none: the image's own size,
    scaled down to fit ``MAX_SIZE`` (aspect kept) and rounded to multiples of 16.

    Example:
        >>> fit_size(1000, 750)
        (992, 752)
        >>> fit_size(4000, 3000)
        (2048, 1536)
    """
    scale = min(1.0, MAX_SIZE / max(width, height))

    def side(pixels: int) -> int:
        rounded = round(pixels * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE
        return max(MIN_SIZE, min(MAX_SIZE, rounded))

    return side(width), side(height)


def _decode(data: bytes, mode: str) -> Image.Image:
    opened = Image.open(io.BytesIO(data))
    upright = ImageOps.exif_transpose(opened) or opened  # a phone photo's orientation tag
    return upright.convert(mode)


def prepare_inputs(request: GenerateRequest) -> Inputs:
    """Decode the request's images and decide the output size.

    The request was validated (formats, bounds, mask size), so decoding cannot fail on bounds.
    Without an image the output is ``width`` x ``height``; with one, those when the request
    sets either, else :func:`fit_size` of the image.

    Args:
        request: The validated request.

    Returns:
        The inputs of the pipeline call.
    """
    data, mask_data = request.image, request.mask
    if data is None:
        return Inputs("text", request.width, request.height)
    image = _decode(data, "RGB")
    mask = _decode(mask_data, "L") if mask_data is not None else None
    if {"width", "height"} & request.model_fields_set:
        width, height = request.width, request.height
    else:
        width, height = fit_size(*image.size)
    return Inputs(
        "inpaint" if mask is not None else "image",
        width,
        height,
        image=image,
        mask=mask,
        strength=request.strength if request.strength is not None else DEFAULT_STRENGTH,
    )


def derived_pipeline(pipe: Any, mode: Mode) -> Any:
    """Build the image-to-image or inpainting pipeline over ``pipe``'s components.

    Args:
        pipe: The loaded ``FluxPipeline`` (its modules are shared, not copied).
        mode: ``"image"`` or ``"inpaint"``.

    Returns:
        The new pipeline (progress bar off).
    """
    diffusers: Any = importlib.import_module("diffusers")
    pipeline_class = getattr(diffusers, _CLASSES[mode])
    with quiet_empty_fp32_warning():
        derived = pipeline_class.from_pipe(pipe, dtype=pipe.dtype)  # see the module docstring
    derived.set_progress_bar_config(disable=True)
    return derived
