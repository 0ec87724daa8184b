"""Job handles: :class:`Job` (blocking) and :class:`AsyncJob` (asyncio) over the shared core.

A job is a generation that runs on its own on the server (``POST /v1/jobs``), on Modal
(``.spawn()``, a ``FunctionCall``) or in-process (the service's job store). The handle only
knows the job id, so a job submitted in one process can be picked up in another with
:meth:`Job.from_id`. Polling, its backoff and the progress bookkeeping live in
:class:`JobPoller`, shared by both handles; they differ only in ``sleep`` vs ``await sleep``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._exceptions import JaguarTimeoutError
from ._types import GenerationResult, JobStatus, ProgressEvent

if TYPE_CHECKING:
    from ._client import AsyncJaguarClient, JaguarClient
    from ._core import ClientCore, Plan

__all__ = ["AsyncJob", "Job", "JobPoller", "ProgressHandler"]

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


class Job:
    """A handle on a submitted job (blocking). Made by :meth:`JaguarClient.submit`.

    Args:
        client: The client whose transport reaches the job.
        status: The job's latest known status.

    Attributes:
        id: The job id; keep it to pick the job up later with :meth:`from_id`.
        last_status: The status from the latest poll.

    Example:
        >>> job = client.submit("a jaguar", seed=7)              # doctest: +SKIP
        >>> job.result(timeout=300).save("jaguar.jpg")           # doctest: +SKIP
    """

    def __init__(self, client: JaguarClient, status: JobStatus) -> None:
        self._client = client
        self.id = status.id
        self.last_status = status

    @property
    def _core(self) -> ClientCore:
        return self._client._core

    def _run(self, plan: Plan) -> Any:
        return self._client._run(plan)

    @classmethod
    def from_id(cls, job_id: str, client: JaguarClient) -> Job:
        """Pick up a job by id (e.g. one submitted by another process).

        Args:
            job_id: The id from ``job.id``.
            client: A client reaching the same server or deployment.

        Returns:
            The handle, with the job's current status.

        Raises:
            NotFoundError: No such job (or it expired).

        Example:
            >>> Job.from_id("job_3f2a...", client).wait(60).state  # doctest: +SKIP
        """
        return cls(client, client._run(client._core.plan_job("job_status", job_id)))

    def status(self) -> JobStatus:
        """Fetch the job's current status.

        Returns:
            State, the latest progress event and every event so far.

        Raises:
            NotFoundError: The job expired or never existed.

        Example:
            >>> job.status().state  # doctest: +SKIP
            'running'
        """
        status: JobStatus = self._run(self._core.plan_job("job_status", self.id))
        self.last_status = status
        return status

    def events(self, timeout: float | None = None) -> Iterator[ProgressEvent]:
        """Yield the job's progress events in order, until it finishes.

        Args:
            timeout: Seconds to follow the job, or ``None`` for no limit.

        Returns:
            An iterator of events; the last one is ``done``, ``failed`` or ``cancelled``.

        Raises:
            JaguarTimeoutError: ``timeout`` passed first (the job keeps running).

        Example:
            >>> for event in job.events():                        # doctest: +SKIP
            ...     print(event.stage, event.step, event.total_steps)
        """
        poller = JobPoller(self.id, timeout)
        while True:
            status = self.status()
            yield from poller.new_events(status)
            if status.done:
                return
            time.sleep(poller.next_delay())

    def wait(
        self, timeout: float | None = None, *, on_progress: ProgressHandler | None = None
    ) -> JobStatus:
        """Block until the job finishes.

        Args:
            timeout: Seconds to wait, or ``None`` for no limit.
            on_progress: Called with each new progress event, in order.

        Returns:
            The final status (``succeeded``, ``failed`` or ``cancelled``).

        Raises:
            JaguarTimeoutError: ``timeout`` passed first (the job keeps running).

        Example:
            >>> job.wait(120, on_progress=lambda e: print(e.stage, e.step)).state  # doctest: +SKIP
            'succeeded'
        """
        for event in self.events(timeout):
            if on_progress is not None:
                on_progress(event)
        return self.last_status

    def result(self, timeout: float | None = None) -> GenerationResult:
        """Wait for the job, then fetch its result.

        Args:
            timeout: Seconds to wait, or ``None`` for no limit.

        Returns:
            The generation result.

        Raises:
            JobCancelledError: The job was cancelled.
            JaguarTimeoutError: ``timeout`` passed first.
            GenerationError: The job failed (or the error it failed with).

        Example:
            >>> job.result(timeout=300).image.save("out.jpg")  # doctest: +SKIP
        """
        self.wait(timeout)
        result: GenerationResult = self._run(self._core.plan_job("job_result", self.id))
        return result

    def cancel(self) -> JobStatus:
        """Cancel the job: at once if queued, at the next denoising step if running.

        Returns:
            The status after the request; poll (or :meth:`wait`) to see it become
            ``cancelled`` when it was running.

        Example:
            >>> job.cancel()  # doctest: +SKIP
        """
        status: JobStatus = self._run(self._core.plan_job("job_cancel", self.id))
        self.last_status = status
        return status

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, state={self.last_status.state!r})"


class AsyncJob:
    """A handle on a submitted job (asyncio). Made by :meth:`AsyncJaguarClient.submit`.

    Args:
        client: The client whose transport reaches the job.
        status: The job's latest known status.

    Example:
        >>> job = await client.submit("a jaguar")               # doctest: +SKIP
        >>> async for event in job.events():                     # doctest: +SKIP
        ...     print(event.stage)
        >>> result = await job.result()                          # doctest: +SKIP
    """

    def __init__(self, client: AsyncJaguarClient, status: JobStatus) -> None:
        self._client = client
        self.id = status.id
        self.last_status = status

    @property
    def _core(self) -> ClientCore:
        return self._client._core

    def _run(self, plan: Plan) -> Awaitable[Any]:
        return self._client._run(plan)

    @classmethod
    async def from_id(cls, job_id: str, client: AsyncJaguarClient) -> AsyncJob:
        """As :meth:`Job.from_id`.

        Example:
            >>> job = await AsyncJob.from_id("job_3f2a...", client)  # doctest: +SKIP
        """
        return cls(client, await client._run(client._core.plan_job("job_status", job_id)))

    async def status(self) -> JobStatus:
        """As :meth:`Job.status`."""
        status: JobStatus = await self._run(self._core.plan_job("job_status", self.id))
        self.last_status = status
        return status

    async def events(self, timeout: float | None = None) -> AsyncIterator[ProgressEvent]:
        """As :meth:`Job.events`, as an async iterator."""
        poller = JobPoller(self.id, timeout)
        while True:
            status = await self.status()
            for event in poller.new_events(status):
                yield event
            if status.done:
                return
            await asyncio.sleep(poller.next_delay())

    async def wait(
        self, timeout: float | None = None, *, on_progress: ProgressHandler | None = None
    ) -> JobStatus:
        """As :meth:`Job.wait`."""
        async for event in self.events(timeout):
            if on_progress is not None:
                on_progress(event)
        return self.last_status

    async def result(self, timeout: float | None = None) -> GenerationResult:
        """As :meth:`Job.result`."""
        await self.wait(timeout)
        result: GenerationResult = await self._run(self._core.plan_job("job_result", self.id))
        return result

    async def cancel(self) -> JobStatus:
        """As :meth:`Job.cancel`."""
        status: JobStatus = await self._run(self._core.plan_job("job_cancel", self.id))
        self.last_status = status
        return status

    def __repr__(self) -> str:
        return f"AsyncJob(id={self.id!r}, state={self.last_status.state!r})"
