"""Recent results by idempotency key: a retried request is generated once."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

from .. import _constants as C
from .._logging import get_logger
from .._results import GenerationResult

__all__ = ["IdempotencyStore"]

logger = get_logger("jaguar_sdk.service")


class IdempotencyStore:
    """Recent results by idempotency key, bounded in size and age.

    A repeat of a finished key gets the stored result; a repeat of a key still running waits
    for the first run instead of generating again. Failed runs are not stored, so a retry after
    a failure really retries.

    Args:
        ttl_s: How long a finished result is kept.
        max_entries: How many keys are kept; the oldest are dropped first.
    """

    def __init__(
        self, *, ttl_s: float = C.IDEMPOTENCY_TTL_S, max_entries: int = C.IDEMPOTENCY_MAX_ENTRIES
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, Future[GenerationResult]]] = OrderedDict()
        self.hits = 0

    def _evict(self, now: float) -> None:
        """Drop expired results, then the oldest finished ones until a new key fits.

        Entries are in creation order, so the scan stops at the first entry that is neither
        expired nor needed for room: a full store costs O(1) per new key, not O(entries)
        (the full scan cost ~0.35 ms a request at 256 entries: docs/performance.md §1).
        """
        room = len(self._entries) + 1 - self._max_entries  # entries to drop so a new key fits
        victims: list[str] = []
        for key, (created, future) in self._entries.items():
            expired = now - created > self._ttl_s
            if not expired and room <= 0:
                break  # every later entry is younger still
            if future.done():
                victims.append(key)
                room -= 1
        for key in victims:
            del self._entries[key]

    def run(self, key: str | None, fn: Callable[[], GenerationResult]) -> GenerationResult:
        """Run ``fn`` once per key; repeats get the first run's result.

        Args:
            key: The idempotency key, or ``None`` to always run.
            fn: The work.

        Returns:
            The result of the (first) run.
        """
        if key is None:
            return fn()
        now = time.monotonic()
        with self._lock:
            self._evict(now)
            entry = self._entries.get(key)
            owner = entry is None
            if owner:
                future: Future[GenerationResult] = Future()
                self._entries[key] = (now, future)
            else:
                assert entry is not None
                future = entry[1]
                self.hits += 1
        if not owner:
            logger.info("idempotency key seen before; returning the first run's result")
            return future.result()
        try:
            result = fn()
        except BaseException as exc:
            with self._lock:
                self._entries.pop(key, None)
            future.set_exception(exc)
            raise
        future.set_result(result)
        return result
