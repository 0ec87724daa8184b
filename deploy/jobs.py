"""The Modal job backend of the web function: ``/v1/jobs`` spawns the GPU class's ``generate``.

A job is a spawned call, not work in the web container that took the request: it outlives
Modal's 150 s web-request limit, and any container (or client process) answers for it by its id,
the ``FunctionCall``'s ``object_id``. Status, result and cancel are those of the Modal transport
(``jaguar_sdk/_transports/_modal_jobs.py``): a status poll reads the outcome record the GPU class
leaves in the app's state Dict, or the call graph, and never downloads the images; cancel says
whether the job had already finished; an expired result is 410, not a timeout.

An ``Idempotency-Key`` holds across web containers (``deploy/idempotency.py``). Webhooks are
refused: no container is around to post them when a spawned call ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from deploy.aio import run_coroutine
from deploy.idempotency import SharedIdempotency
from jaguar_sdk import GenerateRequest, GenerationResult, InvalidRequestError, JobStatus
from jaguar_sdk.server import fingerprint
from jaguar_sdk.transports import Call, Operation, map_modal_error, parse_reply, run_job_operation

__all__ = ["ModalJobBackend"]


class ModalJobBackend:
    """A :class:`~jaguar_sdk.server.JobBackend` that runs each job as a spawned Modal call.

    Args:
        gpu: Returns an instance of the GPU class (``JaguarModel()``).
        state: The app's state ``modal.Dict`` (job outcome records).
        idempotency: Keys shared across web containers.
        app_name: For messages.
        class_name: For messages.

    Example:
        >>> backend = ModalJobBackend(lambda: JaguarModel(), state=state,      # doctest: +SKIP
        ...     idempotency=SharedIdempotency(state), app_name="shuttle-jaguar",
        ...     class_name="JaguarModel")
        >>> app = create_app(service, job_backend=backend)                  # doctest: +SKIP
    """

    def __init__(
        self,
        gpu: Callable[[], Any],
        *,
        state: Any,
        idempotency: SharedIdempotency,
        app_name: str,
        class_name: str,
    ) -> None:
        self._gpu = gpu
        self._state = state
        self._keys = idempotency
        self._app_name = app_name
        self._class_name = class_name
        self._where = f"class {class_name!r} of Modal app {app_name!r}"

    def _operation(self, operation: Operation, job_id: str) -> Any:
        call = Call(operation=operation, job_id=job_id)
        reply = run_job_operation(
            call,
            self._state,
            where=self._where,
            map_error=lambda exc: map_modal_error(
                exc, app=self._app_name, cls_name=self._class_name
            ),
        )
        return parse_reply(operation, reply)

    def submit(
        self,
        request: GenerateRequest,
        webhook_url: str | None,
        idempotency_key: str | None,
        *,
        request_id: str | None = None,
    ) -> JobStatus:
        """Spawn ``generate`` with the request (once per idempotency key, across containers).

        Args:
            request: The validated request.
            webhook_url: Must be ``None``: spawned jobs post no webhooks.
            idempotency_key: A repeat gets the first job back, from any web container.
            request_id: The generation's request id.

        Returns:
            ``queued`` with the ``FunctionCall`` id as the job id; a repeated key answers the
            first job's current status.

        Raises:
            InvalidRequestError: A ``webhook_url`` was given.
            JaguarError: Modal refused the spawn (mapped).
        """
        if webhook_url is not None:
            raise InvalidRequestError(
                "webhook_url: jobs on the Modal deployment are spawned calls, which post no "
                "webhooks; poll GET /v1/jobs/{id} instead.",
                field="webhook_url",
            )
        payload = {
            **Call(
                operation="submit",
                request=request,
                request_id=request_id,
                idempotency_key=idempotency_key,
            ).to_plain(),
            "job": True,  # the GPU class records the outcome for status polls
        }
        try:
            digest = fingerprint("submit", [request.model_dump(mode="json"), None])
            call_id, fresh = run_coroutine(self._spawn, payload, idempotency_key, digest)
        except Exception as exc:
            if isinstance(exc, InvalidRequestError):
                raise
            raise map_modal_error(
                exc, app=self._app_name, cls_name=self._class_name, request_id=request_id
            ) from exc
        if not fresh:
            return self.status(call_id)
        return JobStatus(id=call_id, state="queued", request_id=request_id, created_at=time.time())

    async def _spawn(
        self, payload: dict[str, Any], key: str | None, digest: str
    ) -> tuple[str, bool]:
        def spawn() -> Any:
            return self._gpu().generate.spawn.aio(payload)

        if key is not None:
            return await self._keys.spawn_once("job", key, digest, spawn)
        fc = await spawn()
        return str(fc.object_id), True

    def status(self, job_id: str) -> JobStatus:
        """``running`` while the call runs, then ``succeeded``, ``failed`` or ``cancelled``.

        Raises:
            NotFoundError: No such call, or its result expired (410, ``job_expired``).
        """
        status: JobStatus = self._operation("job_status", job_id)
        return status

    def result(self, job_id: str) -> GenerationResult:
        """The finished call's result (downloaded once, here).

        Raises:
            JobPendingError: Still running.
            JobCancelledError: Cancelled.
            NotFoundError: No such call, or its result expired (410).
            JaguarError: The error the generation failed with.
        """
        result: GenerationResult = self._operation("job_result", job_id)
        return result

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel the call if it is still running; a finished job keeps its state.

        Raises:
            NotFoundError: No such call, or its result expired (410).
        """
        status: JobStatus = self._operation("job_cancel", job_id)
        return status
