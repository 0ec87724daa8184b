"""Request bodies that may carry input images: JSON (base64) or multipart/form-data (files).

The routes that take images (``/v1/generate``, ``/v1/jobs``, ``/v1/images/edits``) accept a
larger body than the others, and only as much larger as two input images need
(:func:`image_body_limit`): the limit of the app plus two base64-encoded images of
:data:`~jaguar_sdk._inputs.MAX_INPUT_IMAGE_BYTES` and room for multipart headers. What is not
an image stays bounded by the app's limit: a JSON body larger than it must hold ``image`` or
``mask`` (checked before parsing), and without their base64 text it must fit the limit.

Multipart parsing is Starlette's (``starlette.formparsers.MultiPartParser``, which needs
``python-multipart``), fed from a stream that stops at the limit, so a body without a
``Content-Length`` is bounded too. Text fields are turned into the request's types here (a form
field is always text): integers for integer fields, numbers for number fields, repeated
``loras`` fields into a list.
"""

from __future__ import annotations

import json
import typing
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Request

from .._exceptions import InvalidRequestError
from .._inputs import IMAGE_FIELDS, MAX_INPUT_IMAGE_BYTES
from .._request import GenerateRequest
from ._body import parse_json_object, read_body
from ._schema import body_schema, with_files

__all__ = [
    "FormItems",
    "image_body_limit",
    "is_multipart",
    "multipart_schema",
    "read_form",
    "read_request_body",
    "request_fields_from_form",
]

#: Form fields in order: ``(name, text or file bytes)``.
FormItems = list[tuple[str, str | bytes]]

_MULTIPART_OVERHEAD = 16 * 1024  # boundaries and part headers of a few dozen fields


def image_body_limit(base: int) -> int:
    """The body limit of a route that takes images: ``base`` plus two base64 images.

    Example:
        >>> image_body_limit(65536)
        28043952
    """
    base64_image = -(-MAX_INPUT_IMAGE_BYTES // 3) * 4
    return base + 2 * base64_image + _MULTIPART_OVERHEAD


def multipart_schema(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI schema of a multipart request body: the request's fields, images as files.

    Args:
        schema: The JSON body's schema (default: the request's), whose fields become form
            fields.
    """
    base = with_files(schema or body_schema(), IMAGE_FIELDS)
    properties = dict(base["properties"])
    properties["loras"] = {
        "type": "array",
        "items": {"type": "string"},
        "description": "One field per adapter: 'owner/name[:scale]', 'volume:<path>[:scale]' "
        "or a JSON object.",
    }
    return {**base, "properties": properties}


def is_multipart(request: Request) -> bool:
    """Whether the body is ``multipart/form-data``."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "multipart/form-data"


def _too_large(limit: int, base: int | None = None) -> InvalidRequestError:
    what = (
        f"its fields other than the images are larger than the limit of {base} bytes"
        if base is not None
        else f"it is larger than this route's limit of {limit} bytes"
    )
    return InvalidRequestError(
        f"The request body is too large: {what} (input images are limited to "
        f"{MAX_INPUT_IMAGE_BYTES} bytes each).",
        status_code=413,
        code="payload_too_large",
    )


async def _bounded(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk


async def read_form(request: Request, *, max_bytes: int) -> FormItems:
    """Read a multipart/form-data body, never more than ``max_bytes`` of it.

    Returns:
        The fields in order; files as their bytes, text fields as text.

    Raises:
        InvalidRequestError: 413 above the limit, 400 for a malformed body.
    """
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    parser = MultiPartParser(
        request.headers,
        _bounded(request, max_bytes),
        max_files=4,
        max_fields=64,
        max_part_size=64 * 1024,  # a text field; files are bounded by max_bytes
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequestError(
            f"The multipart body is malformed: {exc.message}", status_code=400
        ) from None
    try:
        items: FormItems = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                items.append((name, await value.read()))
            else:
                items.append((name, value))
        return items
    finally:
        await form.close()


def _kind(name: str) -> type | None:
    info = GenerateRequest.model_fields.get(name)
    if info is None:
        return None
    annotation = info.annotation
    members = typing.get_args(annotation) if typing.get_origin(annotation) else (annotation,)
    plain = {typing.get_args(m)[0] if typing.get_args(m) else m for m in members}
    return next((t for t in (int, float) if t in plain), None)


def _convert(name: str, value: str | bytes) -> Any:
    kind = _kind(name)
    if isinstance(value, bytes) or kind is None:
        return value
    text = value.strip()
    if text.lower() in ("", "null", "none") and name == "seed":
        return None
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise InvalidRequestError(
            f"{name}: must be {noun} (got {text[:40]!r})", field=name
        ) from None


def _lora(value: str | bytes) -> Any:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    text = text.strip()
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidRequestError(
                "loras: a form field holding JSON must be valid JSON", field="loras"
            ) from None
    return text


def request_fields_from_form(items: FormItems) -> dict[str, Any]:
    """The request fields of a multipart body: each field once, in the request's types.

    ``loras`` may repeat (one adapter per field, its string form or a JSON object) or hold a
    JSON list; ``image`` and ``mask`` are files (or base64 text).

    Raises:
        InvalidRequestError: A field given twice, or text that is not of the field's type.
    """
    fields: dict[str, Any] = {}
    loras: list[Any] = []
    for raw_name, value in items:
        name = raw_name.removesuffix("[]")
        if name == "loras":
            parsed = _lora(value)
            loras.extend(parsed if isinstance(parsed, list) else [parsed])
            continue
        if name in fields:
            raise InvalidRequestError(f"{name}: given more than once", field=name)
        fields[name] = _convert(name, value)
    if loras:
        fields["loras"] = loras
    return fields


async def read_request_body(request: Request, *, base_bytes: int) -> dict[str, Any]:
    """The body of a route that takes a request with images: JSON or multipart/form-data.

    Args:
        request: The request.
        base_bytes: The app's body limit: what the body may hold besides its images.

    Raises:
        InvalidRequestError: 413 above :func:`image_body_limit`, or for fields other than the
            images above ``base_bytes``; 400/415 for a malformed body; 422 for a form field of
            the wrong type.
    """
    limit = image_body_limit(base_bytes)
    if is_multipart(request):
        return request_fields_from_form(await read_form(request, max_bytes=limit))
    raw = await read_body(request, max_bytes=limit)
    if len(raw) > base_bytes and not any(f'"{name}"'.encode() in raw for name in IMAGE_FIELDS):
        raise _too_large(base_bytes)  # no image to make room for: the ordinary limit
    body = parse_json_object(raw)
    images = sum(len(v) for name in IMAGE_FIELDS if isinstance(v := body.get(name), str))
    if len(raw) - images > base_bytes:
        raise _too_large(limit, base_bytes)
    return body
