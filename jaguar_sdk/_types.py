"""The wire contract: one request model and one result model, shared by every transport.

HTTP sends these as JSON (image bytes base64-encoded), Modal methods send them as plain dicts
(image bytes raw), and the in-process engine passes the objects themselves. Every bound is
enforced here, so the client rejects a bad request before the network and the server rejects it
again with the same message.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from . import _constants as C
from ._exceptions import IncompatibleVersionError, InvalidRequestError
from ._images import GeneratedImage, render_result_html

__all__ = [
    "FIELD_RULES",
    "GenerateRequest",
    "GeneratedImage",
    "GenerationResult",
    "HealthStatus",
    "JobState",
    "JobStatus",
    "ModelInfo",
    "ModelRef",
    "ModelSource",
    "OutputFormat",
    "ProgressEvent",
    "ProgressStage",
    "Timings",
    "check_schema_version",
    "validate_request",
]

OutputFormat = Literal["png", "jpeg", "webp"]
ModelSource = Literal["volume", "huggingface", "local"]

#: Human-readable allowed range of each request field, quoted in every validation error.
FIELD_RULES: dict[str, str] = {
    "prompt": f"a non-empty string of at most {C.MAX_PROMPT_CHARS} characters",
    "width": f"an integer multiple of {C.SIZE_MULTIPLE} from {C.MIN_SIZE} to {C.MAX_SIZE}",
    "height": f"an integer multiple of {C.SIZE_MULTIPLE} from {C.MIN_SIZE} to {C.MAX_SIZE}",
    "steps": f"an integer from {C.MIN_STEPS} to {C.MAX_STEPS}",
    "guidance_scale": f"a finite number from {C.MIN_GUIDANCE} to {C.MAX_GUIDANCE}",
    "seed": f"null or an integer from {C.MIN_SEED} to {C.MAX_SEED} (2**32-1)",
    "num_images": f"an integer from 1 to {C.MAX_NUM_IMAGES}",
    "output_format": "one of 'png', 'jpeg' (or 'jpg'), 'webp'",
    "quality": f"an integer from {C.MIN_QUALITY} to {C.MAX_QUALITY}",
    "max_sequence_length": (
        f"an integer from {C.MIN_MAX_SEQUENCE_LENGTH} to {C.MAX_MAX_SEQUENCE_LENGTH}"
    ),
}

StrictInt = Annotated[int, Field(strict=True)]


class _Wire(BaseModel):
    """Base of every wire model (immutable; image bytes travel as standard base64 in JSON)."""

    model_config = ConfigDict(frozen=True)


class GenerateRequest(_Wire):
    """One text-to-image request. Defaults follow the Shuttle Jaguar model card.

    Args:
        prompt: What to draw; 1 to 2000 characters after stripping whitespace.
        width: Image width in pixels; a multiple of 16 from 64 to 2048. Default 1024.
        height: Image height in pixels; a multiple of 16 from 64 to 2048. Default 1024.
        steps: Denoising steps, 1 to 50. Jaguar is distilled for 4 (the default).
        guidance_scale: Finite, 0 to 20. Default 3.5 (Jaguar has no guidance embedding, so
            diffusers ignores it; it is kept for parity with the model card and other Flux models).
        seed: 0 to 2**32-1, or ``None`` for a random seed; the result reports the seed used.
        num_images: Images per request, 1 to 4.
        output_format: ``"jpeg"`` (default, ~4 ms to encode), ``"png"`` (lossless, ~100 ms),
            or ``"webp"``.
        quality: 1 to 100, for JPEG and WebP. Default 90.
        max_sequence_length: T5 prompt tokens, 16 to 512. Default 256.

    Raises:
        InvalidRequestError: Through :func:`validate_request`, naming the field and its range.

    Example:
        >>> GenerateRequest(prompt="a jaguar in the rain", width=768, seed=7).steps
        4
    """

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=C.MAX_PROMPT_CHARS)
    width: StrictInt = Field(C.DEFAULT_SIZE, ge=C.MIN_SIZE, le=C.MAX_SIZE)
    height: StrictInt = Field(C.DEFAULT_SIZE, ge=C.MIN_SIZE, le=C.MAX_SIZE)
    steps: StrictInt = Field(C.DEFAULT_STEPS, ge=C.MIN_STEPS, le=C.MAX_STEPS)
    guidance_scale: float = Field(
        C.DEFAULT_GUIDANCE, ge=C.MIN_GUIDANCE, le=C.MAX_GUIDANCE, allow_inf_nan=False
    )
    seed: StrictInt | None = Field(None, ge=C.MIN_SEED, le=C.MAX_SEED)
    num_images: StrictInt = Field(C.DEFAULT_NUM_IMAGES, ge=1, le=C.MAX_NUM_IMAGES)
    output_format: OutputFormat = C.DEFAULT_OUTPUT_FORMAT
    quality: StrictInt = Field(C.DEFAULT_QUALITY, ge=C.MIN_QUALITY, le=C.MAX_QUALITY)
    max_sequence_length: StrictInt = Field(
        C.DEFAULT_MAX_SEQUENCE_LENGTH,
        ge=C.MIN_MAX_SEQUENCE_LENGTH,
        le=C.MAX_MAX_SEQUENCE_LENGTH,
    )

    @field_validator("prompt", mode="before")
    @classmethod
    def _strip_prompt(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_16(cls, value: int) -> int:
        if value % C.SIZE_MULTIPLE:
            raise ValueError(f"must be a multiple of {C.SIZE_MULTIPLE}")
        return value

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


def _describe(error: Any) -> tuple[str | None, str]:
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    field = loc[0] if loc else None
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden" and field:
        allowed = ", ".join(GenerateRequest.model_fields)
        return field, f"{field}: unknown field (allowed fields: {allowed})"
    if error.get("type") == "missing" and field:
        return field, f"{field}: required ({FIELD_RULES.get(field, 'missing')})"
    rule = FIELD_RULES.get(field or "")
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
    errors = exc.errors()
    described = [_describe(e) for e in errors]
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


def check_schema_version(payload: dict[str, Any]) -> None:
    """Refuse a plain-data payload written for another wire-schema version.

    Raises:
        IncompatibleVersionError: With both versions and what to upgrade.
    """
    version = payload.get("schema_version", C.SCHEMA_VERSION)
    if version != C.SCHEMA_VERSION:
        raise IncompatibleVersionError(
            f"The server speaks wire schema v{version} but this jaguar_sdk speaks "
            f"v{C.SCHEMA_VERSION}. Upgrade the older side: `pip install -U jaguar-sdk` on the "
            "client, or redeploy the server with the current jaguar_sdk."
        )


class Timings(_Wire):
    """Seconds spent in each stage of one request.

    Attributes:
        queue_s: Waiting for the GPU behind other requests.
        load_s: Loading the model when this request found it unloaded (0 when warm).
        inference_s: Text encoding and denoising.
        decode_s: VAE decode to pixels.
        encode_s: Encoding the images to the output format.
        total_s: The whole request on the server, from arrival to encoded images.
    """

    queue_s: float = 0.0
    load_s: float = 0.0
    inference_s: float = 0.0
    decode_s: float = 0.0
    encode_s: float = 0.0
    total_s: float = 0.0


class ModelRef(_Wire):
    """Which weights served a request.

    Attributes:
        id: The Hub repo id (``"shuttleai/shuttle-jaguar"``) or a local name such as ``"tiny"``.
        revision: The Hub commit or a content hash, where known.
        source: ``"volume"`` (loaded from the Modal Volume), ``"huggingface"`` (downloaded from
            the Hub at start-up) or ``"local"`` (a local folder).
    """

    id: str
    revision: str | None = None
    source: ModelSource = "local"


class GenerationResult(_Wire):
    """The images of one request and how they were made.

    Shows itself as an image grid with prompt, seed and timings in Jupyter.

    Attributes:
        images: The encoded images, in order.
        seed: The seed actually used (reported even when the request left it random).
        prompt: The prompt as the model saw it.
        timings: Seconds per stage on the server.
        model: Which weights made the images.
        request_id: The server's id for this request; quote it in bug reports.
        schema_version: Wire-schema version of this payload.
    """

    schema_version: int = C.SCHEMA_VERSION
    request_id: str
    prompt: str
    seed: int
    images: list[GeneratedImage]
    timings: Timings
    model: ModelRef

    @property
    def image(self) -> GeneratedImage:
        """The first image (the only one, unless ``num_images`` > 1)."""
        return self.images[0]

    def save(self, path: str | Any = ".", *, stem: str | None = None) -> list[Any]:
        """Save every image; see :meth:`GeneratedImage.save`.

        Args:
            path: A folder (files are named ``{stem}-{seed}-{i}.{ext}``) or, for a single
                image, a file name whose extension picks the format.
            stem: File name prefix in a folder; defaults to ``"jaguar"``.

        Returns:
            The paths written, in order.
        """
        from pathlib import Path

        target = Path(path)
        if len(self.images) == 1:
            return [self.images[0].save(target, stem=stem or f"jaguar-{self.seed}")]
        target.mkdir(parents=True, exist_ok=True)
        return [
            img.save(target, stem=f"{stem or 'jaguar'}-{self.seed}-{i}")
            for i, img in enumerate(self.images)
        ]

    def _repr_html_(self) -> str:
        return render_result_html(self)


class HealthStatus(_Wire):
    """Liveness and readiness of a server or deployment.

    Attributes:
        status: ``"ok"`` when ready, ``"loading"`` while the model loads, ``"error"`` when the
            last load failed.
        ready: Whether a generate request would run now.
        version: The jaguar_sdk version on the server.
        detail: Why it is not ready, where it is not.
    """

    schema_version: int = C.SCHEMA_VERSION
    status: Literal["ok", "loading", "error"]
    ready: bool
    version: str
    detail: str | None = None


class ModelInfo(_Wire):
    """What a server is serving.

    Attributes:
        model: Model id, revision and where the weights came from.
        device: ``"cuda"``, ``"cpu"``, ...
        dtype: ``"bfloat16"`` on a GPU, ``"float32"`` on CPU.
        loaded: Whether the pipeline is loaded.
        load_timings: Seconds per loading stage (``load_s``, ``to_device_s``, ``warmup_s``...).
        version: The jaguar_sdk version on the server.
        extra: Deployment details (GPU type, compile, snapshot mode, ...).
    """

    schema_version: int = C.SCHEMA_VERSION
    model: ModelRef
    device: str
    dtype: str
    loaded: bool
    load_timings: dict[str, float] = Field(default_factory=dict)
    version: str
    extra: dict[str, Any] = Field(default_factory=dict)


ProgressStage = Literal[
    "queued", "loading", "running", "decoding", "encoding", "done", "failed", "cancelled"
]


class ProgressEvent(_Wire):
    """One progress report of a request.

    Attributes:
        stage: ``queued`` (waiting for the GPU), ``loading``, ``running`` (denoising step
            ``step`` of ``total_steps``), ``decoding``, ``encoding``, ``done``, or (for jobs)
            ``failed`` or ``cancelled``.
        step: Denoising steps finished so far.
        total_steps: Denoising steps in all.
        request_id: The request this event belongs to.
    """

    stage: ProgressStage
    step: int = 0
    total_steps: int = 0
    request_id: str | None = None

    @property
    def fraction(self) -> float:
        """Share of the denoising done, 0.0 to 1.0."""
        if self.stage == "done":
            return 1.0
        return self.step / self.total_steps if self.total_steps else 0.0


#: Where a job is: waiting, generating, or finished one of three ways.
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]

#: The states a job never leaves.
FINISHED_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class JobStatus(_Wire):
    """Where a submitted job stands (``GET /v1/jobs/{id}``).

    Attributes:
        id: The job id (``job_...`` on a jaguar server, a ``FunctionCall`` id on Modal).
        state: ``queued``, ``running``, ``succeeded``, ``failed`` or ``cancelled``.
        progress: The latest progress event, where the backend reports progress.
        events: Every progress event so far, in order (empty where the backend reports none).
        failure: The error body (``code``, ``message``, ``field``, ``request_id``) of a failed
            job; named ``failure`` so that a status is never mistaken for an error envelope.
        request_id: The request id of the generation.
        created_at: Unix time the job was accepted, where known.
        finished_at: Unix time the job finished, where it has.
    """

    schema_version: int = C.SCHEMA_VERSION
    id: str
    state: JobState
    progress: ProgressEvent | None = None
    events: list[ProgressEvent] = Field(default_factory=list)
    failure: dict[str, Any] | None = None
    request_id: str | None = None
    created_at: float | None = None
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        """Whether the job has finished (succeeded, failed or cancelled)."""
        return self.state in FINISHED_STATES
