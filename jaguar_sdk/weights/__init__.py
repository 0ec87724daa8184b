"""Model weights on disk: download once, verify, publish atomically, keep versions.

Nothing here imports torch: the store, the revision manager and the manifests work on files
(a Modal Volume mount or any folder). The Modal deployment and ``jaguar model`` both use them.

- :class:`WeightStore`: "the weights of repo@revision, verified, here" (download when missing).
- :class:`AdapterStore`: a request's LoRA adapter, as a verified local file (downloaded once
  into the same store, under ``adapters/``).
- :class:`ModelVersions`: revisions side by side, the ``CURRENT`` pointer, incremental
  updates, verify, backup/restore, prune.
- Fetchers (where weights come from): :class:`HubFetcher`, :class:`LocalFolderFetcher`.
- Storages (where revisions live): :class:`LocalStorage`, :class:`ModalVolumeStorage`.

Example:
    >>> from jaguar_sdk.weights import HubFetcher, WeightStore
    >>> WeightStore("/weights").ensure("shuttleai/shuttle-jaguar", "main", fetch=HubFetcher())
    ... # doctest: +SKIP
"""

from .adapters import AdapterStore, ResolvedAdapter, local_weights_root
from .fetchers import ALLOW_PATTERNS, Fetcher, HubFetcher, LocalFolderFetcher, RemoteFile
from .manifest import Manifest, ManifestError, VerifyReport
from .storage import LocalStorage, ModalVolumeStorage, Storage
from .store import EnsureResult, WeightStore
from .update_check import UpdateChecker, followed_branch
from .versions import ModelVersions, RevisionInfo, UpdateResult

__all__ = [
    "ALLOW_PATTERNS",
    "AdapterStore",
    "EnsureResult",
    "Fetcher",
    "HubFetcher",
    "LocalFolderFetcher",
    "LocalStorage",
    "Manifest",
    "ManifestError",
    "ModalVolumeStorage",
    "ModelVersions",
    "RemoteFile",
    "ResolvedAdapter",
    "RevisionInfo",
    "Storage",
    "UpdateChecker",
    "UpdateResult",
    "VerifyReport",
    "WeightStore",
    "followed_branch",
    "local_weights_root",
]
