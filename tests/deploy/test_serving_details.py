"""Smaller defects of the GPU container, each with its real condition modelled.

- The commit that keeps the torch.compile caches goes through the store's safe commit: a Volume
  commit can fail (``volume.py`` ``commit`` turns a server conflict into ``RuntimeError``), and
  that must not fail the container's start.
- With compile on, the warm-up runs at the serving shape (1024x1024, 4 steps): torch.compile
  compiles again at each new input shape, so a 64x64 warm-up leaves that to the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import deploy.app as deploy_app
from jaguar_sdk import GenerationResult, HealthStatus, ModelInfo
from jaguar_sdk.engine import Engine
from tests.deploy.fixtures import new_container, payload
from tests.support.modal_standin import StandInVolume

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")


@pytest.fixture
def shapes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """``serving_shape`` of every warm-up, in order."""
    seen: list[bool] = []
    real_warmup = Engine.warmup

    def warmup(self: Engine, *, serving_shape: bool = False) -> None:
        seen.append(serving_shape)
        real_warmup(self, serving_shape=serving_shape)

    monkeypatch.setattr(Engine, "warmup", warmup)
    return seen


def test_compile_warms_up_at_the_serving_shape_and_survives_a_failed_commit(
    modal_env: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shapes: list[bool]
) -> None:
    volume = StandInVolume(modal_env["volume"], tmp_path / "committed")
    volume.commit()  # the weights step's files are committed
    volume.fail_commit = RuntimeError("Volume commit failed: conflict")
    monkeypatch.setattr(deploy_app, "volume", volume)
    monkeypatch.setenv("JAGUAR_COMPILE", "true")
    model = new_container()
    health = HealthStatus.model_validate(model.health.local())
    assert health.ready  # the failed commit was logged, not raised
    assert shapes == [True]
    info = ModelInfo.model_validate(model.info.local())
    assert info.extra["compile"] is True and "warmup_s" in info.load_timings
    assert GenerationResult.model_validate(model.generate.local(payload(seed=1))).seed == 1


def test_without_compile_the_warm_up_stays_cheap(
    modal_env: dict[str, Any], shapes: list[bool]
) -> None:
    assert HealthStatus.model_validate(new_container().health.local()).ready
    assert shapes == [False]
