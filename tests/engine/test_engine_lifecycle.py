"""Loading paths (CPU first, then move), info(), warm-up, close()."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("diffusers")

from jaguar_sdk import GenerateRequest, ModelRef, NotReadyError
from jaguar_sdk.engine import Engine
from jaguar_sdk.server._service import EngineLike, JaguarService

REQUEST = GenerateRequest(prompt="a cat", width=64, height=64, steps=1, seed=4)


def test_load_to_cpu_then_move(tiny_model_dir: Path) -> None:
    engine = Engine.load_to_cpu(tiny_model_dir, dtype="float32")
    assert engine.device == "cpu" and "to_device_s" not in engine.load_timings
    assert engine.to_device("cpu") is engine
    result = engine.generate(REQUEST, request_id="r")
    assert result.images[0].width == 64
    info = engine.info()
    assert info.device == "cpu" and info.dtype == "float32" and info.loaded
    assert info.load_timings["load_s"] > 0 and info.load_timings["to_device_s"] >= 0
    assert info.model.id == tiny_model_dir.name and info.version
    engine.close()


def test_info_of_the_shared_engine(tiny_engine: Engine) -> None:
    info = tiny_engine.info()
    assert info.device == "cpu" and info.dtype == "float32" and info.loaded
    assert set(info.load_timings) >= {"load_s", "to_device_s", "warmup_s"}
    assert all(value >= 0 for value in info.load_timings.values())
    assert info.extra["torch"]


def test_model_ref_override(tiny_model_dir: Path) -> None:
    ref = ModelRef(id="shuttleai/shuttle-jaguar", revision="abc123", source="volume")
    engine = Engine.load(tiny_model_dir, device="cpu", model_ref=ref)
    assert engine.info().model == ref
    assert engine.generate(REQUEST, request_id="r").model == ref
    engine.close()


def test_close_is_idempotent_and_refuses_work(tiny_model_dir: Path) -> None:
    engine = Engine.load(tiny_model_dir, device="cpu")
    engine.close()
    engine.close()
    assert engine.pipeline is None and engine.info().loaded is False
    with pytest.raises(NotReadyError):
        engine.generate(REQUEST, request_id="r")


def test_satisfies_the_service_protocol(tiny_engine: Engine) -> None:
    engine: EngineLike = tiny_engine
    service = JaguarService(lambda: engine)
    service.start()
    result = service.generate({"prompt": "a cat", "width": 64, "height": 64, "steps": 1})
    assert result.images[0].format == "jpeg"
    assert service.info().model == tiny_engine.model_ref


def test_load_tiny_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAGUAR_CACHE_DIR", str(tmp_path))
    engine = Engine.load("tiny", device="cpu")
    assert engine.model_ref.id == "tiny" and engine.model_ref.revision
    assert engine.generate(REQUEST, request_id="r").model.id == "tiny"
    engine.close()
