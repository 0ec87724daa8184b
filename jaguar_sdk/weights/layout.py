"""The layout of a weights root (the Modal Volume mount, or any folder), in one place.

Every path on the Volume is defined here and nowhere else::

    models/<org>--<name>/<commit>/          one complete published copy per commit,
        jaguar-manifest.json                its manifest written last
    models/<org>--<name>/refs/<branch>      the commit a branch resolved to
    models/<org>--<name>/CURRENT            the commit containers load (replaced atomically)
    .staging/<org>--<name>--<commit>--<unique>/   a download in progress; never read as a model
    .trash/<unique>/                        copies moved aside (never deleted automatically:
                                            a serving container may still read them)
    .locks/<org>--<name>--<commit>.lock     advisory download lock
    .compile-cache/{inductor,triton}/       torch.compile caches shared by containers

Paths are POSIX strings relative to the root (what a :class:`~jaguar_sdk.weights.Storage`
takes); join them to a mount point with :func:`under`.

Example:
    >>> revision_dir("shuttleai/shuttle-jaguar", "0" * 40)
    'models/shuttleai--shuttle-jaguar/0000000000000000000000000000000000000000'
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

__all__ = [
    "COMPILE_CACHE",
    "CURRENT",
    "LOCKS",
    "MODELS",
    "STAGING",
    "TRASH",
    "compile_cache_dirs",
    "current_path",
    "lock_path",
    "ref_path",
    "refs_dir",
    "repo_dir",
    "revision_dir",
    "safe_name",
    "staging_name",
    "staging_prefix",
    "trash_name",
    "under",
]

MODELS = "models"
STAGING = ".staging"
TRASH = ".trash"
LOCKS = ".locks"
COMPILE_CACHE = ".compile-cache"
CURRENT = "CURRENT"
REFS = "refs"

_SAFE_RE = re.compile(r"^[A-Za-z0-9._-]+$")


def safe_name(name: str, what: str) -> str:
    """``name`` as one path component (``org/name`` -> ``org--name``).

    Raises:
        ValueError: Characters other than letters, digits, ``.``, ``_``, ``-``, ``/``.
    """
    safe = name.replace("/", "--")
    if not _SAFE_RE.match(safe) or safe in {".", ".."} or safe.startswith("."):
        raise ValueError(f"unsupported {what} {name!r}: use letters, digits, '.', '_', '-', '/'")
    return safe


def repo_dir(repo_id: str) -> str:
    """``models/<org>--<name>``."""
    return f"{MODELS}/{safe_name(repo_id, 'repo id')}"


def revision_dir(repo_id: str, commit: str) -> str:
    """The published copy of ``repo_id`` at ``commit``."""
    return f"{repo_dir(repo_id)}/{safe_name(commit, 'revision')}"


def refs_dir(repo_id: str) -> str:
    """The folder of ``repo_id``'s branch refs."""
    return f"{repo_dir(repo_id)}/{REFS}"


def ref_path(repo_id: str, branch: str) -> str:
    """The file holding the commit ``branch`` resolved to."""
    return f"{refs_dir(repo_id)}/{safe_name(branch, 'revision')}"


def current_path(repo_id: str) -> str:
    """The ``CURRENT`` pointer of ``repo_id``."""
    return f"{repo_dir(repo_id)}/{CURRENT}"


def lock_path(repo_id: str, commit: str) -> str:
    """The advisory lock of downloads of ``repo_id@commit``."""
    return f"{LOCKS}/{safe_name(repo_id, 'repo id')}--{safe_name(commit, 'revision')}.lock"


def staging_prefix(repo_id: str, commit: str) -> str:
    """What every staging folder of a download of ``repo_id@commit`` starts with."""
    return f"{safe_name(repo_id, 'repo id')}--{commit[:40]}--"


def staging_name(repo_id: str, commit: str) -> str:
    """A fresh staging folder for a download of ``repo_id@commit`` (under :data:`STAGING`)."""
    return f"{STAGING}/{staging_prefix(repo_id, commit)}{int(time.time())}-{uuid.uuid4().hex[:12]}"


def trash_name(path: str) -> str:
    """Where ``path`` goes when moved aside (under :data:`TRASH`)."""
    parts = path.strip("/").split("/")
    return f"{TRASH}/{'--'.join(parts[-2:])}--{uuid.uuid4().hex[:12]}"


def compile_cache_dirs(root: str | Path) -> dict[str, str]:
    """``TORCHINDUCTOR_CACHE_DIR`` and ``TRITON_CACHE_DIR`` under a mount point."""
    base = f"{str(root).rstrip('/')}/{COMPILE_CACHE}"
    return {"TORCHINDUCTOR_CACHE_DIR": f"{base}/inductor", "TRITON_CACHE_DIR": f"{base}/triton"}


def under(root: Path, path: str) -> Path:
    """A layout path under a mount point."""
    return root / path
