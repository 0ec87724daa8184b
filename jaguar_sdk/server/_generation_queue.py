"""Generation's own bounded queue, so cheap routes never wait behind it.

Starlette runs blocking work (``run_in_threadpool``) on one shared pool of 40 threads
(``anyio.to_thread.current_default_thread_limiter``): with generations parked on the engine's
GPU lock filling it, ``/v1/info`` and job status queued behind them for seconds. Generations
run here instead, on a few threads of their own, with a bounded number waiting; the shared pool
stays free for the routes that answer in milliseconds.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from .._exceptions import ServerError

__all__ = ["GenerationQueue"]

T = TypeVar("T")


class GenerationQueue:
    """Runs generations on ``workers`` threads, with at most ``max_queued`` more waiting.

    A request that finds the queue full is refused at once with 503 ``overloaded`` and
    ``Retry-After`` (the clients retry it), instead of waiting without bound. A waiting
    request whose client goes away is dropped before it runs.

    Args:
        workers: Generations run at once (the engine serialises GPU work; a second worker
            overlaps one request's image encoding with the next one's denoising).
        max_queued: Generations waiting at once beyond the running ones.

    Raises:
        ValueError: ``workers`` below 1 or ``max_queued`` below 0.

    Example:
        >>> queue = GenerationQueue(workers=2, max_queued=64)
        >>> queue.capacity
        66
    """

    def __init__(self, *, workers: int, max_queued: int) -> None:
        if workers < 1 or max_queued < 0:
            raise ValueError("workers must be at least 1 and max_queued at least 0")
        self.capacity = workers + max_queued
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="jaguar-generate")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Generations running or waiting now."""
        with self._lock:
            return self._pending

    def _done(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """Run ``fn(*args, **kwargs)`` on a generation thread and await its result.

        Raises:
            ServerError: 503 ``overloaded`` when ``capacity`` generations are already
                running or waiting.
        """
        with self._lock:
            if self._pending >= self.capacity:
                raise ServerError(
                    f"The server is busy: {self._pending} generations are running or queued "
                    "(its limit). Retry after the Retry-After delay.",
                    status_code=503,
                    code="overloaded",
                    retry_after=1.0,
                )
            self._pending += 1
        future = self._pool.submit(functools.partial(fn, *args, **kwargs))
        # The count drops when the work ends (or is cancelled before it starts), not when the
        # awaiting request goes away, so it always counts what occupies the pool.
        future.add_done_callback(self._done)
        # Cancelling the awaiting task (client gone) cancels the concurrent future too, so a
        # request still waiting is never run (asyncio.wrap_future chains cancellation).
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop taking work; waiting generations are dropped, running ones finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)
