"""Lazy package exports: names loaded from their module on first access (PEP 562)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._extras import import_extra

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    where: Mapping[str, str],
    namespace: dict[str, Any],
    *,
    extras: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose names load on first use.

    A name whose module needs an extra that is not installed raises
    :class:`~jaguar_sdk.ConfigurationError` naming it (see :func:`jaguar_sdk._extras.import_extra`).

    Args:
        package: The package's ``__name__``.
        where: Name -> relative module holding it (``".\\_app"``).
        namespace: The package's ``globals()``; a loaded name is cached there.
        extras: Name -> extras it needs, checked before importing (so one message names all
            of them); other names rely on the failed import naming its extra.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"serve": "._serve"}, globals())
        ... # doctest: +SKIP
    """
    needs = extras or {}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        loaded = import_extra(
            module, *needs.get(name, ()), what=f"{package}.{name}", package=package
        )
        value = getattr(loaded, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
