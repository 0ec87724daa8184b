"""The seam between the client's shared core and the ways of reaching a model.

A transport only prepares a call for its backend and sends it; validation, retries, deadlines,
error mapping and result parsing live in the core (``jaguar_sdk._core``) and are shared by every
transport and by both the sync and the async client.

Contract for implementers:

- ``send`` returns a :class:`Reply` on success, holding either plain data (Modal, in-process:
  image bytes are ``bytes``) or a JSON document (HTTP: image bytes are base64).
- On failure ``send`` raises a :class:`~jaguar_sdk.JaguarError` subclass, never a backend
  exception (httpx, modal, ...). Transient failures are :class:`JaguarConnectionError`,
  :class:`JaguarTimeoutError`, :class:`RateLimitError`, :class:`NotReadyError` or a
  :class:`ServerError` with status 502/503/504; the core decides whether to retry.
- ``send`` must finish by ``call.deadline`` (a ``time.monotonic()`` value) where one is set,
  cancelling remote work that it started, and raise :class:`JaguarTimeoutError` if it cannot.
- Optional attributes: ``supports_jobs`` (the transport runs ``submit`` and the ``job_*``
  operations) and ``batch_via_jobs`` (``generate_many`` should run items as jobs by default
  rather than as direct calls; ``False`` when absent). A ``job_status`` call with ``wait`` may
  be held up to that many seconds until the job ends; answering at once is also correct.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._constants import SCHEMA_VERSION
from .._operations import Operation
from .._request import GenerateRequest

__all__ = ["AsyncTransport", "Call", "Reply", "SyncTransport"]


@dataclass(frozen=True)
class Call:
    """One attempt's worth of everything a transport needs.

    Attributes:
        operation: What to do.
        request: The validated request, for ``generate``.
        request_id: A client-made id sent to the server (``X-Request-ID``), for tracing.
        idempotency_key: Stays the same across the retries of one logical request.
        connect_timeout: Seconds to establish a connection.
        read_timeout: Seconds to wait for the answer of this attempt.
        deadline: ``time.monotonic()`` value by which the whole call must end, or ``None``.
        headers: Extra HTTP headers (ignored by non-HTTP transports).
        job_id: The job, for ``job_status``, ``job_result`` and ``job_cancel``.
        webhook_url: Where the server posts the signed result, for ``submit``.
        wait: For ``job_status``: seconds the backend may hold the answer until the job ends
            (a long-poll); ``None`` answers at once. A backend that cannot wait answers at once.
        after_events: With ``wait``: also answer as soon as the job has more progress events
            than this (the caller has seen that many); ``None`` waits for the end only.
    """

    operation: Operation
    request: GenerateRequest | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None
    deadline: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    job_id: str | None = None
    webhook_url: str | None = None
    wait: float | None = None
    after_events: int | None = None

    def to_plain(self) -> dict[str, Any]:
        """The plain-data payload of this call, as ``JaguarService.call_plain`` and the Modal
        ``JaguarModel`` methods take it: ``schema_version``, ``request_id``,
        ``idempotency_key``, plus ``request`` (only the fields the caller set, so the server's
        defaults apply), ``job_id``, ``wait`` and ``after`` when set."""
        payload: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "request_id": self.request_id,
            "idempotency_key": self.idempotency_key,
        }
        if self.request is not None:
            payload["request"] = self.request.wire_fields()
        if self.job_id is not None:
            payload["job_id"] = self.job_id
        if self.wait is not None:
            payload["wait"] = self.wait
            if self.after_events is not None:
                payload["after"] = self.after_events
        return payload

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or ``None`` without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def attempt_timeout(self) -> float | None:
        """The read timeout of this attempt, cut to the time left before the deadline."""
        left = self.remaining()
        if left is None:
            return self.read_timeout
        if self.read_timeout is None:
            return left
        return min(self.read_timeout, left)


@dataclass(frozen=True)
class Reply:
    """A successful answer.

    Attributes:
        data: Plain data (a dict whose image bytes are ``bytes``), or the raw bytes of a JSON
            document (image bytes base64-encoded), per ``is_json``.
        is_json: Whether ``data`` is a JSON document to parse.
        request_id: The server's request id, where the backend reports one.
    """

    data: dict[str, Any] | bytes
    is_json: bool = False
    request_id: str | None = None


@runtime_checkable
class SyncTransport(Protocol):
    """A blocking transport."""

    #: Short name shown in logs and ``repr`` ("http", "local", "modal").
    name: str

    def send(self, call: Call) -> Reply: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncTransport(Protocol):
    """An asyncio transport."""

    name: str

    async def send(self, call: Call) -> Reply: ...

    async def aclose(self) -> None: ...
