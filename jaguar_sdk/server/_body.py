"""Reading a JSON request body ourselves: bounded in size, with our error format.

Routes take the body as a plain dict and validate it with the wire contract, so FastAPI's own
422 format never reaches a client, and every failure names what to fix.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from .._exceptions import InvalidRequestError

__all__ = ["parse_json_object", "read_body", "read_json_object"]


def _too_large(limit: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"The request body is larger than the server's limit of {limit} bytes.",
        status_code=413,
        code="payload_too_large",
    )


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return  # tolerated: a body with no declared type is read as JSON
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    raise InvalidRequestError(
        f"Unsupported content type {media[:60]!r}: send the body as JSON with "
        "'Content-Type: application/json'.",
        status_code=415,
    )


async def read_json_object(request: Request, *, max_bytes: int) -> dict[str, Any]:
    """Read the body as a JSON object, never holding more than ``max_bytes`` of it.

    ``NaN`` and ``Infinity`` are parsed (as Python floats) so that the contract rejects them with
    a field-specific message instead of a generic parse error.

    Args:
        request: The incoming request.
        max_bytes: The largest body accepted.

    Returns:
        The parsed object.

    Raises:
        InvalidRequestError: 413 when the body is too large (by ``Content-Length`` or as
            streamed), 415 for a non-JSON content type, 400 for malformed JSON or a body that
            is not a JSON object.
    """
    return parse_json_object(await read_body(request, max_bytes=max_bytes))


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The raw body of a JSON request, never holding more than ``max_bytes`` of it.

    Raises:
        InvalidRequestError: 413 when the body is too large (by ``Content-Length`` or as
            streamed), 415 for a non-JSON content type.
    """
    _check_content_type(request)
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise InvalidRequestError("Malformed Content-Length header.", status_code=400) from None
        if length > max_bytes:
            raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a body as a JSON object.

    Raises:
        InvalidRequestError: 400 for an empty body, malformed JSON or not an object.
    """
    if not raw.strip():
        raise InvalidRequestError(
            'The request body is empty: send a JSON object such as {"prompt": "a cat"}.',
            status_code=400,
            code="invalid_json",
        )
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        where = (
            f" (line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise InvalidRequestError(
            f"The request body is not valid JSON{where}: send a JSON object.",
            status_code=400,
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequestError(
            f"The request body must be a JSON object, not a JSON {_json_kind(data)}.",
            status_code=400,
        )
    return data


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
