"""uvicorn's HTTP/1.1 protocol, hardened for ``jaguar serve``: bounded header time, bounded
connections, JSON protocol errors, logs at a bounded rate.

What the stock protocol leaves open (uvicorn 0.54, ``uvicorn/protocols/http/h11_impl.py``):

- ``H11Protocol.connection_made`` arms no timer, and the keep-alive timer
  (``timeout_keep_alive``) is armed only by ``on_response_complete`` and cancelled by the next
  ``data_received``: a connection that sends part of a request's headers is never timed out.
  Thousands of them exhaust the file descriptors and the server stops accepting (health too).
- ``h11_max_incomplete_event_size`` (h11's ``max_incomplete_event_size``, 16 KiB by default)
  bounds the *bytes* of unfinished headers, not their time: beyond it h11 raises
  ``RemoteProtocolError(..., error_status_hint=431)`` (``h11/_connection.py``,
  ``Connection.next_event``), which ``H11Protocol.handle_events`` answers with
  ``send_400_response``: a ``text/plain`` 400 for every protocol error, 431 included, each
  logged as a warning ("Invalid HTTP request received.").
- ``limit_concurrency`` answers 503 only once a request has arrived, and counts stalled
  connections against the limit, so it would refuse health checks during a flood.

:class:`HardenedH11Protocol` adds, per connection, a deadline for a request's headers (from
the connection, or from the end of the previous response): past it the server answers 408 and
closes. When more than ``max_connections`` are open, the connection that has waited longest for
its headers is closed to make room (a flood of stalled connections evicts itself, while a
complete request is served); when every connection is busy with a request, the newcomer gets
503. Protocol errors answer the JSON error envelope (431 for oversized headers). Each kind of
event is logged at most once per ``LOG_INTERVAL_S``, with a count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .. import _constants as C
from .._logging import get_logger

__all__ = ["HardenedH11Protocol", "RateLimitedLog", "default_limits", "hardened_protocol"]

logger = get_logger("jaguar_sdk.server.connections")

#: Seconds between two log lines about the same kind of connection event.
LOG_INTERVAL_S = 10.0
#: h11's own default (``h11._connection.DEFAULT_MAX_INCOMPLETE_EVENT_SIZE``), set explicitly.
MAX_HEADER_BYTES = 16 * 1024

_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class RateLimitedLog:
    """Logs each kind of event at most once per interval, with how many happened.

    Example:
        >>> log = RateLimitedLog(logging.getLogger("demo"), interval_s=10)
        >>> log.event("timeout", "closed stalled connections")  # logged
        >>> log.event("timeout", "closed stalled connections")  # counted, logged later
    """

    def __init__(self, log: logging.Logger, *, interval_s: float = LOG_INTERVAL_S) -> None:
        self._log = log
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def event(self, kind: str, message: str) -> None:
        """Count one event of ``kind``; log ``message`` if the last line is old enough."""
        now = time.monotonic()
        with self._lock:
            count = self._counts.get(kind, 0) + 1
            if now - self._last.get(kind, -self._interval_s) < self._interval_s:
                self._counts[kind] = count
                return
            self._counts[kind] = 0
            self._last[kind] = now
        self._log.warning(
            "%s (%d in the last %.0fs; such lines are logged at most every %.0fs)",
            message,
            count,
            self._interval_s,
            self._interval_s,
        )


_events = RateLimitedLog(logger)


class _UvicornInvalidRequestFilter(logging.Filter):
    """Drops uvicorn's per-request "Invalid HTTP request received." warning: the protocol
    below logs those events itself, at a bounded rate."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Invalid HTTP request received."


def _install_log_filter() -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _UvicornInvalidRequestFilter) for f in uvicorn_error.filters):
        uvicorn_error.addFilter(_UvicornInvalidRequestFilter())


class _Connection(h11.Connection):
    """An h11 connection that remembers the protocol error it raised (for its status hint)."""

    last_error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.last_error = exc
            raise


def _error_bytes(status: int, code: str, message: str) -> bytes:
    body = json.dumps(
        {
            "error": {"code": code, "message": message, "field": None, "request_id": None},
            "schema_version": C.SCHEMA_VERSION,
        },
        separators=(",", ":"),
    ).encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        f"{C.HEADER_SCHEMA_VERSION.lower()}: {C.SCHEMA_VERSION}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class HardenedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline, a connection bound and JSON errors.

    Configured through :func:`hardened_protocol` (class attributes, since uvicorn builds one
    instance per connection with its own arguments).
    """

    header_timeout_s: ClassVar[float] = C.HEADER_TIMEOUT_S
    max_connections: ClassVar[int] = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        size = self.config.h11_max_incomplete_event_size or MAX_HEADER_BYTES
        self.conn = _Connection(h11.SERVER, size)
        self._header_timer: asyncio.TimerHandle | None = None
        #: When this connection started waiting for a request's headers (None: serving one).
        self.waiting_since: float | None = None

    # --- the header deadline -------------------------------------------------------------------
    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self.waiting_since = time.monotonic()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self.waiting_since = None

    def _serving(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self._serving():
            return
        _events.event(
            "header_timeout",
            f"closed a connection that sent no complete request in {self.header_timeout_s:g}s",
        )
        self._answer_and_close(
            408,
            "request_timeout",
            f"The request's headers did not arrive within {self.header_timeout_s:g} seconds.",
        )

    def _answer_and_close(self, status: int, code: str, message: str) -> None:
        self._disarm_header_timer()
        if not self.transport.is_closing():
            self.transport.write(_error_bytes(status, code, message))
            self.transport.close()

    # --- uvicorn's hooks -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def _make_room(self) -> None:
        waiting = [
            c
            for c in self.connections
            if isinstance(c, HardenedH11Protocol) and c is not self and c.waiting_since is not None
        ]
        if waiting:
            oldest = min(waiting, key=lambda c: c.waiting_since or 0.0)
            _events.event(
                "evicted",
                f"{len(self.connections)} connections open (limit {self.max_connections}): "
                "closed the one waiting longest for its request",
            )
            oldest._answer_and_close(
                503, "too_many_connections", "The server closed this idle connection to make room."
            )
            return
        _events.event(
            "refused",
            f"{len(self.connections)} connections open, all serving requests (limit "
            f"{self.max_connections}): refused a new one",
        )
        self._answer_and_close(
            503, "too_many_connections", "The server is at its connection limit; retry shortly."
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers are complete: it is being served
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's headers get the same deadline (uvicorn's keep-alive timer is
        # cancelled by the first byte of them, see the module docstring).
        if not self.transport.is_closing() and not self._serving():
            self._arm_header_timer()

    def send_400_response(self, msg: str) -> None:
        error = getattr(self.conn, "last_error", None)
        if error is not None and error.error_status_hint == 431:
            _events.event("too_large", "refused a request whose headers were too large")
            self._answer_and_close(
                431,
                "request_header_fields_too_large",
                f"The request's headers are larger than {MAX_HEADER_BYTES} bytes.",
            )
            return
        _events.event("bad_request", "refused a malformed HTTP request")
        self._answer_and_close(400, "bad_request", "Malformed HTTP request.")


def hardened_protocol(*, header_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """A :class:`HardenedH11Protocol` subclass with these limits, for ``uvicorn.Config(http=)``.

    Args:
        header_timeout_s: Seconds a connection has to send a request's headers.
        max_connections: Connections kept open at once.

    Returns:
        The protocol class.
    """
    _install_log_filter()
    return type(
        "JaguarH11Protocol",
        (HardenedH11Protocol,),
        {"header_timeout_s": header_timeout_s, "max_connections": max_connections},
    )


def default_limits() -> tuple[int, int]:
    """``(max_connections, backlog)`` that fit this process's open-file limit.

    Of the file descriptors still free (the soft ``RLIMIT_NOFILE`` minus those open now,
    minus 64 kept for files, model loading and webhooks), half go to connections and a quarter
    to the listen backlog (asyncio accepts up to a backlog's worth of sockets before their
    connections are set up, ``asyncio/selector_events.py`` ``_accept_connection``), so the
    process never runs out; at most 1000 connections and 2048 queued.
    """
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            soft = 1 << 20
    except (ImportError, OSError, ValueError):  # no RLIMIT_NOFILE (Windows)
        soft = 4096
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 64
    budget = max(64, soft - open_now - 64)
    return max(16, min(1000, budget // 2)), max(8, min(2048, budget // 4))
