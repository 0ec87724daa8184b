"""A tqdm byte bar for downloads, hashing and verification, silent where tqdm is missing."""

from __future__ import annotations

from typing import Any

__all__ = ["ByteBar"]


class ByteBar:
    """A tqdm byte bar when tqdm is importable and progress is wanted; otherwise nothing."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self._bar: Any = None
        if enabled and total > 0:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm ships with the engine extra
                return
            self._bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
