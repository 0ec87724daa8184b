"""Waiting on a job without I/O: :class:`JobPoller` (long-poll, deadline, new progress events).

Shared by the job handles :class:`~jaguar_sdk.AsyncJob` and :class:`~jaguar_sdk.Job`, which
differ only in ``await asyncio.sleep`` versus ``time.sleep``.

Each status call asks the backend to hold its answer until the job ends (``wait``, a
long-poll: ``GET /v1/jobs/{id}?wait=S`` on a jaguar server, the job store's condition
in-process, ``FunctionCall.get(timeout=S)`` on Modal), so a finished job is seen at once and
no time is lost sleeping. A backend that cannot wait answers at once; the poller notices (the
answer came back early, with nothing new) and backs off between polls instead of spinning.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import _constants as C
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
    """The sans-IO part of waiting on a job: long-poll length, backoff, deadline, new events.

    Args:
        job_id: The job.
        timeout: Seconds to wait in all, or ``None`` for no limit.
        long_poll_s: The longest a backend is asked to hold one status call.
        initial_s: The first pause between polls, for a backend that does not hold them.
        max_s: The longest such pause (it grows by half each poll).

    Example:
        >>> poller = JobPoller("job_1", timeout=None)
        >>> poller.next_wait()
        20.0
        >>> poller.next_delay(fresh=True)  # the answer brought news: ask again at once
        0.0
    """

    def __init__(
        self,
        job_id: str,
        timeout: float | None,
        *,
        long_poll_s: float = C.JOB_LONG_POLL_S,
        initial_s: float = 0.05,
        max_s: float = 1.0,
    ) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._long_poll_s = long_poll_s
        self._initial_s = initial_s
        self._delay = initial_s
        self._max_s = max_s
        self._asked = 0.0
        self._sent = 0.0
        self.seen = 0
        self._last_state: str | None = None

    def _left(self) -> float | None:
        """Seconds left before the timeout (``None``: no limit).

        Raises:
            JaguarTimeoutError: The timeout has passed.
        """
        if self._deadline is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise JaguarTimeoutError(
                f"Job {self.job_id} did not finish within {self.timeout:g}s; it keeps "
                "running: wait again, or cancel it.",
                code="job_wait_timeout",
            )
        return left

    def next_wait(self) -> float:
        """Seconds the backend may hold the next status call (never past the deadline).

        Raises:
            JaguarTimeoutError: The timeout has passed.
        """
        left = self._left()
        self._asked = self._long_poll_s if left is None else min(self._long_poll_s, left)
        self._sent = time.monotonic()
        return self._asked

    def new_events(self, status: JobStatus) -> list[ProgressEvent]:
        """The events of ``status`` not reported yet, in order.

        Where the backend reports no events (Modal), one event per change of state is made up
        (``running``, then ``done``, ``failed`` or ``cancelled``).
        """
        if status.events:
            fresh = status.events[self.seen :]
            self.seen = len(status.events)
            return fresh
        if status.state == self._last_state:
            return []
        self._last_state = status.state
        stage: Any = _STAGE_OF_STATE[status.state]
        return [ProgressEvent(stage=stage, request_id=status.request_id)]

    def next_delay(self, *, fresh: bool) -> float:
        """Seconds to sleep before the next status call.

        ``0`` when the last answer brought news (``fresh``) or the backend held it (it took at
        least half the ``wait`` asked); otherwise the backend does not long-poll, and the
        pause grows from ``initial_s`` to ``max_s`` (never past the deadline).

        Raises:
            JaguarTimeoutError: The timeout has passed.
        """
        left = self._left()
        held = time.monotonic() - self._sent >= self._asked / 2
        if fresh or held:
            self._delay = self._initial_s
            return 0.0
        delay = self._delay
        self._delay = min(self._max_s, self._delay * 1.5)
        return delay if left is None else min(delay, left)
