"""The weights Volume as the deployment uses it: find, download (a deploy step), or say how.

The CPU weights function (``modal run deploy/app.py::download_weights``) is the only place that
downloads by default: it verifies-or-downloads into the Volume under the store's lock, with a long
timeout and several cores, and never on a billed GPU. A GPU container only looks (no network, no
lock): when the weights are missing it fails at once with :func:`missing_message`, or, with
``JAGUAR_ON_MISSING_WEIGHTS=download``, calls the weights function and waits for it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy.settings import WEIGHTS_LOCK_WAIT_S, DeploySettings
from jaguar_sdk import ConfigurationError
from jaguar_sdk.weights import EnsureResult, Fetcher, WeightStore

__all__ = [
    "DOWNLOAD_COMMAND",
    "ENV_WEIGHTS_DIR",
    "WEIGHTS_MOUNT",
    "WeightsMissingError",
    "download",
    "find_weights",
    "missing_message",
    "open_store",
]

logger = logging.getLogger("jaguar_sdk.deploy")

#: Where the weights Volume is mounted in every container that uses it.
WEIGHTS_MOUNT = "/weights"
#: Overrides the weights folder (tests point it at a temporary folder; unset on Modal).
ENV_WEIGHTS_DIR = "JAGUAR_WEIGHTS_DIR"
#: The deploy step that puts the weights on the Volume.
DOWNLOAD_COMMAND = "modal run deploy/app.py::download_weights"

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class WeightsMissingError(ConfigurationError):
    """The weights are not on the Volume, and this container does not download them."""


def open_store(commit: Callable[[], None], reload: Callable[[], None]) -> WeightStore:
    """The weight store on the Volume mount (or ``$JAGUAR_WEIGHTS_DIR`` in tests).

    Args:
        commit: ``Volume.commit`` in a container (a no-op on a local folder).
        reload: ``Volume.reload`` in a container (a no-op on a local folder).

    Returns:
        The store; its lock wait is :data:`~deploy.settings.WEIGHTS_LOCK_WAIT_S`.
    """
    root = Path(os.environ.get(ENV_WEIGHTS_DIR) or WEIGHTS_MOUNT)
    return WeightStore(root, commit=commit, reload=reload, lock_wait_s=WEIGHTS_LOCK_WAIT_S)


def find_weights(
    store: WeightStore, s: DeploySettings, reload: Callable[[], None]
) -> EnsureResult | None:
    """The published copy a container should serve, without network, hashing or locks.

    A pinned commit (``JAGUAR_MODEL_REVISION=<sha>``) wins; otherwise the revision ``CURRENT``
    names (``jaguar model update``), else the stored ref of the branch.

    Args:
        store: The weight store.
        s: The deploy settings.
        reload: ``Volume.reload``, called first so other containers' commits are seen (a failure,
            e.g. "volume busy" while files are open, is logged and this view is used).

    Returns:
        The copy (``source="volume"``), or ``None`` when it is not on the Volume.
    """
    try:
        reload()
    except Exception as exc:
        logger.warning("volume reload failed (%s); using this container's view", exc)
    revision = s.model_revision
    if not _COMMIT_RE.match(revision):
        revision = store.current(s.model_id) or revision
    path = store.find(s.model_id, revision)
    if path is None:
        return None
    manifest = store.manifest(path)
    if manifest is None:
        return None
    return EnsureResult(path, "volume", s.model_id, manifest.revision, manifest, False)


def missing_message(s: DeploySettings) -> str:
    """What to do when the weights are not on the Volume (the container's error message)."""
    return (
        f"The weights of {s.model_id}@{s.model_revision} are not on the Volume "
        f"{s.volume_name!r}. Put them there once, with the same JAGUAR_* settings as the deploy: "
        f"`{DOWNLOAD_COMMAND}` (a CPU function, about 34 GB; run it again after a failure, it "
        "resumes cleanly). Or redeploy with JAGUAR_ON_MISSING_WEIGHTS=download to have GPU "
        "containers fetch them through that function."
    )


def download(
    store: WeightStore, s: DeploySettings, fetch: Fetcher, *, force: bool
) -> dict[str, Any]:
    """Verify-or-download the weights into the Volume (the weights function's body).

    Args:
        store: The weight store.
        s: The deploy settings (repo and revision; ``CURRENT`` wins over a branch).
        fetch: Where to download from (the Hub on Modal).
        force: Hash every file and repair a corrupt copy (``reload``'s path).

    Returns:
        ``{"repo_id", "revision", "source", "path", "full_verified"}``.
    """
    got = store.ensure_current(s.model_id, s.model_revision, fetch=fetch, force=force)
    logger.info("weights %s@%s from %s: %s", s.model_id, got.revision, got.source, got.path)
    return {
        "repo_id": got.repo_id,
        "revision": got.revision,
        "source": got.source,
        "path": str(got.path),
        "full_verified": got.full_verified,
    }
