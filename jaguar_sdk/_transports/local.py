"""The in-process transport: the engine runs in this process, behind a :class:`JaguarService`.

Calls go through :meth:`JaguarService.call_plain`, the same plain-data entry point the Modal
class exposes, so results and errors have exactly the shape they have on the other transports
(and idempotency keys work the same: a retried call is answered from the store).

A call's time limit is enforced by running the work in a worker thread and waiting for it;
CPU or GPU work cannot be interrupted, so a call that times out keeps running in the background
and a retry with the same idempotency key waits for it instead of starting over.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from .._exceptions import PHRASES, ConfigurationError, JaguarError, JaguarTimeoutError
from .._extras import import_extra
from .._logging import get_logger
from ..server._service import JaguarService
from ._base import Call, Reply

__all__ = ["AsyncLocalTransport", "LocalTransport", "load_service"]

logger = get_logger("jaguar_sdk.local")


def load_service(model: str, *, device: str | None = None) -> JaguarService:
    """Load ``model`` with the engine and return a started service.

    LoRA adapters come from the local weights folder (``$JAGUAR_WEIGHTS_DIR``, else
    ``$JAGUAR_CACHE_DIR/weights``): Hub adapters are downloaded there once, ``path`` adapters
    are read from there (:class:`~jaguar_sdk.weights.AdapterStore`).

    Args:
        model: ``"tiny"`` (the offline test model) or a diffusers model folder.
        device: ``"cpu"``, ``"cuda"``..., or ``None`` to pick the best available.

    Returns:
        A started service.

    Raises:
        ConfigurationError: The engine extra is missing, or the model cannot be loaded.
    """
    engine_class = import_extra(
        "jaguar_sdk.engine._engine", "engine", what="Running the model in this process"
    ).Engine

    from ..weights import AdapterStore

    def loader() -> Any:
        return engine_class.load(model, device=device, adapters=AdapterStore.local())

    service = JaguarService(loader)
    try:
        service.start()
    except JaguarError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"Could not load the local model {model!r}: {type(exc).__name__}: {exc}"
        ) from exc
    return service


def _timed_out(call: Call, limit: float) -> JaguarTimeoutError:
    left = call.remaining()
    deadline = left is not None and left <= 0.01
    logger.warning(
        "%s still running in-process after %.2fs; it finishes in the background [request_id=%s]",
        call.operation,
        limit,
        call.request_id,
    )
    return JaguarTimeoutError(
        f"{call.operation} did not finish within {limit:g}s in-process"
        + (" (the call's deadline)." if deadline else f"; {PHRASES['timeout']} for slow devices."),
        request_id=call.request_id,
        code="deadline_exceeded" if deadline else None,
    )


class _LocalBase:
    name = "local"
    #: ``generate_many`` sends direct calls: a worker thread each, queued at the engine's lock;
    #: a job adds a submit, a status call and a result fetch for the same throughput.
    batch_via_jobs = False

    def __init__(self, service: JaguarService, *, model: str | None = None) -> None:
        self.service = service
        self.model = model

    def _run(self, call: Call) -> dict[str, Any]:
        return self.service.call_plain(call.operation, call.to_plain())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


class LocalTransport(_LocalBase):
    """Blocking in-process transport.

    Args:
        service: The service to call (closed with the transport).
        model: The model name, for ``repr``.

    Example:
        >>> client = JaguarClient.local(model="tiny")  # doctest: +SKIP
    """

    def __init__(self, service: JaguarService, *, model: str | None = None) -> None:
        super().__init__(service, model=model)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def send(self, call: Call) -> Reply:
        """Run one attempt in-process, within the attempt's time limit.

        Raises:
            JaguarTimeoutError: The attempt's timeout or the call's deadline ran out.
        """
        limit = call.attempt_timeout()
        if limit is None:
            return Reply(data=self._run(call), request_id=call.request_id)
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=8, thread_name_prefix="jaguar-local"
            )
        future = self._pool.submit(self._run, call)
        try:
            data = future.result(timeout=limit)
        except concurrent.futures.TimeoutError:
            raise _timed_out(call, limit) from None
        return Reply(data=data, request_id=call.request_id)

    def close(self) -> None:
        """Release the engine and the worker threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.service.close()


class AsyncLocalTransport(_LocalBase):
    """asyncio in-process transport: the blocking work runs in a worker thread.

    Args:
        service: The service to call (closed with the transport).
        model: The model name, for ``repr``.
    """

    async def send(self, call: Call) -> Reply:
        """Run one attempt in a worker thread, within the attempt's time limit.

        Raises:
            JaguarTimeoutError: The attempt's timeout or the call's deadline ran out.
        """
        limit = call.attempt_timeout()
        work = asyncio.to_thread(self._run, call)
        try:
            data = await (work if limit is None else asyncio.wait_for(work, limit))
        except asyncio.TimeoutError:
            assert limit is not None
            raise _timed_out(call, limit) from None
        return Reply(data=data, request_id=call.request_id)

    async def aclose(self) -> None:
        """Release the engine."""
        await asyncio.to_thread(self.service.close)
