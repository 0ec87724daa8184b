"""Request context: a request id on every request and response, one log line per request.

A pure ASGI middleware (no ``BaseHTTPMiddleware``), so it adds no task or buffering to
responses.
"""

from __future__ import annotations

import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import _constants as C
from .._exceptions import ServerError
from .._logging import get_logger
from ._errors import REQUEST_ID_SCOPE_KEY, error_response, is_openai_path
from ._service import new_request_id

__all__ = ["RequestContextMiddleware", "sane_request_id"]

logger = get_logger("jaguar_sdk.server")

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it is a usable request id (1-128 of ``[A-Za-z0-9._-]``), else ``None``.

    Example:
        >>> sane_request_id("req_1"), sane_request_id("bad id!")
        ('req_1', None)
    """
    if value is not None and _REQUEST_ID_RE.fullmatch(value):
        return value
    return None


class RequestContextMiddleware:
    """Gives each HTTP request an id and logs one line when it finishes.

    The id is the client's ``X-Request-ID`` when it is sane, else a fresh one. It is stored in
    the ASGI scope for the routes and error handlers, and sent back as ``X-Request-ID`` together
    with ``X-Jaguar-Schema-Version`` on every response. An exception that escapes the app
    becomes a 500 JSON error with no traceback.

    Args:
        app: The wrapped ASGI app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        header = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                header = value.decode("latin-1")
                break
        request_id = sane_request_id(header) or new_request_id()
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"x-request-id", b"x-jaguar-schema-version")
                ]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.append(
                    (b"x-jaguar-schema-version", str(C.SCHEMA_VERSION).encode("latin-1"))
                )
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception(
                "unhandled error on %s %s [request_id=%s]",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
            if not response_started:
                err = ServerError(
                    "Internal server error. Report the request id if it persists.",
                    code="internal_error",
                )
                openai = is_openai_path(str(scope.get("path", "")))
                await error_response(err, request_id=request_id, openai=openai)(
                    scope, receive, send
                )
                status = 500
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.info(
                "%s %s %d %.1fms [request_id=%s]",
                scope.get("method"),
                scope.get("path"),
                status,
                elapsed_ms,
                request_id,
            )
