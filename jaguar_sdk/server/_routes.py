"""The native ``/v1`` routes: generate, info, health, ready, admin reload."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.types import DecoratedCallable
from starlette.concurrency import run_in_threadpool

from .. import _constants as C
from .._exceptions import InvalidRequestError, JaguarError, NotReadyError, ServerError
from .._operations import OPERATIONS, Operation
from .._request import validate_request
from .._results import GenerationResult, HealthStatus, ModelInfo
from ._auth import require_admin_token, require_api_token
from ._errors import ErrorBody, request_id_of
from ._form import multipart_schema, read_request_body
from ._generation_queue import GenerationQueue
from ._negotiate import negotiate_format, prefers_image
from ._schema import body_schema
from ._service import JaguarService

__all__ = [
    "ERRORS",
    "IDEMPOTENCY_KEY_PARAMETER",
    "IMAGE_CONTENT",
    "REQUEST_ID_PARAMETER",
    "build_router",
    "generation_queue_of",
    "idempotency_key_of",
    "max_body_of",
    "operation_route",
    "result_json",
    "result_response",
    "service_of",
]

_IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")

#: The error responses of the native routes, for their OpenAPI ``responses``.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (
            400,
            "Malformed JSON, a body that is not a JSON object, or a malformed Idempotency-Key",
        ),
        (401, "Missing or wrong bearer token"),
        (404, "No such job (or it expired)"),
        (413, "Body larger than the server's limit"),
        (415, "Body neither application/json nor multipart/form-data"),
        (
            422,
            "A field breaks its documented bound (`error.field` names it), or the "
            "Idempotency-Key was already used with another request (`idempotency_key_reused`)",
        ),
        (500, "The model failed on a valid request"),
        (
            503,
            "The model is loading (`not_ready`) or the generation queue is full "
            "(`overloaded`); retry after `Retry-After` seconds",
        ),
    )
}

#: ``Idempotency-Key``: its format, as :func:`idempotency_key_of` checks it.
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": C.HEADER_IDEMPOTENCY_KEY,
    "in": "header",
    "required": False,
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[\\x21-\\x7e]{1,255}$",
    },
    "description": "1 to 255 printable ASCII characters without spaces (a UUID works well). "
    "Repeats of the same request with the same key get the first result; another request "
    "under the key is refused (422 `idempotency_key_reused`); a malformed key is 400.",
}

#: ``X-Request-ID``: taken when usable, replaced otherwise (the middleware's behaviour).
REQUEST_ID_PARAMETER: dict[str, Any] = {
    "name": C.HEADER_REQUEST_ID,
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Your id for this request. Used when it is 1 to 128 characters of "
    "`[A-Za-z0-9._-]`; any other value is replaced by a fresh id (`req_...`). The response's "
    "`X-Request-ID` always carries the id used, and the server's log line quotes it.",
}

IMAGE_CONTENT: dict[str, Any] = {
    mime: {"schema": {"type": "string", "format": "binary"}}
    for mime in ("image/jpeg", "image/png", "image/webp")
}


def service_of(request: Request) -> JaguarService:
    """The :class:`JaguarService` the app was built with."""
    service = request.app.state.jaguar_service
    assert isinstance(service, JaguarService)
    return service


def max_body_of(request: Request) -> int:
    """The app's body-size limit in bytes."""
    return int(request.app.state.jaguar_max_body_bytes)


def generation_queue_of(request: Request) -> GenerationQueue:
    """The app's generation queue (``create_app(generation_workers=, max_queued_generations=)``)."""
    queue = request.app.state.jaguar_generation_queue
    assert isinstance(queue, GenerationQueue)
    return queue


def idempotency_key_of(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, checked (1-255 printable ASCII characters).

    Raises:
        InvalidRequestError: 400 when the header is present but malformed.
    """
    key = request.headers.get(C.HEADER_IDEMPOTENCY_KEY)
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise InvalidRequestError(
            f"The {C.HEADER_IDEMPOTENCY_KEY} header must be 1 to 255 printable ASCII "
            "characters without spaces (a UUID works well).",
            status_code=400,
        )
    return key


def _metadata_header(result: GenerationResult) -> str:
    meta = result.model_dump(mode="json", exclude={"images": {"__all__": {"data"}}})
    # ensure_ascii keeps the header latin-1 safe whatever the prompt holds.
    return json.dumps(meta, ensure_ascii=True, separators=(",", ":"))


def result_json(result: GenerationResult) -> bytes:
    """The result as JSON, images as standard base64 (the wire models' JSON form)."""
    return result.model_dump_json().encode("utf-8")


def result_response(result: GenerationResult, accept: str | None) -> Response:
    """The HTTP response for a result: raw image bytes or base64 JSON.

    Args:
        result: The generation result.
        accept: The request's ``Accept`` header.

    Returns:
        Raw bytes (content-type of the image, ``X-Jaguar-Seed`` and ``X-Jaguar-Result``
        headers) when exactly one image was made and ``Accept`` prefers it to JSON; else the
        JSON of the result with base64 image data.
    """
    headers = {C.HEADER_SEED: str(result.seed)}
    if len(result.images) == 1 and prefers_image(accept, result.images[0].mime_type):
        image = result.images[0]
        headers[C.HEADER_RESULT] = _metadata_header(result)
        return Response(content=image.data, media_type=image.mime_type, headers=headers)
    return Response(content=result_json(result), media_type="application/json", headers=headers)


def _json(model: HealthStatus | ModelInfo, status_code: int = 200) -> Response:
    return Response(
        content=model.model_dump_json(), media_type="application/json", status_code=status_code
    )


def operation_route(
    router: APIRouter, name: Operation, **kwargs: Any
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The route decorator of an operation: method and path from the table of operations, the
    token its ``auth`` asks for (admin routes are always authenticated) and, in its OpenAPI,
    the ``X-Request-ID`` header every route takes."""
    spec = OPERATIONS[name]
    add = router.post if spec.http_method == "POST" else router.get
    guard = {"token": [Depends(require_api_token)], "admin": [Depends(require_admin_token)]}
    extra = dict(kwargs.pop("openapi_extra", None) or {})
    extra["parameters"] = [*extra.get("parameters", []), REQUEST_ID_PARAMETER]
    return add(spec.http_path, dependencies=guard.get(spec.auth, []), openapi_extra=extra, **kwargs)


def build_router() -> APIRouter:
    """The native routes (paths from the table of operations), plus ``/v1/ready``.

    Returns:
        A router to mount at the root.
    """
    router = APIRouter()

    @operation_route(
        router,
        "generate",
        summary="Generate images from a prompt (and an image, a mask, LoRA adapters)",
        tags=["generation"],
        response_model=None,
        responses={
            200: {
                "description": (
                    "The result as JSON (images base64-encoded), or, when one image is asked "
                    "for and `Accept` prefers it, the raw image with `X-Jaguar-Seed` and "
                    "`X-Jaguar-Result` (result metadata as JSON) headers."
                ),
                "model": GenerationResult,
                "content": IMAGE_CONTENT,
            },
            **{code: ERRORS[code] for code in (400, 401, 413, 415, 422, 500, 503)},
            406: {"model": ErrorBody, "description": "`Accept` conflicts with `output_format`"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": body_schema()},
                    "multipart/form-data": {"schema": multipart_schema()},
                },
            },
            "parameters": [IDEMPOTENCY_KEY_PARAMETER],
        },
    )
    async def generate(request: Request) -> Response:
        body = await read_request_body(request, base_bytes=max_body_of(request))
        fields = negotiate_format(body, request.headers.get("accept"))
        # Off the event loop: checking an input image decodes it.
        req = await run_in_threadpool(validate_request, fields, remote=True)
        key = idempotency_key_of(request)
        service = service_of(request)
        result = await generation_queue_of(request).run(
            service.generate, req, request_id=request_id_of(request), idempotency_key=key
        )
        return result_response(result, request.headers.get("accept"))

    @operation_route(
        router,
        "info",
        summary="What model is being served",
        tags=["model"],
        response_model=ModelInfo,
        responses={401: ERRORS[401], 503: {"model": ErrorBody, "description": "Loading"}},
    )
    async def info(request: Request) -> Response:
        return _json(await run_in_threadpool(service_of(request).info))

    @operation_route(
        router,
        "health",
        summary="Liveness: always 200, with the loading state",
        tags=["health"],
        response_model=HealthStatus,
    )
    async def health(request: Request) -> Response:
        return _json(service_of(request).health())

    @router.get(
        "/v1/ready",
        summary="Readiness: 200 when a generate request would run now, else 503",
        tags=["health"],
        response_model=HealthStatus,
        responses={503: {"model": ErrorBody, "description": "The model is loading"}},
        openapi_extra={"parameters": [REQUEST_ID_PARAMETER]},
    )
    async def ready(request: Request) -> Response:
        status = service_of(request).health()
        if status.ready:
            return _json(status)
        raise NotReadyError(f"The model is not ready: {status.detail or status.status}.")

    @operation_route(
        router,
        "reload",
        summary="Reload the model (verify-or-download, then swap in without dropping requests)",
        tags=["admin"],
        response_model=ModelInfo,
        responses={
            401: ERRORS[401],
            403: {"model": ErrorBody, "description": "No admin token configured"},
            500: {"model": ErrorBody, "description": "The reload failed; the old model serves"},
        },
    )
    async def reload(request: Request) -> Response:
        try:
            model_info = await run_in_threadpool(service_of(request).reload)
        except JaguarError:
            raise
        except Exception as exc:
            raise ServerError(
                f"Reloading the model failed ({type(exc).__name__}); the previously loaded "
                "model, if any, keeps serving. See the server log for details.",
                code="reload_failed",
            ) from exc
        return _json(model_info)

    return router
