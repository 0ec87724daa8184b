"""The ``/v1/jobs`` routes: submit, status, result, cancel (same auth as generation)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .._exceptions import InvalidRequestError
from .._types import GenerationResult, JobStatus, validate_request
from ._auth import require_api_token
from ._body import read_json_object
from ._errors import ErrorBody, request_id_of
from ._routes import idempotency_key_of, max_body_of, result_response, service_of

__all__ = ["build_jobs_router", "check_webhook_url"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
    404: {"model": ErrorBody, "description": "No such job (or it expired)"},
}


def check_webhook_url(value: Any, *, secret: str | None) -> str | None:
    """Validate an optional ``webhook_url``.

    Args:
        value: The body's ``webhook_url`` (``None`` when absent).
        secret: The server's webhook secret; webhooks are refused without one (never unsigned).

    Returns:
        The URL, or ``None``.

    Raises:
        InvalidRequestError: Not an absolute http(s) URL, or the server has no secret.
    """
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise InvalidRequestError("webhook_url: must be a URL string", field="webhook_url")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequestError(
            f"webhook_url: must be an absolute http(s) URL (got {value[:80]!r})",
            field="webhook_url",
        )
    if not secret:
        raise InvalidRequestError(
            "webhook_url: this server has no webhook secret, so it cannot sign webhooks; start "
            "it with --webhook-secret (or JAGUAR_WEBHOOK_SECRET).",
            field="webhook_url",
        )
    return value


def _json(status: JobStatus, code: int = 200) -> Response:
    return Response(
        content=status.model_dump_json(), media_type="application/json", status_code=code
    )


def build_jobs_router() -> APIRouter:
    """The job routes, to mount at ``/v1``.

    Returns:
        A router with ``POST /jobs``, ``GET /jobs/{id}``, ``GET /jobs/{id}/result`` and
        ``POST /jobs/{id}/cancel``.
    """
    router = APIRouter(dependencies=[Depends(require_api_token)], tags=["jobs"])

    @router.post(
        "/jobs",
        summary="Submit a generation job (202); poll it, or get a signed webhook",
        status_code=202,
        response_model=JobStatus,
        responses={
            **_ERRORS,
            422: {"model": ErrorBody, "description": "A field breaks its bound"},
            429: {"model": ErrorBody, "description": "The job store is full; retry later"},
        },
    )
    async def submit(request: Request) -> Response:
        body = await read_json_object(request, max_bytes=max_body_of(request))
        webhook_url = check_webhook_url(
            body.pop("webhook_url", None), secret=request.app.state.jaguar_webhook_secret
        )
        req = validate_request(body)
        status = service_of(request).jobs.submit(
            req,
            request_id=request_id_of(request),
            idempotency_key=idempotency_key_of(request),
            webhook_url=webhook_url,
        )
        return _json(status, 202)

    @router.get("/jobs/{job_id}", summary="A job's state and progress", response_model=JobStatus)
    async def status(request: Request, job_id: str) -> Response:
        return _json(service_of(request).jobs.status(job_id))

    @router.get(
        "/jobs/{job_id}/result",
        summary="A finished job's result (409 while pending or when cancelled)",
        response_model=GenerationResult,
        responses={409: {"model": ErrorBody, "description": "Pending or cancelled"}},
    )
    async def result(request: Request, job_id: str) -> Response:
        out = await run_in_threadpool(service_of(request).jobs.result, job_id)
        return result_response(out, request.headers.get("accept"))

    @router.post(
        "/jobs/{job_id}/cancel",
        summary="Cancel a job (at once if queued, at the next step if running)",
        response_model=JobStatus,
    )
    async def cancel(request: Request, job_id: str) -> Response:
        return _json(service_of(request).jobs.cancel(job_id))

    return router
