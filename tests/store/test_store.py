"""The Volume weight store: verify-or-download, crash safety, races, allow-patterns, repair.

A fake hub (``LocalFolderFetcher`` over a temp folder) stands in for the Hugging Face Hub; crashes
are real (a forked process calls ``os._exit`` at each stage), so no cleanup code gets to run.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jaguar_sdk.weights import ALLOW_PATTERNS, LocalFolderFetcher, WeightStore
from jaguar_sdk.weights._locking import LockFile
from jaguar_sdk.weights.fetchers import FetchInterruptedError
from jaguar_sdk.weights.manifest import MANIFEST_NAME

REPO = "acme/tiny-jaguar"
SHA = "0123456789abcdef0123456789abcdef01234567"
MODEL_FILES = {
    "model_index.json": b'{"_class_name": "FluxPipeline"}',
    "scheduler/scheduler_config.json": b"{}",
    "text_encoder/config.json": b"{}",
    "text_encoder/model.safetensors": os.urandom(4096),
    "text_encoder_2/model.safetensors": os.urandom(4096),
    "tokenizer/tokenizer.json": b"{}",
    "tokenizer_2/tokenizer.json": b"{}",
    "transformer/diffusion_pytorch_model.safetensors": os.urandom(16384),
    "vae/diffusion_pytorch_model.safetensors": os.urandom(4096),
}
DECOYS = {
    "shuttle-jaguar.safetensors": b"x" * 50_000,  # the 23.8 GB single-file checkpoint
    "fp8/shuttle-jaguar-fp8.safetensors": b"y" * 1000,
    "shuttle-jaguar-fp8.safetensors": b"y" * 1000,
    "gguf/shuttle-jaguar-Q4_K_S.gguf": b"z" * 1000,
    "README.md": b"# card",
}

fork = multiprocessing.get_context("fork")


def make_hub(root: Path, files: dict[str, bytes] | None = None) -> Path:
    """A fake hub: ``root/<repo>/<sha>/...`` plus ``refs/main``."""
    base = root / REPO
    for rel, data in {**(files or MODEL_FILES), **DECOYS}.items():
        target = base / SHA / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text(SHA)
    return root


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    return make_hub(tmp_path / "hub")


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return tmp_path / "volume"


def quick_store(root: Path, **kw: float) -> WeightStore:
    kw.setdefault("poll_s", 0.05)
    kw.setdefault("lock_wait_s", 10.0)
    return WeightStore(root, **kw)  # type: ignore[arg-type]


class CrashAt(WeightStore):
    """A store whose process dies (no cleanup at all) when it reaches ``stage``."""

    def __init__(self, root: Path, stage: str) -> None:
        super().__init__(root, poll_s=0.05)
        self.crash_stage = stage

    def _stage(self, name: str) -> None:
        if name == self.crash_stage:
            os._exit(17)


def run_in_child(target: Callable[[], None]) -> int:
    proc = fork.Process(target=target)
    proc.start()
    proc.join(60)
    assert proc.exitcode is not None
    return proc.exitcode


def published(volume: Path) -> list[Path]:
    models = volume / "models" / "acme--tiny-jaguar"
    if not models.is_dir():
        return []
    return sorted(p for p in models.iterdir() if p.name != "refs")


# --- basics ----------------------------------------------------------------------------------
def test_first_ensure_downloads_then_volume(hub: Path, volume: Path) -> None:
    fetcher = LocalFolderFetcher(hub)
    commits: list[int] = []
    store = WeightStore(volume, commit=lambda: commits.append(1))
    assert store.find(REPO, "main") is None

    first = store.ensure(REPO, "main", fetch=fetcher)
    assert first.source == "huggingface"
    assert first.revision == SHA
    assert first.path == volume / "models" / "acme--tiny-jaguar" / SHA
    assert (first.path / MANIFEST_NAME).is_file()
    assert commits, "the store must commit the volume after publishing"
    assert {f.path for f in first.manifest.files} == set(MODEL_FILES)
    assert store.verify(first.path).ok
    assert list((volume / ".staging").iterdir()) == []

    resolves_at_download = fetcher.resolves
    again = WeightStore(volume).ensure(REPO, "main", fetch=fetcher)
    assert again.source == "volume"
    assert again.path == first.path
    assert fetcher.fetches == 1
    assert fetcher.resolves == resolves_at_download  # later starts use the stored ref
    assert store.find(REPO, "main") == first.path
    assert store.find(REPO, SHA) == first.path


def test_allow_patterns_exclude_single_file_fp8_and_gguf(hub: Path, volume: Path) -> None:
    got = WeightStore(volume).ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
    on_disk = {p.relative_to(got.path).as_posix() for p in got.path.rglob("*") if p.is_file()}
    assert on_disk == set(MODEL_FILES) | {MANIFEST_NAME}
    for decoy in DECOYS:
        assert decoy not in on_disk
    assert "model_index.json" in ALLOW_PATTERNS
    assert not any(p.endswith(".gguf") or "fp8" in p for p in ALLOW_PATTERNS)


def test_verify_reports_missing_extra_size_and_hash(hub: Path, volume: Path) -> None:
    store = WeightStore(volume)
    path = store.ensure(REPO, "main", fetch=LocalFolderFetcher(hub)).path
    (path / "tokenizer/tokenizer.json").unlink()
    (path / "extra.txt").write_text("hi")
    (path / "scheduler/scheduler_config.json").write_bytes(b"{ }")
    blob = path / "vae/diffusion_pytorch_model.safetensors"
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))

    quick = store.verify(path, full=False)
    assert quick.missing == ["tokenizer/tokenizer.json"]
    assert quick.extra == ["extra.txt"]
    assert quick.size_mismatch == ["scheduler/scheduler_config.json"]
    assert quick.hash_mismatch == []
    full = store.verify(path, full=True)
    assert full.hash_mismatch == ["vae/diffusion_pytorch_model.safetensors"]
    assert not full.ok
    assert "hash mismatch" in full.summary()
    assert store.find(REPO, "main") is None  # missing file: not a usable copy


def test_a_staging_folder_or_a_manifestless_folder_is_never_a_model(
    hub: Path, volume: Path
) -> None:
    store = WeightStore(volume)
    # A folder at the final place without a manifest (e.g. the seed's old layout).
    fake = store.revision_dir(REPO, SHA)
    fake.mkdir(parents=True)
    (fake / "model_index.json").write_text("{}")
    assert store.find(REPO, SHA) is None
    got = store.ensure(REPO, SHA, fetch=LocalFolderFetcher(hub))
    assert got.source == "huggingface"
    assert store.verify(got.path).ok
    assert len(list((volume / ".trash").iterdir())) == 1  # the broken folder, moved aside


# --- crashes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("after_files", [0, 1, 4])
def test_crash_mid_download_leaves_nothing_and_next_ensure_completes(
    hub: Path, volume: Path, after_files: int
) -> None:
    def child() -> None:
        def die(n: int) -> None:
            if n > after_files:
                os._exit(17)

        WeightStore(volume).ensure(REPO, "main", fetch=LocalFolderFetcher(hub, on_file=die))

    assert run_in_child(child) == 17
    store = quick_store(volume)
    assert store.find(REPO, "main") is None
    assert published(volume) == []
    assert len(list((volume / ".staging").iterdir())) == 1  # the dead download, ignored

    got = store.ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
    assert got.source == "huggingface"
    assert store.verify(got.path, full=True).ok
    assert published(volume) == [got.path]


@pytest.mark.parametrize("stage", ["fetched", "manifest"])
def test_crash_before_publish_leaves_nothing(hub: Path, volume: Path, stage: str) -> None:
    assert (
        run_in_child(
            lambda: CrashAt(volume, stage).ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
        )
        == 17
    )
    store = quick_store(volume)
    assert store.find(REPO, "main") is None
    assert store.find(REPO, SHA) is None
    assert published(volume) == []
    got = store.ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
    assert got.source == "huggingface"
    assert store.verify(got.path, full=True).ok


@pytest.mark.parametrize("stage", ["published", "verified"])
def test_crash_after_publish_leaves_a_complete_copy(hub: Path, volume: Path, stage: str) -> None:
    assert (
        run_in_child(
            lambda: CrashAt(volume, stage).ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
        )
        == 17
    )
    store = quick_store(volume)
    fetcher = LocalFolderFetcher(hub)
    got = store.ensure(REPO, "main", fetch=fetcher)
    assert got.source == "volume"  # the published copy is complete; no second download
    assert fetcher.fetches == 0
    assert store.verify(got.path, full=True).ok


def test_interrupted_fetch_cleans_its_staging(hub: Path, volume: Path) -> None:
    store = WeightStore(volume)
    with pytest.raises(FetchInterruptedError):
        store.ensure(REPO, "main", fetch=LocalFolderFetcher(hub, fail_after_files=2))
    assert list((volume / ".staging").iterdir()) == []
    assert store.find(REPO, "main") is None
    assert not any((volume / ".locks").iterdir())


def test_stale_staging_is_cleaned_but_fresh_staging_is_kept(hub: Path, volume: Path) -> None:
    old = volume / ".staging" / "old-crash"
    (old / "transformer").mkdir(parents=True)
    (old / "transformer" / "part").write_bytes(b"partial")
    past = time.time() - 3600
    for p in (old / "transformer" / "part", old / "transformer", old):
        os.utime(p, (past, past))
    fresh = volume / ".staging" / "someone-downloading"
    fresh.mkdir()
    (fresh / "part").write_bytes(b"x")

    WeightStore(volume, staging_max_age_s=600).ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
    remaining = {p.name for p in (volume / ".staging").iterdir()}
    assert remaining == {"someone-downloading"}


# --- races -----------------------------------------------------------------------------------
class SlowFetcher(LocalFolderFetcher):
    def __init__(self, root: Path, delay_s: float) -> None:
        super().__init__(root, on_file=lambda n: time.sleep(delay_s))
        self._count_lock = threading.Lock()


def test_two_threads_one_download_one_copy(hub: Path, volume: Path) -> None:
    fetcher = SlowFetcher(hub, 0.02)
    results: list[object] = []

    def go() -> None:
        results.append(quick_store(volume).ensure(REPO, "main", fetch=fetcher))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    paths = {r.path for r in results}  # type: ignore[attr-defined]
    assert len(results) == 2 and len(paths) == 1
    assert sorted(r.source for r in results) == ["huggingface", "volume"]  # type: ignore[attr-defined]
    assert fetcher.fetches == 1  # the lock saved the second download
    assert published(volume) == list(paths)


def test_race_without_the_lock_still_ends_with_one_good_copy(hub: Path, volume: Path) -> None:
    """Modal Volumes have no real locks: both containers may download. Correctness holds."""
    barrier = threading.Barrier(2)
    fetcher = LocalFolderFetcher(hub, on_file=lambda n: barrier.wait(30) if n == 1 else None)
    results: list[object] = []
    orig = LockFile.try_acquire
    LockFile.try_acquire = lambda self: True  # type: ignore[method-assign]  # both "win"
    try:

        def go() -> None:
            results.append(quick_store(volume).ensure(REPO, "main", fetch=fetcher))

        threads = [threading.Thread(target=go) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        LockFile.try_acquire = orig  # type: ignore[method-assign]
    assert fetcher.fetches == 2
    assert len(results) == 2
    assert len({r.path for r in results}) == 1  # type: ignore[attr-defined]
    assert len(published(volume)) == 1
    assert WeightStore(volume).verify(published(volume)[0], full=True).ok
    assert list((volume / ".staging").iterdir()) == []


def test_a_rename_that_loses_the_race_uses_the_other_copy(
    hub: Path, volume: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other writer's rename lands between our "does it exist?" check and our rename.

    rename(2) onto a non-empty folder fails with ENOTEMPTY; that is the lost race, not a crash
    (seen under load in test_race_without_the_lock_still_ends_with_one_good_copy).
    """
    from jaguar_sdk.weights import storage as storage_module

    real_rename = os.rename
    other_copy: list[Path] = []

    def rename_after_the_other_writer(src: str | Path, dst: str | Path) -> None:
        if Path(dst).parent.parent.name == "models" and not other_copy:
            other = Path(src).with_name(Path(src).name + "-other")
            shutil.copytree(src, other)
            real_rename(other, dst)  # the other container publishes first
            other_copy.append(Path(dst))
        real_rename(src, dst)

    monkeypatch.setattr(storage_module.os, "rename", rename_after_the_other_writer)
    result = quick_store(volume).ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
    assert other_copy, "the interleaving did not happen"
    assert result.path == other_copy[0]  # type: ignore[attr-defined]
    assert published(volume) == other_copy
    assert WeightStore(volume).verify(other_copy[0], full=True).ok
    assert list((volume / ".staging").iterdir()) == []


def test_two_processes_end_with_exactly_one_published_copy(hub: Path, volume: Path) -> None:
    out = fork.Queue()

    def child() -> None:
        got = quick_store(volume).ensure(REPO, "main", fetch=SlowFetcher(hub, 0.01))
        out.put((str(got.path), got.source))

    procs = [fork.Process(target=child) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    answers = [out.get(timeout=5) for _ in procs]
    assert len({path for path, _ in answers}) == 1
    assert "huggingface" in {source for _, source in answers}
    assert len(published(volume)) == 1
    assert WeightStore(volume).verify(published(volume)[0], full=True).ok


def test_a_dead_processes_lock_does_not_block(hub: Path, volume: Path) -> None:
    def child() -> None:
        lock = LockFile(volume / ".locks" / f"acme--tiny-jaguar--{SHA}.lock")
        assert lock.try_acquire()
        os._exit(0)  # dies holding the lock

    run_in_child(child)
    assert any((volume / ".locks").iterdir())
    started = time.monotonic()
    got = quick_store(volume, lock_wait_s=30).ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
    assert got.source == "huggingface"
    assert time.monotonic() - started < 10


def test_an_old_lock_is_stale(tmp_path: Path) -> None:
    lock = LockFile(tmp_path / "x.lock", stale_after_s=60)
    assert lock.try_acquire()
    other = LockFile(tmp_path / "x.lock", stale_after_s=60)
    assert not other.try_acquire()
    past = time.time() - 120
    os.utime(lock.path, (past, past))
    assert other.is_stale()
    assert other.try_acquire()
    lock.release()  # no longer ours: must not remove the new owner's lock
    assert other.path.exists()
    other.release()
    assert not other.path.exists()


# --- forced reload ---------------------------------------------------------------------------
def test_force_with_intact_copy_verifies_without_download(hub: Path, volume: Path) -> None:
    fetcher = LocalFolderFetcher(hub)
    store = WeightStore(volume)
    first = store.ensure(REPO, "main", fetch=fetcher)
    again = store.ensure(REPO, "main", fetch=fetcher, force=True)
    assert again.source == "volume"
    assert again.full_verified
    assert again.path == first.path
    assert fetcher.fetches == 1


def test_force_repairs_a_flipped_byte_without_deleting_open_files(hub: Path, volume: Path) -> None:
    fetcher = LocalFolderFetcher(hub)
    store = WeightStore(volume)
    path = store.ensure(REPO, "main", fetch=fetcher).path
    blob = path / "transformer/diffusion_pytorch_model.safetensors"
    data = bytearray(blob.read_bytes())
    data[10] ^= 0x01
    blob.write_bytes(bytes(data))
    assert store.find(REPO, "main") == path  # sizes still match: the quick check passes
    with blob.open("rb") as reader:  # a serving container reading the old copy
        repaired = store.ensure(REPO, "main", fetch=fetcher, force=True)
        assert reader.read() == bytes(data)  # the open file still reads (moved, not deleted)
    assert repaired.source == "huggingface"
    assert repaired.path == path
    assert fetcher.fetches == 2
    assert store.verify(path, full=True).ok
    trash = list((volume / ".trash").iterdir())
    assert len(trash) == 1 and (trash[0] / MANIFEST_NAME).exists()
    assert store.clean_trash(max_age_s=3600) == []  # recent trash is kept
    assert len(store.clean_trash(max_age_s=0)) == 1


def test_reload_failure_is_tolerated(hub: Path, volume: Path) -> None:
    def busy() -> None:
        raise RuntimeError("volume busy: open files")

    got = WeightStore(volume, reload=busy).ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
    assert got.source == "huggingface"


def test_unsafe_names_are_refused(volume: Path, hub: Path) -> None:
    store = WeightStore(volume)
    with pytest.raises(ValueError, match="unsupported"):
        store.ensure("../../etc", "main", fetch=LocalFolderFetcher(hub))
    with pytest.raises(ValueError, match="unsupported"):
        store.find(REPO, "../x")


# --- with the real tiny model and engine -----------------------------------------------------
def test_engine_loads_the_published_tiny_model_and_not_a_partial_one(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from jaguar_sdk._results import ModelRef
    from jaguar_sdk.engine import Engine

    files = {
        p.relative_to(tiny_model_dir).as_posix(): p.read_bytes()
        for p in tiny_model_dir.rglob("*")
        if p.is_file()
    }
    hub = make_hub(tmp_path / "hub", files)
    volume = tmp_path / "volume"
    assert (
        run_in_child(
            lambda: CrashAt(volume, "manifest").ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
        )
        == 17
    )
    store = WeightStore(volume)
    assert store.find(REPO, "main") is None
    got = store.ensure(REPO, "main", fetch=LocalFolderFetcher(hub))
    engine = Engine.load_to_cpu(
        got.path, model_ref=ModelRef(id=REPO, revision=SHA, source="huggingface")
    )
    try:
        assert engine.info().model.revision == SHA
    finally:
        engine.close()
