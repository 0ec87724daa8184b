"""Bounded concurrency for the blocking client (the asyncio twin is ``_async_pool.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["map_bounded"]

T = TypeVar("T")
R = TypeVar("R")


def map_bounded(fn: Callable[[T], R], items: Sequence[T], limit: int) -> list[R]:
    """``[fn(item) for item in items]`` with at most ``limit`` running at once (threads), in order.

    Example:
        >>> map_bounded(lambda x: 2 * x, [1, 2, 3], 2)
        [2, 4, 6]
    """
    if limit == 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(
        max_workers=min(limit, len(items)), thread_name_prefix="jaguar-many"
    ) as pool:
        return list(pool.map(fn, items))
