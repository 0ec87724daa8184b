"""ModalVolumeStorage against a fake volume implementing modal's Volume file API over a folder,
so the same ModelVersions code path is exercised as on a real Modal Volume."""

from __future__ import annotations

import contextlib
import enum
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jaguar_sdk.weights import LocalFolderFetcher, ModalVolumeStorage, ModelVersions
from tests.versions.versions_fixtures import CHANGED, REPO, SHA_A, SHA_B, set_main


class FileEntryType(enum.IntEnum):
    FILE = 1
    DIRECTORY = 2


@dataclass
class FileEntry:
    path: str
    type: FileEntryType
    size: int


class FakeBatch:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.puts: list[tuple[object, str]] = []

    def put_file(self, local: object, remote: str) -> None:
        self.puts.append((local, remote))


class FakeVolume:
    """listdir/read_file/batch_upload/copy_files/remove_file over a folder (paths from /)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploaded_bytes = 0
        self.copied = 0

    def _p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def listdir(self, path: str, recursive: bool = False) -> list[FileEntry]:
        base = self._p(path)
        if not base.exists():
            raise FileNotFoundError(path)
        items = base.rglob("*") if recursive else base.iterdir()
        return [
            FileEntry(
                p.relative_to(self.root).as_posix(),
                FileEntryType.FILE if p.is_file() else FileEntryType.DIRECTORY,
                p.stat().st_size if p.is_file() else 0,
            )
            for p in items
        ]

    def read_file(self, path: str) -> Iterator[bytes]:
        target = self._p(path)
        if not target.is_file():
            raise FileNotFoundError(path)
        yield target.read_bytes()

    @contextlib.contextmanager
    def batch_upload(self, force: bool = False) -> Iterator[FakeBatch]:
        batch = FakeBatch(self.root)
        yield batch  # applied only when the block ends, like a Volume commit
        for local, remote in batch.puts:
            data = Path(local).read_bytes() if isinstance(local, str) else local.read()  # type: ignore[attr-defined]
            target = self._p(remote)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            self.uploaded_bytes += len(data)

    def copy_files(self, src_paths: list[str], dst_path: str, recursive: bool = False) -> None:
        for src in src_paths:
            target = self._p(dst_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._p(src), target)
            self.copied += 1

    def remove_file(self, path: str, recursive: bool = False) -> None:
        target = self._p(path)
        if not target.exists():
            raise FileNotFoundError(path)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()


def test_modal_volume_storage_runs_the_same_lifecycle(hub: Path, tmp_path: Path) -> None:
    fake = FakeVolume(tmp_path / "vol")
    fake.root.mkdir()
    versions = ModelVersions(ModalVolumeStorage(volume=fake), REPO)
    assert versions.update(LocalFolderFetcher(hub), "main").revision == SHA_A
    assert versions.current() == SHA_A
    set_main(hub, SHA_B)
    assert versions.check(LocalFolderFetcher(hub)).update_available
    before = fake.uploaded_bytes
    result = versions.update(LocalFolderFetcher(hub), "main")
    assert fake.copied == result.reused_files > 0  # reused inside the Volume, no upload
    changed = sum((hub / REPO / SHA_B / rel).stat().st_size for rel in CHANGED)
    assert changed <= fake.uploaded_bytes - before < changed + 20_000  # + manifest, CURRENT
    assert [r.revision for r in versions.list_revisions() if r.current] == [SHA_B]
    assert versions.verify("current").ok
    archive = versions.backup("current", tmp_path / "b.tar")
    assert versions.prune() == [SHA_A]
    assert not (fake.root / "models" / "acme--tiny-jaguar" / SHA_A).exists()
    other = FakeVolume(tmp_path / "vol2")
    other.root.mkdir()
    restored = ModelVersions(ModalVolumeStorage(volume=other), REPO)
    assert restored.restore(archive, switch=True) == SHA_B
    assert restored.verify("current").ok
