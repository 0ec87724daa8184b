"""The manifest of a published weight folder: which files, how big, which sha256.

A manifest (``jaguar-manifest.json``) is the last file written into a staging folder before it
is published, so a folder with a valid manifest was completely downloaded. ``verify`` compares a
folder with its manifest: quickly (file list and sizes) or fully (sha256 of every byte).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_SCHEMA",
    "FileEntry",
    "Manifest",
    "ManifestError",
    "VerifyReport",
    "build_manifest",
    "hash_file",
    "read_manifest",
    "verify_folder",
    "write_manifest",
]

MANIFEST_NAME = "jaguar-manifest.json"
MANIFEST_SCHEMA = 1
_CHUNK = 8 * 1024 * 1024

#: Called with the number of bytes just processed (drives a progress bar).
ByteProgress = Callable[[int], None]


class ManifestError(ValueError):
    """The manifest is missing, unreadable or of an unknown schema."""


@dataclass(frozen=True)
class FileEntry:
    """One file of a weight folder.

    Attributes:
        path: Path relative to the folder, with ``/`` separators.
        size: Size in bytes.
        sha256: Hex digest of the content.
    """

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What a complete weight folder holds.

    Attributes:
        repo_id: The Hub repo id, e.g. ``"shuttleai/shuttle-jaguar"``.
        revision: The resolved commit (the folder's name).
        files: Every file but the manifest itself, sorted by path.
        created_at: Unix time the manifest was written.
        schema: Manifest schema version.
    """

    repo_id: str
    revision: str
    files: tuple[FileEntry, ...]
    created_at: float = field(default_factory=time.time)
    schema: int = MANIFEST_SCHEMA

    @property
    def total_bytes(self) -> int:
        """Sum of the file sizes."""
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "schema": self.schema,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "created_at": self.created_at,
            "total_bytes": self.total_bytes,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Parse the JSON form.

        Raises:
            ManifestError: On an unknown schema or a malformed document.
        """
        if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
            got = data.get("schema") if isinstance(data, dict) else None
            raise ManifestError(f"unknown manifest schema {got!r} (expected {MANIFEST_SCHEMA})")
        try:
            files = tuple(
                FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in data["files"]
            )
            return cls(
                repo_id=str(data["repo_id"]),
                revision=str(data["revision"]),
                files=files,
                created_at=float(data["created_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"malformed manifest: {exc}") from exc


@dataclass
class VerifyReport:
    """The differences between a folder and its manifest.

    Attributes:
        path: The folder checked.
        full: Whether content hashes were checked (not only sizes).
        missing: Files in the manifest but not on disk.
        extra: Files on disk but not in the manifest (reported, not fatal).
        size_mismatch: Files whose size differs.
        hash_mismatch: Files whose sha256 differs (only when ``full``).
        error: Why the manifest itself could not be used, where it could not.
    """

    path: Path
    full: bool
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    size_mismatch: list[str] = field(default_factory=list)
    hash_mismatch: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the folder is a complete, intact copy (extra files are tolerated)."""
        return self.error is None and not (self.missing or self.size_mismatch or self.hash_mismatch)

    def summary(self) -> str:
        """One line for logs and error messages."""
        if self.ok:
            return f"{self.path}: ok ({'sha256' if self.full else 'sizes'} checked)"
        parts = [f"{self.path}:"]
        if self.error:
            parts.append(self.error)
        for name, items in (
            ("missing", self.missing),
            ("size mismatch", self.size_mismatch),
            ("hash mismatch", self.hash_mismatch),
        ):
            if items:
                shown = ", ".join(items[:5]) + (" ..." if len(items) > 5 else "")
                parts.append(f"{len(items)} {name} ({shown})")
        return " ".join(parts)


def hash_file(path: Path, progress: ByteProgress | None = None) -> str:
    """sha256 of a file, read in 8 MiB chunks.

    Args:
        path: The file.
        progress: Called with each chunk's size.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def _walk(folder: Path) -> list[str]:
    out: list[str] = []
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            rel = Path(dirpath, name).relative_to(folder).as_posix()
            if rel != MANIFEST_NAME:
                out.append(rel)
    return sorted(out)


def _hash_many(
    folder: Path, paths: Iterable[str], progress: ByteProgress | None, workers: int
) -> dict[str, str]:
    paths = list(paths)
    # hashlib releases the GIL on large updates, so threads hash several shards at once.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        digests = pool.map(lambda p: hash_file(folder / p, progress), paths)
        return dict(zip(paths, digests, strict=True))


def _workers() -> int:
    return min(8, os.cpu_count() or 1)


def build_manifest(
    folder: Path, repo_id: str, revision: str, *, progress: ByteProgress | None = None
) -> Manifest:
    """Hash every file of ``folder`` into a manifest (not written).

    Args:
        folder: The downloaded folder.
        repo_id: The Hub repo id.
        revision: The resolved commit.
        progress: Called with byte counts while hashing.

    Returns:
        The manifest.
    """
    paths = _walk(folder)
    digests = _hash_many(folder, paths, progress, _workers())
    files = tuple(FileEntry(p, (folder / p).stat().st_size, digests[p]) for p in paths)
    return Manifest(repo_id=repo_id, revision=revision, files=files)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write the manifest atomically (temporary file, fsync, rename).

    Args:
        folder: The folder it describes.
        manifest: What to write.
    """
    target = folder / MANIFEST_NAME
    tmp = folder / f".{MANIFEST_NAME}.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(manifest.to_dict(), fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def read_manifest(folder: Path) -> Manifest:
    """Read a folder's manifest.

    Raises:
        ManifestError: Missing, unreadable or of an unknown schema.
    """
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"no {MANIFEST_NAME}") from exc
    except (OSError, ValueError) as exc:
        raise ManifestError(f"unreadable {MANIFEST_NAME}: {exc}") from exc
    return Manifest.from_dict(data)


def verify_folder(
    folder: Path, *, full: bool = False, progress: ByteProgress | None = None
) -> VerifyReport:
    """Compare a folder with its manifest.

    Args:
        folder: The folder.
        full: Also compare sha256 of every file (reads every byte); otherwise sizes only.
        progress: Called with byte counts while hashing.

    Returns:
        The report; ``report.ok`` says whether the folder can be served.
    """
    report = VerifyReport(path=folder, full=full)
    try:
        manifest = read_manifest(folder)
    except ManifestError as exc:
        report.error = str(exc)
        return report
    on_disk = set(_walk(folder))
    expected = {f.path: f for f in manifest.files}
    report.extra = sorted(on_disk - set(expected))
    present: list[str] = []
    for rel, entry in sorted(expected.items()):
        try:
            size = (folder / rel).stat().st_size
        except FileNotFoundError:
            report.missing.append(rel)
            continue
        if size != entry.size:
            report.size_mismatch.append(rel)
        else:
            present.append(rel)
    if full and present:
        digests = _hash_many(folder, present, progress, _workers())
        report.hash_mismatch = sorted(p for p in present if digests[p] != expected[p].sha256)
    return report
