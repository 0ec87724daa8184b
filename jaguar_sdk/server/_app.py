"""The FastAPI application factory, shared by ``jaguar serve`` and the Modal web endpoint."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from .. import _constants as C
from .._version import __version__
from ._auth import TokenAuth
from ._errors import install_error_handlers
from ._generation_queue import GenerationQueue
from ._job_routes import JobBackend, build_jobs_router
from ._middleware import RequestContextMiddleware
from ._openai import build_openai_router
from ._routes import build_router
from ._service import JaguarService
from ._webhook_policy import WebhookPolicy

__all__ = ["create_app"]

_DESCRIPTION = """
Shuttle Jaguar text-to-image (a 4-step FluxPipeline), image-to-image, inpainting and LoRA
adapters.

* `POST /v1/generate`: JSON in (input images as base64), or multipart/form-data (images as
  files); the image as raw bytes when one is asked for and `Accept` prefers it (e.g.
  `Accept: image/jpeg`), else JSON with base64 images.
* `POST /v1/images/generations` and `POST /v1/images/edits` (multipart): OpenAI-compatible
  (`b64_json` only, PNG by default).
* `GET /v1/health` (liveness, always 200), `GET /v1/ready` (503 while loading), `GET /v1/info`.
* Jobs: `POST /v1/jobs` (202; the generate body plus an optional signed `webhook_url`),
  `GET /v1/jobs/{id}`, `GET /v1/jobs/{id}/result`, `POST /v1/jobs/{id}/cancel`.
* `POST /v1/admin/reload`: reload the weights without dropping requests (admin token):
  requests queued or running on the old model finish on it.

Errors are `{"error": {"code", "message", "field", "request_id"}, "schema_version": 1}`, and
in OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`) on the OpenAI route.
Authenticate with `Authorization: Bearer <token>` when the server has a token. Generation
waits in a bounded queue (503 `overloaded` with `Retry-After` when full); health, info and
job status never wait behind it. What the server promises under load and hostile input:
docs/server.md.
"""


def create_app(
    service: JaguarService,
    *,
    api_key: str | None = None,
    admin_key: str | None = None,
    max_body_bytes: int = C.MAX_REQUEST_BODY_BYTES,
    title: str = "Shuttle Jaguar",
    webhook_secret: str | None = None,
    job_backend: JobBackend | None = None,
    webhook_allow: Sequence[str] = (),
    generation_workers: int = C.GENERATION_WORKERS,
    max_queued_generations: int = C.MAX_QUEUED_GENERATIONS,
) -> FastAPI:
    """Build the HTTP application around a service.

    The app never loads the model itself: the caller starts the service (``serve`` loads it in
    a background thread; the Modal class loads it in ``@modal.enter``). Until it is loaded,
    ``/v1/health`` answers ``"loading"`` and generation answers 503 with ``Retry-After``.

    Args:
        service: The model service; every route calls only it.
        api_key: Bearer token required by generation and info routes; ``None`` leaves them
            open. Health and readiness never need it.
        admin_key: Bearer token for admin routes; defaults to ``api_key``. With neither set,
            admin routes answer 403.
        max_body_bytes: Largest request body accepted (413 above it); the routes that take
            input images (``/v1/generate``, ``/v1/jobs``, ``/v1/images/edits``) accept this
            plus two base64-encoded images of 10 MiB.
        title: The API title in the OpenAPI schema.
        webhook_secret: The HMAC secret job webhooks are signed with; without one, a job
            asking for a webhook is refused (422) rather than sent unsigned.
        job_backend: Where ``/v1/jobs`` runs jobs (a :class:`JobBackend`); ``None`` uses the
            service's in-process job store.
        webhook_allow: Networks (CIDR, e.g. ``"10.0.0.0/8"``, ``"127.0.0.1/32"``) webhooks may
            reach besides public addresses; everything else internal is refused (422 at
            submission, and again when the webhook connects).
        generation_workers: Generations run at once, on threads of their own.
        max_queued_generations: Generations waiting beyond those; more are refused at once
            with 503 ``overloaded`` and ``Retry-After``.

    Returns:
        The FastAPI app (OpenAPI at ``/openapi.json``, docs at ``/docs``).

    Raises:
        ValueError: If ``max_body_bytes`` is not positive, an entry of ``webhook_allow`` is
            not a network, or the queue sizes are out of range.

    Example:
        >>> from jaguar_sdk.server._service import JaguarService
        >>> from jaguar_sdk.engine import Engine                      # doctest: +SKIP
        >>> service = JaguarService(lambda: Engine.load("tiny"))      # doctest: +SKIP
        >>> service.start()                                           # doctest: +SKIP
        >>> app = create_app(service, api_key="s3cret")               # doctest: +SKIP
        >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    if max_body_bytes <= 0:
        raise ValueError("max_body_bytes must be positive")
    app = FastAPI(
        title=title,
        version=__version__,
        description=_DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.jaguar_service = service
    app.state.jaguar_auth = TokenAuth(api_key=api_key or None, admin_key=admin_key or None)
    app.state.jaguar_max_body_bytes = max_body_bytes
    app.state.jaguar_webhook_secret = webhook_secret or None
    app.state.jaguar_job_backend = job_backend
    policy = WebhookPolicy(webhook_allow)
    app.state.jaguar_webhook_policy = policy
    app.state.jaguar_generation_queue = GenerationQueue(
        workers=generation_workers, max_queued=max_queued_generations
    )
    if webhook_secret:
        from ._webhook_sender import HttpWebhookSender

        jobs = service.jobs
        jobs.webhook_sender = HttpWebhookSender(
            webhook_secret, policy=policy, report=jobs.record_webhook
        )
    install_error_handlers(app)
    app.include_router(build_router())  # paths from the table of operations
    app.include_router(build_jobs_router())
    app.include_router(build_openai_router(), prefix="/v1")
    app.add_middleware(RequestContextMiddleware)
    return app
