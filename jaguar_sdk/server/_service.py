"""The model service: what every front end calls.

The HTTP server (``jaguar serve`` and the Modal web endpoint), the Modal class methods and the
in-process client all go through one :class:`JaguarService`. It owns the engine's lifecycle
(load, reload without dropping requests, health) and the idempotency store, so "a retried
request is generated once" holds the same way on every transport.

Reload never drops a request: each generation holds a lease on the engine it started on (taken
before it waits for the engine's GPU lock), a reload swaps in the new engine for the requests
that come after, and the old engine is closed only when its last lease is returned.

This module stays light: it never imports torch. The engine comes from an injected loader.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, Protocol, cast

from pydantic import BaseModel

from .. import _constants as C
from .._exceptions import GenerationError, JaguarError, NotReadyError
from .._logging import get_logger
from .._operations import OPERATIONS, Operation
from .._request import GenerateRequest, validate_request
from .._results import (
    GenerationResult,
    HealthStatus,
    JobStatus,
    ModelInfo,
    ProgressEvent,
    check_schema_version,
)
from .._version import __version__
from ._idempotency import IdempotencyStore, fingerprint
from ._job_store import JobStore, check_job_wait

__all__ = ["EngineLike", "JaguarService", "ProgressCallback", "new_request_id"]

logger = get_logger("jaguar_sdk.server._service")

ProgressCallback = Callable[[ProgressEvent], None]


def new_request_id() -> str:
    """A fresh request id, e.g. ``req_3f2a...``."""
    return f"req_{uuid.uuid4().hex}"


class EngineLike(Protocol):
    """What the service needs of an engine (``jaguar_sdk.engine.Engine`` satisfies it)."""

    def generate(
        self,
        request: GenerateRequest,
        *,
        request_id: str,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationResult: ...

    def info(self) -> ModelInfo: ...

    def close(self) -> None: ...


class _Slot:
    """An engine and the generations holding it (guarded by the service's state lock)."""

    __slots__ = ("active", "closed", "engine", "retired")

    def __init__(self, engine: EngineLike) -> None:
        self.engine = engine
        self.active = 0
        self.retired = False
        self.closed = False


class JaguarService:
    """One model behind every front end: generate, info, health, reload.

    Args:
        loader: Builds a ready engine (called at start and on every reload).
        idempotency: The store of recent results; a default one is made when omitted.
        reloader: Called by :meth:`reload` instead of ``loader`` (e.g. the Modal class forces
            a fresh verify-or-download there); defaults to ``loader``.
        max_jobs: Jobs the job store keeps at once (unfinished ones beyond it are refused).
        job_ttl_s: How long the job store keeps a finished job.
        max_job_bytes: Bytes of finished jobs' results the job store keeps.
        info_extras: Called by :meth:`info` with the engine's info; what it returns is merged
            into ``extra`` (e.g. the deployment's ``update_check``). It should not raise; if it
            does, the error is logged and the info is answered without those extras.

    Example:
        >>> from jaguar_sdk.engine import Engine          # doctest: +SKIP
        >>> service = JaguarService(lambda: Engine.load("tiny"))
        >>> service.start()
        >>> service.generate(GenerateRequest(prompt="a cat", width=64, height=64)).seed
    """

    def __init__(
        self,
        loader: Callable[[], EngineLike],
        *,
        idempotency: IdempotencyStore | None = None,
        reloader: Callable[[], EngineLike] | None = None,
        max_jobs: int = C.JOB_MAX_ENTRIES,
        job_ttl_s: float = C.JOB_TTL_S,
        info_extras: Callable[[ModelInfo], dict[str, Any]] | None = None,
        max_job_bytes: int = C.JOB_MAX_BYTES,
    ) -> None:
        self._loader = loader
        self._reloader = reloader or loader
        self._slot: _Slot | None = None
        self._state_lock = threading.Lock()
        self._load_error: str | None = None
        self._loading = False
        self.idempotency = idempotency or IdempotencyStore()
        self._jobs: JobStore | None = None
        self._max_jobs = max_jobs
        self._job_ttl_s = job_ttl_s
        self._max_job_bytes = max_job_bytes
        self._info_extras = info_extras
        # One handler per operation of the table (a test checks none is missing).
        self._handlers: dict[Operation, Callable[[dict[str, Any], str], BaseModel]] = {
            "generate": lambda p, rid: self.generate(
                validate_request(p.get("request") or {}, remote=True),
                request_id=rid,
                idempotency_key=p.get("idempotency_key"),
            ),
            "info": lambda p, rid: self.info(),
            "health": lambda p, rid: self.health(),
            "reload": lambda p, rid: self.reload(),
            "submit": lambda p, rid: self.jobs.submit(
                validate_request(p.get("request") or {}, remote=True),
                request_id=rid,
                idempotency_key=p.get("idempotency_key"),
            ),
            "job_status": lambda p, rid: self._job_status(p),
            "job_result": lambda p, rid: self.jobs.result(str(p.get("job_id"))),
            "job_cancel": lambda p, rid: self.jobs.cancel(str(p.get("job_id"))),
        }

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Load the engine now (idempotent). Errors are kept for :meth:`health` and re-raised."""
        with self._state_lock:
            if self._slot is not None:
                return
            self._loading = True
        self._swap_in(self._loader)

    def _swap_in(self, build: Callable[[], EngineLike]) -> EngineLike:
        try:
            engine = build()
        except Exception as exc:
            with self._state_lock:
                self._loading = False
                self._load_error = f"{type(exc).__name__}: {exc}"
            logger.exception("model load failed")
            raise
        with self._state_lock:
            old, self._slot = self._slot, _Slot(engine)
            self._loading = False
            self._load_error = None
        if old is not None:
            self._retire(old, keep=engine)
        return engine

    def _retire(self, slot: _Slot, *, keep: EngineLike | None = None) -> None:
        """Close ``slot``'s engine once its last generation is done (at once when idle);
        never the engine ``keep`` (a loader may hand back the same engine)."""
        with self._state_lock:
            slot.retired = True
            if slot.engine is keep:
                slot.closed = True  # still serving as the new slot's engine
            close_now = not slot.closed and slot.active == 0
            if close_now:
                slot.closed = True
        if close_now:
            self._close_engine(slot.engine)

    @staticmethod
    def _close_engine(engine: EngineLike) -> None:
        try:
            engine.close()
        except Exception:  # a failing close must not fail the request that released it
            logger.exception("closing a replaced engine failed")

    def _not_ready(self) -> NotReadyError:
        detail = self._load_error or "the model is loading"
        return NotReadyError(f"The model is not ready: {detail}.")

    def _lease(self) -> _Slot:
        """The current engine, held until :meth:`_release` (a reload waits for it)."""
        with self._state_lock:
            slot = self._slot
            if slot is None:
                raise self._not_ready()
            slot.active += 1
            return slot

    def _release(self, slot: _Slot) -> None:
        with self._state_lock:
            slot.active -= 1
            close_now = slot.retired and not slot.closed and slot.active == 0
            if close_now:
                slot.closed = True
        if close_now:
            self._close_engine(slot.engine)

    def reload(self) -> ModelInfo:
        """Load the model again (verify-or-download where the loader does), then swap it in.

        Requests keep being served by the old engine until the new one is ready; those
        queued or running on it finish on it, and it is closed when the last one is done.

        Returns:
            The info of the newly loaded model.
        """
        with self._state_lock:
            self._loading = self._slot is None
        return self._swap_in(self._reloader).info()

    def close(self) -> None:
        """Release the engine (once generations still running on it finish) and stop the job
        worker, if jobs were used."""
        with self._state_lock:
            slot, self._slot = self._slot, None
            jobs, self._jobs = self._jobs, None
        if jobs is not None:
            jobs.close()
        if slot is not None:
            self._retire(slot)

    @property
    def engine(self) -> EngineLike:
        """The current engine. Raises :class:`NotReadyError` while none is loaded."""
        slot = self._slot
        if slot is None:
            raise self._not_ready()
        return slot.engine

    # --- operations ------------------------------------------------------------------------
    def generate(
        self,
        request: GenerateRequest | dict[str, Any],
        *,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
        idempotency_scope: str = "generate",
    ) -> GenerationResult:
        """Validate and run one request.

        Args:
            request: The request, or its plain-data form.
            request_id: The id to report; a fresh one is made when omitted.
            idempotency_key: Repeats of the same request with the same key get the first
                result; another request with that key is refused.
            on_progress: Called with progress events from the engine's thread.
            idempotency_scope: What the key is used on (the route: ``"generate"``,
                ``"openai.images"``); part of the request's fingerprint.

        Returns:
            The result.

        Raises:
            InvalidRequestError: A field is out of range, or (422 ``idempotency_key_reused``)
                the key was first used with another request.
            NotReadyError: The model is not loaded.
            GenerationError: The engine failed on a valid request.
        """
        req = validate_request(request)
        rid = request_id or new_request_id()
        if self._slot is None:  # fail fast, before waiting on an idempotency key
            raise self._not_ready()

        def run() -> GenerationResult:
            slot = self._lease()
            try:
                return slot.engine.generate(req, request_id=rid, on_progress=on_progress)
            except JaguarError:
                raise
            except Exception as exc:
                logger.exception("generation failed [request_id=%s]", rid)
                raise GenerationError(
                    f"The model failed to generate: {type(exc).__name__}: {exc}",
                    request_id=rid,
                ) from exc
            finally:
                self._release(slot)

        digest = None
        if idempotency_key is not None:
            digest = fingerprint(idempotency_scope, req.model_dump(mode="json"))
        return self.idempotency.run(idempotency_key, run, fingerprint=digest)

    @property
    def jobs(self) -> JobStore:
        """The job store (made on first use; jobs run one at a time through :meth:`generate`)."""
        with self._state_lock:
            if self._jobs is None:
                self._jobs = JobStore(
                    lambda req, rid, cb: self.generate(req, request_id=rid, on_progress=cb),
                    max_jobs=self._max_jobs,
                    ttl_s=self._job_ttl_s,
                    max_bytes=self._max_job_bytes,
                )
            return self._jobs

    def _job_status(self, payload: dict[str, Any]) -> JobStatus:
        """``job_status`` on plain data; ``wait`` (seconds) long-polls, as ``?wait=`` does."""
        job_id = str(payload.get("job_id"))
        wait = payload.get("wait")
        if wait is None:
            return self.jobs.status(job_id)
        wait_s, after = check_job_wait(wait, payload.get("after"))
        return self.jobs.wait(job_id, wait_s, after_events=after)

    def info(self) -> ModelInfo:
        """What is being served, with the ``info_extras`` hook's keys merged into ``extra``."""
        info = self.engine.info()
        if self._info_extras is None:
            return info
        try:
            extras = self._info_extras(info)
        except Exception:  # info must answer; the extras are best effort
            logger.exception("info extras failed")
            return info
        return info.model_copy(update={"extra": {**info.extra, **extras}})

    def health(self) -> HealthStatus:
        """Liveness and readiness; never raises."""
        with self._state_lock:
            ready = self._slot is not None
            error = self._load_error
        if ready:
            return HealthStatus(status="ok", ready=True, version=__version__)
        if error and not self._loading:
            return HealthStatus(status="error", ready=False, version=__version__, detail=error)
        return HealthStatus(
            status="loading", ready=False, version=__version__, detail="the model is loading"
        )

    # --- plain-data entry points (Modal methods) ---------------------------------------------
    def call_plain(self, operation: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run an operation on plain data and answer plain data, errors included.

        Errors come back as ``{"schema_version": 1, "error": {...}}`` instead of being raised,
        so a client of another jaguar_sdk version gets a clear message rather than an
        unpickling failure.

        Args:
            operation: ``"generate"``, ``"info"``, ``"health"``, ``"reload"``, or the job
                operations ``"submit"``, ``"job_status"``, ``"job_result"``, ``"job_cancel"``.
            payload: For ``generate`` and ``submit``: ``{"schema_version", "request",
                "request_id", "idempotency_key"}``; the job operations take ``"job_id"``.

        Returns:
            The result's plain-data form (bytes stay bytes), or an error envelope.
        """
        payload = payload or {}
        request_id = payload.get("request_id") or new_request_id()
        try:
            check_schema_version(payload)
            spec = OPERATIONS.get(cast(Operation, operation))
            if spec is None:
                raise JaguarError(f"unknown operation {operation!r}", code="not_found")
            out: BaseModel = self._handlers[spec.name](payload, request_id)
            return out.model_dump()
        except JaguarError as exc:
            if exc.request_id is None:
                exc.request_id = request_id
            return {"schema_version": C.SCHEMA_VERSION, "error": exc.to_payload()}
        except Exception as exc:  # never let an unpicklable exception cross the wire
            logger.exception("operation %s failed [request_id=%s]", operation, request_id)
            err = GenerationError(f"{type(exc).__name__}: {exc}", request_id=request_id)
            return {"schema_version": C.SCHEMA_VERSION, "error": err.to_payload()}
