"""Lazy package exports: names loaded from their module on first access (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose names load on first use.

    Args:
        package: The package's ``__name__``.
        where: Name -> relative module holding it (``".\\_app"``).
        namespace: The package's ``globals()``; a loaded name is cached there.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"serve": "._serve"}, globals())
        ... # doctest: +SKIP
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
