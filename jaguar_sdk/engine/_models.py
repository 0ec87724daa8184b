"""Model-name resolution: ``"tiny"`` (built once into a cache) or a local diffusers folder.

The tiny model is built into ``$JAGUAR_CACHE_DIR/models/tiny-v<N>`` (default cache
``~/.cache/jaguar``) atomically: it is built into a unique temporary sibling folder, a
completion marker is written last, and the folder is published with one ``os.rename``. So
concurrent builders (threads or processes) never see a half-written model, a crash leaves at
worst a temporary folder (never taken for a model, removed once stale), and whichever builder
publishes first wins; the others discard their copy.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .. import _constants as C
from .._exceptions import ConfigurationError
from .._logging import get_logger
from .._results import ModelRef

__all__ = ["TINY_MARKER", "cache_dir", "folder_revision", "resolve_model", "tiny_model_path"]

logger = get_logger("jaguar_sdk.engine")

#: Written last into a tiny build; its presence marks the folder complete.
TINY_MARKER = "jaguar-tiny.json"
_TMP_PREFIX = ".tmp-"
_STALE_TMP_S = 3600.0
_build_lock = threading.Lock()


def cache_dir() -> Path:
    """The jaguar cache folder: ``$JAGUAR_CACHE_DIR``, else ``~/.cache/jaguar``."""
    env = os.environ.get(C.ENV_CACHE_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "jaguar"


def tiny_model_path() -> Path:
    """Where the cached tiny model lives (it may not be built yet)."""
    from .tiny import TINY_MODEL_VERSION

    return cache_dir() / "models" / f"tiny-v{TINY_MODEL_VERSION}"


def folder_revision(folder: Path, *, exclude: tuple[str, ...] = (TINY_MARKER,)) -> str:
    """A short content hash of a folder: sha256 over every file's relative path and bytes.

    Args:
        folder: The folder.
        exclude: Relative paths left out (the completion marker).

    Returns:
        The first 12 hex digits.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in exclude:
            continue
        digest.update(rel.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / TINY_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("revision"), str)
    return data if ok and (folder / "model_index.json").is_file() else None


def _remove_stale_temps(parent: Path, name: str) -> None:
    now = time.time()
    for leftover in parent.glob(f"{_TMP_PREFIX}{name}-*"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(leftover, ignore_errors=True)


def _build_tiny_atomically(final: Path) -> dict[str, Any]:
    """Build into a temporary sibling, write the marker last, publish by rename."""
    from . import tiny

    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(final.parent, final.name)
    staging = final.parent / f"{_TMP_PREFIX}{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        started = time.perf_counter()
        tiny.build_tiny_model(staging)
        marker = {
            "name": tiny.TINY_MODEL_NAME,
            "recipe_version": tiny.TINY_MODEL_VERSION,
            "revision": folder_revision(staging),
            "build_s": round(time.perf_counter() - started, 4),
        }
        (staging / TINY_MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        try:
            os.rename(staging, final)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            published = _read_marker(final)
            if published is None:  # a broken folder in the way: set it aside and retry once
                aside = final.parent / f"{_TMP_PREFIX}{final.name}-broken-{uuid.uuid4().hex[:8]}"
                os.rename(final, aside)
                os.rename(staging, final)
                shutil.rmtree(aside, ignore_errors=True)
            else:  # another builder won the race: use theirs
                return published
        logger.info("built the tiny model into %s", final)
        return marker
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _resolve_tiny() -> tuple[Path, ModelRef]:
    final = tiny_model_path()
    marker = _read_marker(final)
    if marker is None:
        with _build_lock:
            marker = _read_marker(final) or _build_tiny_atomically(final)
    return final, ModelRef(id="tiny", revision=marker["revision"], source="local")


def _model_id_for(folder: Path, index: dict[str, Any]) -> str:
    name = index.get("_name_or_path")
    if isinstance(name, str) and name.count("/") == 1 and not Path(name).exists():
        return name  # a Hub id recorded by save_pretrained
    return folder.name


def resolve_model(model: str | os.PathLike[str] = "tiny") -> tuple[Path, ModelRef]:
    """Turn a model name or folder into a local diffusers folder and a :class:`ModelRef`.

    Args:
        model: ``"tiny"`` for the tiny random Flux model (built on first use into
            ``$JAGUAR_CACHE_DIR/models/``, about 1 s, no network), or the path of a folder in
            diffusers layout (with ``model_index.json``).

    Returns:
        ``(folder, model_ref)``. For ``"tiny"`` the ref is ``ModelRef(id="tiny",
        revision=<12-hex content hash>, source="local")``; for a folder, the id is the Hub id
        recorded in ``model_index.json`` or else the folder name, with no revision (unless the
        folder is a copy of a cached tiny build, which keeps its content hash).

    Raises:
        ConfigurationError: If the name is unknown, or the folder is missing or not a diffusers
            pipeline folder.

    Example:
        >>> folder, ref = resolve_model("tiny")  # doctest: +SKIP
        >>> ref.id, (folder / "model_index.json").is_file()
        ('tiny', True)
    """
    from .tiny import TINY_MODEL_NAME

    if isinstance(model, str) and model.strip() == TINY_MODEL_NAME:
        return _resolve_tiny()
    folder = Path(model).expanduser()
    expected = (
        "expected 'tiny' or a folder in diffusers layout containing model_index.json "
        "(e.g. one written by `jaguar model tiny DIR` or FluxPipeline.save_pretrained)"
    )
    if not folder.exists():
        raise ConfigurationError(f"model {str(model)!r} not found: {expected}.")
    if not folder.is_dir():
        raise ConfigurationError(f"model {str(model)!r} is a file, not a folder: {expected}.")
    index_path = folder / "model_index.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(
            f"model folder {str(folder)!r} has no model_index.json: {expected}."
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"model folder {str(folder)!r} has an unreadable model_index.json ({exc}): {expected}."
        ) from None
    if not isinstance(index, dict):
        raise ConfigurationError(f"{str(index_path)!r} is not a JSON object: {expected}.")
    marker = _read_marker(folder)  # a tiny build copied elsewhere keeps its content hash
    revision = marker["revision"] if marker else None
    ref = ModelRef(id=_model_id_for(folder, index), revision=revision, source="local")
    return folder.absolute(), ref
