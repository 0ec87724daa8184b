"""The HTTP API on a CPU web function: the app of ``jaguar serve``, over the GPU class.

Health answers from the web container itself and never wakes a GPU; job status reads the app's
state Dict or the call graph (``deploy/jobs.py``); ``generate``, ``info`` and ``reload`` are calls
to the GPU class (``.remote.aio`` / ``.spawn.aio``). A misconfigured token makes this app answer
503 with what to do, instead of failing the container.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from deploy.aio import raise_thread_limit, run_coroutine
from deploy.idempotency import SharedIdempotency
from deploy.jobs import ModalJobBackend
from deploy.settings import DeploySettings
from jaguar_sdk import (
    GenerateRequest,
    GenerationResult,
    HealthStatus,
    JaguarError,
    ModelInfo,
    NotReadyError,
    __version__,
    validate_request,
)
from jaguar_sdk.server import JaguarService, ProgressCallback, fingerprint, new_request_id
from jaguar_sdk.transports import Call, Operation, Reply, map_modal_error, parse_reply

__all__ = ["HEALTH_DETAIL", "RemoteService", "build_web_app", "misconfigured_app"]

logger = logging.getLogger("jaguar_sdk.deploy")

#: What ``/v1/health`` says on Modal (the web function answers it; no GPU is asked).
HEALTH_DETAIL = (
    "the web function is up; GPU containers start on demand (GET /v1/info asks one, which may "
    "start it)"
)


class RemoteService(JaguarService):
    """The service every route calls, with each model operation a call to the GPU class.

    Args:
        gpu: Returns an instance of the GPU class (``JaguarModel()``).
        idempotency: Keys shared across web containers.
        app_name: For error messages.
        class_name: For error messages.
    """

    def __init__(
        self,
        gpu: Callable[[], Any],
        *,
        idempotency: SharedIdempotency,
        app_name: str,
        class_name: str,
    ) -> None:
        super().__init__(self._no_engine)
        self._gpu = gpu
        self._keys = idempotency
        self._app_name = app_name
        self._class_name = class_name

    def _no_engine(self) -> Any:
        raise NotReadyError("The web function holds no model; it calls the GPU class.")

    def _map(self, exc: BaseException, request_id: str | None) -> JaguarError:
        return map_modal_error(
            exc, app=self._app_name, cls_name=self._class_name, request_id=request_id
        )

    def _parse(self, operation: Operation, data: Any, request_id: str | None) -> Any:
        if not isinstance(data, dict):
            raise JaguarError(
                f"The GPU class answered {operation} with {type(data).__name__}, not a dict: "
                "redeploy with `modal deploy deploy/app.py`.",
                request_id=request_id,
            )
        return parse_reply(operation, Reply(data=data, request_id=request_id))

    def _call(self, operation: Operation, payload: dict[str, Any], request_id: str | None) -> Any:
        async def remote() -> Any:
            method = getattr(self._gpu(), operation)
            return await method.remote.aio(payload)

        try:
            data = run_coroutine(remote)
        except JaguarError:
            raise
        except Exception as exc:
            raise self._map(exc, request_id) from exc
        return self._parse(operation, data, request_id)

    # --- what the routes call -----------------------------------------------------------------
    def health(self) -> HealthStatus:
        """The web function's own health: up, and able to take requests; never a GPU call."""
        return HealthStatus(status="ok", ready=True, version=__version__, detail=HEALTH_DETAIL)

    def info(self) -> ModelInfo:
        """The GPU class's ``info`` (what a GPU container serves; may start one)."""
        rid = new_request_id()
        info: ModelInfo = self._call("info", Call(operation="info", request_id=rid).to_plain(), rid)
        return info

    def reload(self) -> ModelInfo:
        """The GPU class's ``reload`` (one GPU container verifies and reloads)."""
        rid = new_request_id()
        payload = Call(operation="reload", request_id=rid).to_plain()
        info: ModelInfo = self._call("reload", payload, rid)
        return info

    def generate(
        self,
        request: GenerateRequest | dict[str, Any],
        *,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        idempotency_scope: str = "generate",
    ) -> GenerationResult:
        """Generate on the GPU class; with an idempotency key, at most once across containers
        (and a key first used with another request is refused, as by ``jaguar serve``).

        Raises:
            InvalidRequestError: A field is out of range (before any Modal call).
            JaguarError: The generation's error, or a mapped Modal failure.
        """
        req = validate_request(request)
        rid = request_id or new_request_id()
        payload = Call(
            operation="generate", request=req, request_id=rid, idempotency_key=idempotency_key
        ).to_plain()
        try:
            digest = fingerprint(idempotency_scope, req.model_dump(mode="json"))
            data = run_coroutine(self._generate, payload, idempotency_key, digest)
        except JaguarError:
            raise
        except Exception as exc:
            raise self._map(exc, rid) from exc
        result: GenerationResult = self._parse("generate", data, rid)
        return result

    async def _generate(self, payload: dict[str, Any], key: str | None, digest: str) -> Any:
        import modal

        method = self._gpu().generate
        if key is None:
            return await method.remote.aio(payload)
        call_id, fresh = await self._keys.spawn_once(
            "generate", key, digest, lambda: method.spawn.aio(payload)
        )
        if not fresh:
            logger.info("idempotency key seen before; waiting on call %s", call_id)
        return await modal.FunctionCall.from_id(call_id).get.aio()


def misconfigured_app(message: str) -> Any:
    """An ASGI app answering every request 503 with ``message`` (instead of a crash loop).

    Args:
        message: What is wrong and the command that fixes it (never a secret's value).
    """
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from jaguar_sdk import ConfigurationError

    body = {"error": ConfigurationError(message).to_payload(), "schema_version": 1}
    app = FastAPI(title="Shuttle Jaguar (misconfigured)", openapi_url=None, docs_url=None)

    @app.api_route(
        "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    )
    async def refuse(path: str) -> JSONResponse:
        return JSONResponse(body, status_code=503)

    return app


def build_web_app(
    s: DeploySettings,
    *,
    gpu_class: Any,
    state: Any,
    class_name: str,
    environ: Mapping[str, str],
) -> Any:
    """The web function's app: ``create_app`` over a :class:`RemoteService`.

    Args:
        s: The deploy settings.
        gpu_class: The GPU class (``JaguarModel``); instantiated per call.
        state: The app's state ``modal.Dict`` (idempotency keys, job outcomes).
        class_name: The GPU class's name, for messages.
        environ: Where the secrets are (``JAGUAR_SERVER_TOKEN``, ``JAGUAR_ADMIN_TOKEN``,
            ``JAGUAR_WEBHOOK_SECRET``).

    Returns:
        The FastAPI app, or :func:`misconfigured_app` when token auth has no token.
    """
    from jaguar_sdk.server import create_app

    api_key: str | None = None
    if s.web_auth == "token":
        api_key = environ.get("JAGUAR_SERVER_TOKEN") or None
        if api_key is None:
            logger.error("JAGUAR_SERVER_TOKEN is not set; the web app answers 503")
            return misconfigured_app(
                f"JAGUAR_WEB_AUTH=token, but the secret {s.token_secret!r} holds no "
                "JAGUAR_SERVER_TOKEN. Create it with `modal secret create "
                f"{s.token_secret} JAGUAR_SERVER_TOKEN=<a long random token>` (or deploy with "
                "JAGUAR_WEB_AUTH=proxy), then redeploy. The Python API (JaguarClient.from_modal) "
                "is not affected."
            )
    admin_key = environ.get("JAGUAR_ADMIN_TOKEN") or api_key
    keys = SharedIdempotency(state)
    service = RemoteService(
        lambda: gpu_class(), idempotency=keys, app_name=s.app_name, class_name=class_name
    )
    backend = ModalJobBackend(
        lambda: gpu_class(),
        state=state,
        idempotency=keys,
        app_name=s.app_name,
        class_name=class_name,
    )
    app = create_app(
        service,
        api_key=api_key,
        admin_key=admin_key,
        webhook_secret=environ.get("JAGUAR_WEBHOOK_SECRET") or None,
        job_backend=backend,
    )
    # Every request waiting on the GPU holds a worker thread (deploy/aio.py).
    app.router.on_startup.append(lambda: raise_thread_limit(s.web_max_inputs + 16))
    return app
