"""The Modal transport: call the deployed ``JaguarModel`` class with ``Cls.from_name``.

The class's methods take and return plain dicts (``schema_version`` included), so the client and
the deployment may run different jaguar_sdk versions: an error comes back as an
``{"error": {...}}`` envelope, which this transport returns untouched in the :class:`Reply` for the
shared core to map (one mapping for every transport). Modal's own exceptions (not deployed, no
token, connection lost, timeouts, remote crashes) are mapped here by :func:`map_modal_error`.

With a time limit (the attempt's read timeout or the call's deadline) a call is
``spawn()``-ed and awaited with ``FunctionCall.get(timeout=...)``; when the limit passes the remote
call is cancelled and :class:`JaguarTimeoutError` raised. Without one it is a plain ``.remote()``.

The same code works inside another Modal app's container: there Modal authenticates with the
container's own credentials, so no token needs to be configured.

``modal`` is imported on first use, so building a client does not pay for it (~0.5 s).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any, Literal

from .. import _constants as C
from .._exceptions import (
    AuthenticationError,
    ConfigurationError,
    GenerationError,
    InvalidRequestError,
    JaguarConnectionError,
    JaguarError,
    JaguarTimeoutError,
    JobCancelledError,
    JobPendingError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from .._logging import get_logger, redact
from .._operations import JOB_OPERATIONS, OPERATIONS
from .._results import JobStatus
from ._base import Call, Reply

__all__ = ["AsyncModalTransport", "ModalTransport", "build_payload", "map_modal_error"]

logger = get_logger("jaguar_sdk.modal")

_MAX_DETAIL = 600


def build_payload(call: Call) -> dict[str, Any]:
    """The plain-data payload the ``JaguarModel`` methods take.

    Args:
        call: The attempt.

    Returns:
        ``{"schema_version", "request_id", "idempotency_key"}`` plus ``"request"`` (the
        request's ``model_dump()``) for ``generate``.
    """
    return call.to_plain()


def _detail(exc: BaseException) -> str:
    text = redact(str(exc).strip()) or "(no message)"
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + " ..."
    return f"{type(exc).__name__}: {text}"


def _where(app: str, cls_name: str, environment: str | None) -> str:
    env = f" in environment {environment!r}" if environment else ""
    return f"class {cls_name!r} of Modal app {app!r}{env}"


def map_modal_error(
    exc: BaseException,
    *,
    app: str,
    cls_name: str,
    environment: str | None = None,
    request_id: str | None = None,
) -> JaguarError:
    """Map an exception raised while calling Modal onto a :class:`JaguarError`.

    Connection-like and platform failures map to retryable errors (:class:`JaguarConnectionError`,
    :class:`ServerError` with status 503, :class:`RateLimitError`); failures of the remote call
    itself (crash, cancellation, an exception raised in the method) map to
    :class:`GenerationError`, which is not retried.

    Args:
        exc: What was raised (a ``modal.exception`` class, a builtin ``TimeoutError`` from
            ``FunctionCall.get``, or an exception the method raised remotely).
        app: The Modal app name (quoted in the message).
        cls_name: The class name.
        environment: The Modal environment, where one was given.
        request_id: The request id, attached to the error.

    Returns:
        The error to raise. Messages never contain credentials.
    """
    if isinstance(exc, JaguarError):
        return exc
    import modal.exception as me

    where = _where(app, cls_name, environment)
    detail = _detail(exc)
    kw: dict[str, Any] = {"request_id": request_id}

    if isinstance(exc, me.NotFoundError):
        return NotFoundError(
            f"Could not find the {where}: deploy it with `modal deploy deploy/app.py` (with "
            f"JAGUAR_APP_NAME={app} if that is not the default), or check the app, class and "
            f"environment names. ({detail})",
            **kw,
        )
    if isinstance(exc, me.AuthError):
        return AuthenticationError(
            f"Modal refused the credentials while calling the {where}: run `modal token new` "
            f"(or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET). ({detail})",
            **kw,
        )
    if isinstance(exc, me.PermissionDeniedError):
        return PermissionDeniedError(
            f"This Modal token may not call the {where}; check the workspace and environment "
            f"permissions. ({detail})",
            **kw,
        )
    if isinstance(exc, me.ConnectionError | me.ClientClosed | ConnectionError):
        return JaguarConnectionError(
            f"Could not reach Modal while calling the {where}; check the network. ({detail})",
            **kw,
        )
    if isinstance(exc, me.FunctionTimeoutError):
        return JaguarTimeoutError(
            f"The {where} ran past its timeout on Modal; raise JAGUAR_TIMEOUT_S and redeploy, "
            f"or ask for fewer/smaller images. ({detail})",
            **kw,
        )
    if isinstance(exc, me.OutputExpiredError):
        return JaguarTimeoutError(
            f"The result of the call to the {where} expired on Modal before it was read. "
            f"({detail})",
            **kw,
        )
    if isinstance(exc, me.TimeoutError | TimeoutError):
        return JaguarTimeoutError(f"Timed out calling the {where}. ({detail})", **kw)
    if isinstance(exc, me.ResourceExhaustedError):
        return RateLimitError(
            f"Modal refused more work for the {where} (too many pending inputs); slow down, or "
            f"raise JAGUAR_MAX_CONTAINERS. ({detail})",
            **kw,
        )
    if isinstance(exc, me.InternalFailure | me.InternalError | me.ServiceError):
        return ServerError(
            f"Modal failed internally while calling the {where}; retrying may help. ({detail})",
            status_code=503,
            **kw,
        )
    if isinstance(exc, me.InvalidError | me.RequestSizeError):
        return InvalidRequestError(f"Modal rejected the call to the {where}. ({detail})", **kw)
    if isinstance(exc, me.VersionError):
        return ConfigurationError(
            f"This modal client is too old to call the {where}: `pip install -U modal`. ({detail})",
            **kw,
        )
    if isinstance(exc, me.InputCancellation):
        return GenerationError(f"The call to the {where} was cancelled. ({detail})", **kw)
    if isinstance(
        exc,
        me.RemoteError | me.ExecutionError | me.DeserializationError | me.SerializationError,
    ):
        return GenerationError(
            f"The {where} failed remotely; see its logs with `modal app logs {app}`. ({detail})",
            **kw,
        )
    if isinstance(exc, me.Error):
        return JaguarError(f"Modal failed while calling the {where}. ({detail})", **kw)
    # An exception raised inside the method and re-raised here (same type as remotely).
    return GenerationError(f"The {where} raised an error. ({detail})", **kw)


def _timeout_error(call: Call, limit: float, where: str) -> JaguarTimeoutError:
    left = call.remaining()
    deadline = left is not None and left <= 0.01
    return JaguarTimeoutError(
        f"No answer from the {where} within {limit:g}s"
        + (" (the call's deadline); " if deadline else "; ")
        + "the remote call was cancelled. A cold start can take minutes: raise timeout=, or keep "
        "a container warm (JAGUAR_MIN_CONTAINERS=1).",
        request_id=call.request_id,
        code="deadline_exceeded" if deadline else None,
    )


# --- jobs: spawn + FunctionCall ---------------------------------------------------------------
#: What ``FunctionCall.get(timeout=0)`` told us: still going, cancelled, or finished (with data).
Outcome = tuple[Literal["pending", "cancelled", "done"], Any]


def _is_cancelled(exc: BaseException) -> bool:
    return _is_modal_cancellation(exc) or isinstance(exc, concurrent.futures.CancelledError)


def submitted_reply(function_call_id: str, call: Call) -> Reply:
    """The reply to ``submit``: the spawned ``FunctionCall``'s id is the job id."""
    status = JobStatus(
        id=function_call_id, state="queued", request_id=call.request_id, created_at=time.time()
    )
    return Reply(data=status.model_dump(), request_id=call.request_id)


def job_reply(call: Call, outcome: Outcome, *, where: str) -> Reply:
    """Turn what a ``FunctionCall`` told us into the reply of a job operation.

    Modal reports no progress for a spawned call, so a pending job is ``running`` with no
    events (Modal does not say whether the input is still queued).

    Raises:
        JobPendingError: ``job_result`` of a job still running.
        JobCancelledError: ``job_result`` of a cancelled job.
    """
    kind, data = outcome
    job_id = call.job_id or ""
    if call.operation == "job_result":
        if kind == "pending":
            raise JobPendingError(
                f"Job {job_id} on the {where} is still running; wait for it to finish first.",
                request_id=call.request_id,
            )
        if kind == "cancelled":
            raise JobCancelledError(f"Job {job_id} was cancelled.", request_id=call.request_id)
        return Reply(data=data, request_id=call.request_id)
    failure: dict[str, Any] | None = None
    state: Literal["running", "cancelled", "succeeded", "failed"]
    if kind == "pending":
        state = "running"
    elif kind == "cancelled":
        state = "cancelled"
    elif isinstance(data, dict) and isinstance(data.get("error"), dict):
        state, failure = "failed", dict(data["error"])
    elif isinstance(data, JaguarError):
        state, failure = "failed", data.to_payload()
    else:
        state = "succeeded"
    rid = data.get("request_id") if isinstance(data, dict) else None
    status = JobStatus(id=job_id, state=state, failure=failure, request_id=rid)
    return Reply(data=status.model_dump(), request_id=call.request_id)


class _ModalBase:
    """Lookup, payload and error mapping shared by the sync and async transports."""

    name = "modal"
    #: ``generate_many`` sends direct calls: each is already a spawned call awaited once with
    #: ``FunctionCall.get(timeout=...)``; as a job its result would be downloaded twice (the
    #: status poll's ``get`` downloads it too, notes/modal.md).
    batch_via_jobs = False

    def __init__(
        self,
        app: str = C.DEFAULT_MODAL_APP,
        cls_name: str = C.DEFAULT_MODAL_CLASS,
        *,
        environment: str | None = None,
    ) -> None:
        self.app = app
        self.cls_name = cls_name
        self.environment = environment
        self._obj: Any = None
        self._lock = threading.Lock()

    def _instance(self) -> Any:
        """The (lazy) remote instance; no network until the first call."""
        if self._obj is None:
            with self._lock:
                if self._obj is None:
                    import modal

                    cls = modal.Cls.from_name(
                        self.app, self.cls_name, environment_name=self.environment
                    )
                    self._obj = cls()
        return self._obj

    def _method(self, call: Call) -> Any:
        return getattr(self._instance(), OPERATIONS[call.operation].modal_method or "")

    def _map(self, exc: BaseException, call: Call) -> JaguarError:
        return map_modal_error(
            exc,
            app=self.app,
            cls_name=self.cls_name,
            environment=self.environment,
            request_id=call.request_id,
        )

    def _reply(self, data: Any, call: Call) -> Reply:
        if not isinstance(data, dict):
            raise GenerationError(
                f"The {self._where} answered {type(data).__name__}, not a dict: is the "
                "deployment a jaguar_sdk JaguarModel? Redeploy with `modal deploy deploy/app.py`.",
                request_id=call.request_id,
            )
        rid = data.get("request_id")
        if rid is None and isinstance(data.get("error"), dict):
            rid = data["error"].get("request_id")
        return Reply(data=data, is_json=False, request_id=str(rid) if rid else call.request_id)

    def _job(self, call: Call) -> Reply:
        """Job operations: ``generate.spawn`` to submit, ``FunctionCall.from_id`` for the rest."""
        try:
            if call.operation == "submit":
                fc = self._instance().generate.spawn(build_payload(call))
                return submitted_reply(str(fc.object_id), call)
            import modal

            fc = modal.FunctionCall.from_id(call.job_id or "")
            if call.operation == "job_cancel":
                fc.cancel()
                outcome: Outcome = ("cancelled", None)
            else:
                # A status call with ``wait`` long-polls: ``FunctionCall.get(timeout=...)``
                # returns as soon as the call ends (modal ``_functions.py``, ``get``).
                hold = call.wait if call.operation == "job_status" and call.wait else 0
                try:
                    outcome = ("done", fc.get(timeout=hold))
                except TimeoutError as exc:
                    if type(exc) is not TimeoutError:
                        raise
                    outcome = ("pending", None)
        except JaguarError:
            raise
        except BaseException as exc:
            if _is_cancelled(exc):
                outcome = ("cancelled", None)
            elif isinstance(exc, Exception):
                mapped = self._map(exc, call)
                if isinstance(mapped, GenerationError) and call.operation == "job_status":
                    outcome = ("done", mapped)  # the remote call itself failed
                else:
                    raise mapped from exc
            else:
                raise
        failed = outcome[0] == "done" and isinstance(outcome[1], JaguarError)
        if failed and call.operation == "job_result":
            raise outcome[1]
        return job_reply(call, outcome, where=self._where)

    @property
    def _where(self) -> str:
        return _where(self.app, self.cls_name, self.environment)

    def __repr__(self) -> str:
        env = f", environment={self.environment!r}" if self.environment else ""
        return f"{type(self).__name__}(app={self.app!r}, cls_name={self.cls_name!r}{env})"


def _is_modal_cancellation(exc: BaseException) -> bool:
    try:
        import modal.exception as me
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, me.InputCancellation)


class ModalTransport(_ModalBase):
    """Blocking transport to a deployed ``JaguarModel``.

    Args:
        app: The Modal app name (``JAGUAR_APP_NAME`` of the deployment).
        cls_name: The class name (``"JaguarModel"``).
        environment: The Modal environment, if not the profile's default.

    Example:
        >>> from jaguar_sdk import JaguarClient
        >>> client = JaguarClient.from_modal("shuttle-jaguar")  # doctest: +SKIP
        >>> client.generate("a jaguar in the rain").save("jaguar.jpg")
    """

    def send(self, call: Call) -> Reply:
        """Call the method named by ``call.operation`` with the call's payload.

        Returns:
            The plain-data answer (a result, or an error envelope the core maps).

        Raises:
            JaguarError: A mapped Modal failure; :class:`JaguarTimeoutError` when the limit
                passed (the remote call is then cancelled).
        """
        if call.operation in JOB_OPERATIONS:
            return self._job(call)
        payload = build_payload(call)
        limit = call.attempt_timeout()
        try:
            method = self._method(call)
            if limit is None:
                return self._reply(method.remote(payload), call)
            fc = method.spawn(payload)
        except Exception as exc:
            raise self._map(exc, call) from exc
        except BaseException as exc:
            if _is_modal_cancellation(exc):
                raise self._map(exc, call) from exc
            raise
        try:
            data = fc.get(timeout=limit)
        except TimeoutError as exc:
            if not isinstance(exc, JaguarError) and type(exc) is TimeoutError:
                self._cancel(fc)
                raise _timeout_error(call, limit, self._where) from exc
            raise self._map(exc, call) from exc
        except Exception as exc:
            raise self._map(exc, call) from exc
        except BaseException as exc:  # KeyboardInterrupt: stop the GPU work we started
            if _is_modal_cancellation(exc):
                raise self._map(exc, call) from exc
            self._cancel(fc)
            raise
        return self._reply(data, call)

    def _cancel(self, fc: Any) -> None:
        try:
            fc.cancel()
        except Exception as exc:  # best effort: the result will simply be dropped
            logger.warning("could not cancel the Modal call: %s", _detail(exc))

    def close(self) -> None:
        """Drop the looked-up instance (Modal's client needs no closing)."""
        self._obj = None


class AsyncModalTransport(_ModalBase):
    """asyncio transport to a deployed ``JaguarModel`` (``.remote.aio``, ``.spawn.aio``).

    Args:
        app: The Modal app name.
        cls_name: The class name (``"JaguarModel"``).
        environment: The Modal environment, if not the profile's default.

    Example:
        >>> from jaguar_sdk import AsyncJaguarClient
        >>> client = AsyncJaguarClient.from_modal("shuttle-jaguar")  # doctest: +SKIP
        >>> result = await client.generate("a jaguar in the rain")
    """

    async def send(self, call: Call) -> Reply:
        """As :meth:`ModalTransport.send`, awaiting Modal's ``.aio`` variants.

        Cancelling the awaiting task cancels the remote call too.
        """
        import asyncio

        if call.operation in JOB_OPERATIONS:
            # Job operations (spawn, get, cancel) run in their blocking form in a worker thread
            # rather than being duplicated with the ``.aio`` variants; a long-polled status
            # holds that thread for up to ``call.wait`` seconds.
            return await asyncio.to_thread(self._job, call)
        payload = build_payload(call)
        limit = call.attempt_timeout()
        try:
            method = self._method(call)
            if limit is None:
                return self._reply(await method.remote.aio(payload), call)
            fc = await method.spawn.aio(payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._map(exc, call) from exc
        except BaseException as exc:
            if _is_modal_cancellation(exc):
                raise self._map(exc, call) from exc
            raise
        try:
            data = await fc.get.aio(timeout=limit)
        except asyncio.CancelledError:
            await self._cancel(fc)
            raise
        except TimeoutError as exc:
            if type(exc) is TimeoutError:
                await self._cancel(fc)
                raise _timeout_error(call, limit, self._where) from exc
            raise self._map(exc, call) from exc
        except Exception as exc:
            raise self._map(exc, call) from exc
        except BaseException as exc:
            if _is_modal_cancellation(exc):
                raise self._map(exc, call) from exc
            await self._cancel(fc)
            raise
        return self._reply(data, call)

    async def _cancel(self, fc: Any) -> None:
        try:
            await fc.cancel.aio()
        except Exception as exc:
            logger.warning("could not cancel the Modal call: %s", _detail(exc))

    async def aclose(self) -> None:
        """Drop the looked-up instance."""
        self._obj = None
