"""``AsyncJob``: a handle on a submitted job, awaited. The source of ``Job``.

``jaguar_sdk/_job.py`` is generated from this file by ``scripts/unasync.py``. A job is a
generation that runs on its own on the server (``POST /v1/jobs``), on Modal (``.spawn()``, a
``FunctionCall``) or in-process (the service's job store). The handle only knows the job id, so
a job submitted in one process can be picked up in another with :meth:`AsyncJob.from_id`.
Long-poll, deadline and progress bookkeeping are :class:`~jaguar_sdk._job_poller.JobPoller`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

from ._core import ClientCore, Plan
from ._job_poller import JobPoller, ProgressHandler
from ._operations import Operation
from ._results import GenerationResult, JobStatus, ProgressEvent

__all__ = ["AsyncJob"]


class _AsyncJobClient(Protocol):
    """What a job handle needs of its client (any client of the same flavour)."""

    _core: ClientCore

    async def _run(self, plan: Plan) -> Any: ...


class AsyncJob:
    """A handle on a submitted job (asyncio). Made by ``submit`` and ``get_job``.

    Args:
        client: The client whose transport reaches the job.
        status: The job's latest known status.

    Attributes:
        id: The job id; keep it to pick the job up later with :meth:`from_id`.
        last_status: The status from the latest poll.

    Example:
        >>> job = await client.submit("a jaguar", seed=7)  # doctest: +SKIP
        >>> (await job.result(timeout=300)).save("jaguar.jpg")  # doctest: +SKIP
    """

    def __init__(self, client: _AsyncJobClient, status: JobStatus) -> None:
        self._client = client
        self.id = status.id
        self.last_status = status

    async def _call(self, operation: Operation) -> Any:
        return await self._client._run(self._client._core.plan_job(operation, self.id))

    @classmethod
    async def from_id(cls, job_id: str, client: _AsyncJobClient) -> AsyncJob:
        """Pick up a job by id (e.g. one submitted by another process).

        Args:
            job_id: The id from ``job.id``.
            client: A client reaching the same server or deployment.

        Returns:
            The handle, with the job's current status.

        Raises:
            NotFoundError: No such job (or it expired).

        Example:
            >>> job = await AsyncJob.from_id("job_3f2a...", client)  # doctest: +SKIP
        """
        return cls(client, await client._run(client._core.plan_job("job_status", job_id)))

    async def status(self) -> JobStatus:
        """Fetch the job's current status.

        Returns:
            State, the latest progress event and every event so far.

        Raises:
            NotFoundError: The job expired or never existed.

        Example:
            >>> (await job.status()).state  # doctest: +SKIP
            'running'
        """
        status: JobStatus = await self._call("job_status")
        self.last_status = status
        return status

    async def _follow(self, timeout: float | None, events: bool) -> AsyncIterator[ProgressEvent]:
        """Long-poll the job's status until it ends; yield its new progress events.

        With ``events`` each status call also returns as soon as there is a new event (to
        follow the steps); without, only when the job ends (fewer calls).
        """
        poller = JobPoller(self.id, timeout)
        while True:
            wait = poller.next_wait()
            plan = self._client._core.plan_job(
                "job_status", self.id, wait=wait, after_events=poller.seen if events else None
            )
            status: JobStatus = await self._client._run(plan)
            self.last_status = status
            fresh = poller.new_events(status)
            for event in fresh:
                yield event
            if status.done:
                return
            delay = poller.next_delay(fresh=bool(fresh))
            if delay > 0:
                await asyncio.sleep(delay)

    async def events(self, timeout: float | None = None) -> AsyncIterator[ProgressEvent]:
        """Yield the job's progress events in order, until it finishes.

        Each status call is a long-poll: the backend answers as soon as there is a new event,
        so events arrive as they happen, with no polling interval.

        Args:
            timeout: Seconds to follow the job, or ``None`` for no limit.

        Returns:
            An iterator of events; the last one is ``done``, ``failed`` or ``cancelled``.

        Raises:
            JaguarTimeoutError: ``timeout`` passed first (the job keeps running).

        Example:
            >>> async for event in job.events():  # doctest: +SKIP
            ...     print(event.stage, event.step, event.total_steps)
        """
        async for event in self._follow(timeout, events=True):
            yield event

    async def wait(
        self, timeout: float | None = None, *, on_progress: ProgressHandler | None = None
    ) -> JobStatus:
        """Wait until the job finishes.

        The status call is a long-poll that the backend answers the moment the job ends
        (a backend that cannot hold it is polled with a growing pause instead).

        Args:
            timeout: Seconds to wait, or ``None`` for no limit.
            on_progress: Called with each new progress event, in order.

        Returns:
            The final status (``succeeded``, ``failed`` or ``cancelled``).

        Raises:
            JaguarTimeoutError: ``timeout`` passed first (the job keeps running).

        Example:
            >>> (await job.wait(120, on_progress=print)).state  # doctest: +SKIP
            'succeeded'
        """
        async for event in self._follow(timeout, events=on_progress is not None):
            if on_progress is not None:
                on_progress(event)
        return self.last_status

    async def result(self, timeout: float | None = None) -> GenerationResult:
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
            >>> (await job.result(timeout=300)).image.save("out.jpg")  # doctest: +SKIP
        """
        await self.wait(timeout)
        result: GenerationResult = await self._call("job_result")
        return result

    async def cancel(self) -> JobStatus:
        """Cancel the job: at once if queued, at the next denoising step if running.

        Returns:
            The status after the request; poll (or :meth:`wait`) to see it become
            ``cancelled`` when it was running.

        Example:
            >>> await job.cancel()  # doctest: +SKIP
        """
        status: JobStatus = await self._call("job_cancel")
        self.last_status = status
        return status

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, state={self.last_status.state!r})"
