"""The layout of a weights root (the Modal Volume mount, or any folder), in one place.

Every path on the Volume is defined here and nowhere else::

    models/<org>--<name>/<commit>/          one complete published copy per commit,
        jaguar-manifest.json                its manifest written last
    models/<org>--<name>/refs/<branch>      the commit a branch resolved to
    models/<org>--<name>/CURRENT            the commit containers load (replaced atomically)
    adapters/<org>--<name>/<commit>--<file>/  a LoRA adapter from the Hub: one verified copy
        <file>.safetensors                  of one file per commit, published like a model
        jaguar-manifest.json                (``--any`` when the request named no file)
    adapters/<org>--<name>/refs/<branch>    the commit a branch resolved to
    loras/<name>.safetensors                adapters you upload yourself (``path`` sources: any
                                            relative path outside the folders listed here)
    .staging/<key>--<unique>/               a download in progress; never read as a model
    .trash/<unique>/                        copies moved aside (never deleted automatically:
                                            a serving container may still read them)
    .locks/<key>.lock                       advisory download lock
    (<key>: ``<org>--<name>--<commit>``; adapters ``adapters--<org>--<name>--<commit>--<file>``)
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
    "ADAPTERS_SECTION",
    "COMPILE_CACHE",
    "CURRENT",
    "LOCKS",
    "MODELS",
    "MODELS_SECTION",
    "RESERVED_TOP_FOLDERS",
    "STAGING",
    "TRASH",
    "compile_cache_dirs",
    "current_path",
    "download_key",
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

#: Top folder of the published model copies.
MODELS = MODELS_SECTION = "models"
#: Top folder of the LoRA adapters downloaded from the Hub.
ADAPTERS_SECTION = "adapters"
#: Top folders a ``path`` adapter source may not point into (the store's own bookkeeping and
#: copies, which it may move or delete).
RESERVED_TOP_FOLDERS: frozenset[str] = frozenset({MODELS_SECTION, ADAPTERS_SECTION})
STAGING = ".staging"
TRASH = ".trash"
LOCKS = ".locks"
COMPILE_CACHE = ".compile-cache"
CURRENT = "CURRENT"
REFS = "refs"

_SAFE_RE = re.compile(r"^[A-Za-z0-9._-]+$")


def safe_name(name: str, what: str) -> str:
    """``name`` as one path component (``/`` becomes ``--``), refusing anything else.

    Raises:
        ValueError: Characters other than letters, digits, ``.``, ``_``, ``-`` and ``/``.
    """
    safe = name.replace("/", "--")
    if not _SAFE_RE.match(safe) or safe in {".", ".."} or safe.startswith("."):
        raise ValueError(f"unsupported {what} {name!r}: use letters, digits, '.', '_', '-', '/'")
    return safe


def repo_dir(repo_id: str, section: str = MODELS) -> str:
    """``<section>/<org>--<name>`` (``models/...`` unless an adapter's)."""
    return f"{safe_name(section, 'section')}/{safe_name(repo_id, 'repo id')}"


def revision_dir(
    repo_id: str, commit: str, *, section: str = MODELS, variant: str | None = None
) -> str:
    """The published copy of ``repo_id`` at ``commit``.

    A ``variant`` (a subset of the repo's files, e.g. one adapter file) has its own folder,
    ``<commit>--<variant>``, so two subsets never pass for each other.
    """
    name = safe_name(commit, "revision")
    if variant is not None:
        name += f"--{safe_name(variant, 'variant')}"
    return f"{repo_dir(repo_id, section)}/{name}"


def refs_dir(repo_id: str, section: str = MODELS) -> str:
    """The folder of ``repo_id``'s branch refs."""
    return f"{repo_dir(repo_id, section)}/{REFS}"


def ref_path(repo_id: str, branch: str, section: str = MODELS) -> str:
    """The file holding the commit ``branch`` resolved to."""
    return f"{refs_dir(repo_id, section)}/{safe_name(branch, 'revision')}"


def current_path(repo_id: str, section: str = MODELS) -> str:
    """The ``CURRENT`` pointer of ``repo_id``."""
    return f"{repo_dir(repo_id, section)}/{CURRENT}"


def download_key(
    repo_id: str, commit: str, *, section: str = MODELS, variant: str | None = None
) -> str:
    """What names the lock and the staging folders of one download (one copy)."""
    key = f"{safe_name(repo_id, 'repo id')}--{safe_name(commit[:40], 'revision')}"
    if section != MODELS:
        key = f"{safe_name(section, 'section')}--{key}"
    return key if variant is None else f"{key}--{safe_name(variant, 'variant')}"


def lock_path(
    repo_id: str, commit: str, *, section: str = MODELS, variant: str | None = None
) -> str:
    """The advisory lock of downloads of one copy."""
    return f"{LOCKS}/{download_key(repo_id, commit, section=section, variant=variant)}.lock"


def staging_prefix(
    repo_id: str, commit: str, *, section: str = MODELS, variant: str | None = None
) -> str:
    """What every staging folder of a download of one copy starts with."""
    return f"{download_key(repo_id, commit, section=section, variant=variant)}--"


def staging_name(
    repo_id: str, commit: str, *, section: str = MODELS, variant: str | None = None
) -> str:
    """A fresh staging folder for a download of one copy (under :data:`STAGING`)."""
    prefix = staging_prefix(repo_id, commit, section=section, variant=variant)
    return f"{STAGING}/{prefix}{int(time.time())}-{uuid.uuid4().hex[:12]}"


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
