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
    .staging/<unique>/                      downloads in progress; never read as a model
    .trash/<unique>/                        copies replaced by a forced reload
    .locks/<org>--<name>--<commit>.lock     advisory download lock (adapters:
                                            ``adapters--<org>--<name>--<commit>--<file>.lock``)
    .compile-cache/{inductor,triton}/       torch.compile caches shared by containers
"""

from __future__ import annotations

import re

__all__ = ["ADAPTERS_SECTION", "MODELS_SECTION", "RESERVED_TOP_FOLDERS", "safe_name"]

#: Top folder of the published model copies.
MODELS_SECTION = "models"
#: Top folder of the LoRA adapters downloaded from the Hub.
ADAPTERS_SECTION = "adapters"
#: Top folders a ``path`` adapter source may not point into (the store's own bookkeeping and
#: copies, which it may move or delete).
RESERVED_TOP_FOLDERS: frozenset[str] = frozenset({MODELS_SECTION, ADAPTERS_SECTION})

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
