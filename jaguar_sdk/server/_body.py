"""Reading a JSON request body ourselves: bounded in size, with our error format.

Routes take the body as a plain dict and validate it with the wire contract, so FastAPI's own
422 format never reaches a client, and every failure names what to fix.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request

from .._exceptions import InvalidRequestError
from .._logging import escape_controls

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
        data = json.loads(raw, parse_float=_json_number)
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
    _refuse_lone_surrogates(data)
    return data


def _json_number(text: str) -> float | int:
    """A JSON number with a fraction or exponent: an int when it has no fractional part.

    JSON has one number type and JSON Schema counts ``64.0`` as an integer, so the server
    does too (``{"width": 64.0}`` is a width of 64); ``64.5`` stays a float and is refused
    where an integer is required.
    """
    value = float(text)
    return int(value) if value.is_integer() else value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_lone_surrogates(body: dict[str, Any]) -> None:
    """422 for a key or string holding a lone surrogate (``"\\ud800"`` in the JSON text).

    JSON's ``\\u`` escapes can spell half a UTF-16 pair, which is no character: Python keeps it
    as a lone surrogate that cannot be encoded as UTF-8. Refused here, once, naming the
    top-level field (escaped, so the error itself always renders), before any route quotes it.
    """
    stack: list[tuple[str, Any]] = []
    for key, value in body.items():
        if _SURROGATE.search(key):
            field = escape_controls(key)
            raise InvalidRequestError(
                f"{field}: this key holds a lone surrogate, which is not valid Unicode; "
                "send the body as UTF-8 text.",
                field=field,
            )
        stack.append((key, value))
    while stack:
        field, value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise InvalidRequestError(
                    f"{field}: the value holds a lone surrogate "
                    f"({escape_controls(_SURROGATE.findall(value)[0])}), which is not valid "
                    "Unicode; send the body as UTF-8 text.",
                    field=field,
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                stack.append((field, key))
                stack.append((field, item))
        elif isinstance(value, list):
            stack.extend((field, item) for item in value)


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
