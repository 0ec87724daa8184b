"""Bounded concurrency for the asyncio client (the blocking twin is ``_pool.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = ["iter_bounded"]

T = TypeVar("T")
R = TypeVar("R")


async def iter_bounded(
    fn: Callable[[T], Awaitable[R]], items: Iterable[T], limit: int
) -> AsyncIterator[tuple[int, R]]:
    """Run ``fn`` on every item, at most ``limit`` at once; yield ``(index, result)`` as each
    finishes (completion order).

    The next item starts as soon as one finishes, before its result is yielded, so a slow
    consumer never leaves a slot idle; items are read from ``items`` only as slots free up.
    Leaving the loop early cancels the items still running. An exception raised by ``fn``
    propagates (and cancels the others): ``fn`` should return its errors.

    Example:
        >>> async def double(x: int) -> int:
        ...     return 2 * x
        >>> async def main() -> list[tuple[int, int]]:
        ...     return sorted([pair async for pair in iter_bounded(double, [1, 2, 3], 2)])
        >>> asyncio.run(main())
        [(0, 2), (1, 4), (2, 6)]
    """
    source = enumerate(items)
    running: dict[asyncio.Task[R], int] = {}

    def start_next() -> None:
        for index, item in source:
            running[asyncio.ensure_future(fn(item))] = index
            return

    try:
        for _ in range(limit):
            start_next()
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            finished = sorted(done, key=running.__getitem__)
            for _ in finished:  # refill every free slot before handing anything out
                start_next()
            for task in finished:
                index = running.pop(task)
                yield index, task.result()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
