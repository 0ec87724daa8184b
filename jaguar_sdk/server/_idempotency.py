"""Recent results by idempotency key: a retried request is generated once.

A key is bound to a fingerprint of the request it was first used with (and of the route), as
the IETF ``Idempotency-Key`` draft and Stripe do: a different request under the same key is
refused with 422 ``idempotency_key_reused`` instead of being answered with another request's
result.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .. import _constants as C
from .._exceptions import InvalidRequestError
from .._logging import get_logger
from .._results import GenerationResult

__all__ = ["IdempotencyStore", "fingerprint", "key_reused", "result_bytes"]

logger = get_logger("jaguar_sdk.server._service")


def fingerprint(scope: str, payload: Any) -> str:
    """A stable digest of what a key was used for: the route (``scope``) and the request.

    Args:
        scope: What the key was used on, e.g. ``"generate"``, ``"openai.images"``, ``"submit"``.
        payload: The validated request in plain, JSON-compatible data (defaults written out,
            so two spellings of one request are one request).

    Example:
        >>> same = fingerprint("generate", {"prompt": "a cat"})
        >>> same == fingerprint("generate", {"prompt": "a cat"})
        True
        >>> same == fingerprint("openai.images", {"prompt": "a cat"})
        False
    """
    text = json.dumps([scope, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def key_reused() -> InvalidRequestError:
    """The error for a key sent again with another request (422 ``idempotency_key_reused``)."""
    return InvalidRequestError(
        f"This {C.HEADER_IDEMPOTENCY_KEY} was already used with a different request (another "
        "body or another route). A key stands for one request: send a new key for a new "
        "request, or the same request to get its first result.",
        field=C.HEADER_IDEMPOTENCY_KEY,
        code="idempotency_key_reused",
        status_code=422,
    )


def result_bytes(result: GenerationResult) -> int:
    """The bytes a result holds (its encoded images; the rest is small)."""
    images = getattr(result, "images", None) or ()  # stand-in results may have none
    return sum(len(image.data) for image in images)


@dataclass
class _Entry:
    created: float
    future: Future[GenerationResult]
    fingerprint: str | None
    size: int = 0


class IdempotencyStore:
    """Recent results by idempotency key, bounded in entries, bytes and age.

    A repeat of a finished key gets the stored result; a repeat of a key still running waits
    for the first run instead of generating again; a key sent with another request (another
    fingerprint) is refused. Failed runs are not stored, so a retry after a failure really
    retries.

    When full, the oldest finished results are dropped first (by entries or by bytes); a
    request repeated after its result was dropped is generated again. A result larger than
    the whole byte budget is answered but not kept.

    Args:
        ttl_s: How long a finished result is kept.
        max_entries: How many keys are kept.
        max_bytes: How many bytes of results (encoded images) are kept.

    Example:
        >>> store = IdempotencyStore(max_bytes=64 * 1024 * 1024)
        >>> store.max_bytes
        67108864
    """

    def __init__(
        self,
        *,
        ttl_s: float = C.IDEMPOTENCY_TTL_S,
        max_entries: int = C.IDEMPOTENCY_MAX_ENTRIES,
        max_bytes: int = C.IDEMPOTENCY_MAX_BYTES,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self.hits = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def stored_bytes(self) -> int:
        """Bytes of the results held now."""
        with self._lock:
            return self._bytes

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def _evict(self, now: float, *, room_for_one: bool) -> None:
        """Drop expired results, then the oldest finished ones until the bytes fit (and, with
        ``room_for_one``, until a new key fits).

        Entries are in creation order, so the scan stops at the first entry that is neither
        expired nor needed for room: a full store costs O(1) per new key, not O(entries)
        (the full scan cost ~0.35 ms a request at 256 entries: docs/performance.md §1).
        """
        entries, size = len(self._entries), self._bytes
        victims: list[str] = []
        for key, entry in self._entries.items():
            expired = now - entry.created > self._ttl_s
            over = (room_for_one and entries >= self._max_entries) or size > self.max_bytes
            if not expired and not over:
                break  # every later entry is younger still, and there is room
            if entry.future.done():
                victims.append(key)
                entries, size = entries - 1, size - entry.size
        for key in victims:
            self._drop(key)

    def run(
        self,
        key: str | None,
        fn: Callable[[], GenerationResult],
        *,
        fingerprint: str | None = None,
    ) -> GenerationResult:
        """Run ``fn`` once per key; repeats get the first run's result.

        Args:
            key: The idempotency key, or ``None`` to always run.
            fn: The work.
            fingerprint: What the key stands for (:func:`fingerprint`); a repeat with another
                one is refused.

        Returns:
            The result of the (first) run.

        Raises:
            InvalidRequestError: 422 ``idempotency_key_reused``: the key was first used with
                another fingerprint.
        """
        if key is None:
            return fn()
        now = time.monotonic()
        with self._lock:
            self._evict(now, room_for_one=True)
            entry = self._entries.get(key)
            owner = entry is None
            if entry is None:
                entry = _Entry(now, Future(), fingerprint)
                self._entries[key] = entry
            elif entry.fingerprint != fingerprint:
                raise key_reused()
            else:
                self.hits += 1
        future = entry.future
        if not owner:
            logger.info("idempotency key seen before; returning the first run's result")
            return future.result()
        try:
            result = fn()
        except BaseException as exc:
            with self._lock:
                if self._entries.get(key) is entry:
                    self._drop(key)
            future.set_exception(exc)
            raise
        future.set_result(result)
        size = result_bytes(result)
        with self._lock:
            if self._entries.get(key) is entry:
                if size > self.max_bytes:
                    self._drop(key)  # answered (waiters hold the future), not kept
                else:
                    entry.size = size
                    self._bytes += size
                    self._evict(time.monotonic(), room_for_one=False)
        return result
