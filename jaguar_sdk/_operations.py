"""The table of operations: each one declared once, read by every layer.

An operation's result model, HTTP route, Modal method and call shape live here and nowhere
else. The client core parses replies with ``result``; the HTTP transport and the server's
routers use ``http_method``/``http_path``; the Modal transport calls ``modal_method``; the
service dispatches plain-data calls by ``name``; tests check that the deployment's class has
every ``modal_method`` and the server every route.

Example:
    >>> OPERATIONS["generate"].http_path
    '/v1/generate'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._results import GenerationResult, HealthStatus, JobStatus, ModelInfo

__all__ = ["JOB_OPERATIONS", "OPERATIONS", "Operation", "OperationSpec", "ResultModel"]

#: What an operation's answer parses into.
ResultModel = GenerationResult | ModelInfo | HealthStatus | JobStatus

Operation = Literal[
    "generate", "info", "health", "reload", "submit", "job_status", "job_result", "job_cancel"
]


@dataclass(frozen=True)
class OperationSpec:
    """One operation of the wire contract.

    Attributes:
        name: The operation (``Call.operation``, the service's plain-data entry point).
        result: The model its answer parses into.
        http_method: ``GET`` or ``POST``.
        http_path: The route; ``{job_id}`` where the call names a job.
        modal_method: The ``JaguarModel`` method that runs it on Modal; ``None`` for the job
            operations, which act on a spawned ``FunctionCall``.
        takes_request: Whether the call carries a :class:`~jaguar_sdk.GenerateRequest`.
        takes_job_id: Whether the call names a job.
        auth: What the HTTP route asks for: ``"none"``, the API ``"token"`` or the
            ``"admin"`` token (admin routes are always authenticated).
        retried: Whether transient failures are retried by default (a reload that timed out
            may still be running, so it is not).
    """

    name: Operation
    result: type[ResultModel]
    http_method: Literal["GET", "POST"]
    http_path: str
    modal_method: str | None
    takes_request: bool = False
    takes_job_id: bool = False
    auth: Literal["none", "token", "admin"] = "token"
    retried: bool = True


OPERATIONS: dict[Operation, OperationSpec] = {
    spec.name: spec
    for spec in (
        OperationSpec(
            "generate", GenerationResult, "POST", "/v1/generate", "generate", takes_request=True
        ),
        OperationSpec("info", ModelInfo, "GET", "/v1/info", "info"),
        OperationSpec("health", HealthStatus, "GET", "/v1/health", "health", auth="none"),
        OperationSpec(
            "reload", ModelInfo, "POST", "/v1/admin/reload", "reload", auth="admin", retried=False
        ),
        OperationSpec("submit", JobStatus, "POST", "/v1/jobs", "generate", takes_request=True),
        OperationSpec("job_status", JobStatus, "GET", "/v1/jobs/{job_id}", None, takes_job_id=True),
        OperationSpec(
            "job_result",
            GenerationResult,
            "GET",
            "/v1/jobs/{job_id}/result",
            None,
            takes_job_id=True,
        ),
        OperationSpec(
            "job_cancel", JobStatus, "POST", "/v1/jobs/{job_id}/cancel", None, takes_job_id=True
        ),
    )
}

#: The operations that act on jobs (submit one, or name one).
JOB_OPERATIONS: frozenset[Operation] = frozenset(
    name for name, spec in OPERATIONS.items() if spec.takes_job_id or name == "submit"
)
