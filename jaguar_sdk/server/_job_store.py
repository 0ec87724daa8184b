"""The job store: long-running generations that outlive the request that started them.

``jaguar serve`` (and the in-process client) keep jobs here: bounded in count, finished jobs
kept for a time to live, run one at a time on a single worker thread (the GPU serialises work
anyway). Cancellation is cooperative: the job's progress callback raises
:class:`~jaguar_sdk.JobCancelledError` at the next progress event, which the engine emits
between denoising steps, so a running job stops at the next step boundary.

This module never imports torch or an HTTP server; webhook delivery takes an injected sender.
"""

from __future__ import annotations

import math
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import _constants as C
from .._exceptions import (
    GenerationError,
    InvalidRequestError,
    JaguarError,
    JobCancelledError,
    JobPendingError,
    NotFoundError,
    RateLimitError,
)
from .._logging import get_logger
from .._request import GenerateRequest
from .._results import GenerationResult, JobState, JobStatus, ProgressEvent, WebhookDelivery
from ._idempotency import fingerprint, key_reused, result_bytes

__all__ = ["JobRecord", "JobStore", "Runner", "WebhookSender", "check_job_wait", "new_job_id"]

logger = get_logger("jaguar_sdk.server._job_store")

#: Runs one generation: (request, request_id, on_progress) -> result.
Runner = Callable[[GenerateRequest, str, Callable[[ProgressEvent], None]], GenerationResult]
#: Delivers a finished job's webhook: (url, job status, result or None).
WebhookSender = Callable[[str, JobStatus, GenerationResult | None], None]

#: Most progress events kept per job (50 steps plus the other stages fit easily).
_MAX_EVENTS = 128


def check_job_wait(wait: Any, after: Any = None) -> tuple[float, int | None]:
    """Validate the long-poll parameters of a status call.

    Args:
        wait: Seconds to hold the answer until the job ends (or has new events).
        after: Progress events the caller has seen, or ``None`` to wait for the end only.

    Returns:
        ``(wait seconds, after)``.

    Raises:
        InvalidRequestError: ``wait`` is not a number from 0 to ``JOB_WAIT_MAX_S`` (60), or
            ``after`` is not an integer >= 0; the field is named.

    Example:
        >>> check_job_wait("2.5", "3")
        (2.5, 3)
    """
    try:
        wait_s = float(wait)
    except (TypeError, ValueError):
        wait_s = math.nan
    if isinstance(wait, bool) or not 0 <= wait_s <= C.JOB_WAIT_MAX_S:
        raise InvalidRequestError(
            f"wait: must be a number of seconds from 0 to {C.JOB_WAIT_MAX_S:g} (got {wait!r})",
            field="wait",
        )
    if after is None:
        return wait_s, None
    try:
        count = int(after)
    except (TypeError, ValueError):
        count = -1
    if isinstance(after, (bool, float)) or count < 0:
        raise InvalidRequestError(
            f"after: must be an integer >= 0, the progress events already seen (got {after!r})",
            field="after",
        )
    return wait_s, count


def new_job_id() -> str:
    """A fresh job id, e.g. ``job_3f2a...``."""
    return f"job_{uuid.uuid4().hex}"


@dataclass
class JobRecord:
    """One job's mutable state (guarded by the store's lock).

    Attributes:
        id: The job id.
        request: The validated request.
        request_id: The generation's request id.
        state: Where the job stands.
        webhook_url: Where to post the result, if anywhere.
        events: Progress events so far.
        result: The result of a succeeded job.
        error: The error of a failed or cancelled job.
        created_at: Unix time accepted.
        finished_at: Unix time finished.
        cancel_requested: Set by :meth:`JobStore.cancel`; checked at every progress event.
        webhook: How the webhook delivery went, once one was attempted.
        size: Bytes of the result's images (counted against the store's byte budget).
    """

    id: str
    request: GenerateRequest
    request_id: str
    state: JobState = "queued"
    webhook_url: str | None = None
    events: list[ProgressEvent] = field(default_factory=list)
    result: GenerationResult | None = None
    error: JaguarError | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    finished_mono: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    webhook: WebhookDelivery | None = None
    size: int = 0

    @property
    def done(self) -> bool:
        """Whether the job has finished."""
        return self.state in ("succeeded", "failed", "cancelled")

    def status(self) -> JobStatus:
        """The job's wire status."""
        return JobStatus(
            id=self.id,
            state=self.state,
            progress=self.events[-1] if self.events else None,
            events=list(self.events),
            failure=self.error.to_payload() if self.error is not None else None,
            request_id=self.request_id,
            created_at=self.created_at,
            finished_at=self.finished_at,
            webhook=self.webhook,
        )


class JobStore:
    """Bounded, TTL'd jobs run one at a time on a worker thread.

    Args:
        runner: Runs one generation (``JaguarService.generate`` fits, through a lambda).
        ttl_s: How long a finished job is kept.
        max_jobs: Jobs kept at once; finished ones are dropped oldest first to make room,
            and when every kept job is still queued or running a new one is refused with
            :class:`RateLimitError` (code ``job_store_full``, HTTP 429).
        webhook_sender: Delivers webhooks of finished jobs that asked for one.
        max_bytes: Bytes of finished jobs' results kept at once: when a job finishes, the
            oldest finished jobs are dropped (answering 404, as expired ones do) until the
            results fit; the job that just finished is always kept.

    An idempotency key is bound to the job's request and webhook URL: the same key with
    another request is refused with 422 ``idempotency_key_reused``.

    Example:
        >>> store = JobStore(lambda req, rid, cb: service.generate(req, request_id=rid,
        ...                  on_progress=cb))                          # doctest: +SKIP
        >>> job = store.submit(GenerateRequest(prompt="a cat"))        # doctest: +SKIP
        >>> store.wait(job.id, timeout=60).state                       # doctest: +SKIP
        'succeeded'
    """

    def __init__(
        self,
        runner: Runner,
        *,
        ttl_s: float = C.JOB_TTL_S,
        max_jobs: int = C.JOB_MAX_ENTRIES,
        webhook_sender: WebhookSender | None = None,
        max_bytes: int = C.JOB_MAX_BYTES,
    ) -> None:
        if max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        self._runner = runner
        self._ttl_s = ttl_s
        self._max_jobs = max_jobs
        self.max_bytes = max_bytes
        self.webhook_sender = webhook_sender
        self._lock = threading.Condition()
        self._jobs: OrderedDict[str, JobRecord] = OrderedDict()
        self._by_key: dict[str, tuple[str, str]] = {}  # key -> (job id, fingerprint)
        self._bytes = 0
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._closed = False

    # --- bookkeeping ---------------------------------------------------------------------------
    def _evict(self, now: float) -> None:
        for job_id, job in list(self._jobs.items()):
            if job.finished_mono is not None and now - job.finished_mono > self._ttl_s:
                self._forget(job_id)
        finished = [job_id for job_id, job in self._jobs.items() if job.done]
        while len(self._jobs) >= self._max_jobs and finished:
            self._forget(finished.pop(0))

    def _forget(self, job_id: str) -> None:
        job = self._jobs.pop(job_id, None)
        if job is not None:
            self._bytes -= job.size
        for key in [k for k, v in self._by_key.items() if v[0] == job_id]:
            del self._by_key[key]

    def _fit_bytes(self, keep: str) -> None:
        """Drop the oldest finished jobs (never ``keep``) until the results fit."""
        finished = [i for i, job in self._jobs.items() if job.done and job.size and i != keep]
        while finished and self._bytes > self.max_bytes:
            self._forget(finished.pop(0))

    @property
    def stored_bytes(self) -> int:
        """Bytes of the finished jobs' results held now."""
        with self._lock:
            return self._bytes

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="jaguar-jobs", daemon=True)
            self._worker.start()

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    # --- operations ----------------------------------------------------------------------------
    def submit(
        self,
        request: GenerateRequest,
        *,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
    ) -> JobStatus:
        """Queue a job.

        Args:
            request: The validated request.
            request_id: The generation's request id; the job id's hex when omitted.
            idempotency_key: A repeat with the same key gets the first job back.
            webhook_url: Where to post the signed result when the job finishes.

        Returns:
            The new (or, for a repeated key, the existing) job's status.

        Raises:
            RateLimitError: The store holds ``max_jobs`` unfinished jobs (HTTP 429).
            InvalidRequestError: 422 ``idempotency_key_reused``: the key was first used with
                another request.
            JaguarError: The store is closed.
        """
        now = time.monotonic()
        digest = (
            fingerprint("submit", [request.model_dump(mode="json"), webhook_url])
            if idempotency_key is not None
            else ""
        )
        with self._lock:
            if self._closed:
                raise JaguarError("The job store is shut down.", code="server_error")
            if idempotency_key is not None and idempotency_key in self._by_key:
                job_id_seen, digest_seen = self._by_key[idempotency_key]
                existing = self._jobs.get(job_id_seen)
                if existing is not None:
                    if digest_seen != digest:
                        raise key_reused()
                    return existing.status()
            self._evict(now)
            if len(self._jobs) >= self._max_jobs:
                raise RateLimitError(
                    f"The server already holds {self._max_jobs} unfinished jobs; the job was "
                    "not accepted. Wait for some to finish (or cancel them) and submit again.",
                    code="job_store_full",
                    retry_after=1.0,
                )
            job_id = new_job_id()
            rid = request_id or f"req_{job_id[4:]}"
            job = JobRecord(
                id=job_id,
                request=request,
                request_id=rid,
                webhook_url=webhook_url,
                events=[ProgressEvent(stage="queued", total_steps=request.steps, request_id=rid)],
            )
            self._jobs[job_id] = job
            if idempotency_key is not None:
                self._by_key[idempotency_key] = (job_id, digest)
            self._ensure_worker()
            status = job.status()
        self._queue.put(job_id)
        return status

    def _get(self, job_id: str) -> JobRecord:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(
                f"No job {job_id!r}: it never existed here or expired (finished jobs are kept "
                f"{self._ttl_s:g}s).",
                code="not_found",
            )
        return job

    def status(self, job_id: str) -> JobStatus:
        """The job's status.

        Raises:
            NotFoundError: Unknown or expired job.
        """
        with self._lock:
            return self._get(job_id).status()

    def result(self, job_id: str) -> GenerationResult:
        """The result of a finished job.

        Raises:
            NotFoundError: Unknown or expired job.
            JobPendingError: Still queued or running.
            JobCancelledError: The job was cancelled.
            JaguarError: The error the job failed with.
        """
        with self._lock:
            job = self._get(job_id)
            if not job.done:
                raise JobPendingError(
                    f"Job {job_id} is still {job.state}; wait for it to finish first.",
                    request_id=job.request_id,
                )
            if job.result is not None:
                return job.result
            assert job.error is not None
            raise job.error

    def wait(
        self, job_id: str, timeout: float | None = None, *, after_events: int | None = None
    ) -> JobStatus:
        """Block until the job finishes or ``timeout`` passes; returns its status either way.

        Event-driven: the worker notifies the store's condition on every progress event and
        when a job ends, so the answer leaves as soon as there is something new (the
        ``?wait=`` long-poll of ``GET /v1/jobs/{id}`` and the in-process transport use it).

        Args:
            job_id: The job.
            timeout: Seconds to wait at most, or ``None`` for no limit.
            after_events: Also return as soon as the job has more than this many progress
                events (the caller has seen that many); ``None``: wait for the end only.

        Raises:
            NotFoundError: Unknown or expired job.
        """
        end = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._closed:
                job = self._get(job_id)
                if job.done or (after_events is not None and len(job.events) > after_events):
                    break
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._lock.wait(left)
            return self._get(job_id).status()

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a job: at once while queued, at the next step boundary while running.

        Cancelling a finished job changes nothing.

        Returns:
            The status after the request (``cancelled`` for a queued job; still ``running``
            until the engine reaches its next step for a running one).

        Raises:
            NotFoundError: Unknown or expired job.
        """
        with self._lock:
            job = self._get(job_id)
            if job.done:
                return job.status()
            job.cancel_requested.set()
            if job.state == "queued":
                self._finish(job, error=self._cancelled(job))
            status = job.status()
        if job.state == "cancelled":
            self._notify(job)
        return status

    def close(self) -> None:
        """Stop the worker after the running job; queued jobs stay queued (not run)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()  # waiters answer now rather than at their timeout
        self._queue.put(None)

    # --- the worker ----------------------------------------------------------------------------
    @staticmethod
    def _cancelled(job: JobRecord) -> JobCancelledError:
        return JobCancelledError(f"Job {job.id} was cancelled.", request_id=job.request_id)

    def _finish(
        self,
        job: JobRecord,
        *,
        result: GenerationResult | None = None,
        error: JaguarError | None = None,
    ) -> None:
        """Record the outcome (caller holds the lock)."""
        job.result, job.error = result, error
        if result is not None:
            job.state = "succeeded"
        elif isinstance(error, JobCancelledError):
            job.state = "cancelled"
        else:
            job.state = "failed"
        # Every finished job ends with exactly one terminal event: done, failed or cancelled.
        last = job.events[-1] if job.events else None
        stage = {"succeeded": "done", "failed": "failed", "cancelled": "cancelled"}[job.state]
        if last is None or last.stage != stage:
            job.events.append(
                ProgressEvent(
                    stage=stage,  # type: ignore[arg-type]
                    step=job.request.steps if stage == "done" else (last.step if last else 0),
                    total_steps=job.request.steps,
                    request_id=job.request_id,
                )
            )
        job.finished_at = time.time()
        job.finished_mono = time.monotonic()
        if result is not None:
            job.size = result_bytes(result)
            self._bytes += job.size
            self._fit_bytes(keep=job.id)
        self._lock.notify_all()

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None or job.done:
                    continue
                job.state = "running"
            self._run(job)

    def _run(self, job: JobRecord) -> None:
        def on_progress(event: ProgressEvent) -> None:
            with self._lock:
                if len(job.events) < _MAX_EVENTS:
                    job.events.append(event)
                self._lock.notify_all()
            if job.cancel_requested.is_set():
                raise self._cancelled(job)

        result: GenerationResult | None = None
        error: JaguarError | None = None
        try:
            if job.cancel_requested.is_set():
                raise self._cancelled(job)
            result = self._runner(job.request, job.request_id, on_progress)
        except JaguarError as exc:
            error = exc
        except Exception as exc:  # the runner should map these; never kill the worker
            logger.exception("job %s failed", job.id)
            error = GenerationError(f"{type(exc).__name__}: {exc}", request_id=job.request_id)
        with self._lock:
            if error is not None and job.cancel_requested.is_set():
                error = self._cancelled(job)  # cancelled: whatever the step raised
            self._finish(job, result=result, error=error)
        self._notify(job)

    def record_webhook(self, job_id: str, delivery: WebhookDelivery) -> None:
        """Record how a job's webhook delivery went (shown as ``JobStatus.webhook``); a job
        that is gone already is ignored."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                job.webhook = delivery

    def _notify(self, job: JobRecord) -> None:
        if job.webhook_url is None or self.webhook_sender is None:
            return
        with self._lock:
            status = job.status()
            job.webhook = WebhookDelivery(state="pending")
        try:
            self.webhook_sender(job.webhook_url, status, job.result)
        except Exception as exc:  # a receiver's failure never fails the job
            logger.exception("webhook delivery for job %s failed", job.id)
            self.record_webhook(
                job.id, WebhookDelivery(state="failed", last_error=f"{type(exc).__name__}: {exc}")
            )
