"""resolve_model: the cached, atomic tiny build and local folders; clear errors otherwise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

from jaguar_sdk import ConfigurationError
from jaguar_sdk.engine import Engine, _models, resolve_model, tiny


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JAGUAR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def build_counter(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path) -> list[Path]:
    """Count builds; each 'build' copies the session's tiny model (same bytes, no torch work)."""
    calls: list[Path] = []

    def fake_build(directory: str | Path, *, seed: int = 0) -> Path:
        calls.append(Path(directory))
        shutil.copytree(tiny_model_dir, directory, dirs_exist_ok=True)
        return Path(directory)

    monkeypatch.setattr(tiny, "build_tiny_model", fake_build)
    return calls


def test_tiny_builds_once_then_reuses(cache: Path) -> None:
    folder, ref = resolve_model("tiny")
    assert folder == cache / "models" / f"tiny-v{tiny.TINY_MODEL_VERSION}"
    assert (folder / "model_index.json").is_file()
    assert (folder / _models.TINY_MARKER).is_file()
    assert ref.id == "tiny" and ref.source == "local"
    assert ref.revision is not None and len(ref.revision) == 12
    mtime = (folder / "model_index.json").stat().st_mtime_ns
    again, ref2 = resolve_model("tiny")
    assert again == folder and ref2 == ref
    assert (folder / "model_index.json").stat().st_mtime_ns == mtime
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp-")]


def test_second_resolve_does_not_rebuild(cache: Path, build_counter: list[Path]) -> None:
    resolve_model("tiny")
    resolve_model("tiny")
    assert len(build_counter) == 1
    assert build_counter[0].name.startswith(".tmp-")  # built beside the target, then renamed


def test_half_built_leftover_is_not_a_model(cache: Path, build_counter: list[Path]) -> None:
    target = _models.tiny_model_path()
    leftover = target.parent / f".tmp-{target.name}-999-deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "model_index.json").write_text("{}")  # half-written: no completion marker
    folder, _ = resolve_model("tiny")
    assert folder == target and len(build_counter) == 1
    assert (folder / _models.TINY_MARKER).is_file()


def test_target_without_marker_is_rebuilt(cache: Path, build_counter: list[Path]) -> None:
    target = _models.tiny_model_path()
    target.mkdir(parents=True)
    (target / "model_index.json").write_text("{}")  # e.g. copied by hand, incomplete
    folder, ref = resolve_model("tiny")
    assert len(build_counter) == 1 and ref.revision
    assert (folder / _models.TINY_MARKER).is_file()
    assert (folder / "transformer").is_dir()


def test_same_revision_as_content(cache: Path, tiny_model_dir: Path) -> None:
    _, ref = resolve_model("tiny")
    assert ref.revision == _models.folder_revision(tiny_model_dir)


def test_local_folder(tiny_model_dir: Path) -> None:
    folder, ref = resolve_model(tiny_model_dir)
    assert folder == tiny_model_dir.absolute()
    assert ref.id == tiny_model_dir.name and ref.revision is None and ref.source == "local"
    assert resolve_model(str(tiny_model_dir))[0] == folder


def test_local_folder_uses_recorded_hub_id(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "FluxPipeline", "_name_or_path": "shuttleai/shuttle-jaguar"})
    )
    assert resolve_model(tmp_path)[1].id == "shuttleai/shuttle-jaguar"


@pytest.mark.parametrize("kind", ["missing", "file", "no_index", "bad_json"])
def test_bad_paths_are_configuration_errors(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "model"
    if kind == "file":
        target.write_text("x")
    elif kind in ("no_index", "bad_json"):
        target.mkdir()
        if kind == "bad_json":
            (target / "model_index.json").write_text("{not json")
    with pytest.raises(ConfigurationError) as info:
        resolve_model(target)
    assert "model_index.json" in str(info.value)
    assert "'tiny'" in str(info.value)


def test_unknown_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="expected 'tiny' or a folder"):
        Engine.load("no-such-model", device="cpu")


def test_unloadable_folder_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "FluxPipeline", "transformer": ["diffusers", "Nope"]})
    )
    with pytest.raises(ConfigurationError, match="diffusers layout"):
        Engine.load(tmp_path, device="cpu")
