"""``jaguar generate --progress``: runs as a job and draws a step progress bar on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaguar_sdk import _constants as C
from jaguar_sdk.cli import main
from tests.jobs.conftest import ServerFactory, SteppingEngine


def test_generate_progress_bar(
    make_server: ServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(C.ENV_CONFIG, str(tmp_path / "config.json"))
    engine = SteppingEngine()
    server = make_server(engine)
    out_file = tmp_path / "cat.png"
    code = main(
        [
            "generate", "a cat", "--size", "64", "--steps", "5", "--seed", "3", "--progress",
            "--url", server.url, "-o", str(out_file),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "seed: 3" in out and out_file.exists()
    assert "5/5" in err and "step" in err  # the tqdm bar reached the last step
    assert len(server.service.jobs) == 1  # type: ignore[attr-defined]  # it ran as a job


def test_serve_passes_the_webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    from typing import Any

    import jaguar_sdk.server
    from jaguar_sdk.cli import _serve

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(jaguar_sdk.server, "serve", lambda model, **kw: calls.append(kw))
    monkeypatch.delenv(_serve.ENV_SERVER_TOKEN, raising=False)

    def run(argv: list[str]) -> None:
        parser = argparse.ArgumentParser(prog="jaguar")
        _serve.register(parser.add_subparsers(dest="command"))
        args = parser.parse_args(["serve", *argv])
        assert args.handler(args) == 0

    monkeypatch.delenv(_serve.ENV_WEBHOOK_SECRET, raising=False)
    run([])
    monkeypatch.setenv(_serve.ENV_WEBHOOK_SECRET, "from-env")
    run([])
    run(["--webhook-secret", "from-flag"])
    assert "webhook_secret" not in calls[0]
    assert calls[1]["webhook_secret"] == "from-env"
    assert calls[2]["webhook_secret"] == "from-flag"
