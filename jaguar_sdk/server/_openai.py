"""OpenAI-compatible ``POST /v1/images/generations`` and ``POST /v1/images/edits`` routes.

Lets the official ``openai`` client (``client.images.generate(...)``, ``client.images.edit(...)``)
and tools built on it use a Jaguar server as a drop-in: ``prompt``, ``n``, ``size``
(``"WxH"``), ``response_format`` (``"b64_json"`` only: this server stores no files to link to),
optional ``seed``, and ``output_format``/``output_compression`` as in OpenAI's newer image API.
``model``, ``quality``, ``style``, ``user``, ``background`` and ``moderation`` are accepted and
ignored. Errors use OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Edits are multipart/form-data, as the OpenAI client sends them: ``image`` (one file: image to
image), an optional ``mask`` (inpainting), and ``strength`` as an extra field. OpenAI's masks
mark the area to repaint with *transparent* pixels; such a mask (one with an alpha channel) is
turned into the native convention (white repaints) here. ``size`` ``"auto"`` (the default)
keeps the image's own size.

Images default to PNG because OpenAI's image API returns PNG unless told otherwise, and its
clients and examples save ``b64_json`` as ``.png``. PNG costs more to encode than JPEG; send
``"output_format": "jpeg"`` for the faster path.
"""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Callable
from typing import Any, Final, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from .. import _constants as C
from .. import _request as R
from .._exceptions import InvalidRequestError
from .._request import GenerateRequest, validate_request
from .._results import GenerationResult
from ._auth import require_api_token
from ._body import read_json_object
from ._errors import request_id_of
from ._form import FormItems, image_body_limit, is_multipart, read_form
from ._routes import (
    IDEMPOTENCY_KEY_PARAMETER,
    REQUEST_ID_PARAMETER,
    generation_queue_of,
    idempotency_key_of,
    max_body_of,
    service_of,
)
from ._schema import body_schema, with_files

__all__ = [
    "OpenAIImageEditRequest",
    "OpenAIImageRequest",
    "OpenAIImageResponse",
    "build_openai_router",
    "to_edit_request",
]

#: Default output format of the OpenAI-compatible route (see the module docstring).
OPENAI_DEFAULT_FORMAT: Final[Literal["png", "jpeg", "webp"]] = "png"
DEFAULT_OPENAI_SIZE = f"{R.DEFAULT_SIZE}x{R.DEFAULT_SIZE}"

_SIZE_RE = re.compile(r"\s*0*(\d{1,5})\s*[xX×]\s*0*(\d{1,5})\s*")
_SIDES = "|".join(str(side) for side in range(R.MIN_SIZE, R.MAX_SIZE + 1, R.SIZE_MULTIPLE))
#: What ``_parse_size`` accepts, as a JSON-schema pattern: ``auto``, or two allowed sides
#: (leading zeros and spaces tolerated, as the parser tolerates them).
SIZE_PATTERN = f"^\\s*(auto|0*({_SIDES})\\s*[xX\u00d7]\\s*0*({_SIDES}))\\s*$"
_SUPPORTED = {
    "prompt",
    "n",
    "size",
    "response_format",
    "seed",
    "output_format",
    "output_compression",
}
_IGNORED = {"model", "quality", "style", "user", "background", "moderation"}
_EDIT_SUPPORTED = _SUPPORTED | {"image", "mask", "strength"}
_EDIT_IGNORED = _IGNORED | {"input_fidelity", "stream", "partial_images", "safety_identifier"}


_IGNORED_DOC = "Accepted (a string or null) and ignored."


class OpenAIImageRequest(BaseModel):
    """The request body (documentation for the OpenAPI schema; :func:`to_generate_request`
    checks the same rules by hand, so that errors name OpenAI's parameters)."""

    model_config = ConfigDict(extra="forbid", title="OpenAIImageRequest")

    prompt: str = Field(
        min_length=1,
        max_length=R.MAX_PROMPT_CHARS,
        pattern=R.PROMPT_PATTERN,
        description=f"1 to {R.MAX_PROMPT_CHARS} characters (stripped).",
    )
    n: int | None = Field(1, ge=1, le=R.MAX_NUM_IMAGES, description="Number of images.")
    size: str | None = Field(
        DEFAULT_OPENAI_SIZE,
        pattern=SIZE_PATTERN,
        description=f"'WxH'; each side a multiple of {R.SIZE_MULTIPLE} from {R.MIN_SIZE} to "
        f"{R.MAX_SIZE}, or 'auto' ({DEFAULT_OPENAI_SIZE}).",
    )
    response_format: Literal["b64_json"] | None = "b64_json"
    seed: int | None = Field(None, ge=0, le=R.MAX_SEED)
    output_format: Literal["png", "jpeg", "webp"] | None = OPENAI_DEFAULT_FORMAT
    output_compression: int | None = Field(None, ge=1, le=100, description="JPEG/WebP quality.")
    model: str | None = Field(None, description="Ignored: the server serves one model.")
    quality: str | None = Field(None, description=_IGNORED_DOC)
    style: str | None = Field(None, description=_IGNORED_DOC)
    user: str | None = Field(None, description=_IGNORED_DOC)
    background: str | None = Field(None, description=_IGNORED_DOC)
    moderation: str | None = Field(None, description=_IGNORED_DOC)


class OpenAIImageEditRequest(BaseModel):
    """The multipart body of an edit (documentation for the OpenAPI schema)."""

    model_config = ConfigDict(extra="forbid", title="OpenAIImageEditRequest")

    image: bytes = Field(description="The image to edit: one PNG, JPEG or WebP file.")
    prompt: str = Field(
        min_length=1,
        max_length=R.MAX_PROMPT_CHARS,
        pattern=R.PROMPT_PATTERN,
        description=f"1 to {R.MAX_PROMPT_CHARS} characters (stripped).",
    )
    mask: bytes | None = Field(
        None,
        description="Inpainting: transparent pixels (alpha 0) are repainted, as in OpenAI's "
        "API; a mask without alpha repaints its white pixels. Same size as the image.",
    )
    n: int = Field(1, ge=1, le=R.MAX_NUM_IMAGES, description="Number of images.")
    size: str = Field("auto", description="'WxH' as for generations, or 'auto': the image's.")
    response_format: Literal["b64_json"] = "b64_json"
    seed: int | None = Field(None, ge=0, le=R.MAX_SEED)
    strength: float = Field(
        R.DEFAULT_STRENGTH, ge=R.MIN_STRENGTH, le=1, description="How much to change."
    )
    output_format: Literal["png", "jpeg", "webp"] = OPENAI_DEFAULT_FORMAT
    output_compression: int | None = Field(None, ge=1, le=100, description="JPEG/WebP quality.")
    model: str | None = Field(None, description="Ignored: the server serves one model.")


class OpenAIImage(BaseModel):
    """One image of the response."""

    b64_json: str
    revised_prompt: str | None = None


class OpenAIImageResponse(BaseModel):
    """The response body."""

    created: int
    data: list[OpenAIImage]


class OpenAIErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """OpenAI's error envelope."""

    error: OpenAIErrorDetail


def _invalid(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, field=param)


def _parse_size(value: Any) -> tuple[int, int]:
    if value is None or (isinstance(value, str) and value.strip() == "auto"):
        return R.DEFAULT_SIZE, R.DEFAULT_SIZE
    rule = (
        f"'WxH' with each side a multiple of {R.SIZE_MULTIPLE} from {R.MIN_SIZE} to "
        f"{R.MAX_SIZE}, e.g. '1024x768'"
    )
    match = _SIZE_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid(f"size: must be {rule} (got {str(value)[:40]!r}).", "size")
    width, height = int(match.group(1)), int(match.group(2))
    for side in (width, height):
        if not R.MIN_SIZE <= side <= R.MAX_SIZE or side % R.SIZE_MULTIPLE:
            raise _invalid(f"size: must be {rule} (got {value.strip()!r}).", "size")
    return width, height


def _parse_n(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= R.MAX_NUM_IMAGES:
        raise _invalid(
            f"n: must be an integer from 1 to {R.MAX_NUM_IMAGES} (got {str(value)[:40]!r}).", "n"
        )
    return value


def _parse_output_format(value: Any) -> str:
    if value is None:
        return OPENAI_DEFAULT_FORMAT
    if value not in ("png", "jpeg", "webp"):
        raise _invalid(
            f"output_format: must be one of 'png', 'jpeg', 'webp' (got {str(value)[:40]!r}).",
            "output_format",
        )
    return str(value)


def _refuse_unknown(body: dict[str, Any], supported: set[str], ignored: set[str]) -> None:
    unknown = sorted(set(body) - supported - ignored)
    if unknown:
        raise _invalid(
            f"Unrecognized request argument supplied: {unknown[0][:40]}. Supported: "
            f"{', '.join(sorted(supported))}.",
            unknown[0][:40],
        )


def to_generate_request(body: dict[str, Any]) -> dict[str, Any]:
    """Translate an OpenAI image request into :class:`GenerateRequest` fields.

    Args:
        body: The parsed JSON body.

    Returns:
        The fields of a native request (still to be validated).

    Raises:
        InvalidRequestError: For an unknown argument, a bad ``size`` or ``n``, or a
            ``response_format`` other than ``b64_json``; ``field`` is the OpenAI parameter.
    """
    _refuse_unknown(body, _SUPPORTED, _IGNORED)
    for name in sorted(_IGNORED & set(body)):
        if body[name] is not None and not isinstance(body[name], str):
            raise _invalid(f"{name}: must be a string or null (it is ignored).", name)
    if "prompt" in body and not isinstance(body["prompt"], str):
        raise _invalid("prompt: must be a string.", "prompt")
    response_format = body.get("response_format")
    if response_format is None:
        response_format = "b64_json"
    if response_format != "b64_json":
        raise _invalid(
            f"response_format: only 'b64_json' is supported (got {str(response_format)[:40]!r}); "
            "this server does not host image files to link to. Omit response_format or send "
            "'b64_json'.",
            "response_format",
        )
    width, height = _parse_size(body.get("size"))
    fields: dict[str, Any] = {
        "prompt": body.get("prompt"),
        "width": width,
        "height": height,
        "num_images": _parse_n(body.get("n")),
        "output_format": _parse_output_format(body.get("output_format")),
    }
    if "prompt" not in body:
        fields.pop("prompt")
    if body.get("seed") is not None:
        fields["seed"] = body["seed"]
    if body.get("output_compression") is not None:
        fields["quality"] = body["output_compression"]
    return fields


def _openai_mask(data: bytes) -> bytes:
    """An OpenAI mask (repaint where transparent) as a native one (repaint where white).

    A mask without an alpha channel is passed on as is (the native convention). Bounds and
    decodability are checked when the request is validated, so a mask that does not decode is
    passed on for that check to name.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if "A" not in image.getbands() and "transparency" not in image.info:
                return data
            alpha = image.convert("RGBA").getchannel("A")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return data
    repaint = alpha.point(lambda value: 255 if value == 0 else 0)
    buffer = io.BytesIO()
    repaint.save(buffer, format="PNG")
    return buffer.getvalue()


def _number(name: str, value: Any, kind: type) -> Any:
    if value is None or isinstance(value, (int, float)):
        return value
    try:
        return kind(str(value).strip())
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise _invalid(f"{name}: must be {noun} (got {str(value)[:40]!r}).", name) from None


def to_edit_request(items: FormItems) -> dict[str, Any]:
    """Translate an OpenAI edit (multipart fields) into :class:`GenerateRequest` fields.

    Args:
        items: The form fields (files as bytes).

    Returns:
        The fields of a native request (still to be validated).

    Raises:
        InvalidRequestError: An unknown field, several images, no image, a bad ``size`` or
            ``n``, or a ``response_format`` other than ``b64_json``; ``field`` is the OpenAI
            parameter.
    """
    body: dict[str, Any] = {}
    for raw, value in items:
        name = raw.removesuffix("[]")
        if name in body:
            which = "one image (image to image)" if name == "image" else "one value"
            raise _invalid(f"{name}: this server takes {which}; got several.", name)
        body[name] = value
    _refuse_unknown(body, _EDIT_SUPPORTED, _EDIT_IGNORED)
    if "image" not in body:
        raise _invalid("image: required (the image to edit, as a file).", "image")
    for name, kind in (("n", int), ("seed", int), ("output_compression", int), ("strength", float)):
        body[name] = _number(name, body.get(name), kind)
    sized = body.get("size") not in (None, "", "auto")
    fields = to_generate_request({k: v for k, v in body.items() if k in _SUPPORTED})
    if not sized:
        fields.pop("width")
        fields.pop("height")
    fields["image"] = body["image"]
    if body.get("mask") is not None:
        mask = body["mask"]
        fields["mask"] = _openai_mask(mask) if isinstance(mask, bytes) else mask
    if body.get("strength") is not None:
        fields["strength"] = body["strength"]
    return fields


def _openai_response(result: GenerationResult) -> JSONResponse:
    data = [
        {"b64_json": base64.b64encode(image.data).decode("ascii"), "revised_prompt": None}
        for image in result.images
    ]
    return JSONResponse(
        {"created": int(time.time()), "data": data},
        headers={C.HEADER_SEED: str(result.seed)},
    )


def _media_schema(media: str, body: type[BaseModel]) -> dict[str, Any]:
    schema = body_schema(body)
    return with_files(schema, ("image", "mask")) if media.startswith("multipart/") else schema


def _route(
    router: APIRouter,
    path: str,
    summary: str,
    media: str,
    body: type[BaseModel],
    errors: tuple[tuple[int, str], ...],
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The decorator of an OpenAI-compatible route: token auth, OpenAI's error shape."""
    return router.post(
        path,
        summary=summary,
        tags=["openai"],
        dependencies=[Depends(require_api_token)],
        response_model=OpenAIImageResponse,
        responses={
            status: {"model": OpenAIErrorBody, "description": text}
            for status, text in (
                *errors,
                (401, "Missing or wrong bearer token"),
                (500, "The model failed on a valid request"),
                (503, "The model is loading, or the generation queue is full"),
            )
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {media: {"schema": _media_schema(media, body)}},
            },
            "parameters": [IDEMPOTENCY_KEY_PARAMETER, REQUEST_ID_PARAMETER],
        },
    )


def build_openai_router() -> APIRouter:
    """The OpenAI-compatible routes, to mount at ``/v1``.

    Returns:
        The router.
    """
    router = APIRouter()

    @_route(
        router,
        "/images/generations",
        "OpenAI-compatible image generation (b64_json only)",
        "application/json",
        OpenAIImageRequest,
        (
            (400, "Malformed JSON, or a malformed Idempotency-Key"),
            (413, "Body larger than the server's limit"),
            (415, "Body not sent as application/json"),
            (
                422,
                "A parameter is out of range or unsupported (`param` names it), or the "
                "Idempotency-Key was used with another request (`idempotency_key_reused`)",
            ),
        ),
    )
    async def images_generations(request: Request) -> JSONResponse:
        body = await read_json_object(request, max_bytes=max_body_of(request))
        req = validate_request(to_generate_request(body))
        return _openai_response(await _generate(request, req, "openai.images"))

    @_route(
        router,
        "/images/edits",
        "OpenAI-compatible image edits: image to image, inpainting (multipart)",
        "multipart/form-data",
        OpenAIImageEditRequest,
        (
            (400, "Malformed multipart body"),
            (413, "Body larger than the route's limit"),
            (415, "Body not multipart/form-data"),
            (
                422,
                "A parameter is out of range, an image is invalid, or the Idempotency-Key was "
                "used with another request (`idempotency_key_reused`)",
            ),
        ),
    )
    async def images_edits(request: Request) -> JSONResponse:
        if not is_multipart(request):
            raise InvalidRequestError(
                "Send an edit as multipart/form-data (the image as a file), as the OpenAI "
                "client does.",
                status_code=415,
            )
        items = await read_form(request, max_bytes=image_body_limit(max_body_of(request)))
        fields = await run_in_threadpool(to_edit_request, items)
        req = await run_in_threadpool(validate_request, fields, remote=True)
        return _openai_response(await _generate(request, req, "openai.edits"))

    return router


async def _generate(request: Request, req: GenerateRequest, scope: str) -> GenerationResult:
    result: GenerationResult = await generation_queue_of(request).run(
        service_of(request).generate,
        req,
        request_id=request_id_of(request),
        idempotency_key=idempotency_key_of(request),
        idempotency_scope=scope,
    )
    return result
