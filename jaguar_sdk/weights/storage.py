"""The storage seam under model versions: a local folder, or a Modal Volume seen from outside.

:class:`~jaguar_sdk.weights.versions.ModelVersions` does every version operation (status, check,
update, verify, backup, restore, prune) through the small :class:`Storage` protocol, so the same
code runs on a local folder (local serving, tests, the Volume *mounted* inside a container) and
on a Modal Volume reached through ``modal.Volume.from_name(...)`` from a laptop.

Paths given to a storage are POSIX paths relative to its root (``models/org--name/<commit>``).
Files are staged in a local folder (:meth:`Storage.new_staging`) and published with
:meth:`Storage.publish`, which writes the manifest last: a folder without a valid manifest is
never a model, so a crash mid-publish leaves nothing that is read as one.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from .._extras import import_extra
from . import layout
from .manifest import MANIFEST_NAME

__all__ = ["LocalStorage", "ModalVolumeStorage", "Storage"]

_CHUNK = 8 * 1024 * 1024


class Storage(Protocol):
    """Where model revisions live. All paths are relative to the storage root, ``/``-separated."""

    description: str

    def list_dirs(self, path: str) -> list[str]:
        """Names of the folders directly under ``path`` (empty when it does not exist)."""
        ...

    def list_files(self, path: str) -> dict[str, int]:
        """Every file under ``path`` (recursively), relative to it, with its size."""
        ...

    def read_bytes(self, path: str) -> bytes:
        """A whole (small) file. Raises ``FileNotFoundError`` when missing."""
        ...

    def iter_bytes(self, path: str) -> Iterator[bytes]:
        """A file in chunks. Raises ``FileNotFoundError`` when missing."""
        ...

    def write_bytes(self, path: str, data: bytes) -> None:
        """Replace a small file atomically (readers see the old or the new content)."""
        ...

    def new_staging(self, name: str | None = None) -> Path:
        """A fresh local folder to download into before :meth:`publish`.

        Args:
            name: Its layout path (:func:`~jaguar_sdk.weights.layout.staging_name`), where the
                storage stages under its root; a fresh unique one when omitted.
        """
        ...

    def discard_staging(self, staging: Path) -> None:
        """Remove a staging folder that will not be published."""
        ...

    def publish(self, staging: Path, dest: str, reuse: Mapping[str, str]) -> None:
        """Make ``dest`` hold the staged files plus ``reuse`` (``{rel: existing path}``).

        The staged manifest is written last. Raises ``FileExistsError`` when ``dest`` exists.
        The staging folder is consumed.
        """
        ...

    def remove_tree(self, path: str) -> None:
        """Delete a folder and everything under it (missing is fine)."""
        ...

    def retire(self, path: str) -> None:
        """Take a folder out of the layout at once without deleting its files where readers may
        still hold them (a serving container); missing is fine."""
        ...


class LocalStorage:
    """A plain folder: the Volume mount inside a container, or any local directory.

    Staging happens under ``<root>/.staging`` (same filesystem), reused files are hard-linked
    (copied where links are unsupported) and publishing is one atomic ``os.rename``.

    Args:
        root: The storage root (created when missing).

    Example:
        >>> storage = LocalStorage(Path("/weights"))  # doctest: +SKIP
        >>> storage.list_dirs("models")
        ['shuttleai--shuttle-jaguar']
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = f"folder {self.root}"

    def _path(self, path: str) -> Path:
        return self.root / path

    def list_dirs(self, path: str) -> list[str]:
        """Names of the folders directly under ``path``."""
        base = self._path(path)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def list_files(self, path: str) -> dict[str, int]:
        """Every file under ``path``, relative to it, with its size."""
        base = self._path(path)
        out: dict[str, int] = {}
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                full = Path(dirpath, name)
                with contextlib.suppress(FileNotFoundError):
                    out[full.relative_to(base).as_posix()] = full.stat().st_size
        return out

    def read_bytes(self, path: str) -> bytes:
        """A whole file."""
        return self._path(path).read_bytes()

    def iter_bytes(self, path: str) -> Iterator[bytes]:
        """A file in 8 MiB chunks."""
        with self._path(path).open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk

    def write_bytes(self, path: str, data: bytes) -> None:
        """Temporary file, fsync, ``os.replace``."""
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def new_staging(self, name: str | None = None) -> Path:
        """``<root>/<name>``, by default ``<root>/.staging/versions-<unique>``."""
        staging = self.root / (name or f"{layout.STAGING}/versions-{uuid.uuid4().hex[:16]}")
        staging.mkdir(parents=True)
        return staging

    def discard_staging(self, staging: Path) -> None:
        """Delete the staging folder."""
        shutil.rmtree(staging, ignore_errors=True)

    def publish(self, staging: Path, dest: str, reuse: Mapping[str, str]) -> None:
        """Link reused files into ``staging``, then rename it to ``dest`` (atomic)."""
        for rel, src in reuse.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self._path(src), target)
            except OSError:  # no hard links here (another device, Volume v1): copy
                shutil.copyfile(self._path(src), target)
        final = self._path(dest)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # rename(2) would replace an existing *empty* folder
            raise FileExistsError(f"{dest} already exists")
        try:
            os.rename(staging, final)
        except OSError as exc:
            # Another writer renamed its copy in between the check and ours: rename(2) onto a
            # non-empty folder fails with ENOTEMPTY (or EEXIST, which POSIX also allows).
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise FileExistsError(f"{dest} already exists") from None
            raise

    def remove_tree(self, path: str) -> None:
        """Rename aside first (the folder disappears at once), then delete."""
        target = self._path(path)
        if target.is_file():
            target.unlink()
            return
        trash = self._move_aside(path)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def retire(self, path: str) -> None:
        """Rename into ``.trash/`` (one atomic rename; nothing deleted)."""
        self._move_aside(path)

    def _move_aside(self, path: str) -> Path | None:
        target = self._path(path)
        trash = self._path(layout.trash_name(path))
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(target, trash)
        except FileNotFoundError:
            return None
        return trash


def _entry_kind(entry: Any) -> str:
    kind = getattr(entry, "type", None)
    return str(getattr(kind, "name", kind)).upper()


class ModalVolumeStorage:
    """A Modal Volume reached from outside Modal through ``modal.Volume``'s file API.

    Uses only ``listdir``, ``read_file``, ``batch_upload``, ``copy_files`` and ``remove_file``.
    Staging is a local temporary folder; :meth:`publish` copies reused files inside the Volume
    (no bytes travel), uploads the fetched ones, then uploads the manifest on its own, last.
    ``batch_upload`` commits when its block ends, so no explicit commit is needed.

    Args:
        volume_name: The Volume's name (looked up lazily; ``modal`` is imported only here).
        volume: An object with the same methods (tests pass a fake); overrides ``volume_name``.

    Example:
        >>> storage = ModalVolumeStorage("jaguar-model-weights")  # doctest: +SKIP
        >>> storage.list_dirs("models")
        ['shuttleai--shuttle-jaguar']
    """

    def __init__(self, volume_name: str | None = None, *, volume: Any = None) -> None:
        if volume is None:
            if not volume_name:
                raise ValueError("give a volume name or a volume object")
            modal = import_extra("modal", what="Reaching a Modal Volume")
            volume = modal.Volume.from_name(volume_name)
        self.volume = volume
        self.description = f"Modal Volume {volume_name or '(given)'}"

    def _entries(self, path: str, recursive: bool) -> list[Any]:
        try:
            return list(self.volume.listdir(path, recursive=recursive))
        except FileNotFoundError:
            return []
        except Exception as exc:  # modal raises its NotFoundError for a missing path
            if type(exc).__name__ == "NotFoundError":
                return []
            raise

    def list_dirs(self, path: str) -> list[str]:
        """Names of the folders directly under ``path``."""
        names = [
            e.path.rstrip("/").rsplit("/", 1)[-1]
            for e in self._entries(path, False)
            if _entry_kind(e) == "DIRECTORY"
        ]
        return sorted(names)

    def list_files(self, path: str) -> dict[str, int]:
        """Every file under ``path``, relative to it, with its size."""
        prefix = path.strip("/") + "/"
        out: dict[str, int] = {}
        for e in self._entries(path, True):
            if _entry_kind(e) != "FILE":
                continue
            rel = e.path.lstrip("/")
            out[rel[len(prefix) :] if rel.startswith(prefix) else rel] = int(e.size)
        return out

    def read_bytes(self, path: str) -> bytes:
        """A whole file."""
        return b"".join(self.iter_bytes(path))

    def iter_bytes(self, path: str) -> Iterator[bytes]:
        """A file in the chunks the Volume API streams."""
        yield from self.volume.read_file(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        """One ``put_file`` with ``force=True`` (the Volume swaps it in when the batch commits)."""
        with self.volume.batch_upload(force=True) as batch:
            batch.put_file(io.BytesIO(data), "/" + path)

    def new_staging(self, name: str | None = None) -> Path:
        """A local temporary folder (``name`` is for storages that stage in place)."""
        return Path(tempfile.mkdtemp(prefix="jaguar-staging-"))

    def discard_staging(self, staging: Path) -> None:
        """Delete the local temporary folder."""
        shutil.rmtree(staging, ignore_errors=True)

    def publish(self, staging: Path, dest: str, reuse: Mapping[str, str]) -> None:
        """Copy reused files within the Volume, upload staged ones, then the manifest."""
        if self._entries(dest, False):
            raise FileExistsError(f"{dest} already exists on the Volume")
        try:
            for rel, src in reuse.items():
                self.volume.copy_files(["/" + src], f"/{dest}/{rel}")
            with self.volume.batch_upload(force=True) as batch:
                for path in sorted(p for p in staging.rglob("*") if p.is_file()):
                    rel = path.relative_to(staging).as_posix()
                    if rel != MANIFEST_NAME:
                        batch.put_file(str(path), f"/{dest}/{rel}")
            with self.volume.batch_upload(force=True) as batch:
                batch.put_file(str(staging / MANIFEST_NAME), f"/{dest}/{MANIFEST_NAME}")
        finally:
            self.discard_staging(staging)

    def remove_tree(self, path: str) -> None:
        """``remove_file(path, recursive=True)``; missing is fine."""
        try:
            self.volume.remove_file("/" + path, recursive=True)
        except FileNotFoundError:
            return
        except Exception as exc:
            if type(exc).__name__ != "NotFoundError":
                raise

    def retire(self, path: str) -> None:
        """The Volume's file API has no rename: as :meth:`remove_tree` (containers that serve a
        revision load it into memory, so the files are not read after start-up)."""
        self.remove_tree(path)
