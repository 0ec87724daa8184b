"""Optional dependencies: import one, or say which extra to install.

``pip install jaguar-sdk`` brings the client only (httpx, pydantic, tenacity, pillow). Every part
that needs more goes through :func:`import_extra` (or :func:`require_extras`, which checks
without importing), so a missing dependency is always a :class:`ConfigurationError` naming the
extra, e.g. ``pip install 'jaguar-sdk[server]'``, never a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ._exceptions import ConfigurationError

__all__ = ["EXTRAS", "extra_of", "import_extra", "missing_extra_error", "require_extras"]

#: The modules each extra of ``pyproject.toml`` installs (import names; a test keeps the two in
#: step). ``engine`` also brings tqdm (diffusers needs it); ``progress`` is tqdm alone.
EXTRAS: dict[str, tuple[str, ...]] = {
    "engine": (
        "torch",
        "diffusers",
        "transformers",
        "accelerate",
        "safetensors",
        "huggingface_hub",
        "numpy",
        "tqdm",
        "peft",
    ),
    "server": ("fastapi", "uvicorn", "python_multipart"),
    "modal": ("modal",),
    "progress": ("tqdm",),
}

# Modules installed only as dependencies of an extra's packages.
_INDIRECT = {"starlette": "server"}


def extra_of(module: str) -> str | None:
    """The extra that installs ``module`` (its top-level package), or ``None``.

    Example:
        >>> extra_of("fastapi.responses"), extra_of("httpx")
        ('server', None)
    """
    top = module.partition(".")[0]
    if top in _INDIRECT:
        return _INDIRECT[top]
    # tqdm is in engine and progress: name the small one.
    owners = [extra for extra, modules in EXTRAS.items() if top in modules]
    return owners[-1] if owners else None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_extra_error(extras: list[str], missing: list[str], *, what: str) -> ConfigurationError:
    """The error for ``what`` lacking ``extras`` (``missing``: the modules not found).

    Example:
        >>> error = missing_extra_error(["server"], ["fastapi"], what="Serving over HTTP")
        >>> error.message.endswith("(fastapi is not installed): pip install 'jaguar-sdk[server]'")
        True
    """
    shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    verb = "is" if len(missing) == 1 else "are"
    names = " and ".join(extras)
    plural = "s" if len(extras) > 1 else ""
    return ConfigurationError(
        f"{what} needs the {names} extra{plural} ({shown} {verb} not installed): "
        f"pip install 'jaguar-sdk[{','.join(extras)}]'"
    )


def require_extras(*extras: str, what: str) -> None:
    """Check that every module of ``extras`` is installed, without importing any.

    Args:
        *extras: Names from :data:`EXTRAS` (``"engine"``, ``"server"``, ``"modal"``,
            ``"progress"``).
        what: What needs them, as the start of a sentence (``"Serving over HTTP"``).

    Raises:
        ConfigurationError: Naming every extra with a missing module, and the pip command.

    Example:
        >>> require_extras("modal", what="Calling a Modal deployment")  # doctest: +SKIP
    """
    lacking: list[str] = []
    missing: list[str] = []
    for extra in extras:
        absent = [m for m in EXTRAS[extra] if not _installed(m)]
        if absent:
            lacking.append(extra)
            missing.extend(m for m in absent if m not in missing)
    if lacking:
        raise missing_extra_error(lacking, missing, what=what)


def import_extra(module: str, *extras: str, what: str, package: str | None = None) -> ModuleType:
    """Import an optional module, or raise :class:`ConfigurationError` naming the extra.

    ``extras`` are checked first (nothing imported), so one message names everything a feature
    needs; then ``module`` is imported, and a ``ModuleNotFoundError`` for a module that an extra
    installs (``torch``, ``fastapi``...) is turned into the same error. Any other import
    failure is a bug and propagates unchanged.

    Args:
        module: The module to import (relative to ``package`` when it starts with a dot).
        *extras: Extras to check up front (``"server", "engine"`` for ``jaguar serve``).
        what: What needs it, as the start of a sentence (``"Running the model in-process"``).
        package: The anchor of a relative ``module``.

    Returns:
        The imported module.

    Raises:
        ConfigurationError: An extra is not installed.

    Example:
        >>> tqdm = import_extra("tqdm", "progress", what="A progress bar")  # doctest: +SKIP
    """
    require_extras(*extras, what=what)
    try:
        return importlib.import_module(module, package)
    except ModuleNotFoundError as exc:
        extra = extra_of(exc.name or "")
        if extra is None:
            raise
        raise missing_extra_error([extra], [exc.name or ""], what=what) from exc
