"""The ``/v1/jobs`` routes: submit, status, result, cancel (same auth as generation)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .. import _constants as C
from .._exceptions import InvalidRequestError
from .._request import GenerateRequest, validate_request
from .._results import GenerationResult, JobStatus
from ..webhooks import MAX_WEBHOOK_URL_CHARS
from ._errors import ErrorBody, request_id_of
from ._form import multipart_schema, read_request_body
from ._job_store import JobStore
from ._routes import (
    ERRORS,
    IDEMPOTENCY_KEY_PARAMETER,
    IMAGE_CONTENT,
    idempotency_key_of,
    max_body_of,
    operation_route,
    result_response,
    service_of,
)
from ._schema import body_schema
from ._webhook_policy import WebhookPolicy

__all__ = [
    "JobBackend",
    "StoreJobBackend",
    "build_jobs_router",
    "check_webhook_url",
    "job_backend_of",
    "submit_body_schema",
]

#: What a job route can answer besides its success.
_JOB_ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERRORS[401],
    404: ERRORS[404],
    422: {"model": ErrorBody, "description": "Never for a job id (any string is one)"},
}


def submit_body_schema() -> dict[str, Any]:
    """The JSON schema of ``POST /v1/jobs``: the generate body plus ``webhook_url``."""
    schema = body_schema()
    schema["title"] = "JobRequest"
    schema["properties"]["webhook_url"] = {
        "anyOf": [
            {"type": "string", "format": "uri", "maxLength": MAX_WEBHOOK_URL_CHARS},
            {"type": "null"},
        ],
        "description": "Where to post the signed result when the job ends: an absolute "
        "http(s) URL of printable ASCII, without credentials, whose host resolves to public "
        "addresses only (unless the operator allow-lists others). Needs a server with a "
        "webhook secret.",
    }
    return schema


async def check_webhook_url(value: Any, *, secret: str | None, policy: WebhookPolicy) -> str | None:
    """Validate an optional ``webhook_url``: its form, the server's secret, then where it points.

    Args:
        value: The body's ``webhook_url`` (``None`` when absent).
        secret: The server's webhook secret; webhooks are refused without one (never unsigned).
        policy: Where webhooks may connect.

    Returns:
        The URL, or ``None``.

    Raises:
        InvalidRequestError: 422 naming ``webhook_url``: malformed (even on a server without a
            secret), no secret, or a host that resolves to a refused address.
    """
    if value is None:
        return None
    url = policy.check_form(value)
    if not secret:
        raise InvalidRequestError(
            "webhook_url: this server has no webhook secret, so it cannot sign webhooks; start "
            "it with --webhook-secret (or JAGUAR_WEBHOOK_SECRET).",
            field="webhook_url",
        )
    return await run_in_threadpool(policy.check_url, url)  # DNS blocks


@runtime_checkable
class JobBackend(Protocol):
    """Where the ``/v1/jobs`` routes run their jobs.

    The default is the service's in-process :class:`~jaguar_sdk.server._job_store.JobStore`
    (:class:`StoreJobBackend`); the Modal deployment plugs in one that spawns the class method
    (``deploy/jobs.py``), so a job outlives the web request and any container answers for it.
    The methods block; the routes call them in a worker thread. A backend may also have
    ``wait(job_id, timeout, *, after_events=None) -> JobStatus`` (block until the job ends or
    has more than ``after_events`` events): then ``GET /v1/jobs/{id}?wait=S`` long-polls;
    without it that route answers at once and clients back off between polls.

    Example:
        >>> app = create_app(service, job_backend=MyBackend())  # doctest: +SKIP
    """

    def submit(
        self,
        request: GenerateRequest,
        webhook_url: str | None,
        idempotency_key: str | None,
        *,
        request_id: str | None = None,
    ) -> JobStatus:
        """Start a job; returns its first status. Raises a ``JaguarError`` when refused."""
        ...

    def status(self, job_id: str) -> JobStatus:
        """The job's status. Raises ``NotFoundError`` for an unknown job."""
        ...

    def result(self, job_id: str) -> GenerationResult:
        """The finished job's result; raises ``JobPendingError``, ``JobCancelledError`` or the
        job's error."""
        ...

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel the job; returns the status after the request."""
        ...


class StoreJobBackend:
    """The default backend: a :class:`~jaguar_sdk.server._job_store.JobStore` in this process.

    Args:
        store: The store, or a function returning it (looked up on every call, so the
            service's lazily made store is used).

    Example:
        >>> backend = StoreJobBackend(lambda: service.jobs)  # doctest: +SKIP
    """

    def __init__(self, store: JobStore | Callable[[], JobStore]) -> None:
        self._store = store

    @property
    def store(self) -> JobStore:
        """The job store."""
        return self._store if isinstance(self._store, JobStore) else self._store()

    def submit(
        self,
        request: GenerateRequest,
        webhook_url: str | None,
        idempotency_key: str | None,
        *,
        request_id: str | None = None,
    ) -> JobStatus:
        """Queue the job in the store (see :meth:`JobStore.submit`)."""
        return self.store.submit(
            request,
            request_id=request_id,
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
        )

    def status(self, job_id: str) -> JobStatus:
        """See :meth:`JobStore.status`."""
        return self.store.status(job_id)

    def result(self, job_id: str) -> GenerationResult:
        """See :meth:`JobStore.result`."""
        return self.store.result(job_id)

    def cancel(self, job_id: str) -> JobStatus:
        """See :meth:`JobStore.cancel`."""
        return self.store.cancel(job_id)

    def wait(
        self, job_id: str, timeout: float | None, *, after_events: int | None = None
    ) -> JobStatus:
        """See :meth:`JobStore.wait` (the ``?wait=`` long-poll)."""
        return self.store.wait(job_id, timeout, after_events=after_events)


#: Long-polls held at once per app; more wait for a free thread (or their ``wait``).
_MAX_WAITERS = 256


def _wait_limiter(request: Request) -> anyio.CapacityLimiter:
    """The app's limiter for long-polls (made on first use: it needs the running loop)."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "jaguar_wait_limiter", None)
    if limiter is None:
        limiter = anyio.CapacityLimiter(_MAX_WAITERS)
        request.app.state.jaguar_wait_limiter = limiter
    return limiter


def job_backend_of(request: Request) -> JobBackend:
    """The app's job backend (``create_app(job_backend=...)``), else the service's store."""
    backend: JobBackend | None = getattr(request.app.state, "jaguar_job_backend", None)
    if backend is None:
        service = service_of(request)
        backend = StoreJobBackend(lambda: service.jobs)
    return backend


def _json(status: JobStatus, code: int = 200) -> Response:
    return Response(
        content=status.model_dump_json(), media_type="application/json", status_code=code
    )


def build_jobs_router() -> APIRouter:
    """The job routes (paths from the table of operations).

    Returns:
        A router with ``POST /jobs``, ``GET /jobs/{id}``, ``GET /jobs/{id}/result`` and
        ``POST /jobs/{id}/cancel``.
    """
    router = APIRouter(tags=["jobs"])

    @operation_route(
        router,
        "submit",
        summary="Submit a generation job (202); poll it, or get a signed webhook",
        status_code=202,
        response_model=JobStatus,
        responses={
            **{code: ERRORS[code] for code in (400, 401, 413, 415, 422)},
            429: {"model": ErrorBody, "description": "The job store is full; retry later"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": submit_body_schema()},
                    "multipart/form-data": {"schema": multipart_schema(submit_body_schema())},
                },
            },
            "parameters": [IDEMPOTENCY_KEY_PARAMETER],
        },
    )
    async def submit(request: Request) -> Response:
        body = await read_request_body(request, base_bytes=max_body_of(request))
        raw_url = body.pop("webhook_url", None)
        # the request's own fields first (off the event loop: an input image is decoded)
        req = await run_in_threadpool(validate_request, body, remote=True)
        webhook_url = await check_webhook_url(
            raw_url,
            secret=request.app.state.jaguar_webhook_secret,
            policy=request.app.state.jaguar_webhook_policy,
        )
        status = await run_in_threadpool(
            job_backend_of(request).submit,
            req,
            webhook_url,
            idempotency_key_of(request),
            request_id=request_id_of(request),
        )
        return _json(status, 202)

    @operation_route(
        router,
        "job_status",
        summary="A job's state and progress; `?wait=S` holds the answer until the job ends",
        response_model=JobStatus,
        responses={
            **_JOB_ERRORS,
            422: {"model": ErrorBody, "description": "`wait` or `after` out of range"},
        },
    )
    async def status(
        request: Request,
        job_id: str,
        wait: float | None = Query(
            None,
            ge=0,
            le=C.JOB_WAIT_MAX_S,
            allow_inf_nan=False,
            description=(
                f"Long-poll: hold the answer up to this many seconds (0-{C.JOB_WAIT_MAX_S:g}) "
                "until the job has ended; answered at once when it already has."
            ),
        ),
        after: int | None = Query(
            None,
            ge=0,
            description=(
                "With `wait`: also answer as soon as the job has more than this many progress "
                "events (the number of events the caller has already seen)."
            ),
        ),
    ) -> Response:
        # `wait` and `after` are checked by their Query bounds (422 naming the field).
        backend = job_backend_of(request)
        waiter = getattr(backend, "wait", None)
        if wait is None or waiter is None:  # a backend that cannot wait answers at once
            return _json(await run_in_threadpool(backend.status, job_id))
        # A long-poll blocks a worker thread on the store's condition; waits get their own
        # limiter so they never take the threads that generation and the other routes use
        # (starlette's run_in_threadpool shares anyio's default limiter of 40 threads).
        status = await anyio.to_thread.run_sync(
            functools.partial(waiter, job_id, wait, after_events=after),
            limiter=_wait_limiter(request),
        )
        return _json(status)

    @operation_route(
        router,
        "job_result",
        summary="A finished job's result (409 while pending or when cancelled)",
        response_model=GenerationResult,
        responses={
            200: {
                "description": "The result (raw image bytes when `Accept` prefers them)",
                "model": GenerationResult,
                "content": IMAGE_CONTENT,
            },
            **_JOB_ERRORS,
            409: {"model": ErrorBody, "description": "Pending or cancelled"},
            500: {"model": ErrorBody, "description": "The job failed (its error)"},
        },
    )
    async def result(request: Request, job_id: str) -> Response:
        out = await run_in_threadpool(job_backend_of(request).result, job_id)
        return result_response(out, request.headers.get("accept"))

    @operation_route(
        router,
        "job_cancel",
        summary="Cancel a job (at once if queued, at the next step if running)",
        response_model=JobStatus,
        responses=_JOB_ERRORS,
    )
    async def cancel(request: Request, job_id: str) -> Response:
        return _json(await run_in_threadpool(job_backend_of(request).cancel, job_id))

    return router
