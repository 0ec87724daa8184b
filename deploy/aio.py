"""Run the web function's async Modal calls from the server's worker threads.

The HTTP routes (shared with ``jaguar serve``) call the service in worker threads
(``starlette.concurrency.run_in_threadpool`` -> ``anyio.to_thread.run_sync``). From there,
``anyio.from_thread.run`` runs a coroutine on the server's event loop, where the Modal calls are
made with ``.aio`` (``.remote.aio``, ``.spawn.aio``, ``FunctionCall.get.aio``, ``Dict.*.aio``);
the worker thread only waits. Outside a worker thread (a direct call in a test or script) the
coroutine runs in its own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread

__all__ = ["raise_thread_limit", "run_coroutine"]

T = TypeVar("T")


def run_coroutine(fn: Callable[..., Awaitable[T]], *args: object) -> T:
    """``await fn(*args)`` on the server's loop from a worker thread, else in a new loop."""

    async def call() -> T:
        return await fn(*args)

    try:
        return anyio.from_thread.run(call)
    except anyio.NoEventLoopError:  # raised before anything ran: not in a worker thread
        return asyncio.run(call())


def raise_thread_limit(tokens: int) -> None:
    """Let ``tokens`` routes wait in worker threads at once (anyio's default is 40).

    Each request waiting on the GPU holds a worker thread; with ``@modal.concurrent(max_inputs=N)``
    and the default limit, the 41st would queue behind generations, job polls included. Call it
    on the server's event loop (at startup).
    """
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, tokens)
