"""Error responses: every failure leaves the server as the one JSON error envelope.

``{"error": {"code", "message", "field", "request_id"}, "schema_version": 1}`` comes from
:meth:`JaguarError.to_payload`, so the client maps it back with ``error_from_payload``. The
OpenAI-compatible routes (``/v1/images/...``) answer in OpenAI's shape instead:
``{"error": {"message", "type", "param", "code"}}``.

FastAPI's own error formats (its 422 validation list, Starlette's plain-text 404) never leak:
the handlers here translate them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import _constants as C
from .._exceptions import (
    InvalidRequestError,
    JaguarConnectionError,
    JaguarError,
    JaguarTimeoutError,
    NotFoundError,
    NotReadyError,
    RateLimitError,
    ServerError,
)
from .._logging import get_logger

__all__ = [
    "DEFAULT_RETRY_AFTER_S",
    "OPENAI_PATH_PREFIX",
    "REQUEST_ID_SCOPE_KEY",
    "ErrorBody",
    "ErrorDetail",
    "error_response",
    "install_error_handlers",
    "is_openai_path",
    "request_id_of",
    "status_of",
]

logger = get_logger("jaguar_sdk.server")

#: Seconds a 503 "not ready" asks the client to wait before retrying.
DEFAULT_RETRY_AFTER_S = 5
#: Routes under this prefix answer errors in OpenAI's shape.
OPENAI_PATH_PREFIX = "/v1/images/"

#: Scope key where the request-id middleware stores the request's id.
REQUEST_ID_SCOPE_KEY = "jaguar.request_id"


class ErrorDetail(BaseModel):
    """The ``error`` object of an error response (documented in the OpenAPI schema)."""

    code: str
    message: str
    field: str | None = None
    request_id: str | None = None


class ErrorBody(BaseModel):
    """Every error response of the native routes."""

    error: ErrorDetail
    schema_version: int = C.SCHEMA_VERSION


def request_id_of(request: Request) -> str | None:
    """The id the request-id middleware gave this request, if it ran."""
    value = request.scope.get(REQUEST_ID_SCOPE_KEY)
    return value if isinstance(value, str) else None


def status_of(exc: JaguarError) -> int:
    """The HTTP status for an error: its own ``status_code``, else a default per class.

    Args:
        exc: The error.

    Returns:
        422 for invalid input without a status, 504 for timeouts, 502 for connection errors,
        500 otherwise.
    """
    if exc.status_code is not None:
        return exc.status_code
    if isinstance(exc, InvalidRequestError):
        return 422
    if isinstance(exc, JaguarTimeoutError):
        return 504
    if isinstance(exc, JaguarConnectionError):
        return 502
    if exc.code == "not_found":
        return 404
    return 500


def _retry_after(exc: JaguarError, status: int) -> int | None:
    if isinstance(exc, (RateLimitError, ServerError)) and exc.retry_after is not None:
        return max(1, round(exc.retry_after))
    if isinstance(exc, NotReadyError) or status == 503:
        return DEFAULT_RETRY_AFTER_S
    return None


_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}

_OPENAI_PARAMS = {
    "num_images": "n",
    "width": "size",
    "height": "size",
    "quality": "output_compression",
}


def _renderable(value: Any) -> Any:
    """``value`` with anything UTF-8 cannot encode (lone surrogates) written as escapes, so
    an error message never fails to render what it quotes."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_renderable(k): _renderable(v) for k, v in value.items()}
    return value


def _openai_body(exc: JaguarError, status: int) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else _OPENAI_TYPES.get(status, "invalid_request_error")
    field = getattr(exc, "field", None)
    return {
        "error": {
            "message": exc.message,
            "type": kind,
            "param": _OPENAI_PARAMS.get(field, field) if field else None,
            "code": exc.code,
        }
    }


def is_openai_path(path: str) -> bool:
    """Whether a path's errors are answered in OpenAI's shape."""
    return path.startswith(OPENAI_PATH_PREFIX)


def error_response(
    exc: JaguarError,
    *,
    request_id: str | None = None,
    openai: bool = False,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Render a :class:`JaguarError` as a JSON response.

    Args:
        exc: The error; its ``request_id`` is filled in from ``request_id`` when unset.
        request_id: The id of the request that failed.
        openai: Answer in OpenAI's error shape instead of the native envelope.
        headers: Extra headers (e.g. ``Allow`` for a 405).

    Returns:
        The response, with ``X-Request-ID``, ``X-Jaguar-Schema-Version`` and, for 503 and
        429, ``Retry-After``; 401 responses carry ``WWW-Authenticate: Bearer``.
    """
    if exc.request_id is None:
        exc.request_id = request_id
    status = status_of(exc)
    out: dict[str, str] = dict(headers or {})
    out[C.HEADER_SCHEMA_VERSION] = str(C.SCHEMA_VERSION)
    if exc.request_id:
        out[C.HEADER_REQUEST_ID] = exc.request_id
    retry_after = _retry_after(exc, status)
    if retry_after is not None:
        out["Retry-After"] = str(retry_after)
    if status == 401:
        out["WWW-Authenticate"] = "Bearer"
    if openai:
        body = _openai_body(exc, status)
    else:
        body = {"error": exc.to_payload(), "schema_version": C.SCHEMA_VERSION}
    return JSONResponse(_renderable(body), status_code=status, headers=out)


def _is_openai(request: Request) -> bool:
    return is_openai_path(request.url.path)


async def _jaguar_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JaguarError)
    status = status_of(exc)
    if status >= 500:
        logger.warning(
            "%s %s failed: %s [request_id=%s]",
            request.method,
            request.url.path,
            exc.code,
            request_id_of(request),
        )
    return error_response(exc, request_id=request_id_of(request), openai=_is_openai(request))


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    err: JaguarError
    if status == 404:
        err = NotFoundError(
            f"No route {request.method} {request.url.path}. The API lives under /v1 "
            "(see /docs for the list of routes)."
        )
    elif status == 405:
        allowed = headers.get("Allow") or headers.get("allow")
        hint = f" Allowed: {allowed}." if allowed else ""
        err = JaguarError(
            f"Method {request.method} is not allowed on {request.url.path}.{hint}",
            status_code=405,
            code="method_not_allowed",
        )
    elif status == 413:
        err = InvalidRequestError(str(exc.detail), status_code=413, code="payload_too_large")
    elif status < 500:
        err = InvalidRequestError(str(exc.detail), status_code=status)
    else:
        err = ServerError("The server failed; retry later.", status_code=status)
    keep = {k: v for k, v in headers.items() if k.lower() in ("allow", "retry-after")}
    return error_response(
        err, request_id=request_id_of(request), openai=_is_openai(request), headers=keep
    )


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # Routes parse their bodies themselves; this only catches FastAPI-validated parameters.
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "header", "query", "path")]
    field = loc[0] if loc else None
    message = str(first.get("msg", "invalid request"))
    err = InvalidRequestError(f"{field}: {message}" if field else message, field=field)
    return error_response(err, request_id=request_id_of(request), openai=_is_openai(request))


async def _unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # Never a traceback on the wire: log it, answer a generic message with the request id.
    rid = request_id_of(request)
    logger.error(
        "unhandled error on %s %s [request_id=%s]",
        request.method,
        request.url.path,
        rid,
        exc_info=exc,
    )
    err = ServerError(
        "Internal server error. Report the request id if it persists.", code="internal_error"
    )
    return error_response(err, request_id=rid, openai=_is_openai(request))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the JSON error envelope.

    Args:
        app: The application.
    """
    app.add_exception_handler(JaguarError, _jaguar_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)
