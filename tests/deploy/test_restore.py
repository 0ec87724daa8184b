"""A memory snapshot freezes the revision it loaded: after the restore, CURRENT is read again.

The Volume is the stand-in of ``tests/support/modal_standin.py``: another container's writes
(``jaguar model update`` setting CURRENT to a new revision) become visible here only after it
commits and this container reloads, as on Modal. The hooks are called one at a time, with
``MODAL_TASK_ID`` rewritten in between as Modal's restore does
(``_runtime/task_lifecycle_manager.py`` ``memory_restore``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import deploy.app as deploy_app
from jaguar_sdk import GenerationResult, ModelInfo
from jaguar_sdk.weights import LocalFolderFetcher
from jaguar_sdk.weights.storage import LocalStorage
from jaguar_sdk.weights.versions import ModelVersions
from tests.deploy.fixtures import (
    deployment_env,
    hook,
    payload,
    user_class,
)
from tests.support.modal_standin import StandInVolume
from tests.versions.versions_fixtures import REPO, SHA_A, SHA_B, set_main

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")


@pytest.fixture
def shared(
    tmp_path: Path,
    hub: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[StandInVolume]:
    """Revision A on the Volume (weights step done and committed); the hub's main is A."""
    volume = StandInVolume(tmp_path / "mount", tmp_path / "committed")
    monkeypatch.setattr(deploy_app, "volume", volume)
    with deployment_env(volume.mount, hub, monkeypatch):
        deploy_app.download_weights.local()
        assert volume.commits >= 1
        yield volume


def _update_elsewhere(volume: StandInVolume, hub: Path, where: Path) -> None:
    """Another container runs `jaguar model update` to B and commits."""
    set_main(hub, SHA_B)
    other = volume.other_view(where)
    ModelVersions(LocalStorage(other), REPO).update(LocalFolderFetcher(hub))
    volume.commit_other(other)


def _info(obj: Any) -> ModelInfo:
    return ModelInfo.model_validate(hook(obj, "info")())


def test_a_restored_container_serves_the_revision_current_names(
    shared: StandInVolume,
    hub: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    obj = user_class()()
    monkeypatch.setenv("MODAL_TASK_ID", "ta-snapshotter")
    hook(obj, "load_to_cpu")()  # snap=True: A, then the snapshot is taken
    _update_elsewhere(shared, hub, tmp_path / "other")
    assert not (shared.mount / "models" / "acme--tiny-jaguar" / SHA_B).exists()  # not reloaded
    monkeypatch.setenv("MODAL_TASK_ID", "ta-restored")  # a later container, restored
    hook(obj, "to_gpu")()

    info = _info(obj)
    assert info.model.revision == SHA_B
    assert info.extra["revision_current"] == SHA_B
    assert info.extra["weights_from"] == "volume"  # rebuilt from the Volume after the restore
    assert info.extra["restored"] is True
    assert "load_s" not in info.load_timings  # the snapshot's load was another container's
    assert "load_s" in info.extra["snapshot_timings"]
    assert {"reread_s", "after_restore_s", "to_device_s", "warmup_s"} <= set(info.load_timings)
    result = GenerationResult.model_validate(hook(obj, "generate")(payload(seed=1)))
    assert result.model.revision == SHA_B


def test_a_restore_without_an_update_serves_the_snapshot(
    shared: StandInVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = user_class()()
    monkeypatch.setenv("MODAL_TASK_ID", "ta-snapshotter")
    hook(obj, "load_to_cpu")()
    reloads = shared.reloads
    monkeypatch.setenv("MODAL_TASK_ID", "ta-restored")
    hook(obj, "to_gpu")()
    assert shared.reloads == reloads + 1  # CURRENT was read again from the Volume
    info = _info(obj)
    assert (info.model.revision, info.extra["weights_from"]) == (SHA_A, "snapshot")
    assert info.extra["restored"] is True


def test_the_snapshotting_container_reports_the_volume(
    shared: StandInVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = user_class()()
    monkeypatch.setenv("MODAL_TASK_ID", "ta-same")
    hook(obj, "load_to_cpu")()
    hook(obj, "to_gpu")()
    info = _info(obj)
    assert (info.extra["weights_from"], info.extra["restored"]) == ("volume", False)
    assert "load_s" in info.load_timings  # this container loaded the weights itself
