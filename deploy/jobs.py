"""The Modal job backend of the web endpoint: ``/v1/jobs`` spawns the class method.

With it a job is a spawned ``JaguarModel.generate`` call, not work in the container that took
the web request: it outlives Modal's 150 s web-request limit, and any container (or client
process) answers for it by its id, the ``FunctionCall``'s ``object_id``. The Modal mapping
(spawn, ``FunctionCall.from_id(id).get(timeout=0)`` where the builtin ``TimeoutError`` means
still running, ``.cancel()``, Modal errors to ``JaguarError``) is the Modal transport's.

Limits: Modal reports no progress for a spawned call (a pending job is ``running`` with no
events); webhooks are refused (no container is around to post them when the call ends); an
``Idempotency-Key`` is honoured only within one web container.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from jaguar_sdk._core import parse_reply
from jaguar_sdk._exceptions import InvalidRequestError
from jaguar_sdk._operations import Operation
from jaguar_sdk._request import GenerateRequest
from jaguar_sdk._results import GenerationResult, JobStatus
from jaguar_sdk._transports._base import Call

__all__ = ["ModalJobBackend"]

#: Idempotency keys remembered per web container.
_MAX_KEYS = 1024


class ModalJobBackend:
    """A :class:`~jaguar_sdk.server.JobBackend` that runs each job as a spawned Modal call.

    Args:
        app_name: The deployed Modal app (``modal.Cls.from_name(app_name, class_name)``).
        class_name: The class whose ``generate`` method is spawned.
        environment: The Modal environment; ``None`` for the caller's (the container's own).

    Example:
        >>> backend = ModalJobBackend("shuttle-jaguar", "JaguarModel")       # doctest: +SKIP
        >>> app = create_app(service, job_backend=backend)                   # doctest: +SKIP
    """

    def __init__(self, app_name: str, class_name: str, *, environment: str | None = None) -> None:
        from jaguar_sdk._transports.modal import ModalTransport

        self._transport = ModalTransport(app_name, class_name, environment=environment)
        self._keys: OrderedDict[str, JobStatus] = OrderedDict()
        self._lock = threading.Lock()

    def _send(self, operation: Operation, **fields: Any) -> Any:
        call = Call(operation=operation, **fields)
        return parse_reply(operation, self._transport.send(call))

    def submit(
        self,
        request: GenerateRequest,
        webhook_url: str | None,
        idempotency_key: str | None,
        *,
        request_id: str | None = None,
    ) -> JobStatus:
        """Spawn ``generate`` with the request.

        Args:
            request: The validated request.
            webhook_url: Must be ``None``: spawned jobs post no webhooks.
            idempotency_key: A repeat within this container gets the first job back.
            request_id: The generation's request id.

        Returns:
            ``queued``, with the ``FunctionCall`` id as the job id.

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
        if idempotency_key is not None:
            with self._lock:
                if idempotency_key in self._keys:
                    return self._keys[idempotency_key]
        status: JobStatus = self._send(
            "submit", request=request, request_id=request_id, idempotency_key=idempotency_key
        )
        if idempotency_key is not None:
            with self._lock:
                self._keys[idempotency_key] = status
                while len(self._keys) > _MAX_KEYS:
                    self._keys.popitem(last=False)
        return status

    def status(self, job_id: str) -> JobStatus:
        """``running`` while the call runs, then ``succeeded``, ``failed`` or ``cancelled``.

        Raises:
            NotFoundError: No such ``FunctionCall``.
        """
        status: JobStatus = self._send("job_status", job_id=job_id)
        return status

    def result(self, job_id: str) -> GenerationResult:
        """The finished call's result.

        Raises:
            JobPendingError: Still running.
            JobCancelledError: Cancelled.
            JaguarError: The error the generation failed with.
        """
        result: GenerationResult = self._send("job_result", job_id=job_id)
        return result

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel the spawned call (``FunctionCall.cancel()``).

        Raises:
            NotFoundError: No such ``FunctionCall``.
        """
        status: JobStatus = self._send("job_cancel", job_id=job_id)
        return status
