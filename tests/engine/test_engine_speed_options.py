"""GPU speed options on a CPU machine: the pinned-copy move, fp8 checks, compile caches."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("diffusers")

import torch

from jaguar_sdk import ConfigurationError
from jaguar_sdk.engine import Engine, _loading, configure_compile_cache


class _FakePipe:
    """Just enough of a FluxPipeline for move_pipeline / apply_gpu_options."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.transformer = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
        self.transformer.register_buffer("scale", torch.ones(3))
        tied = torch.nn.Linear(4, 4, bias=False)
        self.text_encoder = torch.nn.ModuleDict({"a": tied, "b": torch.nn.Linear(4, 4)})
        self.text_encoder["b"].weight = tied.weight  # a tied parameter: counted once
        self.moved_to: list[str] = []
        self.calls: list[str] = []

    @property
    def components(self) -> dict[str, Any]:
        return {"transformer": self.transformer, "text_encoder": self.text_encoder, "tok": "x"}

    def to(self, device: str) -> _FakePipe:
        self.moved_to.append(device)
        return self

    def fuse_qkv_projections(self) -> None:
        self.calls.append("fuse")


def _weight_bytes(pipe: _FakePipe) -> int:
    seen: dict[int, int] = {}
    for module in (pipe.transformer, pipe.text_encoder):
        for tensor in [*module.parameters(), *module.buffers()]:
            seen[id(tensor)] = tensor.numel() * tensor.element_size()
    return sum(seen.values())


def test_move_on_cpu_is_a_plain_to_and_moves_nothing() -> None:
    pipe = _FakePipe()
    assert _loading.move_pipeline(pipe, "cpu") == {"bytes": 0, "pinned": False}
    assert pipe.moved_to == ["cpu"]


def test_move_to_cuda_copies_every_tensor_once_through_pinned_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe = _FakePipe()
    copied: list[tuple[int, str]] = []
    synced: list[Any] = []

    def fake_copy(tensor: torch.Tensor, target: torch.device) -> torch.Tensor:
        copied.append((tensor.numel(), str(target)))
        return torch.full_like(tensor, 7.0)  # stands in for the GPU copy (set_data-compatible)

    monkeypatch.setattr(_loading, "_pinned_copy", fake_copy)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    moved = _loading.move_pipeline(pipe, "cuda")
    assert moved == {"bytes": _weight_bytes(pipe), "pinned": True}
    # Linear(4,4): 2, LayerNorm: 2, buffer: 1, tied Linear: 1 (shared weight), Linear b bias: 1
    assert len(copied) == 7 and all(target == "cuda" for _, target in copied)
    assert pipe.text_encoder["a"].weight is pipe.text_encoder["b"].weight
    for module in (pipe.transformer, pipe.text_encoder):
        assert all(bool((t == 7.0).all()) for t in [*module.parameters(), *module.buffers()])
    assert pipe.moved_to == ["cuda"] and synced == [torch.device("cuda")]


def test_engine_records_to_device_gb(tiny_model_dir: Path) -> None:
    engine = Engine.load_to_cpu(tiny_model_dir, dtype="float32")
    engine.to_device("cpu")
    assert engine.load_timings["to_device_gb"] == 0.0
    assert engine.info().load_timings["to_device_s"] >= 0
    engine.close()


# --- fp8 ----------------------------------------------------------------------------------
def test_fp8_on_cpu_is_refused_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_load(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("fp8 must be checked before loading")

    monkeypatch.setattr(Engine, "load_to_cpu", no_load)
    with pytest.raises(ConfigurationError, match=r"fp8=True needs a CUDA GPU.*'cpu'"):
        Engine.load("tiny", device="cpu", fp8=True)


def test_fp8_to_device_on_cpu_is_refused_before_moving(tiny_model_dir: Path) -> None:
    engine = Engine.load_to_cpu(tiny_model_dir, dtype="float32")
    with pytest.raises(ConfigurationError, match="fp8=True needs a CUDA GPU"):
        engine.to_device("cpu", fp8=True)
    assert "to_device_s" not in engine.load_timings
    engine.close()


def _fake_gpu(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], name: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


def test_fp8_needs_compute_capability_8_9(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpu(monkeypatch, (8, 0), "NVIDIA A100-SXM4-80GB")
    with pytest.raises(ConfigurationError, match=r"NVIDIA A100-SXM4-80GB has 8\.0"):
        _loading.check_fp8_support("cuda")


def test_fp8_needs_torchao(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpu(monkeypatch, (9, 0), "NVIDIA H100 80GB HBM3")
    real_find_spec = _loading.importlib.util.find_spec
    monkeypatch.setattr(
        _loading.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torchao" else real_find_spec(name, *a),
    )
    with pytest.raises(ConfigurationError, match="needs torchao, which is not installed"):
        _loading.check_fp8_support("cuda")


def test_fp8_accepted_on_hopper_with_torchao(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpu(monkeypatch, (9, 0), "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(_loading.importlib.util, "find_spec", lambda name, *a: object())
    _loading.check_fp8_support("cuda:0")  # no error


def _fake_torchao(monkeypatch: pytest.MonkeyPatch, *, new_api: bool, old_api: bool) -> list[Any]:
    calls: list[Any] = []
    quantization = types.ModuleType("torchao.quantization")
    if new_api:
        quantization.Float8DynamicActivationFloat8WeightConfig = lambda: "config"  # type: ignore[attr-defined]
    if old_api:
        quantization.float8_dynamic_activation_float8_weight = lambda: "factory"  # type: ignore[attr-defined]
    quantization.quantize_ = lambda model, config: calls.append((model, config))  # type: ignore[attr-defined]
    package = types.ModuleType("torchao")
    package.quantization = quantization  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchao", package)
    monkeypatch.setitem(sys.modules, "torchao.quantization", quantization)
    return calls


def test_quantize_fp8_prefers_the_config_api(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_torchao(monkeypatch, new_api=True, old_api=True)
    pipe = _FakePipe()
    assert _loading.quantize_fp8(pipe) == "torchao Float8DynamicActivationFloat8WeightConfig"
    assert calls == [(pipe.transformer, "config")]


def test_quantize_fp8_falls_back_to_the_old_api(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_torchao(monkeypatch, new_api=False, old_api=True)
    pipe = _FakePipe()
    assert _loading.quantize_fp8(pipe) == "torchao float8_dynamic_activation_float8_weight"
    assert calls == [(pipe.transformer, "factory")]


def test_quantize_fp8_without_any_api(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_torchao(monkeypatch, new_api=False, old_api=False)
    with pytest.raises(ConfigurationError, match="no float8 dynamic quantisation API"):
        _loading.quantize_fp8(_FakePipe())


def test_gpu_options_quantise_after_fusing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_torchao(monkeypatch, new_api=True, old_api=False)
    pipe = _FakePipe()
    monkeypatch.setattr(pipe, "fuse_qkv_projections", lambda: calls.append("fuse"), raising=False)
    applied = _loading.apply_gpu_options(pipe, fuse_qkv=True, fp8=True)
    assert applied == {"fuse_qkv": True, "fp8": "torchao Float8DynamicActivationFloat8WeightConfig"}
    assert calls == ["fuse", (pipe.transformer, "config")]


# --- compile caches -----------------------------------------------------------------------
def test_configure_compile_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("TRITON_CACHE_DIR", "/elsewhere/triton")
    kept = configure_compile_cache(tmp_path / "cc", overwrite=False)
    assert kept == {
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cc" / "inductor"),
        "TRITON_CACHE_DIR": "/elsewhere/triton",
    }
    assert (tmp_path / "cc" / "inductor").is_dir()
    result = configure_compile_cache(tmp_path / "cc")
    assert result["TRITON_CACHE_DIR"] == str(tmp_path / "cc" / "triton")
    assert os.environ["TRITON_CACHE_DIR"] == result["TRITON_CACHE_DIR"]
    assert (tmp_path / "cc" / "triton").is_dir()
