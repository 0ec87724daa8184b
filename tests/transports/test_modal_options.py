"""Runtime overrides: ``from_modal(gpu=..., function_timeout=...)`` call the class through
``Cls.with_options(...)`` (modal 1.6.4 ``cls.py`` ``_Cls.with_options``: "a new variant of the Cls
that will autoscale independently"), and the GPU a container runs on is what ``info`` reports.

Modal is replaced by the stand-ins of ``tests/support/modal_standin.py``; ``standin.options``
records every ``with_options`` and ``standin.lookups`` every ``Cls.from_name``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import modal
import pytest

import deploy.app as deploy_app
from deploy.container import ModelContainer
from deploy.settings import DeploySettings
from deploy.weights import open_store
from jaguar_sdk import AsyncJaguarClient, ConfigurationError, JaguarClient, ModelInfo
from jaguar_sdk.cli import main
from jaguar_sdk.engine import Engine
from tests.deploy.fixtures import REPO
from tests.support.modal_standin import StandInCls

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")


def test_from_modal_gpu_and_function_timeout_use_with_options(
    standin: StandInCls,
) -> None:
    with JaguarClient.from_modal("shuttle-jaguar", gpu="h200", function_timeout=900) as client:
        assert client.health().ready
        assert "gpu='H200'" in repr(client._core.transport)
    assert standin.options == [{"gpu": "H200", "timeout": 900}]
    assert standin.lookups == [("shuttle-jaguar", "JaguarModel", None)]

    async def go() -> ModelInfo:
        async with AsyncJaguarClient.from_modal(gpu="H100!") as client:
            return await client.info()

    assert isinstance(asyncio.run(go()), ModelInfo)
    assert standin.options[-1] == {"gpu": "H100!"}


def test_without_overrides_there_is_no_variant(standin: StandInCls) -> None:
    with JaguarClient.from_modal() as client:
        client.health()
    assert standin.options == []  # the deployed pool, with its min_containers


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"gpu": "H 100"}, "gpu="),
        ({"gpu": "H100:9"}, "gpu="),
        ({"function_timeout": 0}, "function_timeout="),
        ({"function_timeout": 86401}, "function_timeout="),
        ({"function_timeout": 1.5}, "function_timeout="),
    ],
)
def test_bad_overrides_fail_before_any_lookup(
    options: dict[str, Any], field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    monkeypatch.setattr(modal.Cls, "from_name", lambda *a, **k: looked_up.append("x"))
    with pytest.raises(ConfigurationError, match=field):
        JaguarClient.from_modal(**options)
    assert looked_up == []


def test_cli_gpu_flag(standin: StandInCls, tmp_path: Path, capsys: Any) -> None:
    target = tmp_path / "cat.jpg"
    code = main(
        ["generate", "a cat", "--size", "64", "--modal-app", "shuttle-jaguar", "--gpu", "H200",
         "--function-timeout", "1200", "-o", str(target)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert target.is_file()
    assert standin.options == [{"gpu": "H200", "timeout": 1200}]
    assert main(["info", "--gpu", "H200"]) == 3  # a GPU without a Modal app: configuration
    assert "--gpu and --function-timeout need --modal-app" in capsys.readouterr().err


def test_info_reports_the_gpu_the_container_runs_on(
    modal_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Modal, ``to_gpu`` reads the device from torch (``require_cuda``: device 0's name), so a
    ``with_options(gpu="H200")`` variant reports the H200 it got, not the deployed ``JAGUAR_GPU``.
    Here torch answers as an H200 container's would; the move itself stays on CPU."""
    import jaguar_sdk.engine

    moved_to: list[str | None] = []
    real_to_device = Engine.to_device

    def to_device(self: Engine, device: str | None = None, **kw: Any) -> Engine:
        moved_to.append(device)
        return real_to_device(self, None, **kw)

    monkeypatch.setattr(jaguar_sdk.engine, "require_cuda", lambda what: "NVIDIA H200")
    monkeypatch.setattr(Engine, "to_device", to_device)
    commit, reload = deploy_app.volume_hooks()
    container = ModelContainer(
        DeploySettings.from_env(),
        open_store=lambda: open_store(commit, reload),
        volume_reload=reload,
        run_weights_function=deploy_app.run_weights_function,
        in_container=lambda: True,
        job_records=None,
        current_call_id=lambda: None,
        fetcher=deploy_app.fetcher_factory,
    )
    container.load_to_cpu()
    container.to_gpu()
    info = ModelInfo.model_validate(container.call("info", None))
    assert (info.extra["gpu"], info.extra["gpu_deployed"]) == ("NVIDIA H200", "H100")
    assert moved_to == ["cuda"]
    assert info.model.id == REPO
    container.close()


def test_require_cuda_names_device_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from jaguar_sdk.engine import require_cuda

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: f"NVIDIA H200 #{index}")
    assert require_cuda("JAGUAR_GPU=H200") == "NVIDIA H200 #0"
