"""Where weights come from: the Hugging Face Hub, or a local folder standing in for it.

A fetcher resolves a branch to a commit, downloads the files a FluxPipeline needs
(:data:`ALLOW_PATTERNS`), and, where it can, lists a commit's files with sizes and hashes so an
update fetches only what changed.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

from .._extras import import_extra
from .manifest import hash_file

__all__ = [
    "ALLOW_PATTERNS",
    "FetchInterruptedError",
    "Fetcher",
    "FileListingFetcher",
    "HubFetcher",
    "LocalFolderFetcher",
    "RemoteFile",
    "glob_escape",
    "is_commit",
]

#: What a FluxPipeline needs from the Hub repo. Never the 23.8 GB single-file checkpoint, the fp8
#: file or the GGUF folder that the shuttle-jaguar repo also holds.
ALLOW_PATTERNS: tuple[str, ...] = (
    "model_index.json",
    "scheduler/*",
    "text_encoder/*",
    "text_encoder_2/*",
    "tokenizer/*",
    "tokenizer_2/*",
    "transformer/*",
    "vae/*",
)

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class FetchInterruptedError(RuntimeError):
    """A (test) fetcher stopped part-way, as a crashed download would."""


class Fetcher(Protocol):
    """Where weights come from (the Hub, or a local folder standing in for it)."""

    def resolve(self, repo_id: str, revision: str) -> str:
        """Turn a branch or tag (``"main"``) into the commit it points at now."""
        ...

    def fetch(
        self, repo_id: str, revision: str, dest_dir: Path, allow_patterns: Sequence[str]
    ) -> str:
        """Download the files matching ``allow_patterns`` into ``dest_dir``.

        Returns:
            The resolved revision (commit) actually downloaded.
        """
        ...


@dataclass(frozen=True)
class RemoteFile:
    """One file of a remote revision, as listed without downloading it.

    Attributes:
        path: Path in the repo, ``/``-separated.
        size: Size in bytes.
        sha256: Content hash where the source knows it (Hub LFS files, local mirrors); ``None``
            for small non-LFS Hub files (always re-fetched: they are a few KB).
    """

    path: str
    size: int
    sha256: str | None


class FileListingFetcher(Fetcher, Protocol):
    """A fetcher that can list a revision's files with hashes and fetch only some of them
    (what an incremental update needs)."""

    def list_files(
        self, repo_id: str, revision: str, allow_patterns: Sequence[str]
    ) -> list[RemoteFile]:
        """The files matching ``allow_patterns`` at commit ``revision``, without downloading."""
        ...

    def fetch_files(
        self, repo_id: str, revision: str, paths: Sequence[str], dest_dir: Path
    ) -> None:
        """Download exactly ``paths`` of commit ``revision`` into ``dest_dir``."""
        ...


def is_commit(revision: str) -> bool:
    """Whether ``revision`` is a full commit hash rather than a branch or tag name.

    Args:
        revision: A Hub revision.

    Returns:
        True for a 40-hex-digit commit id, which never moves; False for names like ``main``.

    Example:
        >>> is_commit("main")
        False
    """
    return bool(_SHA_RE.match(revision))


def _hub() -> ModuleType:
    """``huggingface_hub`` (the engine extra), imported on first use."""
    return import_extra("huggingface_hub", what="Reaching the Hugging Face Hub")


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) for p in patterns)


def glob_escape(path: str) -> str:
    """``path`` as an fnmatch pattern matching only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


class HubFetcher:
    """Downloads from the Hugging Face Hub with ``snapshot_download`` (Xet high-performance mode).

    The token comes from ``HF_TOKEN`` (the Modal secret ``huggingface-secret`` sets it), where set.

    Example:
        >>> store.ensure("shuttleai/shuttle-jaguar", "main", fetch=HubFetcher())  # doctest: +SKIP
    """

    def __init__(self, *, token: str | None = None) -> None:
        self._token = token

    def _token_value(self) -> str | None:
        return self._token or os.environ.get("HF_TOKEN") or None

    def resolve(self, repo_id: str, revision: str) -> str:
        """Ask the Hub which commit ``revision`` points at (one small API call)."""
        if is_commit(revision):
            return revision
        HfApi = _hub().HfApi

        sha = HfApi(token=self._token_value()).model_info(repo_id, revision=revision).sha
        if not sha:
            raise RuntimeError(f"the Hub did not report a commit for {repo_id}@{revision}")
        return str(sha)

    def fetch(
        self, repo_id: str, revision: str, dest_dir: Path, allow_patterns: Sequence[str]
    ) -> str:
        """Download the allowed files of ``repo_id`` at ``revision`` into ``dest_dir``."""
        os.environ.setdefault("HF_XET_HIGH_PERFORMANCE", "1")
        snapshot_download = _hub().snapshot_download

        commit = self.resolve(repo_id, revision)
        snapshot_download(
            repo_id,
            revision=commit,
            local_dir=dest_dir,
            allow_patterns=list(allow_patterns),
            token=self._token_value(),
        )
        # snapshot_download keeps its bookkeeping in <local_dir>/.cache: not part of the model.
        shutil.rmtree(dest_dir / ".cache", ignore_errors=True)
        return commit

    def list_files(
        self, repo_id: str, revision: str, allow_patterns: Sequence[str]
    ) -> list[RemoteFile]:
        """List a commit's files with sizes and LFS sha256 (one API call, nothing downloaded)."""
        HfApi = _hub().HfApi

        info = HfApi(token=self._token_value()).model_info(
            repo_id, revision=revision, files_metadata=True
        )
        out: list[RemoteFile] = []
        for sibling in info.siblings or []:
            name = str(sibling.rfilename)
            if not _matches(name, allow_patterns):
                continue
            lfs = getattr(sibling, "lfs", None)
            sha = getattr(lfs, "sha256", None) if lfs is not None else None
            out.append(RemoteFile(name, int(sibling.size or 0), str(sha) if sha else None))
        return sorted(out, key=lambda f: f.path)

    def fetch_files(
        self, repo_id: str, revision: str, paths: Sequence[str], dest_dir: Path
    ) -> None:
        """Download exactly ``paths`` (``snapshot_download`` with the paths as patterns)."""
        if not paths:
            return
        os.environ.setdefault("HF_XET_HIGH_PERFORMANCE", "1")
        snapshot_download = _hub().snapshot_download

        snapshot_download(
            repo_id,
            revision=revision,
            local_dir=dest_dir,
            allow_patterns=[glob_escape(p) for p in paths],
            token=self._token_value(),
        )
        shutil.rmtree(dest_dir / ".cache", ignore_errors=True)


class LocalFolderFetcher:
    """A stand-in for the Hub: copies from ``source_root/<repo_id>/<revision>/``.

    Branches resolve through ``source_root/<repo_id>/refs/<branch>`` (a file holding the commit),
    as in the Hub cache layout; a revision without a ref resolves to itself. Useful for tests and
    for air-gapped mirrors.

    Args:
        source_root: The mirror's root.
        fail_after_files: Raise :class:`FetchInterruptedError` after copying this many files.
        on_file: Called with the running count after each file is copied (tests use it to kill
            the process mid-download).

    Attributes:
        fetches: How many times :meth:`fetch` or :meth:`fetch_files` ran.
        resolves: How many times :meth:`resolve` ran.
        files_fetched: Files copied so far (what a download would have transferred).
        bytes_fetched: Bytes copied so far.
    """

    def __init__(
        self,
        source_root: Path,
        *,
        fail_after_files: int | None = None,
        on_file: Callable[[int], None] | None = None,
    ) -> None:
        self.source_root = Path(source_root)
        self.fail_after_files = fail_after_files
        self.on_file = on_file
        self.fetches = 0
        self.resolves = 0
        self.files_fetched = 0
        self.bytes_fetched = 0

    def resolve(self, repo_id: str, revision: str) -> str:
        """The commit a branch points at in the mirror."""
        self.resolves += 1
        ref = self.source_root / repo_id / "refs" / revision
        return ref.read_text(encoding="utf-8").strip() if ref.is_file() else revision

    def fetch(
        self, repo_id: str, revision: str, dest_dir: Path, allow_patterns: Sequence[str]
    ) -> str:
        """Copy the files matching ``allow_patterns``."""
        self.fetches += 1
        commit = self.resolve(repo_id, revision)
        src = self.source_root / repo_id / commit
        if not src.is_dir():
            raise FileNotFoundError(f"{repo_id}@{revision} is not in the mirror {self.source_root}")
        rels = [p.relative_to(src).as_posix() for p in sorted(src.rglob("*")) if p.is_file()]
        self._copy(src, [r for r in rels if _matches(r, allow_patterns)], dest_dir)
        return commit

    def _source(self, repo_id: str, commit: str) -> Path:
        src = self.source_root / repo_id / commit
        if not src.is_dir():
            raise FileNotFoundError(f"{repo_id}@{commit} is not in the mirror {self.source_root}")
        return src

    def _copy(self, src: Path, rels: Sequence[str], dest_dir: Path) -> None:
        for copied, rel in enumerate(rels):
            if self.fail_after_files is not None and copied >= self.fail_after_files:
                raise FetchInterruptedError(f"interrupted after {copied} files")
            target = dest_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, target)
            self.files_fetched += 1
            self.bytes_fetched += target.stat().st_size
            if self.on_file is not None:
                self.on_file(copied + 1)

    def list_files(
        self, repo_id: str, revision: str, allow_patterns: Sequence[str]
    ) -> list[RemoteFile]:
        """The mirror's files for ``revision`` with sizes and sha256 (hashed here)."""
        src = self._source(repo_id, self.resolve(repo_id, revision))
        out: list[RemoteFile] = []
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            rel = path.relative_to(src).as_posix()
            if _matches(rel, allow_patterns):
                out.append(RemoteFile(rel, path.stat().st_size, hash_file(path)))
        return out

    def fetch_files(
        self, repo_id: str, revision: str, paths: Sequence[str], dest_dir: Path
    ) -> None:
        """Copy exactly ``paths`` (counted in ``files_fetched``/``bytes_fetched``)."""
        self.fetches += 1
        src = self._source(repo_id, self.resolve(repo_id, revision))
        missing = [p for p in paths if not (src / p).is_file()]
        if missing:
            raise FileNotFoundError(f"not in the mirror for {repo_id}@{revision}: {missing[:5]}")
        self._copy(src, list(paths), dest_dir)
