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

import base64
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypedDict

from annotated_types import Ge, Gt, Le, MaxLen, MinLen, MultipleOf
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ._exceptions import InvalidRequestError
from ._inputs import ImageInput, check_image, coerce_image, image_rule, image_size

__all__ = [
    "CallOptions",
    "GenerateManyOptions",
    "GenerateOptions",
    "GenerateParams",
    "GenerateRequest",
    "LoraAdapter",
    "LoraInput",
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
DEFAULT_STRENGTH = 0.6  # diffusers' FluxImg2ImgPipeline / FluxInpaintPipeline default
#: Below it nothing visible changes, and far below it (1e-17) no denoising step runs at all:
#: FluxImg2ImgPipeline.get_timesteps rounds ``steps - steps * strength`` back to ``steps``.
MIN_STRENGTH = 0.01
MAX_LORAS = 3
MIN_LORA_SCALE = -2.0
MAX_LORA_SCALE = 2.0

StrictInt = Annotated[int, Field(strict=True)]
Size = Annotated[StrictInt, Field(ge=MIN_SIZE, le=MAX_SIZE, multiple_of=SIZE_MULTIPLE)]

#: Encoded input-image bytes: raw in plain data, standard base64 in JSON (as result images).
InputImageBytes = Annotated[
    bytes,
    PlainSerializer(
        lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json"
    ),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]

_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION_RE = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
#: A relative POSIX path to a .safetensors file: no empty or hidden segment, no backslash.
_SAFETENSORS_RE = re.compile(r"^(?:[^/.\\][^/\\]*/)*[^/.\\][^/\\]*\.safetensors$")
_VOLUME_PREFIX = "volume:"


def _relative_safetensors(value: str, what: str) -> str:
    """A relative POSIX path to a ``.safetensors`` file that cannot leave its root."""
    if len(value) > 512 or not _SAFETENSORS_RE.match(value):
        raise ValueError(
            f"{what} must be a relative path to a .safetensors file, without '..', hidden "
            f"folders or a leading '/' (got {value[:80]!r})"
        )
    return value


class LoraAdapter(BaseModel):
    """One LoRA adapter of a request: where its weights come from, and how strongly it applies.

    Exactly one source: ``repo`` (a Hugging Face Hub repo, with an optional ``weight_name`` and
    ``revision``) or ``path`` (a ``.safetensors`` file on the server's weights Volume). A string
    works too: ``"owner/repo"``, ``"owner/repo/file.safetensors"``, ``"owner/repo@rev"``,
    ``"volume:loras/style.safetensors"``, each optionally ending in ``":SCALE"``.

    Raises:
        ValueError: Through validation: no source or two, a malformed repo id or path, or a
            scale outside its range.

    Example:
        >>> LoraAdapter.parse("owner/repo:0.8")
        LoraAdapter(repo='owner/repo', path=None, weight_name=None, revision=None, scale=0.8)
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        # what _one_source checks, for the OpenAPI schema: exactly one source; a path takes
        # no weight_name or revision
        json_schema_extra={
            "oneOf": [
                {"properties": {"repo": {"type": "string"}}, "required": ["repo"]},
                {
                    "properties": {
                        "path": {"type": "string"},
                        "weight_name": {"type": "null"},
                        "revision": {"type": "null"},
                    },
                    "required": ["path"],
                },
            ]
        },
    )

    repo: str | None = Field(
        None,
        json_schema_extra={"pattern": _REPO_RE.pattern},  # checked by _check_repo
        description="Hugging Face Hub repo id ('owner/name') holding the adapter.",
    )
    path: str | None = Field(
        None,
        json_schema_extra={"pattern": _SAFETENSORS_RE.pattern, "maxLength": 512},
        description="A .safetensors file on the weights Volume, relative to its root "
        "(e.g. 'loras/style.safetensors').",
    )
    weight_name: str | None = Field(
        None,
        json_schema_extra={"pattern": _SAFETENSORS_RE.pattern, "maxLength": 512},
        description="With repo: the .safetensors file in the repo (default: its only one, or "
        "pytorch_lora_weights.safetensors).",
    )
    revision: str | None = Field(
        None,
        json_schema_extra={"pattern": _REVISION_RE.pattern},  # checked by _check_revision
        description="With repo: a commit, branch or tag (default 'main').",
    )
    scale: float = Field(
        1.0,
        ge=MIN_LORA_SCALE,
        le=MAX_LORA_SCALE,
        allow_inf_nan=False,
        description="How strongly the adapter applies (0 switches it off).",
    )

    @field_validator("repo")
    @classmethod
    def _check_repo(cls, value: str | None) -> str | None:
        if value is not None and not _REPO_RE.match(value):
            raise ValueError(f"repo must be a Hub repo id 'owner/name' (got {value[:80]!r})")
        return value

    @field_validator("path", "weight_name")
    @classmethod
    def _check_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _relative_safetensors(value, str(info.field_name))

    @field_validator("revision")
    @classmethod
    def _check_revision(cls, value: str | None) -> str | None:
        if value is not None and not _REVISION_RE.match(value):
            raise ValueError(f"revision must be a commit, branch or tag (got {value[:80]!r})")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> LoraAdapter:
        if (self.repo is None) == (self.path is None):
            raise ValueError("give exactly one of repo (a Hub repo) or path (on the Volume)")
        if self.path is not None and (self.weight_name or self.revision):
            raise ValueError("weight_name and revision only apply to a repo")
        return self

    @classmethod
    def parse(cls, text: str) -> LoraAdapter:
        """Parse the string form, e.g. ``"owner/repo/file.safetensors@v2:0.8"``.

        Raises:
            ValueError: The string is not of that form (or fails validation).
        """
        source, scale = text.strip(), None
        head, sep, tail = source.rpartition(":")
        if sep and head and not tail.startswith("/"):
            try:
                scale = float(tail)
            except ValueError:
                pass
            else:
                source = head
        fields: dict[str, Any] = {} if scale is None else {"scale": scale}
        if source.startswith(_VOLUME_PREFIX):
            fields["path"] = source[len(_VOLUME_PREFIX) :]
        else:
            source, at, revision = source.partition("@")
            if at:
                fields["revision"] = revision
            owner, _, rest = source.partition("/")
            name, _, weight_name = rest.partition("/")
            if weight_name:
                fields["weight_name"] = weight_name
            fields["repo"] = f"{owner}/{name}" if name else owner
        try:
            return cls(**fields)
        except ValidationError as exc:
            why = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise ValueError(
                f"{text[:80]!r} is not 'owner/name[/file.safetensors][@revision][:scale]' or "
                f"'volume:<path>.safetensors[:scale]' ({why})"
            ) from None

    def label(self) -> str:
        """The adapter's source in its string form (without the scale)."""
        if self.path is not None:
            return f"{_VOLUME_PREFIX}{self.path}"
        where = str(self.repo) + (f"/{self.weight_name}" if self.weight_name else "")
        return where + (f"@{self.revision}" if self.revision else "")


class _Elided:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


#: What the client accepts for one adapter: the model, a dict of its fields, or its string form.
LoraInput = LoraAdapter | Mapping[str, Any] | str


class GenerateRequest(BaseModel):
    """One request: text-to-image, image-to-image (``image``), inpainting (``image`` and
    ``mask``), each with optional LoRA adapters (``loras``). Defaults follow the Shuttle Jaguar
    model card.

    Each field's description (below, in the OpenAPI schema and in ``jaguar generate --help``)
    is its documentation; its constraints are its allowed range.

    Raises:
        InvalidRequestError: Through :func:`validate_request`, naming the field and its range.

    Example:
        >>> GenerateRequest(prompt="a jaguar in the rain", width=768, seed=7).steps
        4
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        # what the validators below enforce across fields, for the OpenAPI schema
        # ("dependencies": JSON Schema draft 7's spelling, which fuzzers and older tools read)
        json_schema_extra={
            "dependentRequired": {"strength": ["image"], "mask": ["image"]},
            "dependencies": {"strength": ["image"], "mask": ["image"]},
        },
    )

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
    image: InputImageBytes | None = Field(
        None,
        description="Image-to-image: the starting image (PNG, JPEG or WebP). It is resized to "
        "width x height; when neither is set, the output takes the image's own size (scaled "
        "to fit 2048 and rounded to multiples of 16).",
    )
    mask: InputImageBytes | None = Field(
        None,
        description="Inpainting: a mask of the same size as image; white areas are repainted, "
        "black areas kept.",
    )
    strength: float | None = Field(
        None,
        ge=MIN_STRENGTH,
        le=1.0,
        allow_inf_nan=False,
        description=f"With image: how much to change it (1 repaints fully; the default "
        f"{DEFAULT_STRENGTH} keeps the layout). Runs about strength x steps denoising steps.",
    )
    loras: Annotated[list[LoraAdapter], Field(max_length=MAX_LORAS)] = Field(
        default_factory=list,
        description="LoRA adapters to apply to this request only, each {repo | path, "
        "weight_name, revision, scale} or 'owner/repo[:scale]'.",
    )

    @field_validator("image", "mask", mode="before")
    @classmethod
    def _image_bytes(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        remote = bool(info.context and info.context.get("remote"))
        data = coerce_image(value, remote=remote)
        check_image(data)
        return data

    @field_validator("mask")
    @classmethod
    def _mask_fits_image(cls, value: bytes | None, info: ValidationInfo) -> bytes | None:
        if value is None:
            return None
        image = info.data.get("image")
        if image is None:
            raise ValueError("needs an image (inpainting repaints part of an image)")
        if image_size(value) != image_size(image):
            got, want = image_size(value), image_size(image)
            raise ValueError(
                f"is {got[0]}x{got[1]} but the image is {want[0]}x{want[1]}: they must match"
            )
        return value

    @field_validator("strength")
    @classmethod
    def _strength_needs_image(cls, value: float | None, info: ValidationInfo) -> float | None:
        # None (also what a dump of a text-only request holds) means "the default, with an
        # image": a request always survives model_dump() -> validate_request().
        if value is not None and info.data.get("image") is None:
            raise ValueError("only applies with an image (image-to-image or inpainting)")
        return value

    @field_validator("loras", mode="before")
    @classmethod
    def _parse_loras(cls, value: Any) -> Any:
        if isinstance(value, (str, Mapping, LoraAdapter)):
            value = [value]
        if isinstance(value, (list, tuple)):
            return [LoraAdapter.parse(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("loras")
    @classmethod
    def _distinct_loras(cls, value: list[LoraAdapter]) -> list[LoraAdapter]:
        labels = [adapter.label() for adapter in value]
        for label in labels:
            if labels.count(label) > 1:
                raise ValueError(f"{label} is listed twice; give it once with its scale")
        return value

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

    def __repr_args__(self) -> Any:
        # An input image is shown by its size, not its bytes (a repr may reach a log).
        for name, value in super().__repr_args__():
            if name in ("image", "mask") and isinstance(value, bytes):
                yield name, _Elided(f"<{len(value)} bytes>")
            else:
                yield name, value

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
    image: ImageInput | None
    mask: ImageInput | None
    strength: float | None
    loras: list[LoraInput]


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


#: Allowed values of the fields whose rule is not only numeric bounds.
_RULES: dict[str, str] = {
    "image": image_rule(),
    "mask": "an image like image (PNG, JPEG or WebP, same bounds), of the same size as image",
    "strength": f"null, or a finite number from {MIN_STRENGTH} to 1 with an image",
    "loras": f"a list of at most {MAX_LORAS} adapters, each {{repo: 'owner/name' (with "
    "weight_name, revision) or path: '<file>.safetensors' on the Volume, scale from "
    f"{MIN_LORA_SCALE:g} to {MAX_LORA_SCALE:g}}}, or the string 'owner/name[:scale]'",
}


def allowed_range(field: str) -> str | None:
    """The allowed values of a request field, in words, from its constraints.

    Example:
        >>> allowed_range("width")
        'an integer multiple of 16 from 64 to 2048'
    """
    if field in _RULES:
        return _RULES[field]
    info = GenerateRequest.model_fields.get(field)
    if info is None:
        return None
    limits: dict[str, Any] = {}
    for meta in info.metadata:
        for kind, attr in (
            (Ge, "ge"),
            (Gt, "gt"),
            (Le, "le"),
            (MinLen, "min_length"),
            (MaxLen, "max_length"),
        ):
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


def _shown(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)} bytes"
    if isinstance(value, (dict, list)) or type(value).__module__.startswith("PIL"):
        return type(value).__name__
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _describe(error: Any) -> tuple[str | None, str]:
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    field = loc[0] if loc else None
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    message = message.replace("Input should be", "must be", 1)
    where = field
    if len(loc) > 1 and field == "loras":  # an adapter's own field: loras[0].scale
        where = f"loras[{loc[1]}]" + "".join(f".{part}" for part in loc[2:])
    if error.get("type") == "extra_forbidden" and field:
        if where != field:
            keys = ", ".join(LoraAdapter.model_fields)
            return field, f"{where}: unknown key (an adapter takes {keys})"
        allowed = ", ".join(GenerateRequest.model_fields)
        return field, f"{field}: unknown field (allowed fields: {allowed})"
    rule = allowed_range(field or "")
    if error.get("type") == "missing" and field:
        return field, f"{field}: required ({rule or 'missing'})"
    shown = _shown(error.get("input"))
    text = f"{where}: {message}" if field else message
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


def validate_request(
    data: GenerateRequest | dict[str, Any], *, remote: bool = False
) -> GenerateRequest:
    """Validate request data, raising :class:`InvalidRequestError` on any bound violation.

    Args:
        data: A :class:`GenerateRequest` or a plain dict of its fields.
        remote: The data came over the wire to a server: images must be bytes or base64 text
            (a path or an object is refused; a server never reads its files for a caller).

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
        return GenerateRequest.model_validate(data, context={"remote": remote})
    except ValidationError as exc:
        raise invalid_request_from(exc) from None
