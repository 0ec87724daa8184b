"""Whether a newer model revision is upstream, for model info, cached so info stays cheap.

The deployment's model info ``extra`` carries ``update_check``::

    {"latest_revision": "b3f1...", "update_available": True,
     "checked_at": "2026-11-23T11:30:00+00:00", "error": None}

:class:`UpdateChecker` asks the fetcher what the followed branch points at upstream (one small
request, :meth:`Fetcher.resolve`) at most once per ``ttl_s`` and compares it with the revision
being served on every call. It never raises: a failing upstream is reported in ``error`` (and
retried after ``error_ttl_s``, shorter than ``ttl_s``).

This module imports neither torch nor modal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .fetchers import Fetcher, is_commit

__all__ = ["DEFAULT_UPDATE_CHECK_TTL_S", "UpdateChecker", "followed_branch"]

#: How long an upstream answer is reused before asking again (15 minutes).
DEFAULT_UPDATE_CHECK_TTL_S = 15 * 60.0
#: How long a failed upstream request is reused before retrying (1 minute).
DEFAULT_UPDATE_CHECK_ERROR_TTL_S = 60.0


def followed_branch(model_revision: str) -> str:
    """The branch an update check follows for a configured ``JAGUAR_MODEL_REVISION``.

    A branch or tag is followed as is; a pinned full commit follows ``main`` (the check then
    says whether ``main`` moved past the pin).
    """
    return "main" if is_commit(model_revision) else model_revision


class UpdateChecker:
    """The serving revision against the latest one upstream, with a TTL cache.

    Args:
        repo_id: The Hub repo id.
        branch: The branch or tag to follow (see :func:`followed_branch`).
        fetcher: Makes the fetcher to ask (called only when the cache is stale, so no Hub
            client is built for an info call answered from the cache).
        ttl_s: How long a successful answer is reused.
        error_ttl_s: How long a failure is reused before retrying (capped at ``ttl_s``).
        clock: Monotonic seconds (tests advance it).

    Example:
        >>> checker = UpdateChecker("shuttleai/shuttle-jaguar", "main", HubFetcher)
        ... # doctest: +SKIP
        >>> checker.check("0123abcd...")["update_available"]
        False
    """

    def __init__(
        self,
        repo_id: str,
        branch: str,
        fetcher: Callable[[], Fetcher],
        *,
        ttl_s: float = DEFAULT_UPDATE_CHECK_TTL_S,
        error_ttl_s: float = DEFAULT_UPDATE_CHECK_ERROR_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo_id = repo_id
        self.branch = branch
        self._fetcher = fetcher
        self._ttl_s = ttl_s
        self._error_ttl_s = min(error_ttl_s, ttl_s)
        self._clock = clock
        self._lock = threading.Lock()
        # (monotonic time of the check, latest commit or None, error or None, ISO time)
        self._cached: tuple[float, str | None, str | None, str] | None = None

    def _refresh(self) -> tuple[float, str | None, str | None, str]:
        now = self._clock()
        checked_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            latest = self._fetcher().resolve(self.repo_id, self.branch)
        except Exception as exc:  # info must answer even when the Hub does not
            return now, None, f"{type(exc).__name__}: {exc}", checked_at
        return now, latest, None, checked_at

    def _fresh(self, now: float) -> bool:
        if self._cached is None:
            return False
        ttl = self._error_ttl_s if self._cached[2] is not None else self._ttl_s
        return now - self._cached[0] < ttl

    def check(self, serving_revision: str | None) -> dict[str, Any]:
        """Compare the serving revision with the (cached) latest upstream; never raises.

        Args:
            serving_revision: The commit the engine was loaded from (``None`` when unknown).

        Returns:
            ``{"latest_revision": str | None, "update_available": bool, "checked_at": str
            (ISO 8601, UTC, when upstream was last asked), "error": str | None}``;
            ``update_available`` is ``False`` when upstream could not be asked.
        """
        with self._lock:  # one upstream request at a time, however many info calls wait
            if not self._fresh(self._clock()):
                self._cached = self._refresh()
            assert self._cached is not None
            _, latest, error, checked_at = self._cached
        return {
            "latest_revision": latest,
            "update_available": latest is not None and latest != serving_revision,
            "checked_at": checked_at,
            "error": error,
        }
