"""Waiting on a job without I/O: :class:`JobPoller` (backoff, deadline, new progress events).

Shared by the job handles :class:`~jaguar_sdk.AsyncJob` and :class:`~jaguar_sdk.Job`, which
differ only in ``await asyncio.sleep`` versus ``time.sleep``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ._exceptions import JaguarTimeoutError
from ._results import JobStatus, ProgressEvent

__all__ = ["JobPoller", "ProgressHandler"]

#: Called with each new progress event, in order.
ProgressHandler = Callable[[ProgressEvent], None]

_STAGE_OF_STATE = {
    "queued": "queued",
    "running": "running",
    "succeeded": "done",
    "failed": "failed",
    "cancelled": "cancelled",
}


class JobPoller:
    """The sans-IO part of waiting on a job: backoff, deadline, new progress events.

    Args:
        job_id: The job.
        timeout: Seconds to wait in all, or ``None`` for no limit.
        initial_s: The first pause between polls.
        max_s: The longest pause (the pause grows by half each poll).

    Example:
        >>> poller = JobPoller("job_1", timeout=None)
        >>> poller.next_delay(), poller.next_delay()
        (0.05, 0.075)
    """

    def __init__(
        self, job_id: str, timeout: float | None, *, initial_s: float = 0.05, max_s: float = 1.0
    ) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._delay = initial_s
        self._max_s = max_s
        self._seen = 0
        self._last_state: str | None = None

    def new_events(self, status: JobStatus) -> list[ProgressEvent]:
        """The events of ``status`` not reported yet, in order.

        Where the backend reports no events (Modal), one event per change of state is made up
        (``running``, then ``done``, ``failed`` or ``cancelled``).
        """
        if status.events:
            fresh = status.events[self._seen :]
            self._seen = len(status.events)
            return fresh
        if status.state == self._last_state:
            return []
        self._last_state = status.state
        stage: Any = _STAGE_OF_STATE[status.state]
        return [ProgressEvent(stage=stage, request_id=status.request_id)]

    def next_delay(self) -> float:
        """Seconds to sleep before the next poll (never past the deadline).

        Raises:
            JaguarTimeoutError: The timeout has passed.
        """
        delay = self._delay
        self._delay = min(self._max_s, self._delay * 1.5)
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise JaguarTimeoutError(
                    f"Job {self.job_id} did not finish within {self.timeout:g}s; it keeps "
                    "running: wait again, or cancel it.",
                    code="job_wait_timeout",
                )
            delay = min(delay, left)
        return delay
