"""What the loaded model can use of a request, read from its own config.

Shuttle Jaguar is timestep-distilled (4 steps, like FLUX.1-schnell): its transformer has no
guidance embedding (``transformer.config.guidance_embeds`` is false), so diffusers ignores
``guidance_scale`` (``pipeline_flux.py`` ``__call__``: ``guidance = None`` unless
``self.transformer.config.guidance_embeds``), and true CFG needs a negative prompt, which this
API does not send. Black Forest Labs' reference runs the distilled schnell model's T5 at 256
tokens and the guidance-distilled dev model at 512 (black-forest-labs/flux ``src/flux/cli.py``:
``load_t5(..., max_length=256 if name == "flux-schnell" else 512)``), so a model without a
guidance embedding is capped at 256 T5 tokens, and every model at its T5 tokenizer's
``model_max_length``.

The request keeps its fields (the wire contract is unchanged); the engine runs the capped copy
and reports the limits in ``info().extra["model_limits"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._request import (
    DEFAULT_SIZE,
    MAX_MAX_SEQUENCE_LENGTH,
    MIN_MAX_SEQUENCE_LENGTH,
    MIN_SIZE,
    GenerateRequest,
)

__all__ = ["DISTILLED_MAX_SEQUENCE_LENGTH", "ModelLimits", "model_limits", "warmup_request"]

#: T5 tokens a timestep-distilled (schnell-like) Flux model was run with by its authors.
DISTILLED_MAX_SEQUENCE_LENGTH = 256


@dataclass(frozen=True)
class ModelLimits:
    """What the loaded model uses of a request.

    Attributes:
        guidance_embeds: Whether the transformer takes ``guidance_scale`` at all.
        max_sequence_length: The most T5 prompt tokens it is run with.
    """

    guidance_embeds: bool
    max_sequence_length: int

    def apply(self, request: GenerateRequest) -> GenerateRequest:
        """The request as the model runs it (``max_sequence_length`` capped)."""
        if request.max_sequence_length <= self.max_sequence_length:
            return request
        return request.model_copy(update={"max_sequence_length": self.max_sequence_length})

    def describe(self) -> dict[str, Any]:
        """For ``info().extra["model_limits"]``."""
        guidance = (
            "used (the transformer has a guidance embedding)"
            if self.guidance_embeds
            else "ignored: the model is timestep-distilled and has no guidance embedding"
        )
        return {
            "guidance_scale": guidance,
            "max_sequence_length": self.max_sequence_length,
            "max_sequence_length_note": (
                "requests asking for more T5 tokens run with this many (the model's own limit)"
            ),
        }


def model_limits(pipe: Any) -> ModelLimits:
    """Read the limits from a loaded FluxPipeline's transformer and T5 tokenizer.

    Args:
        pipe: The pipeline.

    Returns:
        Its limits; defaults that change nothing where a component lacks the config.
    """
    config = getattr(getattr(pipe, "transformer", None), "config", None)
    guidance_embeds = bool(getattr(config, "guidance_embeds", True))
    cap = MAX_MAX_SEQUENCE_LENGTH if guidance_embeds else DISTILLED_MAX_SEQUENCE_LENGTH
    tokenizer_max = getattr(getattr(pipe, "tokenizer_2", None), "model_max_length", None)
    if isinstance(tokenizer_max, int) and MIN_MAX_SEQUENCE_LENGTH <= tokenizer_max < cap:
        cap = tokenizer_max
    return ModelLimits(guidance_embeds=guidance_embeds, max_sequence_length=cap)


def warmup_request(*, serving_shape: bool) -> GenerateRequest:
    """The warm-up generation.

    Args:
        serving_shape: Warm up at the default serving shape (1024x1024, 4 steps): needed when the
            transformer is compiled: torch.compile compiles again when it first meets a new
            input shape, so a 64x64 warm-up leaves that cost to the first real request.

    Returns:
        The request (seed 0).
    """
    if serving_shape:
        size, steps = DEFAULT_SIZE, GenerateRequest.model_fields["steps"].default
    else:
        size, steps = MIN_SIZE, 1
    return GenerateRequest.model_validate(
        {"prompt": "warm-up", "width": size, "height": size, "steps": steps, "seed": 0}
    )
