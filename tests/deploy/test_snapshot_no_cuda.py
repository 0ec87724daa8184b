"""Before a CPU memory snapshot nothing may ask for CUDA; after the restore, CUDA must be there.

The snap=True hook runs in a fresh process (nothing imported yet, as in a new container) with
``modal.is_local()`` returning False as inside a container, and every torch entry point that
reaches the CUDA device count spied: ``torch.cuda.is_available``/``device_count``/``init``/
``_lazy_init``, ``torch.accelerator.is_available``/``device_count``/``current_device_index``, and
``torch._C._cuda_getDeviceCount`` where it exists (never added: ``torch.cuda._is_compiled()`` is
``hasattr(torch._C, "_cuda_getDeviceCount")``). A CUDA build answers
``torch.accelerator.current_accelerator()`` from how torch was built ("available at compilation
time", torch/accelerator/__init__.py), so the spy makes it answer ``cuda`` as that build would;
then ``torch.accelerator.is_available()`` goes on to ``torch.cuda.is_available()`` as it does on
the GPU image. The hook must make zero calls. The same harness with the guard switched off
catches the import-time query of diffusers, so it can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import modal
import pytest

from jaguar_sdk import ConfigurationError
from tests.deploy.fixtures import deployment_env, make_hub, new_container

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bf16_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model saved in bfloat16, like the real repo: loading it in bfloat16 needs no
    conversion, so a memory-mapped load would leave the parameters as views of the files."""
    import torch
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(str(tiny_model_dir), dtype=torch.bfloat16)
    target = tmp_path_factory.mktemp("tiny-bf16") / "model"
    pipe.save_pretrained(str(target))
    return target


@pytest.fixture
def bf16_env(
    tmp_path: Path, bf16_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The weights step done, with the bfloat16 tiny model on the Volume."""
    import deploy.app as deploy_app

    hub = make_hub(tmp_path / "hub", bf16_model_dir)
    with deployment_env(tmp_path / "volume", hub, monkeypatch) as env:
        deploy_app.download_weights.local()
        yield env


HARNESS = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import torch

calls = []

def spy(module, name, answer=None, answered=False):
    if not hasattr(module, name):
        return  # never add one: torch.cuda._is_compiled() is a hasattr check
    original = getattr(module, name)
    def spied(*args, **kwargs):
        calls.append(f"{module.__name__}.{name}")
        return answer if answered else original(*args, **kwargs)
    setattr(module, name, spied)

compiled_before = torch.cuda._is_compiled()
spy(torch.accelerator, "current_accelerator", torch.device("cuda"), True)
for module, name in [
    (torch.cuda, "is_available"), (torch.cuda, "device_count"), (torch.cuda, "init"),
    (torch.cuda, "_lazy_init"), (torch.accelerator, "is_available"),
    (torch.accelerator, "device_count"), (torch.accelerator, "current_device_index"),
    (torch._C, "_cuda_getDeviceCount"),
]:
    spy(module, name)
compile_time_answers = len(calls)

import modal
modal.is_local = lambda: False  # as inside a Modal container (execution_context.is_local)

if sys.argv[1] == "unguarded":  # what the hook did before: no guard
    import jaguar_sdk.engine

    class NoGuard:
        queries = []
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return None

    jaguar_sdk.engine.no_cuda_query = NoGuard

import deploy.app as deploy_app
from modal._utils.async_utils import synchronizer

user_cls = synchronizer._translate_in(deploy_app.JaguarModel)._user_cls
obj = user_cls()
synchronizer._translate_in(user_cls.__dict__["load_to_cpu"]).raw_f.__get__(obj)()

engine = obj.container._engine
volume = sys.argv[2]
mapped = sorted({line.split()[-1] for line in open("/proc/self/maps") if volume in line})
print(json.dumps({
    "calls": [c for c in calls if not c.endswith("current_accelerator")],
    "answered": obj.container.cuda_queries_answered,
    "device": engine.device,
    "dtype": str(engine.dtype),
    "cuda_initialized": torch.cuda.is_initialized(),
    "compiled_unchanged": torch.cuda._is_compiled() == compiled_before,
    "mapped_volume_files": mapped,
    "diffusers_imported": "diffusers" in sys.modules,
}))
"""


def _run_hook(mode: str, volume: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_TOKEN", "JAGUAR_"))}
    env.update(
        {
            k: v
            for k, v in os.environ.items()
            if k in ("JAGUAR_WEIGHTS_DIR", "JAGUAR_MODEL_ID", "JAGUAR_MODEL_REVISION")
        }
    )
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", HARNESS, mode, str(volume)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_snap_true_hook_makes_no_cuda_query(bf16_env: dict[str, Any]) -> None:
    got = _run_hook("guarded", bf16_env["volume"])
    assert got["calls"] == []  # no entry point that reaches the device count was called
    assert got["cuda_initialized"] is False
    assert got["compiled_unchanged"] is True
    # The path exists and was answered without CUDA: diffusers' import-time get_device().
    assert got["diffusers_imported"] is True
    assert any("torch.accelerator.is_available" in q for q in got["answered"])
    assert any("diffusers/utils/torch_utils.py" in q for q in got["answered"])
    # ... and the weights really loaded, on CPU, in the dtype named on Modal, into RAM.
    assert (got["device"], got["dtype"]) == ("cpu", "torch.bfloat16")
    assert got["mapped_volume_files"] == []


def test_the_harness_catches_a_query_without_the_guard(modal_env: dict[str, Any]) -> None:
    got = _run_hook("unguarded", modal_env["volume"])
    assert "torch.accelerator.is_available" in got["calls"]
    assert "torch.cuda.is_available" in got["calls"]  # where a CUDA build goes next


def test_to_gpu_refuses_to_serve_on_cpu_in_a_container(
    modal_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(modal, "is_local", lambda: False)  # inside a container, no CUDA here
    with pytest.raises(ConfigurationError) as info:
        new_container().health.local()
    message = str(info.value)
    assert "No CUDA device is visible after the restore" in message
    assert "JAGUAR_GPU=H100" in message
    assert "refusing to serve on CPU" in message


def test_the_guard_answers_no_gpu_refuses_device_calls_and_restores() -> None:
    import torch

    from jaguar_sdk.engine import no_cuda_query
    from jaguar_sdk.engine._snapshot import CudaQueryError

    original = torch.cuda.is_available
    had_count = hasattr(torch._C, "_cuda_getDeviceCount")
    with no_cuda_query() as guard:
        assert torch.cuda.is_available() is False
        assert torch.accelerator.device_count() == 0
        with pytest.raises(CudaQueryError, match="before the memory snapshot"):
            torch.cuda.init()
        with pytest.raises(CudaQueryError):
            torch.accelerator.current_device_index()
    assert torch.cuda.is_available is original
    assert hasattr(torch._C, "_cuda_getDeviceCount") == had_count
    assert [q.split(" <- ")[0] for q in guard.queries] == [
        "torch.cuda.is_available",
        "torch.accelerator.device_count",
        "torch.cuda.init",
        "torch.accelerator.current_device_index",
    ]
