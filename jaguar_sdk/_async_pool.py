"""Bounded concurrency for the asyncio client (the blocking twin is ``_pool.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["map_bounded"]

T = TypeVar("T")
R = TypeVar("R")


async def map_bounded(fn: Callable[[T], Awaitable[R]], items: Sequence[T], limit: int) -> list[R]:
    """``[await fn(item) for item in items]`` with at most ``limit`` running at once, in order.

    Example:
        >>> async def double(x: int) -> int:
        ...     return 2 * x
        >>> asyncio.run(map_bounded(double, [1, 2, 3], 2))
        [2, 4, 6]
    """
    gate = asyncio.Semaphore(limit)

    async def bounded(item: T) -> R:
        async with gate:
            return await fn(item)

    return list(await asyncio.gather(*(bounded(item) for item in items)))
