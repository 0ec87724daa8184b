"""The request, written once: its fields, their bounds and their docs.

:class:`GenerateRequest` is the single source of the request surface. Everything else is
derived from it or checked against it by a test:

- the allowed range quoted in every validation error (:func:`allowed_range`, from the field's
  constraints), on the client before the network and again on the server;
- the keyword arguments of ``generate``/``submit``/``generate_many`` (:class:`GenerateParams`,
  typed with ``Unpack``; a test compares its keys and types with the model);
- the CLI flags of ``jaguar generate`` (built from the model's fields and descriptions);
- the OpenAPI schema of the server.

Only the fields a caller set travel on the wire (``model_dump(exclude_unset=True)``), so the
server's defaults apply and a field added to a newer client never reaches an older server
unless the caller uses it (see "Compatibility" in ``docs/architecture.md``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, TypedDict

from annotated_types import Ge, Le, MaxLen, MinLen, MultipleOf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._exceptions import InvalidRequestError

__all__ = [
    "CallOptions",
    "GenerateManyOptions",
    "GenerateOptions",
    "GenerateParams",
    "GenerateRequest",
    "OutputFormat",
    "SubmitOptions",
    "allowed_range",
    "invalid_request_from",
    "validate_request",
]

OutputFormat = Literal["png", "jpeg", "webp"]

# Bounds that other code needs by name (the OpenAI route, the engine's warm-up).
MIN_SIZE = 64
MAX_SIZE = 2048
SIZE_MULTIPLE = 16  # 2 * vae_scale_factor: Flux packs 2x2 latent patches of an x8 VAE
DEFAULT_SIZE = 1024
MAX_NUM_IMAGES = 4
MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**32 - 1
MIN_MAX_SEQUENCE_LENGTH = 16
MAX_MAX_SEQUENCE_LENGTH = 512  # FluxPipeline raises above 512
PROMPT_PATTERN = r"\S"  # a prompt is stripped, so it needs one non-whitespace character

StrictInt = Annotated[int, Field(strict=True)]
Size = Annotated[StrictInt, Field(ge=MIN_SIZE, le=MAX_SIZE, multiple_of=SIZE_MULTIPLE)]


class GenerateRequest(BaseModel):
    """One text-to-image request. Defaults follow the Shuttle Jaguar model card.

    Each field's description (below, in the OpenAPI schema and in ``jaguar generate --help``)
    is its documentation; its constraints are its allowed range.

    Raises:
        InvalidRequestError: Through :func:`validate_request`, naming the field and its range.

    Example:
        >>> GenerateRequest(prompt="a jaguar in the rain", width=768, seed=7).steps
        4
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="What to draw (surrounding whitespace is stripped).",
        # documents what the strip implies: at least one non-space character
        json_schema_extra={"pattern": PROMPT_PATTERN},
    )
    width: Size = Field(DEFAULT_SIZE, description="Image width in pixels.")
    height: Size = Field(DEFAULT_SIZE, description="Image height in pixels.")
    steps: StrictInt = Field(
        4, ge=1, le=50, description="Denoising steps; Shuttle Jaguar is distilled for 4."
    )
    guidance_scale: float = Field(
        3.5,
        ge=0.0,
        le=20.0,
        allow_inf_nan=False,
        description="Prompt guidance. Shuttle Jaguar is timestep-distilled (no guidance "
        "embedding), so its pipeline ignores it; kept for other Flux models.",
    )
    seed: StrictInt | None = Field(
        None,
        ge=0,
        le=MAX_SEED,
        description="Random seed; null for a random one (the result reports the seed used).",
    )
    num_images: StrictInt = Field(
        1, ge=1, le=MAX_NUM_IMAGES, description="Images made from this prompt and seed."
    )
    output_format: OutputFormat = Field(
        "jpeg",
        description="Image encoding: jpeg (about 4 ms at 1024x1024), png (lossless, about "
        "100 ms) or webp; 'jpg' is accepted for jpeg.",
    )
    quality: StrictInt = Field(90, ge=1, le=100, description="JPEG and WebP quality.")
    max_sequence_length: StrictInt = Field(
        256,
        ge=MIN_MAX_SEQUENCE_LENGTH,
        le=MAX_MAX_SEQUENCE_LENGTH,
        description="Prompt tokens the T5 encoder reads; longer prompts are truncated.",
    )

    @field_validator("prompt", mode="before")
    @classmethod
    def _strip_prompt(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("guidance_scale", mode="before")
    @classmethod
    def _finite_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number")
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value

    @field_validator("output_format", mode="before")
    @classmethod
    def _normalise_format(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return "jpeg" if value == "jpg" else value
        return value

    def wire_fields(self, mode: Literal["python", "json"] = "python") -> dict[str, Any]:
        """The fields to send: the prompt and those the caller set (never the defaults).

        Args:
            mode: ``"json"`` for JSON-compatible values (HTTP), ``"python"`` for plain data.

        Example:
            >>> GenerateRequest(prompt="a cat", width=512).wire_fields()
            {'prompt': 'a cat', 'width': 512}
        """
        return self.model_dump(mode=mode, exclude_unset=True)


class GenerateParams(TypedDict, total=False):
    """The request fields besides the prompt, as keyword arguments of the client methods.

    Each is optional: a field left out takes the server's default. See
    :class:`GenerateRequest` for what each one means and its allowed range.
    """

    width: int
    height: int
    steps: int
    guidance_scale: float
    seed: int | None
    num_images: int
    output_format: OutputFormat
    quality: int
    max_sequence_length: int


class CallOptions(TypedDict, total=False):
    """Per-call options of every client method.

    Attributes:
        timeout: Read timeout of each attempt in seconds (default: the client's).
        deadline: Total seconds for the whole call, retries included.
        max_retries: Retries for this call (default: the client's).
    """

    timeout: float | None
    deadline: float | None
    max_retries: int | None


class GenerateOptions(GenerateParams, CallOptions, total=False):
    """Keyword arguments of ``generate``: request fields, call options and the request's ids.

    Attributes:
        request_id: Your id for the request (sent as ``X-Request-ID``).
        idempotency_key: Your idempotency key (default: a fresh UUID per call, reused by its
            retries, so a retried call is generated once).
    """

    request_id: str | None
    idempotency_key: str | None


class GenerateManyOptions(GenerateParams, CallOptions, total=False):
    """Keyword arguments of ``generate_many``: request fields and call options for every item."""


class SubmitOptions(GenerateOptions, total=False):
    """Keyword arguments of ``submit``: those of ``generate`` plus ``webhook_url``.

    Attributes:
        webhook_url: HTTP only: where the server posts the signed result when the job ends.
    """

    webhook_url: str | None


#: Names of the request fields a caller may pass as keywords (all but the prompt).
PARAM_NAMES: frozenset[str] = frozenset(GenerateParams.__annotations__)


def allowed_range(field: str) -> str | None:
    """The allowed values of a request field, in words, from its constraints.

    Example:
        >>> allowed_range("width")
        'an integer multiple of 16 from 64 to 2048'
    """
    info = GenerateRequest.model_fields.get(field)
    if info is None:
        return None
    limits: dict[str, Any] = {}
    for meta in info.metadata:
        for kind, attr in ((Ge, "ge"), (Le, "le"), (MinLen, "min_length"), (MaxLen, "max_length")):
            if isinstance(meta, kind):
                limits[attr] = getattr(meta, attr)
        if isinstance(meta, MultipleOf):
            limits["multiple_of"] = meta.multiple_of
    annotation = info.annotation
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if annotation is str:
        return f"a non-empty string of at most {limits.get('max_length')} characters"
    kind_text = "a finite number" if annotation is float else "an integer"
    if "multiple_of" in limits:
        kind_text = f"an integer multiple of {limits['multiple_of']}"
    text = f"{kind_text} from {limits.get('ge')} to {limits.get('le')}"
    return f"null or {text}" if type(None) in args else text


def _describe(error: Any) -> tuple[str | None, str]:
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    field = loc[0] if loc else None
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    message = message.replace("Input should be", "must be", 1)
    if error.get("type") == "extra_forbidden" and field:
        allowed = ", ".join(GenerateRequest.model_fields)
        return field, f"{field}: unknown field (allowed fields: {allowed})"
    rule = allowed_range(field or "")
    if error.get("type") == "missing" and field:
        return field, f"{field}: required ({rule or 'missing'})"
    got = error.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    if len(shown) > 60:
        shown = shown[:57] + "..."
    text = f"{field}: {message}" if field else message
    if rule:
        text += f"; allowed: {rule}"
    if field and "input" in error:
        text += f" (got {shown})"
    return field, text


def invalid_request_from(exc: ValidationError) -> InvalidRequestError:
    """Turn a pydantic error into an :class:`InvalidRequestError` naming field and range."""
    described = [_describe(e) for e in exc.errors()]
    field = described[0][0] if described else None
    message = "; ".join(text for _, text in described) or "invalid request"
    return InvalidRequestError(message, field=field)


def validate_request(data: GenerateRequest | dict[str, Any]) -> GenerateRequest:
    """Validate request data, raising :class:`InvalidRequestError` on any bound violation.

    Args:
        data: A :class:`GenerateRequest` or a plain dict of its fields.

    Returns:
        The validated request.

    Raises:
        InvalidRequestError: Naming the first field at fault and its allowed range.

    Example:
        >>> validate_request({"prompt": "a cat", "width": 512}).width
        512
    """
    if isinstance(data, GenerateRequest):
        return data
    if not isinstance(data, dict):
        raise InvalidRequestError("the request body must be a JSON object", field=None)
    try:
        return GenerateRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid_request_from(exc) from None
