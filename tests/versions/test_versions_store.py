"""Revisions on a local folder: CURRENT, check, incremental update, crash safety, verify,
backup/restore, prune. A LocalFolderFetcher over a fake Hub stands in for the Hugging Face Hub."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

import pytest

from jaguar_sdk._exceptions import InvalidRequestError
from jaguar_sdk.weights import LocalFolderFetcher, LocalStorage, ModelVersions, WeightStore
from jaguar_sdk.weights.versions import ArchiveError, RevisionNotFoundError, VerificationError
from tests.versions.versions_fixtures import CHANGED, REPO, SHA_A, SHA_B, set_main


def _versions(volume: Path, **kwargs: object) -> ModelVersions:
    return ModelVersions(LocalStorage(volume), REPO, **kwargs)  # type: ignore[arg-type]


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _at_a(hub: Path, volume: Path) -> ModelVersions:
    versions = _versions(volume)
    versions.update(LocalFolderFetcher(hub), "main")
    assert versions.current() == SHA_A
    return versions


def test_first_update_fetches_everything_and_sets_current(hub: Path, volume: Path) -> None:
    fetcher = LocalFolderFetcher(hub)
    result = _versions(volume).update(fetcher, "main")
    assert (result.previous, result.revision, result.switched) == (None, SHA_A, True)
    assert result.reused_files == 0
    assert fetcher.bytes_fetched == result.fetched_bytes > 0
    assert (volume / "models" / "acme--tiny-jaguar" / "CURRENT").read_text() == SHA_A
    assert (volume / "models" / "acme--tiny-jaguar" / "refs" / "main").read_text() == SHA_A


def test_check_reports_the_newer_revision(hub: Path, volume: Path) -> None:
    versions = _at_a(hub, volume)
    assert not versions.check(LocalFolderFetcher(hub)).update_available
    set_main(hub, SHA_B)
    check = versions.check(LocalFolderFetcher(hub))
    assert (check.current, check.latest, check.update_available) == (SHA_A, SHA_B, True)


def test_incremental_update_fetches_only_changed_files(
    hub: Path, volume: Path, tmp_path: Path
) -> None:
    versions = _at_a(hub, volume)
    set_main(hub, SHA_B)
    fetcher = LocalFolderFetcher(hub)
    result = versions.update(fetcher, "main")
    assert result.fetched_files == fetcher.files_fetched == len(CHANGED)
    changed_bytes = sum((hub / REPO / SHA_B / rel).stat().st_size for rel in CHANGED)
    assert result.fetched_bytes == fetcher.bytes_fetched == changed_bytes
    assert result.reused_files > 0
    assert versions.current() == SHA_B
    new = volume / "models" / "acme--tiny-jaguar" / SHA_B
    assert _tree(hub / REPO / SHA_B) == {
        k: v for k, v in _tree(new).items() if k != "jaguar-manifest.json"
    }
    assert versions.verify("current").ok

    full = LocalFolderFetcher(hub)
    _versions(tmp_path / "fresh").update(full, "main")
    print(
        f"\nbytes fetched: incremental {fetcher.bytes_fetched} vs full {full.bytes_fetched} "
        f"({fetcher.files_fetched} vs {full.files_fetched} files)"
    )
    assert fetcher.bytes_fetched < full.bytes_fetched


@pytest.mark.parametrize("stage", ["fetched", "manifest", "published", "verified"])
def test_interrupted_update_leaves_the_old_revision_current_and_intact(
    hub: Path, volume: Path, stage: str
) -> None:
    _at_a(hub, volume)
    old = volume / "models" / "acme--tiny-jaguar" / SHA_A
    before = _tree(old)
    set_main(hub, SHA_B)

    def crash(name: str) -> None:
        if name == stage:
            raise KeyboardInterrupt(f"killed at {name}")

    with pytest.raises(KeyboardInterrupt):
        _versions(volume, on_stage=crash).update(LocalFolderFetcher(hub), "main")
    versions = _versions(volume)
    assert versions.current() == SHA_A
    assert _tree(old) == before
    assert versions.verify(SHA_A).ok
    assert not any((volume / ".staging").iterdir())
    # the next update completes
    assert versions.update(LocalFolderFetcher(hub), "main").revision == SHA_B
    assert versions.current() == SHA_B


def test_interrupted_fetch_leaves_the_old_revision_current(hub: Path, volume: Path) -> None:
    _at_a(hub, volume)
    set_main(hub, SHA_B)
    with pytest.raises(Exception, match="interrupted"):
        _versions(volume).update(LocalFolderFetcher(hub, fail_after_files=1), "main")
    assert _versions(volume).current() == SHA_A
    assert not (volume / "models" / "acme--tiny-jaguar" / SHA_B).exists()


def test_upstream_mismatch_is_refused_before_switching(hub: Path, volume: Path) -> None:
    versions = _at_a(hub, volume)
    set_main(hub, SHA_B)
    fetcher = LocalFolderFetcher(hub)
    listing = fetcher.list_files(REPO, SHA_B, ["*"])
    # the upstream file changes between listing and download: hashes no longer agree
    fetcher.list_files = lambda *a: listing  # type: ignore[method-assign]
    (hub / REPO / SHA_B / CHANGED[0]).write_bytes(b"tampered")
    with pytest.raises(VerificationError):
        versions.update(fetcher, "main")
    assert versions.current() == SHA_A


def test_verify_catches_flipped_byte_missing_and_extra(hub: Path, volume: Path) -> None:
    versions = _at_a(hub, volume)
    folder = volume / "models" / "acme--tiny-jaguar" / SHA_A
    weights = folder / CHANGED[0]
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    (folder / "vae" / "config.json").unlink()
    (folder / "stray.bin").write_bytes(b"x")
    report = versions.verify("current")
    assert report.hash_mismatch == [CHANGED[0]]
    assert report.missing == ["vae/config.json"]
    assert report.extra == ["stray.bin"]
    assert not report.ok
    quick = versions.verify("current", full=False)
    assert quick.hash_mismatch == [] and quick.missing == ["vae/config.json"]


def test_backup_restore_round_trips_byte_for_byte(hub: Path, volume: Path, tmp_path: Path) -> None:
    versions = _at_a(hub, volume)
    archive = versions.backup("current", tmp_path / "a.tar")
    other = _versions(tmp_path / "other")
    assert other.restore(archive, switch=True) == SHA_A
    assert other.current() == SHA_A
    src = volume / "models" / "acme--tiny-jaguar" / SHA_A
    dst = tmp_path / "other" / "models" / "acme--tiny-jaguar" / SHA_A
    assert _tree(src) == _tree(dst)
    assert other.verify("current").ok


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_archive_is_refused(hub: Path, volume: Path, tmp_path: Path, cut: float) -> None:
    archive = _at_a(hub, volume).backup(SHA_A, tmp_path / "a.tar")
    data = archive.read_bytes()
    archive.write_bytes(data[: int(len(data) * cut)])
    other = _versions(tmp_path / "other")
    with pytest.raises(ArchiveError, match=r"damaged|truncated"):
        other.restore(archive)
    assert other.list_revisions() == []
    assert not any((tmp_path / "other" / ".staging").iterdir())


def test_corrupted_archive_byte_is_refused(hub: Path, volume: Path, tmp_path: Path) -> None:
    archive = _at_a(hub, volume).backup(SHA_A, tmp_path / "a.tar")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a weight file's content
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        _versions(tmp_path / "other").restore(archive)


def test_backup_of_a_corrupt_revision_is_refused(hub: Path, volume: Path, tmp_path: Path) -> None:
    versions = _at_a(hub, volume)
    weights = volume / "models" / "acme--tiny-jaguar" / SHA_A / CHANGED[0]
    data = bytearray(weights.read_bytes())
    data[10] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(VerificationError):
        versions.backup(SHA_A, tmp_path / "a.tar")
    assert not (tmp_path / "a.tar").exists()


def test_prune_keeps_current_and_keep_list(hub: Path, volume: Path) -> None:
    versions = _at_a(hub, volume)
    with pytest.raises(InvalidRequestError):
        _versions(volume / "empty").prune()
    set_main(hub, SHA_B)
    versions.update(LocalFolderFetcher(hub), "main")
    assert versions.prune(keep=[SHA_A[:8]]) == []
    assert versions.prune(dry_run=True) == [SHA_A]
    assert {r.revision for r in versions.list_revisions()} == {SHA_A, SHA_B}
    assert versions.prune() == [SHA_A]
    infos = versions.list_revisions()
    assert [(r.revision, r.current, r.complete) for r in infos] == [(SHA_B, True, True)]
    assert versions.verify("current").ok  # hard links: the pruned files were shared
    with pytest.raises(RevisionNotFoundError):
        versions.prune(keep=["nope"])


def test_store_ensure_current_follows_the_pointer(hub: Path, volume: Path) -> None:
    store = WeightStore(volume)
    first = store.ensure_current(REPO, "main", fetch=LocalFolderFetcher(hub), progress=False)
    assert first.revision == SHA_A
    versions = store.versions(REPO)
    set_main(hub, SHA_B)
    versions.update(LocalFolderFetcher(hub), "main")
    assert store.current(REPO) == SHA_B
    fetcher = LocalFolderFetcher(hub)
    got = store.ensure_current(REPO, "main", fetch=fetcher, progress=False)
    assert (got.revision, got.source, fetcher.fetches) == (SHA_B, "volume", 0)
    pinned = store.ensure_current(REPO, SHA_A, fetch=fetcher, progress=False)
    assert pinned.revision == SHA_A  # an explicit commit wins over CURRENT


def test_update_without_listing_falls_back_to_full_fetch(hub: Path, volume: Path) -> None:
    class PlainFetcher:
        def __init__(self) -> None:
            self.inner = LocalFolderFetcher(hub)

        def resolve(self, repo_id: str, revision: str) -> str:
            return self.inner.resolve(repo_id, revision)

        def fetch(self, repo_id: str, revision: str, dest_dir: Path, allow: object) -> str:
            return self.inner.fetch(repo_id, revision, dest_dir, allow)  # type: ignore[arg-type]

    result = _versions(volume).update(PlainFetcher(), "main")
    assert result.revision == SHA_A and result.fetched_files > 0
    folder = volume / "models" / "acme--tiny-jaguar" / SHA_A
    assert filecmp.cmp(folder / CHANGED[0], hub / REPO / SHA_A / CHANGED[0], shallow=False)
    assert os.listdir(volume / ".staging") == []
    shutil.rmtree(volume)
