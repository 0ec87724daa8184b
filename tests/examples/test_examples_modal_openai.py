"""``examples/modal_caller.py`` defines its Modal app offline; ``examples/openai_compat.py``
talks to a real ``jaguar serve``-equivalent server with the unchanged OpenAI client."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.examples._support import EXAMPLES, assert_images


def test_modal_caller_defines_its_app_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modal = pytest.importorskip("modal", reason="the modal extra is not installed")
    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "no-modal.toml"))  # no token anywhere

    spec = importlib.util.spec_from_file_location(
        "modal_caller_example", EXAMPLES / "modal_caller.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    assert isinstance(module.app, modal.App)
    assert module.app.name == "jaguar-caller-example"
    assert isinstance(module.thumbnail, modal.Function)
    assert repr(module.thumbnail) == "Function(thumbnail)"
    assert type(module.main).__name__ == "LocalEntrypoint"  # `modal run` finds it


def test_openai_compat_writes_a_png(
    tmp_path: Path, example_env: dict[str, str], tiny_engine: Any
) -> None:
    pytest.importorskip("openai", reason="the dev extra (openai) is not installed")
    from jaguar_sdk.server import create_app
    from jaguar_sdk.server._service import JaguarService
    from tests.support import LiveServer

    service = JaguarService(lambda: tiny_engine)
    service.start()
    with LiveServer(create_app(service, api_key="secret-token")) as server:
        proc = subprocess.run(
            [
                sys.executable,
                str(EXAMPLES / "openai_compat.py"),
                "--base-url",
                f"{server.url}/v1",
                "--api-key",
                "secret-token",
            ],
            cwd=tmp_path,
            env=example_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert "wrote jaguar-output/openai.png" in proc.stdout
    assert_images([tmp_path / "jaguar-output" / "openai.png"], fmt="PNG", size=(256, 256))


def test_openai_compat_fails_with_a_wrong_token(
    tmp_path: Path, example_env: dict[str, str], tiny_engine: Any
) -> None:
    """The check above is not vacuous: the server really enforces the token."""
    pytest.importorskip("openai", reason="the dev extra (openai) is not installed")
    from jaguar_sdk.server import create_app
    from jaguar_sdk.server._service import JaguarService
    from tests.support import LiveServer

    service = JaguarService(lambda: tiny_engine)
    service.start()
    with LiveServer(create_app(service, api_key="secret-token")) as server:
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / "openai_compat.py"), "--base-url", f"{server.url}/v1"],
            cwd=tmp_path,
            env=example_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode != 0
    assert "401" in proc.stderr or "AuthenticationError" in proc.stderr
    assert not (tmp_path / "jaguar-output" / "openai.png").exists()
