"""Model revisions on the Volume: current pointer, update check, incremental update, verify,
backup/restore and prune — one code path over a :class:`~jaguar_sdk.weights.storage.Storage`.

Layout (shared with :class:`~jaguar_sdk.weights.store.WeightStore`)::

    models/<org>--<name>/<commit>/jaguar-manifest.json   one folder per revision, manifest last
    models/<org>--<name>/refs/<branch>                   branch -> commit it resolved to
    models/<org>--<name>/CURRENT                         the commit containers load (one file,
                                                         replaced atomically)

Guarantees: an update builds the new revision beside the current one and switches ``CURRENT``
only after the new revision is published and verified, so an interrupted update leaves the
current revision serving and untouched. Containers read ``CURRENT`` when they load (start-up or
``reload``); those already serving keep their revision. ``prune`` never removes ``CURRENT``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .._exceptions import InvalidRequestError, JaguarError, NotFoundError
from . import layout
from ._progress import ByteBar
from .fetchers import ALLOW_PATTERNS, Fetcher, RemoteFile, is_commit
from .layout import safe_name
from .manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    ManifestError,
    VerifyReport,
    hash_file,
    write_manifest,
)
from .storage import Storage

__all__ = [
    "CURRENT_NAME",
    "ArchiveError",
    "ModelVersions",
    "RevisionInfo",
    "RevisionNotFoundError",
    "UpdateCheck",
    "UpdateResult",
    "VerificationError",
]

CURRENT_NAME = layout.CURRENT
logger = logging.getLogger("jaguar_sdk.weights.versions")
_CHUNK = 8 * 1024 * 1024


class RevisionNotFoundError(NotFoundError):
    """The revision (or the current pointer) is not on this storage."""

    def __str__(self) -> str:
        return self.message


class VerificationError(JaguarError):
    """Files do not match what they should be (update, backup); nothing was switched."""

    default_code = "verification_failed"


class ArchiveError(InvalidRequestError):
    """A backup archive is damaged, truncated or not a Jaguar backup; nothing was restored."""


@dataclass(frozen=True)
class RevisionInfo:
    """One revision folder.

    Attributes:
        revision: The commit (folder name).
        path: The folder, relative to the storage root.
        files: Number of files in its manifest (0 when it has none).
        total_bytes: Bytes listed in its manifest.
        created_at: When its manifest was written, where it has one.
        current: Whether ``CURRENT`` points at it.
        complete: Manifest valid for this repo/commit and every listed file present, right size.
    """

    revision: str
    path: str
    files: int
    total_bytes: int
    created_at: float | None
    current: bool
    complete: bool


@dataclass(frozen=True)
class UpdateCheck:
    """The deployed revision against the latest one upstream.

    Attributes:
        repo_id: The Hub repo id.
        branch: What was resolved upstream (``"main"``).
        current: The commit ``CURRENT`` points at (``None`` when unset).
        latest: The commit ``branch`` points at upstream now.
    """

    repo_id: str
    branch: str
    current: str | None
    latest: str

    @property
    def update_available(self) -> bool:
        """Whether ``latest`` differs from ``current``."""
        return self.current != self.latest


@dataclass(frozen=True)
class UpdateResult:
    """What an update did.

    Attributes:
        repo_id: The Hub repo id.
        previous: ``CURRENT`` before the update.
        revision: The commit now published (and current when ``switched``).
        fetched_files: Files downloaded.
        fetched_bytes: Bytes downloaded.
        reused_files: Files taken from the previous revision (same sha256 and size).
        reused_bytes: Bytes not downloaded thanks to reuse.
        switched: Whether ``CURRENT`` now points at ``revision``.
        published: Whether this update published the revision (``False``: it was already
            there, or another writer published it first and that copy verified).
    """

    repo_id: str
    previous: str | None
    revision: str
    fetched_files: int
    fetched_bytes: int
    reused_files: int
    reused_bytes: int
    switched: bool
    published: bool = True


def _check_rel(path: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in {"", ".", ".."} for p in parts):
        raise ArchiveError(f"unsafe file path {path!r} in manifest")
    return path


class _HashingReader:
    """A read()-able view of chunks that hashes and counts what is read (for tarfile)."""

    def __init__(self, chunks: Iterator[bytes], progress: Callable[[int], None]) -> None:
        self._chunks = chunks
        self._buf = b""
        self.digest = hashlib.sha256()
        self.size = 0
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        out, self._buf = (self._buf, b"") if n < 0 else (self._buf[:n], self._buf[n:])
        self.digest.update(out)
        self.size += len(out)
        self._progress(len(out))
        return out


class ModelVersions:
    """The revisions of one repo on one storage.

    Args:
        storage: Where the revisions live (:class:`~jaguar_sdk.weights.storage.LocalStorage` or
            :class:`~jaguar_sdk.weights.storage.ModalVolumeStorage`).
        repo_id: The Hub repo id, e.g. ``"shuttleai/shuttle-jaguar"``.
        progress: Show tqdm bars (when tqdm is importable) while hashing, backing up, restoring.
        commit: Called after every change (``Volume.commit`` when the Volume is mounted).
        on_stage: Called with a stage name between the steps of an update/restore (tests crash
            there): ``fetched``, ``manifest``, ``published``, ``verified``, ``switched``.

    Example:
        >>> versions = ModelVersions(LocalStorage(Path("/weights")), "shuttleai/shuttle-jaguar")
        ... # doctest: +SKIP
        >>> versions.check(HubFetcher()).update_available
        True
        >>> versions.update(HubFetcher()).fetched_bytes
        4718592
    """

    def __init__(
        self,
        storage: Storage,
        repo_id: str,
        *,
        progress: bool = False,
        commit: Callable[[], None] | None = None,
        on_stage: Callable[[str], None] | None = None,
        section: str = layout.MODELS_SECTION,
        variant: str | None = None,
    ) -> None:
        self.storage = storage
        self.repo_id = repo_id
        self.progress = progress
        self._commit = commit
        self._on_stage = on_stage
        self.section = section
        self.variant = variant
        self.repo_dir = layout.repo_dir(repo_id, section)

    # --- layout and pointers -----------------------------------------------------------------
    def revision_path(self, revision: str) -> str:
        """The folder of a commit (of this variant), relative to the storage root."""
        return layout.revision_dir(
            self.repo_id, revision, section=self.section, variant=self.variant
        )

    def _stage(self, name: str) -> None:
        if self._on_stage is not None:
            self._on_stage(name)

    def _committed(self) -> None:
        if self._commit is not None:
            self._commit()

    def current(self) -> str | None:
        """The commit ``CURRENT`` points at, or ``None`` when unset."""
        try:
            text = (
                self.storage.read_bytes(layout.current_path(self.repo_id, self.section))
                .decode()
                .strip()
            )
        except FileNotFoundError:
            return None
        return text or None

    def set_current(self, revision: str) -> None:
        """Point ``CURRENT`` at a complete revision (one atomic file replace).

        Args:
            revision: A commit, a stored branch ref, or ``"current"``.

        Raises:
            RevisionNotFoundError: No complete copy of that revision here.
        """
        commit = self.resolve(revision)
        if not self._info(commit, None).complete:
            raise RevisionNotFoundError(f"{self.repo_id}@{commit} is not complete on this storage")
        self.storage.write_bytes(layout.current_path(self.repo_id, self.section), commit.encode())
        self._committed()

    def resolve(self, revision: str) -> str:
        """A commit from ``"current"``, a stored branch ref, or a (possibly short) commit.

        Raises:
            RevisionNotFoundError: Nothing here matches.
        """
        if revision == "current":
            current = self.current()
            if current is None:
                raise RevisionNotFoundError(f"no current revision set for {self.repo_id}")
            return current
        try:
            ref = self.storage.read_bytes(layout.ref_path(self.repo_id, revision, self.section))
            return ref.decode().strip()
        except FileNotFoundError:
            pass
        names = self._revision_names()
        if revision in names or is_commit(revision):
            return revision
        matches = [n for n in names if len(revision) >= 7 and n.startswith(revision)]
        if len(matches) == 1:
            return matches[0]
        raise RevisionNotFoundError(f"no revision {revision!r} of {self.repo_id} on this storage")

    def _revision_names(self) -> list[str]:
        names = self.storage.list_dirs(self.repo_dir)
        return [n for n in names if n != layout.REFS and not n.startswith(".")]

    # --- queries -----------------------------------------------------------------------------
    def manifest(self, revision: str) -> Manifest:
        """A revision's manifest.

        Raises:
            RevisionNotFoundError: No readable manifest for it.
        """
        path = f"{self.revision_path(revision)}/{MANIFEST_NAME}"
        try:
            return Manifest.from_dict(json.loads(self.storage.read_bytes(path)))
        except FileNotFoundError as exc:
            raise RevisionNotFoundError(f"{self.repo_id}@{revision} has no manifest") from exc
        except (ManifestError, ValueError) as exc:
            raise RevisionNotFoundError(f"{self.repo_id}@{revision}: bad manifest: {exc}") from exc

    def _info(self, revision: str, current: str | None) -> RevisionInfo:
        path = self.revision_path(revision)
        try:
            manifest = self.manifest(revision)
        except RevisionNotFoundError:
            return RevisionInfo(revision, path, 0, 0, None, revision == current, False)
        sizes = self.storage.list_files(path)
        complete = (
            manifest.repo_id == self.repo_id
            and manifest.revision == revision
            and all(sizes.get(f.path) == f.size for f in manifest.files)
        )
        return RevisionInfo(
            revision,
            path,
            len(manifest.files),
            manifest.total_bytes,
            manifest.created_at,
            revision == current,
            complete,
        )

    def list_revisions(self) -> list[RevisionInfo]:
        """Every revision folder, oldest manifest first (folders without one last).

        Returns:
            One :class:`RevisionInfo` per folder.
        """
        current = self.current()
        infos = [self._info(name, current) for name in self._revision_names()]
        return sorted(infos, key=lambda i: (i.created_at is None, i.created_at or 0.0))

    def check(self, fetch: Fetcher, branch: str = "main") -> UpdateCheck:
        """Compare ``CURRENT`` with what ``branch`` points at upstream (one small request).

        Args:
            fetch: The upstream (``HubFetcher`` or a local mirror).
            branch: The branch or tag to follow.

        Returns:
            The comparison; ``update_available`` says whether to run :meth:`update`.
        """
        latest = fetch.resolve(self.repo_id, branch)
        return UpdateCheck(self.repo_id, branch, self.current(), latest)

    def verify(self, revision: str = "current", *, full: bool = True) -> VerifyReport:
        """Recompute a revision against its manifest.

        Args:
            revision: A commit, branch ref or ``"current"``.
            full: Hash every byte (otherwise list and sizes only).

        Returns:
            The report: ``missing``, ``extra``, ``size_mismatch``, ``hash_mismatch``; ``ok`` is
            ``False`` on any of them but ``extra`` (see ``report.extra`` for a strict check).

        Raises:
            RevisionNotFoundError: The revision is not here.
        """
        commit = self.resolve(revision)
        path = self.revision_path(commit)
        report = VerifyReport(path=Path(path), full=full)
        try:
            manifest = self.manifest(commit)
        except RevisionNotFoundError as exc:
            if not self.storage.list_files(path):
                raise
            report.error = str(exc)
            return report
        if manifest.revision != commit or manifest.repo_id != self.repo_id:
            report.error = f"manifest is for {manifest.repo_id}@{manifest.revision}"
        on_disk = self.storage.list_files(path)
        on_disk.pop(MANIFEST_NAME, None)
        expected = {f.path: f for f in manifest.files}
        report.extra = sorted(set(on_disk) - set(expected))
        present = []
        for rel, entry in sorted(expected.items()):
            if rel not in on_disk:
                report.missing.append(rel)
            elif on_disk[rel] != entry.size:
                report.size_mismatch.append(rel)
            else:
                present.append(expected[rel])
        if full:
            bar = ByteBar(sum(f.size for f in present), "verify", self.progress)
            try:
                for entry in present:
                    digest = hashlib.sha256()
                    for chunk in self.storage.iter_bytes(f"{path}/{entry.path}"):
                        digest.update(chunk)
                        bar.update(len(chunk))
                    if digest.hexdigest() != entry.sha256:
                        report.hash_mismatch.append(entry.path)
            finally:
                bar.close()
        return report

    # --- update ------------------------------------------------------------------------------
    def update(
        self,
        fetch: Fetcher,
        to_revision: str = "main",
        *,
        switch: bool = True,
        full_verify: bool = True,
        allow_patterns: Sequence[str] = ALLOW_PATTERNS,
    ) -> UpdateResult:
        """Fetch only what changed since ``CURRENT``, verify, publish, then switch ``CURRENT``.

        Files of the new revision whose sha256 and size match a file of the current revision
        are reused (hard link or in-Volume copy); the rest are fetched into a staging folder and
        hashed against the upstream listing. The new revision is published beside the current
        one, verified whole (every byte with ``full_verify``, sizes otherwise), and only then
        does ``CURRENT`` move. A failure or crash at any step leaves ``CURRENT`` and its files
        untouched.

        Args:
            fetch: The upstream; one with ``list_files``/``fetch_files`` (both shipped fetchers)
                allows incremental updates, any other is fetched in full.
            to_revision: Branch, tag or commit to update to.
            switch: Move ``CURRENT`` (``False``: only publish the new revision).
            full_verify: Hash every byte of the published revision before switching.
            allow_patterns: The repo's files to fetch (default: what a FluxPipeline needs; an
                adapter names one file and a ``variant``).

        Returns:
            What was fetched, reused and switched.

        Raises:
            VerificationError: Fetched or published files do not match upstream.
            Exception: Whatever the fetcher raises; nothing is switched.
        """
        commit = to_revision if is_commit(to_revision) else fetch.resolve(self.repo_id, to_revision)
        previous = self.current()
        dest = self.revision_path(commit)
        existing = self._info(commit, previous)
        if existing.complete and self.verify(commit, full=full_verify).ok:
            self._finish(to_revision, commit, switch)
            return UpdateResult(self.repo_id, previous, commit, 0, 0, 0, 0, switch, False)
        if self.storage.list_files(dest):  # a broken or half-published copy: start over
            self.storage.retire(dest)
        old = self._reusable_manifest(previous)
        staging = self.storage.new_staging(
            layout.staging_name(self.repo_id, commit, section=self.section, variant=self.variant)
        )
        try:
            listing = self._listing(fetch, commit, allow_patterns)
            reuse, reused = self._plan_reuse(listing, old, previous)
            to_fetch = [f for f in listing if f.path not in reuse] if listing else None
            if to_fetch is None:
                fetch.fetch(self.repo_id, commit, staging, allow_patterns)
            else:
                fetch_files: Any = fetch.fetch_files  # type: ignore[attr-defined]
                fetch_files(self.repo_id, commit, [f.path for f in to_fetch], staging)
            self._stage("fetched")
            fetched = self._check_staged(staging, to_fetch)
            if not fetched and not reused:
                raise RevisionNotFoundError(
                    f"{self.repo_id}@{commit} has no files matching {list(allow_patterns)}"
                )
            files = tuple(sorted([*fetched, *reused], key=lambda f: f.path))
            write_manifest(staging, Manifest(self.repo_id, commit, files))
            self._stage("manifest")
            if not self._publish(staging, dest, reuse, commit):
                self._finish(to_revision, commit, switch)
                return UpdateResult(self.repo_id, previous, commit, 0, 0, 0, 0, switch, False)
        except BaseException:
            self.storage.discard_staging(staging)
            raise
        self._committed()
        self._stage("published")
        report = self.verify(commit, full=full_verify)
        if not report.ok:
            self.storage.retire(dest)
            self._committed()
            raise VerificationError(f"new revision failed verification: {report.summary()}")
        self._stage("verified")
        self._finish(to_revision, commit, switch)
        self._stage("switched")
        return UpdateResult(
            self.repo_id,
            previous,
            commit,
            len(fetched),
            sum(f.size for f in fetched),
            len(reused),
            sum(f.size for f in reused),
            switch,
        )

    def _publish(self, staging: Path, dest: str, reuse: dict[str, str], commit: str) -> bool:
        """Publish the staged copy; ``False`` when another writer published a good copy first.

        Modal Volumes have no locks, so two containers can fetch the same commit at once: the
        first rename wins, and the second verifies that copy (every byte) and drops its own.
        A copy that fails verification is moved aside and ours published in its place.
        """
        try:
            self.storage.publish(staging, dest, reuse)
            return True
        except FileExistsError:
            pass
        if self._info(commit, None).complete and self.verify(commit, full=True).ok:
            logger.info("%s was published by another writer first; using it", dest)
            self.storage.discard_staging(staging)
            return False
        self.storage.retire(dest)
        self.storage.publish(staging, dest, reuse)
        return True

    def known_commit(self, revision: str) -> str | None:
        """The commit ``revision`` names without any network: itself, or its stored ref."""
        if is_commit(revision):
            return revision
        try:
            text = self.storage.read_bytes(layout.ref_path(self.repo_id, revision, self.section))
        except FileNotFoundError:
            return None
        return text.decode().strip() or None

    def write_ref(self, branch: str, commit: str) -> None:
        """Record that ``branch`` resolved to ``commit`` (nothing for a commit itself)."""
        if branch != commit and not is_commit(branch):
            self.storage.write_bytes(
                layout.ref_path(self.repo_id, branch, self.section), commit.encode()
            )

    def _finish(self, branch: str, commit: str, switch: bool) -> None:
        self.write_ref(branch, commit)
        if switch:
            self.set_current(commit)
        else:
            self._committed()

    def _reusable_manifest(self, previous: str | None) -> Manifest | None:
        if previous is None:
            return None
        try:
            return self.manifest(previous)
        except RevisionNotFoundError:
            return None

    def _listing(
        self, fetch: Fetcher, commit: str, allow_patterns: Sequence[str]
    ) -> list[RemoteFile] | None:
        list_files = getattr(fetch, "list_files", None)
        if list_files is None or not hasattr(fetch, "fetch_files"):
            return None
        listing: list[RemoteFile] = list_files(self.repo_id, commit, allow_patterns)
        for f in listing:
            _check_rel(f.path)
        return listing

    def _plan_reuse(
        self, listing: list[RemoteFile] | None, old: Manifest | None, previous: str | None
    ) -> tuple[dict[str, str], list[FileEntry]]:
        if not listing or old is None or previous is None:
            return {}, []
        by_hash = {(f.sha256, f.size): f.path for f in old.files}
        base = self.revision_path(previous)
        reuse: dict[str, str] = {}
        entries: list[FileEntry] = []
        for f in listing:
            src = by_hash.get((f.sha256, f.size)) if f.sha256 else None
            if src is not None:
                reuse[f.path] = f"{base}/{src}"
                entries.append(FileEntry(f.path, f.size, f.sha256 or ""))
        return reuse, entries

    def _check_staged(self, staging: Path, expected: list[RemoteFile] | None) -> list[FileEntry]:
        on_disk = sorted(
            p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()
        )
        want = {f.path: f for f in expected} if expected is not None else None
        if want is not None:
            missing = sorted(set(want) - set(on_disk))
            extra = sorted(set(on_disk) - set(want))
            if missing or extra:
                raise VerificationError(f"fetched files differ: missing {missing}, extra {extra}")
        bar = ByteBar(sum((staging / p).stat().st_size for p in on_disk), "hash", self.progress)
        entries: list[FileEntry] = []
        try:
            for rel in on_disk:
                entry = FileEntry(rel, (staging / rel).stat().st_size, hash_file(staging / rel))
                bar.update(entry.size)
                remote = want.get(rel) if want is not None else None
                if remote is not None and (
                    remote.size != entry.size or (remote.sha256 and remote.sha256 != entry.sha256)
                ):
                    raise VerificationError(f"fetched {rel} does not match upstream size/sha256")
                entries.append(entry)
        finally:
            bar.close()
        return entries

    # --- backup and restore ------------------------------------------------------------------
    def backup(self, revision: str, archive: Path) -> Path:
        """Write a revision and its manifest to one tar archive (manifest first).

        Every file is hashed while it is archived; a mismatch with the manifest aborts the
        backup, so an archive only ever holds a verified revision.

        Args:
            revision: A commit, branch ref or ``"current"``.
            archive: The ``.tar`` file to write (uncompressed: safetensors do not compress).

        Returns:
            The archive path.

        Raises:
            RevisionNotFoundError: The revision is not here.
            VerificationError: A file does not match the manifest; no archive is left.
        """
        commit = self.resolve(revision)
        manifest = self.manifest(commit)
        base = self.revision_path(commit)
        archive = Path(archive)
        tmp = archive.with_name(f".{archive.name}.partial")
        bar = ByteBar(manifest.total_bytes, "backup", self.progress)
        try:
            with tarfile.open(tmp, "w") as tar:
                data = json.dumps(manifest.to_dict(), indent=1, sort_keys=True).encode()
                self._add(tar, f"{commit}/{MANIFEST_NAME}", len(data), iter([data]), None)
                for entry in manifest.files:
                    chunks = self.storage.iter_bytes(f"{base}/{entry.path}")
                    self._add(tar, f"{commit}/{entry.path}", entry.size, chunks, entry, bar.update)
            tmp.replace(archive)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            bar.close()
        return archive

    @staticmethod
    def _add(
        tar: tarfile.TarFile,
        name: str,
        size: int,
        chunks: Iterator[bytes],
        entry: FileEntry | None,
        progress: Callable[[int], None] = lambda n: None,
    ) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = int(time.time())
        reader = _HashingReader(chunks, progress)
        try:
            tar.addfile(info, reader)
        except (OSError, tarfile.TarError) as exc:  # file shorter than the manifest says
            raise VerificationError(f"{name}: {exc}") from exc
        if entry is not None and (reader.digest.hexdigest() != entry.sha256 or reader.read(1)):
            raise VerificationError(f"{name} does not match its manifest; backup aborted")

    def restore(self, archive: Path, *, switch: bool = False) -> str:
        """Restore a revision from a :meth:`backup` archive, verifying every file.

        Args:
            archive: The archive.
            switch: Also point ``CURRENT`` at the restored revision.

        Returns:
            The restored commit.

        Raises:
            ArchiveError: Truncated, damaged, tampered with, or for another repo; nothing is
                published and ``CURRENT`` is untouched.
        """
        staging = self.storage.new_staging()
        try:
            manifest = self._extract(Path(archive), staging)
            write_manifest(staging, manifest)
            self._stage("manifest")
            commit = manifest.revision
            dest = self.revision_path(commit)
            if self._info(commit, None).complete and self.verify(commit).ok:
                self.storage.discard_staging(staging)
            else:
                if self.storage.list_files(dest):
                    self.storage.remove_tree(dest)
                self.storage.publish(staging, dest, {})
        except BaseException:
            self.storage.discard_staging(staging)
            raise
        self._committed()
        self._stage("published")
        if switch:
            self.set_current(commit)
        return commit

    def _extract(self, archive: Path, staging: Path) -> Manifest:
        try:
            with tarfile.open(archive, "r:*") as tar:
                return self._extract_members(tar, staging, archive)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, ArchiveError):
                raise
            raise ArchiveError(f"{archive} is damaged or truncated: {exc}") from exc

    def _extract_members(self, tar: tarfile.TarFile, staging: Path, archive: Path) -> Manifest:
        first = tar.next()
        if first is None or not first.isfile() or not first.name.endswith("/" + MANIFEST_NAME):
            raise ArchiveError(f"{archive} is not a Jaguar backup (no manifest first)")
        manifest = Manifest.from_dict(json.loads(self._read_member(tar, first)))
        prefix = f"{safe_name(manifest.revision, 'revision')}/"
        if first.name != prefix + MANIFEST_NAME:
            raise ArchiveError(f"{archive}: manifest is for another revision")
        if manifest.repo_id != self.repo_id:
            raise ArchiveError(f"{archive} holds {manifest.repo_id}, not {self.repo_id}")
        expected = {_check_rel(f.path): f for f in manifest.files}
        seen: set[str] = set()
        bar = ByteBar(manifest.total_bytes, "restore", self.progress)
        try:
            while (member := tar.next()) is not None:
                rel = member.name[len(prefix) :] if member.name.startswith(prefix) else ""
                if member.isdir() and rel in ("", *self._parents(expected)):
                    continue
                if not member.isfile() or rel not in expected or rel in seen:
                    raise ArchiveError(f"{archive}: unexpected member {member.name!r}")
                self._write_member(tar, member, staging / rel, expected[rel], bar.update)
                seen.add(rel)
        finally:
            bar.close()
        missing = sorted(set(expected) - seen)
        if missing:
            raise ArchiveError(f"{archive} is truncated: {len(missing)} file(s) missing {missing}")
        return manifest

    @staticmethod
    def _parents(expected: Iterable[str]) -> set[str]:
        return {p.rsplit("/", 1)[0] for p in expected if "/" in p}

    @staticmethod
    def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
        fh = tar.extractfile(member)
        if fh is None:
            raise ArchiveError(f"cannot read {member.name}")
        return fh.read()

    @staticmethod
    def _write_member(
        tar: tarfile.TarFile,
        member: tarfile.TarInfo,
        target: Path,
        entry: FileEntry,
        progress: Callable[[int], None],
    ) -> None:
        src: IO[bytes] | None = tar.extractfile(member)
        if src is None:
            raise ArchiveError(f"cannot read {member.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with target.open("wb") as out:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                progress(len(chunk))
        if member.size != entry.size or digest.hexdigest() != entry.sha256:
            raise ArchiveError(f"{member.name} does not match the archived manifest")

    # --- prune -------------------------------------------------------------------------------
    def prune(self, keep: Sequence[str] = (), *, dry_run: bool = False) -> list[str]:
        """Remove every revision but ``CURRENT`` and ``keep``; refs to removed ones go too.

        Args:
            keep: Revisions to keep as well (commits, short commits or branch refs).
            dry_run: Only report what would be removed.

        Returns:
            The commits removed (or that would be).

        Raises:
            InvalidRequestError: ``CURRENT`` is not set (nothing is removed then).
            RevisionNotFoundError: A ``keep`` entry matches nothing here.
        """
        current = self.current()
        if current is None:
            raise InvalidRequestError(
                f"no current revision set for {self.repo_id}; refusing to prune"
            )
        kept = {current, *(self.resolve(k) for k in keep)}
        doomed = [n for n in self._revision_names() if n not in kept]
        if dry_run or not doomed:
            return doomed
        for name in doomed:
            self.storage.remove_tree(self.revision_path(name))
        for ref, _size in self.storage.list_files(
            layout.refs_dir(self.repo_id, self.section)
        ).items():
            path = f"{layout.refs_dir(self.repo_id, self.section)}/{ref}"
            if self.storage.read_bytes(path).decode().strip() in doomed:
                self.storage.remove_tree(path)
        self._committed()
        return doomed
