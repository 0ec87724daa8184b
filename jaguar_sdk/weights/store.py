"""The weight store: "download once to the Volume", done so that a crash never leaves half a model.

The layout under ``root`` (the Modal Volume mount, or any local folder) is
:mod:`jaguar_sdk.weights.layout`'s.

How a copy is made (:meth:`WeightStore.ensure`):

1. A complete copy (manifest present, every listed file present with the listed size) is used as
   is: ``source="volume"``, no network.
2. Otherwise the store takes an advisory lock file and runs the one publishing path,
   :meth:`ModelVersions.update <jaguar_sdk.weights.ModelVersions.update>` (the same code as
   ``jaguar model update``): download into a fresh staging folder, hash every file into a
   manifest (written last), publish with one atomic rename; if another container published
   first, theirs is verified and ours discarded. Then ``commit()`` (``Volume.commit`` on
   Modal). ``source="huggingface"``.

A crash at any point leaves the previous complete copy or nothing: a staging folder is never
read as a model, and leftover staging folders older than ``staging_max_age_s`` are removed by the
next ``ensure``.

Locking: Modal Volumes have no locking across containers, and one container's files are seen by
another only after a ``commit()`` there and a ``reload()`` here. So the lock (a file created with
``O_CREAT | O_EXCL`` holding owner id and timestamp, stale after a timeout) only avoids duplicate
downloads in the common case; correctness never depends on it.

This module does not import modal: the Modal app injects ``Volume.commit``/``Volume.reload``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import layout
from ._locking import LockFile
from ._progress import ByteBar
from .fetchers import ALLOW_PATTERNS, Fetcher, is_commit
from .manifest import (
    ByteProgress,
    Manifest,
    ManifestError,
    VerifyReport,
    read_manifest,
    verify_folder,
)
from .storage import LocalStorage
from .versions import ModelVersions

__all__ = ["EnsureResult", "WeightStore"]

logger = logging.getLogger("jaguar_sdk.weights.store")

StoreSource = Literal["volume", "huggingface"]


@dataclass(frozen=True)
class EnsureResult:
    """Where the weights are and how they got there.

    Attributes:
        path: The published folder to load.
        source: ``"volume"`` (found complete) or ``"huggingface"`` (downloaded now).
        repo_id: The Hub repo id.
        revision: The resolved commit.
        manifest: The folder's manifest.
        full_verified: Whether every byte was hashed against the manifest on this call.
    """

    path: Path
    source: StoreSource
    repo_id: str
    revision: str
    manifest: Manifest
    full_verified: bool = False


def _noop() -> None:
    return None


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _newest_mtime(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            newest = max(newest, path.stat().st_mtime)
    return newest


class WeightStore:
    """Verified, atomically published model folders under one root (a Modal Volume mount).

    Args:
        root: The store's root folder (created if missing).
        commit: Makes writes visible to other containers (``Volume.commit`` on Modal).
        reload: Shows other containers' commits here (``Volume.reload`` on Modal). Failures are
            logged and ignored (Modal refuses to reload while files are open).
        lock_wait_s: How long to wait for another container's download before downloading too.
        lock_stale_after_s: A lock untouched for this long is abandoned.
        poll_s: How often to look again while waiting.
        staging_max_age_s: Staging folders untouched for this long are leftovers of a crash.
        section: The top folder of the published copies: ``"models"`` (default) or
            ``"adapters"`` for LoRA adapters (:mod:`jaguar_sdk.weights.layout`); the staging,
            trash and lock folders are shared.

    Example:
        >>> store = WeightStore(Path("/weights"), commit=volume.commit, reload=volume.reload)
        ... # doctest: +SKIP
        >>> got = store.ensure("shuttleai/shuttle-jaguar", "main", fetch=HubFetcher())
        >>> got.source, got.path
        ('volume', PosixPath('/weights/models/shuttleai--shuttle-jaguar/<commit>'))
    """

    def __init__(
        self,
        root: Path,
        *,
        commit: Callable[[], None] = _noop,
        reload: Callable[[], None] = _noop,
        lock_wait_s: float = 900.0,
        lock_stale_after_s: float = 600.0,
        poll_s: float = 2.0,
        staging_max_age_s: float = 6 * 3600.0,
        section: str = layout.MODELS_SECTION,
    ) -> None:
        self.root = Path(root)
        self.section = layout.safe_name(section, "section")
        self._commit = commit
        self._reload = reload
        self.lock_wait_s = lock_wait_s
        self.lock_stale_after_s = lock_stale_after_s
        self.poll_s = poll_s
        self.staging_max_age_s = staging_max_age_s

    # --- layout (jaguar_sdk.weights.layout) ---------------------------------------------------
    @property
    def staging_dir(self) -> Path:
        return self.root / layout.STAGING

    @property
    def trash_dir(self) -> Path:
        return self.root / layout.TRASH

    def revision_dir(self, repo_id: str, revision: str, variant: str | None = None) -> Path:
        """Where the published copy of ``repo_id`` at commit ``revision`` lives (a ``variant``,
        a subset of the repo's files, has its own folder: ``layout.revision_dir``)."""
        return self.root / layout.revision_dir(
            repo_id, revision, section=self.section, variant=variant
        )

    # --- hooks -----------------------------------------------------------------------------
    def _stage(self, name: str) -> None:
        """Called between the steps of a download (``fetched``, ``manifest``, ``published``,
        ``verified``: :meth:`ModelVersions.update`'s). Does nothing; tests override it to crash
        at each step."""

    def section_store(self, section: str) -> WeightStore:
        """A store over the same root, Volume hooks and timings, publishing under ``section``
        (``"adapters"`` for LoRA adapters: :class:`~jaguar_sdk.weights.AdapterStore`)."""
        return WeightStore(
            self.root,
            commit=self._commit,
            reload=self._reload,
            lock_wait_s=self.lock_wait_s,
            lock_stale_after_s=self.lock_stale_after_s,
            poll_s=self.poll_s,
            staging_max_age_s=self.staging_max_age_s,
            section=section,
        )

    def refresh(self) -> None:
        """See other containers' commits (``Volume.reload``); a failure is logged, not raised."""
        try:
            self._reload()
        except Exception as exc:  # "volume busy" while files are open: keep our view
            logger.warning("volume reload failed (%s); using this container's view", exc)

    # --- queries ---------------------------------------------------------------------------
    def find(self, repo_id: str, revision: str, *, variant: str | None = None) -> Path | None:
        """A complete published copy, without network or hashing.

        Args:
            repo_id: The Hub repo id.
            revision: A commit, or a branch/tag downloaded before (resolved through its ref).
            variant: The subset of files, as given to :meth:`ensure`.

        Returns:
            The folder, when its manifest is valid for this repo and commit and every listed
            file is present with the listed size; otherwise ``None``.
        """
        commit = self.versions(repo_id).known_commit(revision)
        if commit is None:
            return None
        path = self.revision_dir(repo_id, commit, variant)
        return path if self._usable(path, repo_id, commit, full=False).ok else None

    def verify(
        self, path: Path, *, full: bool = True, progress: bool | ByteProgress = False
    ) -> VerifyReport:
        """Compare a published folder with its manifest.

        Args:
            path: The folder.
            full: Hash every file (slow: reads every byte) instead of checking sizes only.
            progress: ``True`` for a tqdm bar, or a callable given byte counts.

        Returns:
            The report: missing, extra, size-mismatched and hash-mismatched files.
        """
        bar: ByteBar | None = None
        callback: ByteProgress | None = None
        if callable(progress):
            callback = progress
        elif full and progress:
            bar = ByteBar(_tree_bytes(path) if path.is_dir() else 0, "verify", True)
            callback = bar.update
        try:
            return verify_folder(path, full=full, progress=callback)
        finally:
            if bar is not None:
                bar.close()

    def _usable(self, path: Path, repo_id: str, commit: str, *, full: bool) -> VerifyReport:
        report = self.verify(path, full=full)
        if report.ok:
            manifest = read_manifest(path)
            if manifest.repo_id != repo_id or manifest.revision != commit:
                report.error = (
                    f"manifest is for {manifest.repo_id}@{manifest.revision}, "
                    f"not {repo_id}@{commit}"
                )
        return report

    # --- ensure ----------------------------------------------------------------------------
    def ensure(
        self,
        repo_id: str,
        revision: str,
        *,
        fetch: Fetcher,
        force: bool = False,
        progress: bool = True,
        allow_patterns: tuple[str, ...] = ALLOW_PATTERNS,
        variant: str | None = None,
    ) -> EnsureResult:
        """Return a complete copy of ``repo_id`` at ``revision``, downloading it if needed.

        Args:
            repo_id: The Hub repo id, e.g. ``"shuttleai/shuttle-jaguar"``.
            revision: A commit, branch or tag. A branch is resolved (network) only the first
                time; afterwards its stored ref is used, so cold starts need no Hub access.
            fetch: Where to download from (:class:`HubFetcher`, or a test fetcher).
            force: Hash every file of the existing copy; download and publish a fresh copy only
                when that verification fails (the reload path). The old folder is moved to
                ``.trash/``, never deleted, since a serving container may still read it.
            progress: Show tqdm bars while hashing.
            allow_patterns: The files to download (default: what a FluxPipeline needs).
            variant: Names this subset of the repo's files when ``allow_patterns`` is not the
                default (its own folder, lock and staging; see :meth:`revision_dir`).

        Returns:
            The folder, whether it came from the volume or was downloaded now, and its manifest.

        Raises:
            Exception: Whatever the fetcher raises (network, auth, missing repo); the store is
                left with the previous complete copy, or none.
        """
        self.refresh()
        self.clean_staging()
        commit = self.versions(repo_id).known_commit(revision)
        if commit is None:
            commit = fetch.resolve(repo_id, revision)
        found = self._check_existing(
            repo_id, revision, commit, force=force, progress=progress, variant=variant
        )
        if found is not None:
            return found

        lock = LockFile(
            self.root / layout.lock_path(repo_id, commit, section=self.section, variant=variant),
            stale_after_s=self.lock_stale_after_s,
        )
        try:
            if not self._acquire(lock):
                # Someone else may have published while we waited.
                self.refresh()
                found = self._check_existing(
                    repo_id, revision, commit, force=force, progress=progress, variant=variant
                )
                if found is not None:
                    return found
            elif lock.broke_stale:
                self._clean_orphans(
                    layout.staging_prefix(repo_id, commit, section=self.section, variant=variant)
                )
            return self._download_and_publish(
                repo_id,
                revision,
                commit,
                fetch,
                progress,
                replace=force,
                allow_patterns=allow_patterns,
                variant=variant,
            )
        finally:
            lock.release()

    def _check_existing(
        self,
        repo_id: str,
        revision: str,
        commit: str,
        *,
        force: bool,
        progress: bool,
        variant: str | None = None,
    ) -> EnsureResult | None:
        path = self.revision_dir(repo_id, commit, variant)
        if not path.is_dir():
            return None
        report = self._usable(path, repo_id, commit, full=False)
        if report.ok and force:
            bar = ByteBar(read_manifest(path).total_bytes, "verify", progress)
            try:
                report = verify_folder(path, full=True, progress=bar.update)
            finally:
                bar.close()
        if not report.ok:
            logger.warning("weights on the volume fail verification: %s", report.summary())
            return None
        self.versions(repo_id).write_ref(revision, commit)
        return EnsureResult(
            path, "volume", repo_id, commit, read_manifest(path), full_verified=force
        )

    def _acquire(self, lock: LockFile) -> bool:
        """Take the lock, or wait for its holder to publish; ``False`` means "go ahead anyway"
        (the holder is slow, or published, which the caller checks)."""
        if lock.try_acquire():
            self.safe_commit()  # make the lock visible to other containers
            return True
        deadline = time.monotonic() + self.lock_wait_s
        owner = lock.read() or {}
        logger.info("another container is downloading these weights (%s); waiting", owner)
        while time.monotonic() < deadline:
            time.sleep(self.poll_s)
            self.refresh()
            if not lock.path.exists():
                return False  # released: it published (or failed); the caller looks again
            if lock.try_acquire():  # a stale lock is broken here
                self.safe_commit()
                return True
        logger.warning("waited %.0f s for another download; downloading too", self.lock_wait_s)
        return False

    def safe_commit(self) -> None:
        """Commit (``Volume.commit`` on Modal), logging a failure instead of raising it.

        For writes that only save later work (e.g. torch.compile caches): a failed commit must
        not fail the container that made them.
        """
        try:
            self._commit()
        except Exception as exc:
            logger.warning("volume commit failed: %s", exc)

    def _clean_orphans(self, prefix: str) -> list[Path]:
        """Remove the staging folders (named ``prefix...``) of a download that died.

        Called after breaking the abandoned lock of that download: its holder died mid-work
        (its heartbeat stopped), so the staging folders of that copy are what it left. A lock
        released normally cleans nothing: on a Volume, where the lock is only advisory, another
        container may be downloading into its own staging folder at this very moment. The
        leftovers go now rather than after ``staging_max_age_s``, so a killed 34 GB download
        does not sit on the Volume for hours.
        """
        removed: list[Path] = []
        if not self.staging_dir.is_dir():
            return removed
        for entry in self.staging_dir.iterdir():
            if entry.name.startswith(prefix):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        if removed:
            logger.info("removed %d staging folder(s) of a killed download", len(removed))
            self.safe_commit()
        return removed

    def _download_and_publish(
        self,
        repo_id: str,
        revision: str,
        commit: str,
        fetch: Fetcher,
        progress: bool,
        *,
        replace: bool,
        allow_patterns: tuple[str, ...],
        variant: str | None,
    ) -> EnsureResult:
        versions = self.versions(repo_id, progress=progress, variant=variant)
        if replace:  # a forced reload found the copy corrupt: move it aside, never delete it
            versions.storage.retire(versions.revision_path(commit))
        logger.info("downloading %s@%s", repo_id, commit)
        # Hashes are checked while staging; after the rename only sizes need checking.
        result = versions.update(
            fetch, commit, switch=False, full_verify=False, allow_patterns=allow_patterns
        )
        versions.write_ref(revision, commit)
        self.safe_commit()
        path = self.revision_dir(repo_id, commit, variant)
        source: StoreSource = "huggingface" if result.published else "volume"
        return EnsureResult(path, source, repo_id, commit, read_manifest(path), True)

    # --- revisions (see jaguar_sdk.weights.versions) ---------------------------------------
    def versions(
        self, repo_id: str, *, progress: bool = False, variant: str | None = None
    ) -> ModelVersions:
        """The revision manager of ``repo_id`` over this store's folder and section.

        Args:
            repo_id: The Hub repo id.
            progress: Show tqdm bars.
            variant: A subset of the repo's files (an adapter file) with its own folders.

        Returns:
            A :class:`~jaguar_sdk.weights.versions.ModelVersions` that commits through this
            store's ``commit`` hook.
        """
        return ModelVersions(
            LocalStorage(self.root),
            repo_id,
            progress=progress,
            commit=self.safe_commit,
            on_stage=self._stage,
            section=self.section,
            variant=variant,
        )

    def current(self, repo_id: str) -> str | None:
        """The commit ``models/<repo>/CURRENT`` points at, or ``None`` when unset."""
        return self.versions(repo_id).current()

    def ensure_current(
        self,
        repo_id: str,
        revision: str,
        *,
        fetch: Fetcher,
        force: bool = False,
        progress: bool = True,
    ) -> EnsureResult:
        """:meth:`ensure` the revision ``CURRENT`` points at, when set and not overridden.

        A full commit in ``revision`` is an explicit pin and wins over ``CURRENT``; a branch or
        tag (``"main"``) defers to ``CURRENT`` when one is set, so ``jaguar model update``
        takes effect at the next container start or ``reload``.

        Args:
            repo_id: The Hub repo id.
            revision: The configured commit, branch or tag.
            fetch: Where to download from when the copy is missing or broken.
            force: As in :meth:`ensure`.
            progress: As in :meth:`ensure`.

        Returns:
            As :meth:`ensure`.

        Example:
            >>> store.ensure_current("shuttleai/shuttle-jaguar", "main", fetch=HubFetcher())
            ... # doctest: +SKIP
        """
        if not is_commit(revision):
            self.refresh()
            current = self.current(repo_id)
            if current is not None:
                revision = current
        return self.ensure(repo_id, revision, fetch=fetch, force=force, progress=progress)

    # --- housekeeping ----------------------------------------------------------------------
    def clean_staging(self, *, max_age_s: float | None = None) -> list[Path]:
        """Remove staging folders nobody has written to for ``max_age_s`` (crash leftovers).

        Args:
            max_age_s: Age threshold; defaults to ``staging_max_age_s``.

        Returns:
            The folders removed.
        """
        limit = self.staging_max_age_s if max_age_s is None else max_age_s
        removed: list[Path] = []
        if not self.staging_dir.is_dir():
            return removed
        now = time.time()
        for entry in self.staging_dir.iterdir():
            try:
                age = now - _newest_mtime(entry)
            except OSError:
                continue
            if age >= limit:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        if removed:
            logger.info("removed %d stale staging folder(s)", len(removed))
        return removed

    def clean_trash(self, *, max_age_s: float = 7 * 24 * 3600.0) -> list[Path]:
        """Delete replaced copies older than ``max_age_s``. Never called automatically: only run
        it when no container can still be serving from those files (e.g. after a redeploy).

        Returns:
            The folders removed.
        """
        removed: list[Path] = []
        if not self.trash_dir.is_dir():
            return removed
        now = time.time()
        for entry in self.trash_dir.iterdir():
            if now - entry.stat().st_mtime >= max_age_s:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        if removed:
            self.safe_commit()
        return removed

    def manifest(self, path: Path) -> Manifest | None:
        """The manifest of a folder, or ``None`` when it has no valid one."""
        try:
            return read_manifest(path)
        except ManifestError:
            return None
