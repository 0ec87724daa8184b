"""The HTTP transport: httpx against a jaguar server (``jaguar serve`` or the Modal web endpoint).

:class:`HttpTransport` and :class:`AsyncHttpTransport` differ only in ``client.send`` vs
``await client.send``: building the request, mapping the response and mapping httpx exceptions
are the module-level helpers below, shared by both. httpx exceptions never leave this module;
they become :class:`~jaguar_sdk.JaguarError` subclasses.

Each transport holds one pooled httpx client for the life of the SDK client. A client passed in
(``http_client=``, for proxies, custom CAs, mounts...) is used as is and never closed here.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import httpx

from .. import _constants as C
from .._exceptions import (
    PHRASES,
    ConfigurationError,
    JaguarConnectionError,
    JaguarError,
    JaguarTimeoutError,
    error_from_payload,
)
from .._logging import RedactingFilter, get_logger
from .._operations import OPERATIONS
from .._version import __version__
from ._base import Call, Reply
from ._result_redirect import result_request

__all__ = [
    "AsyncHttpTransport",
    "HttpTransport",
    "build_request",
    "map_exception",
    "map_response",
    "parse_retry_after",
    "standard_headers",
]

logger = get_logger("jaguar_sdk.http")
logger.addFilter(RedactingFilter())

USER_AGENT = f"jaguar-sdk/{__version__}"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
_POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


# --- shared helpers --------------------------------------------------------------------------
def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``.

    Args:
        headers: Response headers (case-insensitive mapping).
        now: The current Unix time, for tests.

    Returns:
        Seconds (never negative), or ``None`` when absent or unparseable.

    Example:
        >>> parse_retry_after({"retry-after": "2"})
        2.0
    """
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            value = float(millis) / 1000.0
            if math.isfinite(value):
                return max(0.0, value)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
        return max(0.0, value) if math.isfinite(value) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else datetime.now(timezone.utc).timestamp()
    return max(0.0, when.timestamp() - current)


def _redacted(headers: Mapping[str, str]) -> dict[str, str]:
    shown: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            shown[name] = f"{scheme} ***".strip()
        else:
            shown[name] = value
    return shown


def standard_headers(api_key: str | None) -> dict[str, str]:
    """The headers every request carries: ``Accept``, ``User-Agent``, the schema version and,
    with a key, ``Authorization``.

    Example:
        >>> sorted(standard_headers(None))
        ['Accept', 'User-Agent', 'X-Jaguar-Schema-Version']
    """
    headers = {
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        C.HEADER_SCHEMA_VERSION: str(C.SCHEMA_VERSION),
    }
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def build_request(
    client: httpx.Client | httpx.AsyncClient,
    base_url: str,
    call: Call,
    *,
    api_key: str | None,
    standard: bool = True,
) -> httpx.Request:
    """Build the httpx request of one attempt.

    The timeout is this attempt's: the read timeout cut to what is left of the deadline, and
    the connect timeout (never longer than that either).

    Args:
        client: The httpx client that will send it.
        base_url: The server root, without a trailing slash.
        call: The call.
        api_key: The bearer token, if any (``call.headers`` may override ``Authorization``).
        standard: Add :func:`standard_headers` to this request; ``False`` when ``client``
            already sends them as its default headers (a transport's own client does: httpx
            then copies them as one block, ~20 us cheaper a call than normalising them again,
            ``httpx._client.BaseClient._merge_headers``).

    Returns:
        The request, ready for ``client.send``.
    """
    spec = OPERATIONS[call.operation]
    method, path = spec.http_method, spec.http_path
    if "{job_id}" in path:
        path = path.format(job_id=quote(call.job_id or "", safe=""))
    if call.wait is not None:  # long-poll (GET /v1/jobs/{id}?wait=S&after=N)
        path += f"?wait={call.wait:.3f}"
        if call.after_events is not None:
            path += f"&after={call.after_events}"
    headers: dict[str, str] = standard_headers(api_key) if standard else {}
    if call.request_id:
        headers[C.HEADER_REQUEST_ID] = call.request_id
    if call.idempotency_key:
        headers[C.HEADER_IDEMPOTENCY_KEY] = call.idempotency_key
    headers.update(call.headers)
    read = call.attempt_timeout()
    connect = call.connect_timeout
    if read is not None and connect is not None:
        connect = min(connect, read)
    content: bytes | None = None
    if call.request is not None:
        # Only the fields the caller set (the server's defaults apply to the rest).
        document = call.request.wire_fields(mode="json")
        if call.webhook_url is not None:
            document["webhook_url"] = call.webhook_url
        content = json.dumps(document, separators=(",", ":")).encode("utf-8")
        headers["Content-Type"] = "application/json"
    request = client.build_request(
        method,
        f"{base_url}{path}",
        headers=headers,
        content=content,
        timeout=httpx.Timeout(read, connect=connect),
    )
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "-> %s %s headers=%s timeout(read=%s, connect=%s)",
            method,
            request.url,
            _redacted(request.headers),
            read,
            connect,
        )
    return request


def map_response(call: Call, response: httpx.Response, started: float) -> Reply:
    """Turn a response into a :class:`Reply`, or raise the matching :class:`JaguarError`.

    Args:
        call: The call answered.
        response: The (fully read) response.
        started: ``time.monotonic()`` when the attempt began, for the debug log.

    Returns:
        The reply holding the JSON document.

    Raises:
        JaguarError: The mapped error of a non-2xx answer (with status, request id and
            Retry-After), or of a 2xx answer that is not JSON.
    """
    request_id = response.headers.get(C.HEADER_REQUEST_ID) or call.request_id
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "<- %s %s in %.1f ms [request_id=%s]",
            response.status_code,
            response.reason_phrase,
            (time.monotonic() - started) * 1000,
            request_id,
        )
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = content_type == "application/json" or content_type.endswith("+json")
    if response.is_success:
        if not is_json:
            raise JaguarError(
                f"The server answered {call.operation} with {content_type or 'no content type'}"
                " instead of JSON. Check that base_url is the root of a jaguar server.",
                status_code=response.status_code,
                request_id=request_id,
                code="malformed_response",
            )
        return Reply(data=response.content, is_json=True, request_id=request_id)
    payload: Mapping[str, Any] | None = None
    if is_json:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            payload = body["error"]
    if payload is None:
        snippet = " ".join(response.text.split())[:200]
        payload = {
            "message": f"The server answered HTTP {response.status_code} "
            f"{response.reason_phrase}" + (f": {snippet}" if snippet else ".")
        }
    raise error_from_payload(
        payload,
        status_code=response.status_code,
        request_id=request_id,
        retry_after=parse_retry_after(response.headers),
    )


def map_exception(call: Call, base_url: str, exc: httpx.HTTPError) -> JaguarError:
    """Map an httpx exception onto the SDK's errors.

    Args:
        call: The call that failed.
        base_url: The server root, for the message.
        exc: What httpx raised.

    Returns:
        :class:`JaguarTimeoutError` for timeouts (code ``"deadline_exceeded"`` when the call's
        deadline is what ran out), :class:`ConfigurationError` for a malformed URL,
        :class:`JaguarConnectionError` for everything else.
    """
    rid = call.request_id
    if isinstance(exc, httpx.TimeoutException):
        left = call.remaining()
        if left is not None and left <= 0.01:
            return JaguarTimeoutError(
                f"{call.operation} did not finish before its deadline ({type(exc).__name__} "
                f"talking to {base_url}).",
                request_id=rid,
                code="deadline_exceeded",
            )
        phase = "connecting to" if isinstance(exc, httpx.ConnectTimeout) else "waiting for"
        limit = call.connect_timeout if isinstance(exc, httpx.ConnectTimeout) else call.read_timeout
        return JaguarTimeoutError(
            f"Timed out {phase} {base_url} ({type(exc).__name__} after {limit}s). A cold start "
            f"can take minutes: {PHRASES['timeout']}{PHRASES['deadline']}.",
            request_id=rid,
        )
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return ConfigurationError(f"Bad base_url {base_url!r}: {exc}", request_id=rid)
    detail = str(exc) or type(exc).__name__
    return JaguarConnectionError(
        f"Could not talk to {base_url}: {type(exc).__name__}: {detail}. Check that the server "
        "is running and base_url is right.",
        request_id=rid,
    )


def _client_options(
    connect_timeout: float | None, headers: Mapping[str, str] | None, api_key: str | None
) -> Any:
    return {
        "timeout": httpx.Timeout(C.DEFAULT_READ_TIMEOUT_S, connect=connect_timeout),
        "limits": _POOL_LIMITS,
        "headers": {**standard_headers(api_key), **(headers or {})},
        "follow_redirects": False,
    }


class _HttpBase:
    name = "http"
    #: ``generate_many`` sends direct calls: one round trip per item, queued by the server at
    #: its GPU lock; a job costs three (submit, long-polled status, result) for the same
    #: throughput (``python -m benchmarks --only concurrency``), and on the Modal web endpoint
    #: each status call would wait for a GPU container's input slot.
    batch_via_jobs = False

    def __init__(self, base_url: str, api_key: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._owns_client = True

    def _build(self, client: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
        return build_request(
            client, self.base_url, call, api_key=self._api_key, standard=not self._owns_client
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"api_key={'set' if self._api_key else None})"
        )


# --- transports ------------------------------------------------------------------------------
class HttpTransport(_HttpBase):
    """Blocking HTTP transport over one pooled ``httpx.Client`` (thread-safe).

    Args:
        base_url: The server root, e.g. ``"http://127.0.0.1:8000"``.
        api_key: Bearer token sent as ``Authorization: Bearer ...``.
        connect_timeout: Default connect timeout of the client it creates.
        headers: Extra headers on every request.
        http_client: An ``httpx.Client`` to use instead of creating one; not closed by us.

    Example:
        >>> transport = HttpTransport("http://127.0.0.1:8000")  # doctest: +SKIP
        >>> JaguarClient(transport=transport).health()           # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        connect_timeout: float | None = C.DEFAULT_CONNECT_TIMEOUT_S,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, api_key)
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise ConfigurationError(
                "http_client= must be an httpx.Client for JaguarClient "
                "(an httpx.AsyncClient goes with AsyncJaguarClient)."
            )
        self._owns_client = http_client is None
        self._client = http_client or httpx.Client(
            **_client_options(connect_timeout, headers, api_key)
        )

    def send(self, call: Call) -> Reply:
        """Send one attempt.

        Raises:
            JaguarError: The mapped failure; httpx exceptions never escape.
        """
        started = time.monotonic()
        try:
            request = self._build(self._client, call)
            response = self._client.send(request)
            hops = 0
            # Modal's 150 s limit: a 303 to the result URL is followed with GET, never re-POSTed.
            while (
                follow := result_request(self._client, call, request, response, hops)
            ) is not None:
                request, hops = follow, hops + 1
                response = self._client.send(request)
        except httpx.HTTPError as exc:
            raise map_exception(call, self.base_url, exc) from exc
        return map_response(call, response, started)

    def close(self) -> None:
        """Close the connection pool (unless the httpx client was passed in)."""
        if self._owns_client:
            self._client.close()


class AsyncHttpTransport(_HttpBase):
    """asyncio HTTP transport over one pooled ``httpx.AsyncClient``.

    Args:
        base_url: The server root, e.g. ``"http://127.0.0.1:8000"``.
        api_key: Bearer token sent as ``Authorization: Bearer ...``.
        connect_timeout: Default connect timeout of the client it creates.
        headers: Extra headers on every request.
        http_client: An ``httpx.AsyncClient`` to use instead of creating one; not closed by us.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        connect_timeout: float | None = C.DEFAULT_CONNECT_TIMEOUT_S,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, api_key)
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                "http_client= must be an httpx.AsyncClient for AsyncJaguarClient "
                "(an httpx.Client goes with JaguarClient)."
            )
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(
            **_client_options(connect_timeout, headers, api_key)
        )

    async def send(self, call: Call) -> Reply:
        """Send one attempt.

        Raises:
            JaguarError: The mapped failure; httpx exceptions never escape.
        """
        started = time.monotonic()
        try:
            request = self._build(self._client, call)
            response = await self._client.send(request)
            hops = 0
            # Modal's 150 s limit: a 303 to the result URL is followed with GET, never re-POSTed.
            while (
                follow := result_request(self._client, call, request, response, hops)
            ) is not None:
                request, hops = follow, hops + 1
                response = await self._client.send(request)
        except httpx.HTTPError as exc:
            raise map_exception(call, self.base_url, exc) from exc
        return map_response(call, response, started)

    async def aclose(self) -> None:
        """Close the connection pool (unless the httpx client was passed in)."""
        if self._owns_client:
            await self._client.aclose()
