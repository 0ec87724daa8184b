"""The layout of a weights root (the Modal Volume mount, or any folder), in one place.

Every path on the Volume is defined here and nowhere else::

    models/<org>--<name>/<commit>/          one complete published copy per commit,
        jaguar-manifest.json                its manifest written last
    models/<org>--<name>/refs/<branch>      the commit a branch resolved to
    models/<org>--<name>/CURRENT            the commit containers load (replaced atomically)
    .staging/<unique>/                      downloads in progress; never read as a model
    .trash/<unique>/                        copies replaced by a forced reload
    .locks/<org>--<name>--<commit>.lock     advisory download lock
    .compile-cache/{inductor,triton}/       torch.compile caches shared by containers
"""

from __future__ import annotations

import re

__all__ = ["safe_name"]

_SAFE_RE = re.compile(r"^[A-Za-z0-9._-]+$")


def safe_name(name: str, what: str) -> str:
    safe = name.replace("/", "--")
    if not _SAFE_RE.match(safe) or safe in {".", ".."} or safe.startswith("."):
        raise ValueError(f"unsupported {what} {name!r}: use letters, digits, '.', '_', '-', '/'")
    return safe
