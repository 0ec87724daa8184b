"""LoRA adapters on the weights Volume: download once, verify, hand the engine a local file.

An adapter from the Hub goes through the same :class:`~jaguar_sdk.weights.WeightStore` as the
model (staging folder, sha256 manifest written last, one atomic rename, advisory lock, Volume
commit), in its own section, ``adapters/`` (:mod:`jaguar_sdk.weights.layout`): one published
folder per repo, commit and file. An adapter on the Volume (``path``) is a file you put there
yourself (``modal volume put``); it is hashed so that its identity is its content.

The engine asks :meth:`AdapterStore.resolve` for each adapter of a request and keys its
in-memory cache by the returned :attr:`ResolvedAdapter.key` (the file's sha256), so the same
bytes are loaded once whatever they were called.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .. import _constants as C
from .._exceptions import InvalidRequestError, JaguarError, ServerError
from .fetchers import Fetcher, HubFetcher, glob_escape
from .layout import ADAPTERS_SECTION, RESERVED_TOP_FOLDERS
from .manifest import hash_file
from .store import WeightStore
from .versions import RevisionNotFoundError

if TYPE_CHECKING:
    from .._request import LoraAdapter

__all__ = [
    "DEFAULT_ADAPTER_FILE",
    "MAX_ADAPTER_BYTES",
    "AdapterStore",
    "ResolvedAdapter",
    "local_weights_root",
]

#: The file diffusers looks for first in a LoRA repo (``lora_base.py`` ``LORA_WEIGHT_NAME_SAFE``).
DEFAULT_ADAPTER_FILE = "pytorch_lora_weights.safetensors"
#: Largest adapter file accepted (a rank-128 LoRA over every Flux layer is about 1.3 GB in bf16).
MAX_ADAPTER_BYTES = 4 * 1024**3
#: Variant name of a repo fetched without a file name (every ``.safetensors`` file in it).
_ANY_FILE = "any"
#: Exception class names of huggingface_hub meaning "no such repo, revision or file".
_NOT_FOUND = frozenset(
    {
        "RepositoryNotFoundError",
        "RevisionNotFoundError",
        "EntryNotFoundError",
        "RemoteEntryNotFoundError",
        "GatedRepoError",
        "FileNotFoundError",
    }
)


def local_weights_root() -> Path:
    """The weights folder outside Modal: ``$JAGUAR_WEIGHTS_DIR``, else the cache's ``weights``.

    Returns:
        ``$JAGUAR_WEIGHTS_DIR``, else ``$JAGUAR_CACHE_DIR/weights``, else
        ``~/.cache/jaguar/weights`` (not created here).
    """
    explicit = os.environ.get(C.ENV_WEIGHTS_DIR)
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get(C.ENV_CACHE_DIR)
    base = Path(cache).expanduser() if cache else Path.home() / ".cache" / "jaguar"
    return base / "weights"


@dataclass(frozen=True)
class ResolvedAdapter:
    """An adapter file ready to load.

    Attributes:
        path: The ``.safetensors`` file.
        key: ``"sha256:<hex>"`` of its content: the engine's cache key.
        source: The adapter as requested (``"owner/name/file.safetensors@rev"`` or
            ``"volume:<path>"``).
        revision: The commit it was downloaded at (Hub adapters).
        size: Bytes.
        origin: ``"volume"`` (found there) or ``"huggingface"`` (downloaded by this call).
    """

    path: Path
    key: str
    source: str
    revision: str | None
    size: int
    origin: Literal["volume", "huggingface"]

    def describe(self) -> dict[str, Any]:
        """For ``info().extra["lora"]["cached"]``."""
        return {
            "source": self.source,
            "revision": self.revision,
            "sha256": self.key.removeprefix("sha256:"),
            "bytes": self.size,
        }


class AdapterStore:
    """Resolve a request's :class:`~jaguar_sdk.LoraAdapter` to a verified local file.

    Args:
        store: The model's weight store (its root, Volume hooks and lock settings are shared);
            adapters are published in its ``adapters/`` section.
        fetcher: Where Hub adapters are downloaded from (default: the Hub, ``HF_TOKEN``).

    Example:
        >>> adapters = AdapterStore(WeightStore(Path("/weights")))       # doctest: +SKIP
        >>> adapters.resolve(LoraAdapter.parse("owner/style-lora")).path
        PosixPath('/weights/adapters/owner--style-lora/<commit>--any/lora.safetensors')
    """

    def __init__(self, store: WeightStore, *, fetcher: Fetcher | None = None) -> None:
        self.root = store.root
        self.store = store.section_store(ADAPTERS_SECTION)
        self.fetcher: Fetcher = fetcher or HubFetcher()
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str, str], ResolvedAdapter] = {}
        self._hashes: dict[tuple[str, int, int], str] = {}

    @classmethod
    def local(cls, *, fetcher: Fetcher | None = None) -> AdapterStore:
        """The store of :func:`local_weights_root` (``jaguar serve``, ``JaguarClient.local``)."""
        return cls(WeightStore(local_weights_root()), fetcher=fetcher)

    def resolve(self, adapter: LoraAdapter) -> ResolvedAdapter:
        """The adapter's local file, downloading (once) and verifying it where needed.

        Args:
            adapter: A validated adapter of a request.

        Returns:
            The file and its identity.

        Raises:
            InvalidRequestError: No such repo, revision, file or Volume path; several files
                and no ``weight_name``; a path into the store's own folders or off the Volume;
                a file above :data:`MAX_ADAPTER_BYTES`. ``field`` is ``"loras"``.
            ServerError: The download failed for another reason (network); retry later.
        """
        if adapter.path is not None:
            return self._on_volume(adapter, adapter.path)
        return self._from_hub(adapter)

    # --- Hub adapters ------------------------------------------------------------------------
    def _from_hub(self, adapter: LoraAdapter) -> ResolvedAdapter:
        repo = str(adapter.repo)
        revision = adapter.revision or "main"
        variant = adapter.weight_name or _ANY_FILE
        memo = (repo, revision, variant)
        with self._lock:
            known = self._known.get(memo)
        if known is not None and known.path.is_file():
            return known
        patterns = (
            (glob_escape(adapter.weight_name),) if adapter.weight_name else ("*.safetensors",)
        )
        try:
            folder = self.store.find(repo, revision, variant=variant)
            if folder is not None:
                manifest, origin = self.store.manifest(folder), "volume"
            else:
                got = self.store.ensure(
                    repo,
                    revision,
                    fetch=self.fetcher,
                    progress=False,
                    allow_patterns=patterns,
                    variant=variant,
                )
                folder, manifest, origin = got.path, got.manifest, got.source
        except RevisionNotFoundError as exc:  # the commit holds no file the adapter names
            raise self._download_error(adapter, exc) from exc
        except JaguarError:
            raise
        except Exception as exc:
            raise self._download_error(adapter, exc) from exc
        if manifest is None:  # published folders always have one; a vanished copy is a 5xx
            raise ServerError(f"loras: the copy of {adapter.label()} on the Volume is incomplete")
        files = {f.path: f for f in manifest.files if f.path.endswith(".safetensors")}
        entry = files.get(adapter.weight_name or "") or self._only_file(adapter, files)
        resolved = ResolvedAdapter(
            path=folder / entry.path,
            key=f"sha256:{entry.sha256}",
            source=adapter.label(),
            revision=manifest.revision,
            size=entry.size,
            origin="huggingface" if origin == "huggingface" else "volume",
        )
        self._check_size(adapter, resolved.size)
        with self._lock:
            self._known[memo] = resolved
        return resolved

    def _only_file(self, adapter: LoraAdapter, files: dict[str, Any]) -> Any:
        if adapter.weight_name:
            raise self._invalid(adapter, f"the repo has no file {adapter.weight_name!r}")
        if len(files) == 1:
            return next(iter(files.values()))
        if DEFAULT_ADAPTER_FILE in files:
            return files[DEFAULT_ADAPTER_FILE]
        names = ", ".join(sorted(files)[:8]) or "none"
        raise self._invalid(
            adapter,
            f"the repo holds {len(files)} .safetensors files ({names}); name one with "
            "weight_name (or 'owner/name/<file>.safetensors')",
        )

    def _download_error(self, adapter: LoraAdapter, exc: BaseException) -> JaguarError:
        if type(exc).__name__ in _NOT_FOUND or isinstance(exc, (FileNotFoundError, ValueError)):
            return self._invalid(adapter, f"not found ({type(exc).__name__}: {exc})")
        return ServerError(
            f"loras: downloading {adapter.label()} failed ({type(exc).__name__}: {exc}); "
            "try again later.",
            status_code=502,
            code="adapter_download_failed",
        )

    # --- adapters on the Volume --------------------------------------------------------------
    def _on_volume(self, adapter: LoraAdapter, relative: str) -> ResolvedAdapter:
        if relative.split("/", 1)[0] in RESERVED_TOP_FOLDERS:
            raise self._invalid(
                adapter,
                f"{relative.split('/', 1)[0]}/ holds the store's own copies; put your adapters "
                "elsewhere on the Volume (e.g. loras/)",
            )
        self.store.refresh()  # see files uploaded (and committed) since this container started
        root = self.root.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise self._invalid(adapter, "the path leads off the Volume (a symbolic link?)")
        try:
            stat = path.stat()
        except OSError:
            raise self._invalid(adapter, f"there is no file {relative!r} on the Volume") from None
        if not path.is_file():
            raise self._invalid(adapter, f"{relative!r} is not a file")
        self._check_size(adapter, stat.st_size)
        identity = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            digest = self._hashes.get(identity)
        if digest is None:
            digest = hash_file(path)
            with self._lock:
                self._hashes[identity] = digest
        return ResolvedAdapter(
            path=path,
            key=f"sha256:{digest}",
            source=adapter.label(),
            revision=None,
            size=stat.st_size,
            origin="volume",
        )

    # --- shared ------------------------------------------------------------------------------
    def _check_size(self, adapter: LoraAdapter, size: int) -> None:
        if size > MAX_ADAPTER_BYTES:
            raise self._invalid(
                adapter, f"the file is {size} bytes, above the limit of {MAX_ADAPTER_BYTES}"
            )

    @staticmethod
    def _invalid(adapter: LoraAdapter, why: str) -> InvalidRequestError:
        return InvalidRequestError(
            f"loras: {adapter.label()}: {why}", field="loras", code="adapter_not_found"
        )
