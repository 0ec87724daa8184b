"""Jobs on Modal: a job is a spawned ``generate`` call, known by its ``FunctionCall`` id.

Shared by the Modal transport (the SDK calling the deployment) and the deployment's web function
(``deploy/jobs.py``). What each Modal call costs, read in modal 1.6.4:

- ``FunctionCall.get(timeout=0)`` downloads the whole output when there is one (``_functions.py``
  ``_FunctionCall.get`` -> ``_Invocation.poll_function`` -> ``pop_function_call_outputs`` then
  ``_process_result``, which fetches a blob-stored result with ``blob_download``); with none it
  raises the builtin ``TimeoutError``, and with no output and no unfinished input it raises
  ``OutputExpiredError`` (the result is gone: Modal keeps results for a limited time).
- ``FunctionCall.get_call_graph()`` returns ``InputInfo`` nodes whose ``status``
  (``modal.types.InputStatus``: PENDING, SUCCESS, FAILURE, INIT_FAILURE, TERMINATED, TIMEOUT) says
  where the input is without any output bytes; Modal calls it best-effort and not real-time, and
  a node may be missing ("input retention is limited", ``call_graph.py``).
- A ``modal.Dict`` entry expires after 7 days without reads or writes (``dict.py``); ``put(...,
  skip_if_exists=True)`` returns whether it wrote.

So a status poll never downloads: it reads the small outcome record that the deployment's GPU
class writes into the app's state Dict when a job ends (:func:`outcome_record`, keyed by the
call id), else the call graph; only where both are silent (a deployment that writes no records,
a node not captured yet) does it fall back to ``get(timeout=0)``. Result fetches download, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .._exceptions import (
    GenerationError,
    JaguarError,
    JobCancelledError,
    JobPendingError,
    NotFoundError,
    error_from_payload,
)
from .._logging import get_logger
from .._results import JobStatus
from ._base import Call, Reply

__all__ = [
    "STATE_DICT_SUFFIX",
    "CallState",
    "cancel_call",
    "inspect_call",
    "job_key",
    "outcome_record",
    "read_record",
    "run_job_operation",
    "state_dict_name",
]

logger = get_logger("jaguar_sdk.modal")

#: The deployment's shared state (job outcomes, idempotency keys) is the Dict ``<app>-state``.
STATE_DICT_SUFFIX = "-state"

StateName = Literal["running", "succeeded", "failed", "cancelled", "expired"]


def state_dict_name(app: str) -> str:
    """The name of app ``app``'s state Dict (``"shuttle-jaguar-state"``)."""
    return f"{app}{STATE_DICT_SUFFIX}"


def job_key(call_id: str) -> str:
    """The state-Dict key of a job's outcome record."""
    return f"job:{call_id}"


def outcome_record(reply: Any) -> dict[str, Any]:
    """The small record the GPU class writes when a spawned job ends (no image bytes).

    Args:
        reply: What the ``generate`` method returned (a result or an error envelope).

    Returns:
        ``{"state", "failure", "request_id", "finished_at"}``.
    """
    error = reply.get("error") if isinstance(reply, dict) else None
    request_id = reply.get("request_id") if isinstance(reply, dict) else None
    if isinstance(error, dict):
        request_id = request_id or error.get("request_id")
    return {
        "state": "failed" if isinstance(error, dict) else "succeeded",
        "failure": dict(error) if isinstance(error, dict) else None,
        "request_id": request_id,
        "finished_at": time.time(),
    }


_MISSING = object()


@dataclass
class CallState:
    """Where a spawned call stands.

    Attributes:
        state: ``running``, ``succeeded``, ``failed``, ``cancelled`` or ``expired``.
        failure: The error body of a failed call, where known without downloading.
        request_id: The generation's request id, where known.
        finished_at: Unix time the call ended, where known.
        data: The call's output, only when it had to be downloaded (``get(timeout=0)``).
        source: What told us: ``"record"``, ``"call_graph"`` or ``"output"``.
    """

    state: StateName
    failure: dict[str, Any] | None = None
    request_id: str | None = None
    finished_at: float | None = None
    data: Any = field(default=_MISSING, repr=False)
    source: str = "output"

    @property
    def has_data(self) -> bool:
        """Whether :attr:`data` holds the downloaded output."""
        return self.data is not _MISSING


def read_record(records: Any, call_id: str) -> dict[str, Any] | None:
    """The outcome record of ``call_id`` in ``records`` (a ``modal.Dict``), or ``None``.

    A missing Dict (a deployment that writes none), a missing key or a Modal error all read as
    ``None``: the caller falls back to the call graph.
    """
    if records is None:
        return None
    try:
        value = records.get(job_key(call_id))
    except Exception as exc:  # the Dict is an optimisation; never fail a poll over it
        logger.debug("could not read the job record of %s: %s", call_id, exc)
        return None
    return value if isinstance(value, dict) and value.get("state") else None


_GRAPH_STATES: dict[str, StateName] = {
    "PENDING": "running",
    "TERMINATED": "cancelled",
    "TIMEOUT": "failed",
    "INIT_FAILURE": "failed",
    "FAILURE": "failed",
}

_GRAPH_FAILURES: dict[str, dict[str, Any]] = {
    "TIMEOUT": {
        "code": "timeout",
        "message": "The generation ran past the deployment's function timeout (JAGUAR_TIMEOUT_S).",
    },
    "INIT_FAILURE": {
        "code": "generation_failed",
        "message": "The GPU container failed to start; see `modal app logs` for why.",
    },
    "FAILURE": {
        "code": "generation_failed",
        "message": "The generation raised an error; fetch the result for the details.",
    },
}


def _graph_status(fc: Any, call_id: str) -> str | None:
    """The call graph's status name of the call's input, or ``None`` when not captured."""
    import modal.exception as me

    try:
        nodes = fc.get_call_graph()
    except me.NotFoundError:
        raise  # no such call: the caller maps it to "no such job"
    except Exception as exc:  # best effort, by Modal's own description
        logger.debug("call graph of %s unavailable: %s", call_id, exc)
        return None
    for node in nodes or ():
        if getattr(node, "function_call_id", None) == call_id:
            status = getattr(node, "status", None)
            return str(getattr(status, "name", status))
    return None


def inspect_call(fc: Any, call_id: str, records: Any, *, want_result: bool) -> CallState:
    """Find out where a spawned call stands, downloading its output only when needed.

    Args:
        fc: The ``modal.FunctionCall`` (``FunctionCall.from_id(call_id)``).
        call_id: Its id.
        records: The app's state ``modal.Dict`` (outcome records), or ``None``.
        want_result: The caller needs the output itself (``job_result``); a status poll or a
            cancel passes ``False`` and never downloads unless nothing else can tell.

    Returns:
        The state (with the output in ``data`` where it was downloaded).

    Raises:
        Exception: What Modal raised for an unknown call (``NotFoundError``) or a failed call
            when its output was fetched (the caller maps it).
    """
    import modal.exception as me

    record = read_record(records, call_id)
    if record is not None:
        state: StateName = "failed" if record.get("state") == "failed" else "succeeded"
        found = CallState(
            state,
            failure=record.get("failure"),
            request_id=record.get("request_id"),
            finished_at=record.get("finished_at"),
            source="record",
        )
        if not want_result or state == "failed":
            return found
    else:
        status = _graph_status(fc, call_id)
        graph_state = _GRAPH_STATES.get(status or "")
        if graph_state is not None and (graph_state != "failed" or not want_result):
            return CallState(
                graph_state, failure=_GRAPH_FAILURES.get(status or ""), source="call_graph"
            )
    try:
        data = fc.get(timeout=0)
    except me.OutputExpiredError:
        return CallState("expired", source="output")
    except TimeoutError:  # the builtin one: no output yet (modal's own do not derive from it)
        return CallState("running", source="output")
    error = data.get("error") if isinstance(data, dict) else None
    return CallState(
        "failed" if isinstance(error, dict) else "succeeded",
        failure=dict(error) if isinstance(error, dict) else None,
        request_id=data.get("request_id") if isinstance(data, dict) else None,
        data=data,
        source="output",
    )


def _is_cancelled(exc: BaseException) -> bool:
    import concurrent.futures

    import modal.exception as me

    return isinstance(exc, me.InputCancellation | concurrent.futures.CancelledError)


def cancel_call(fc: Any, call_id: str, records: Any) -> CallState:
    """Cancel a spawned call, and say what really happened.

    A call that already ended keeps its outcome (``succeeded``/``failed``/``cancelled``); only a
    running one is cancelled (``FunctionCall.cancel()``), after which its outcome record is read
    once more, since the call may have ended between the look and the cancel.

    Returns:
        The state after the request.
    """
    before = inspect_call(fc, call_id, records, want_result=False)
    if before.state != "running":
        return before
    fc.cancel()
    record = read_record(records, call_id)
    if record is not None:
        return inspect_call(fc, call_id, records, want_result=False)
    return CallState("cancelled", finished_at=time.time(), source="cancel")


def run_job_operation(
    call: Call,
    records: Any,
    *,
    where: str,
    map_error: Callable[[BaseException], JaguarError],
) -> Reply:
    """``job_status``, ``job_result`` or ``job_cancel`` of a spawned call.

    Args:
        call: The operation, with ``job_id`` the ``FunctionCall`` id.
        records: The app's state Dict (outcome records), or ``None``.
        where: "class 'JaguarModel' of Modal app ...", for messages.
        map_error: Maps a Modal exception to a :class:`JaguarError`.

    Returns:
        A ``JobStatus`` (status, cancel) or the call's output (result) as plain data.

    Raises:
        NotFoundError: No such call, or (code ``job_expired``, HTTP 410) its result expired.
        JobPendingError: ``job_result`` of a running job.
        JobCancelledError: ``job_result`` of a cancelled job.
        JaguarError: ``job_result`` of a failed job: its error.
    """
    import modal
    import modal.exception as me

    job_id = call.job_id or ""
    fc = modal.FunctionCall.from_id(job_id)
    try:
        if call.operation == "job_cancel":
            state = cancel_call(fc, job_id, records)
        elif call.operation == "job_status" and call.wait:
            state = _wait_for_end(fc, job_id, records, call.wait)
        else:
            state = inspect_call(fc, job_id, records, want_result=call.operation == "job_result")
    except JaguarError:
        raise
    except me.NotFoundError as exc:
        raise NotFoundError(
            f"No job {job_id!r} on the {where}: check the id (a FunctionCall id, 'fc-...').",
            request_id=call.request_id,
        ) from exc
    except BaseException as exc:
        if _is_cancelled(exc):
            state = CallState("cancelled", source="output")
        elif isinstance(exc, Exception):
            mapped = map_error(exc)
            if call.operation == "job_result" or not isinstance(mapped, GenerationError):
                raise mapped from exc
            state = CallState("failed", failure=mapped.to_payload(), source="output")
        else:
            raise
    return _job_reply(call, state, where=where)


#: How often a long-polled status looks at the outcome record again.
WAIT_POLL_S = 0.5


def _wait_for_end(fc: Any, call_id: str, records: Any, wait_s: float) -> CallState:
    """A status long-poll (``Call.wait``): look until the job ends or ``wait_s`` passes.

    Modal has no "tell me when it ends" without the output (``FunctionCall.get`` downloads it),
    so this reads the small outcome record again every :data:`WAIT_POLL_S`, inside this one
    transport call: the caller's poller makes one call per ``wait_s``, not one per poll.
    """
    deadline = time.monotonic() + wait_s
    while True:
        state = inspect_call(fc, call_id, records, want_result=False)
        left = deadline - time.monotonic()
        if state.state != "running" or left <= 0:
            return state
        time.sleep(min(WAIT_POLL_S, left))


def _job_reply(call: Call, state: CallState, *, where: str) -> Reply:
    job_id = call.job_id or ""
    if state.state == "expired":
        raise NotFoundError(
            f"The result of job {job_id!r} on the {where} has expired on Modal (results are kept "
            "for a limited time); submit the request again.",
            status_code=410,
            code="job_expired",
            request_id=call.request_id,
        )
    if call.operation == "job_result":
        if state.state == "running":
            raise JobPendingError(
                f"Job {job_id} on the {where} is still running; wait for it to finish first.",
                request_id=call.request_id,
            )
        if state.state == "cancelled":
            raise JobCancelledError(f"Job {job_id} was cancelled.", request_id=call.request_id)
        if state.has_data:
            return Reply(data=state.data, request_id=call.request_id)
        raise error_from_payload(state.failure, request_id=call.request_id)
    # Modal reports no progress for a spawned call: a pending job is "running" with no events.
    status = JobStatus(
        id=job_id,
        state=state.state,
        failure=state.failure if state.state == "failed" else None,
        request_id=state.request_id,
        finished_at=state.finished_at,
    )
    return Reply(data=status.model_dump(), request_id=call.request_id)
