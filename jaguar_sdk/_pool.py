"""Bounded concurrency for the blocking client (the asyncio twin is ``_async_pool.py``)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["iter_bounded"]

T = TypeVar("T")
R = TypeVar("R")


def iter_bounded(fn: Callable[[T], R], items: Iterable[T], limit: int) -> Iterator[tuple[int, R]]:
    """Run ``fn`` on every item, at most ``limit`` at once (threads); yield ``(index, result)``
    as each finishes (completion order).

    The next item starts as soon as one finishes, before its result is yielded, so a slow
    consumer never leaves a slot idle; items are read from ``items`` only as slots free up.
    With ``limit == 1`` the items run one after another in the caller's thread. Leaving the
    loop early lets the items already running finish in the background (a thread cannot be
    interrupted) and starts no more. An exception raised by ``fn`` propagates: ``fn`` should
    return its errors.

    Example:
        >>> sorted(iter_bounded(lambda x: 2 * x, [1, 2, 3], 2))
        [(0, 2), (1, 4), (2, 6)]
    """
    source = enumerate(items)
    if limit == 1:
        for index, item in source:
            yield index, fn(item)
        return
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=limit, thread_name_prefix="jaguar-many"
    )
    running: dict[concurrent.futures.Future[R], int] = {}

    def start_next() -> None:
        for index, item in source:
            running[pool.submit(fn, item)] = index
            return

    try:
        for _ in range(limit):
            start_next()
        while running:
            done, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            finished = sorted(done, key=running.__getitem__)
            for _ in finished:  # refill every free slot before handing anything out
                start_next()
            for future in finished:
                index = running.pop(future)
                yield index, future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
