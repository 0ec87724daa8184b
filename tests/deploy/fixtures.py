"""Fixtures for the deployment's tests: a fake Hub, a temporary folder as the Volume with the
weights step done (``download_weights.local()``), and the Modal stand-ins of
``tests/support/modal_standin.py``. The class runs through Modal's ``.local()``: its real code,
in this process, with no token.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import deploy.app as deploy_app
from jaguar_sdk._constants import SCHEMA_VERSION
from jaguar_sdk.weights import LocalFolderFetcher
from tests.support.modal_standin import StandInCls, StandInModal

REPO = "acme/tiny-jaguar"
SHA = "feedfacefeedfacefeedfacefeedfacefeedface"
TOKEN = "test-server-token-123"

__all__ = [
    "REPO",
    "SHA",
    "TOKEN",
    "bare_env",
    "deployment_env",
    "fake_hub",
    "hook",
    "make_hub",
    "modal_env",
    "new_container",
    "payload",
    "standin",
    "user_class",
]


def make_hub(root: Path, model_dir: Path) -> Path:
    """``root/<repo>/<SHA>/`` holding ``model_dir``; ``main`` -> SHA."""
    shutil.copytree(model_dir, root / REPO / SHA)
    (root / REPO / SHA / "shuttle-jaguar.safetensors").write_bytes(b"x" * 1000)  # never fetched
    (root / REPO / "refs").mkdir()
    (root / REPO / "refs" / "main").write_text(SHA)
    return root


@pytest.fixture
def fake_hub(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """``hub/<repo>/<SHA>/`` holding the tiny model; ``main`` -> SHA."""
    return make_hub(tmp_path / "hub", tiny_model_dir)


@contextlib.contextmanager
def deployment_env(
    volume: Path, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """Point the deployment at ``volume`` (as the Volume mount) and ``hub`` (as the Hub)."""
    fetcher = LocalFolderFetcher(hub)
    monkeypatch.setenv(deploy_app.ENV_WEIGHTS_DIR, str(volume))
    monkeypatch.setenv("JAGUAR_MODEL_ID", REPO)
    monkeypatch.setenv("JAGUAR_MODEL_REVISION", "main")
    monkeypatch.setenv("JAGUAR_SERVER_TOKEN", TOKEN)
    monkeypatch.setattr(deploy_app, "fetcher_factory", lambda: fetcher)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*mounted Volume.*")
        warnings.filterwarnings("ignore", message=".*executing locally.*")
        yield {"volume": volume, "fetcher": fetcher}


@pytest.fixture
def bare_env(
    tmp_path: Path, fake_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """A deployment whose Volume is empty: the weights step has not run."""
    with deployment_env(tmp_path / "volume", fake_hub, monkeypatch) as env:
        yield env


@pytest.fixture
def modal_env(bare_env: dict[str, Any]) -> dict[str, Any]:
    """A deployment after its weights step (``modal run deploy/app.py::download_weights``)."""
    bare_env["weights"] = deploy_app.download_weights.local()
    return bare_env


@pytest.fixture
def standin(modal_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInCls]:
    """Modal replaced by the stand-ins; yields the GPU class stand-in (its ``.modal`` is the
    registry of spawned calls and the state Dict)."""
    registry = StandInModal()
    registry.install(monkeypatch)
    gpu = StandInCls(registry)
    gpu.install(monkeypatch)
    yield gpu
    registry.close()


def new_container() -> Any:
    """A fresh instance: `.local()` runs its enter hooks on first use, like a cold container."""
    return deploy_app.JaguarModel()


def payload(**request: Any) -> dict[str, Any]:
    request = {"prompt": "white cat holding a sign", "width": 64, "height": 64, **request}
    return {"schema_version": SCHEMA_VERSION, "request": request, "request_id": "req_test"}


def user_class() -> type:
    """The plain Python class under ``deploy_app.JaguarModel`` (to call one hook alone)."""
    from modal._utils.async_utils import synchronizer

    cls: type = synchronizer._translate_in(deploy_app.JaguarModel)._user_cls
    return cls


def hook(obj: Any, name: str) -> Any:
    """``obj.<name>`` bound, for a method or enter hook of :func:`user_class`."""
    from modal._utils.async_utils import synchronizer

    partial = synchronizer._translate_in(type(obj).__dict__[name])
    return partial.raw_f.__get__(obj)
