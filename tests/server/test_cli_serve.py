"""``jaguar serve``: arguments, token from the environment, token never printed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from jaguar_sdk.cli import _serve


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jaguar")
    _serve.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    calls: dict[str, Any] = {}

    def fake_serve(model: str, **kwargs: Any) -> None:
        calls["model"] = model
        calls.update(kwargs)

    import jaguar_sdk.server

    monkeypatch.setattr(jaguar_sdk.server, "serve", fake_serve)
    monkeypatch.delenv(_serve.ENV_SERVER_TOKEN, raising=False)
    monkeypatch.delenv(_serve.ENV_SERVER_ADMIN_TOKEN, raising=False)
    monkeypatch.delenv("JAGUAR_MODEL", raising=False)
    return calls


def test_defaults(captured: dict[str, Any]) -> None:
    args = _parse([])
    assert args.handler(args) == 0
    assert captured == {
        "model": "tiny",
        "host": "127.0.0.1",
        "port": 8000,
        "api_key": None,
        "admin_key": None,
        "device": None,
        "log_level": "info",
    }


def test_options_and_token_never_printed(captured: dict[str, Any], capsys) -> None:
    args = _parse(
        [
            "--model",
            "/models/jaguar",
            "--port",
            "9001",
            "--token",
            "T0KEN-abc",
            "--admin-token",
            "ADM1N-xyz",
            "--device",
            "cpu",
        ]
    )
    assert args.handler(args) == 0
    assert captured["model"] == "/models/jaguar" and captured["port"] == 9001
    assert captured["api_key"] == "T0KEN-abc" and captured["admin_key"] == "ADM1N-xyz"
    assert captured["device"] == "cpu"
    out = capsys.readouterr()
    assert "T0KEN-abc" not in out.out + out.err and "ADM1N-xyz" not in out.out + out.err


def test_token_from_environment(captured: dict[str, Any], monkeypatch) -> None:
    monkeypatch.setenv(_serve.ENV_SERVER_TOKEN, "from-env")
    args = _parse([])
    args.handler(args)
    assert captured["api_key"] == "from-env"


def test_bad_device_is_refused() -> None:
    with pytest.raises(SystemExit):
        _parse(["--device", "tpu"])


def test_cli_module_stays_light() -> None:
    # Heavy imports happen only inside the handler: check the module-level source.
    source = Path(_serve.__file__).read_text().split("def _run", 1)[0]
    assert "import fastapi" not in source and "import uvicorn" not in source


def test_hardening_flags_reach_serve(captured: dict[str, Any]) -> None:
    args = _parse(
        [
            "--webhook-allow",
            "10.0.0.0/8",
            "--webhook-allow",
            "127.0.0.1/32",
            "--header-timeout",
            "3",
            "--max-connections",
            "64",
        ]
    )
    assert args.handler(args) == 0
    assert captured["webhook_allow"] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert captured["header_timeout_s"] == 3.0 and captured["max_connections"] == 64
