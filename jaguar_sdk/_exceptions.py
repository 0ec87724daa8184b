"""Every error a user of jaguar_sdk can see, under one base class, grouped by kind.

Transports (HTTP, Modal, in-process) never let their own exceptions escape: they map them onto
these classes, so ``except jaguar_sdk.JaguarError`` catches every failure of a call, and the
subclass says what went wrong. Three intermediate classes group them by kind, as openai-python
and httpx do::

    JaguarError
    ├── ClientSideError            found here, before or without asking the server
    │   ├── ConfigurationError     no backend configured, a missing extra, a bad setting
    │   ├── InvalidRequestError    a field out of range (a server with other bounds: 400/422)
    │   ├── IncompatibleVersionError
    │   └── WebhookVerificationError
    ├── JaguarConnectionError      no usable answer: unreachable, refused, dropped
    │   └── JaguarTimeoutError     an attempt's timeout or the call's deadline
    └── APIStatusError             an answer that is an error (``status_code`` where HTTP)
        ├── AuthenticationError (401) └── PermissionDeniedError (403)
        ├── NotFoundError (404)
        ├── RateLimitError (429)
        ├── ServerError (5xx)  └── NotReadyError (503)
        ├── GenerationError (500: the model failed on a valid request)
        └── JobCancelledError, JobPendingError (409)

Each error carries the HTTP status (where there is one), the request id (where
the server assigned one), a stable machine-readable ``code``, and a message that says what to do.

The same classes are used on the server to produce the JSON error body, so the mapping
``status/code <-> class`` lives here and only here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "PHRASES",
    "APIStatusError",
    "AuthenticationError",
    "ClientSideError",
    "ConfigurationError",
    "GenerationError",
    "IncompatibleVersionError",
    "InvalidRequestError",
    "JaguarConnectionError",
    "JaguarError",
    "JaguarTimeoutError",
    "JobCancelledError",
    "JobPendingError",
    "NotFoundError",
    "NotReadyError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "WebhookVerificationError",
    "error_from_payload",
]


class JaguarError(Exception):
    """Base class of every jaguar_sdk error.

    Attributes:
        message: What went wrong and what to do next.
        status_code: The HTTP status, where the failure came from an HTTP response.
        request_id: The id the server gave the request, where one was assigned.
        code: A stable machine-readable code, e.g. ``"invalid_request"``.
    """

    default_code = "error"
    default_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code if status_code is not None else self.default_status
        self.request_id = request_id
        self.code = code or self.default_code

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None:
            parts.append(f"(HTTP {self.status_code})")
        if self.request_id:
            parts.append(f"[request_id={self.request_id}]")
        return " ".join(parts)

    def to_payload(self) -> dict[str, Any]:
        """The plain-data error body the server sends and the client parses back."""
        return {
            "code": self.code,
            "message": self.message,
            "field": getattr(self, "field", None),
            "request_id": self.request_id,
        }


class ClientSideError(JaguarError):
    """Found in this process before (or without) a server answering with an error."""


class JaguarConnectionError(JaguarError, ConnectionError):
    """The server could not be reached, or the connection broke. Retried automatically."""

    default_code = "connection_error"


class JaguarTimeoutError(JaguarConnectionError, TimeoutError):
    """A timeout or the call's total deadline ran out. Also a builtin ``TimeoutError``."""

    default_code = "timeout"


class APIStatusError(JaguarError):
    """The server or deployment answered, and the answer is an error."""


class ConfigurationError(ClientSideError):
    """The client does not know how to reach a model, or a setting is malformed."""

    default_code = "configuration_error"


class InvalidRequestError(ClientSideError, ValueError):
    """The request broke a documented bound. Raised by the client before any network call,
    and by the server (HTTP 422, 413 for an oversized body) as a second line of defence.

    Attributes:
        field: The request field at fault (e.g. ``"width"``), or ``None`` for the whole body.
    """

    default_code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, request_id=request_id, code=code)
        self.field = field


class AuthenticationError(APIStatusError):
    """The server refused the credentials (HTTP 401), or none were configured."""

    default_code = "unauthorized"
    default_status = 401


class PermissionDeniedError(AuthenticationError):
    """The credentials are valid but not allowed to do this (HTTP 403)."""

    default_code = "forbidden"
    default_status = 403


class NotFoundError(APIStatusError):
    """The route, app, class or job does not exist (HTTP 404, or a Modal app not deployed)."""

    default_code = "not_found"
    default_status = 404


class RateLimitError(APIStatusError):
    """Too many requests (HTTP 429). Retried automatically, honouring Retry-After.

    Attributes:
        retry_after: Seconds the server asked to wait, where it said.
    """

    default_code = "rate_limited"
    default_status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """The server failed (HTTP 5xx). 502/503/504 are retried automatically.

    Attributes:
        retry_after: Seconds the server asked to wait (503 with Retry-After), where it said.
    """

    default_code = "server_error"
    default_status = 500

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class NotReadyError(ServerError):
    """The model is still loading (HTTP 503). Retried automatically."""

    default_code = "not_ready"
    default_status = 503


class GenerationError(APIStatusError):
    """The model itself failed while generating (the request was valid)."""

    default_code = "generation_failed"
    default_status = 500


class IncompatibleVersionError(ClientSideError):
    """The client and the server speak different wire-schema versions."""

    default_code = "incompatible_version"
    default_status = 400


class JobCancelledError(APIStatusError):
    """The job was cancelled before it finished, so it has no result (HTTP 409)."""

    default_code = "job_cancelled"
    default_status = 409


class JobPendingError(APIStatusError):
    """The job's result was asked for before the job finished (HTTP 409); wait first."""

    default_code = "job_pending"
    default_status = 409


class WebhookVerificationError(ClientSideError):
    """A webhook delivery failed verification: bad or missing signature, or a stale timestamp.

    Raised by :func:`jaguar_sdk.webhooks.verify`; answer the sender with HTTP 400.
    """

    default_code = "webhook_verification_failed"
    default_status = 400


_CODE_TO_CLASS: dict[str, type[JaguarError]] = {
    cls.default_code: cls
    for cls in (
        ConfigurationError,
        InvalidRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        RateLimitError,
        ServerError,
        NotReadyError,
        GenerationError,
        JaguarTimeoutError,
        IncompatibleVersionError,
        JobCancelledError,
        JobPendingError,
        WebhookVerificationError,
    )
}
_CODE_TO_CLASS["payload_too_large"] = InvalidRequestError
#: The job store is full: refused with 429 (retried with backoff), never dropped silently.
_CODE_TO_CLASS["job_store_full"] = RateLimitError
#: A job whose result the backend no longer keeps (Modal: ``OutputExpiredError``), HTTP 410.
_CODE_TO_CLASS["job_expired"] = NotFoundError


def _class_for_status(status: int | None) -> type[JaguarError]:
    if status is None:
        return JaguarError
    if status in (400, 413, 422):
        return InvalidRequestError
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status in (404, 410):
        return NotFoundError
    if status in (408, 504):
        return JaguarTimeoutError
    if status == 429:
        return RateLimitError
    if status == 503:
        return NotReadyError
    if status >= 500:
        return ServerError
    return JaguarError


#: How a message tells the reader to change a setting, in the Python API's words. Messages are
#: written once with these phrases; the command line shows the same messages with each phrase
#: swapped for its flag (``jaguar_sdk.cli._wording``, same keys).
PHRASES: dict[str, str] = {
    "http": "JaguarClient(base_url='http://host:8000', api_key=...)",
    "modal": "JaguarClient.from_modal()",
    "local": "JaguarClient.local(model='tiny')",
    "api_key": "pass api_key=...",
    "admin_key": "admin_key=...",
    "timeout": "raise timeout=",
    "deadline": " or use deadline=",
}

_HINTS: dict[type[JaguarError], str] = {
    AuthenticationError: (
        f"Check the token: {PHRASES['api_key']} (admin routes: {PHRASES['admin_key']}) or set "
        "JAGUAR_API_KEY."
    ),
    PermissionDeniedError: "This token may not use this route; admin routes need the admin token.",
    NotFoundError: "Check the base URL (it should be the server root) and the server version.",
    RateLimitError: "Slow down, or raise the deployment's max_containers.",
    NotReadyError: "The model is loading; the client retries automatically, or try again shortly.",
    ServerError: "The server failed; retry later and report the request id if it persists.",
    GenerationError: "The request was valid but the model failed; report the request id.",
}


def error_from_payload(
    payload: Mapping[str, Any] | None,
    *,
    status_code: int | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> JaguarError:
    """Build the matching :class:`JaguarError` from a server error body.

    Args:
        payload: The ``error`` object of a response body (``code``, ``message``, ``field``,
            ``request_id``), or ``None`` when the body was not JSON.
        status_code: The HTTP status, where there was one.
        request_id: The request id from the response headers, used when the body has none.
        retry_after: Seconds from a Retry-After header, for rate-limit and 503 errors.

    Returns:
        The error instance; the caller raises it.
    """
    body = dict(payload or {})
    code = body.get("code")
    cls = _CODE_TO_CLASS.get(code) if isinstance(code, str) else None
    if cls is None:
        cls = _class_for_status(status_code)
    message = str(body.get("message") or f"The server answered HTTP {status_code}.")
    hint = _HINTS.get(cls)
    if hint and hint not in message:
        message = f"{message} {hint}"
    rid = body.get("request_id") or request_id
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "request_id": str(rid) if rid else None,
        "code": code if isinstance(code, str) else None,
    }
    if issubclass(cls, InvalidRequestError):
        field = body.get("field")
        return cls(message, field=str(field) if field else None, **kwargs)
    if issubclass(cls, (RateLimitError, ServerError)):
        return cls(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)
