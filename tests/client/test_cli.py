"""``jaguar generate / info / health / reload`` end to end, in-process and as a subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jaguar_sdk.cli import main
from tests.client.conftest import ADMIN_KEY, API_KEY


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_with_url_saves_config_and_writes_files(
    live: Any, tmp_path: Path, isolated_env: Path, capsys
) -> None:
    out_dir = tmp_path / "images"
    code, out, err = run(
        [
            "generate", "a cat", "--size", "64x80", "--seed", "7", "-n", "2", "--format", "png",
            "--url", live.url, "--token", API_KEY, "-o", str(out_dir),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "model: fake (source: local" in out and "seed: 7" in out
    assert "timings:" in out and "total:" in out
    written = sorted(out_dir.iterdir())
    assert [p.suffix for p in written] == [".png", ".png"]
    assert all(f"wrote: {p}" in out for p in written)
    # the URL (and token) were saved, 0600, JSON; the token is never printed
    assert f"saved base_url {live.url} and its token to {isolated_env}" in err
    assert stat.S_IMODE(os.stat(isolated_env).st_mode) == 0o600
    assert json.loads(isolated_env.read_text()) == {
        "api_keys": {live.url: API_KEY},
        "base_url": live.url,
    }
    assert API_KEY not in out + err

    # a later run needs no flag
    target = tmp_path / "one.jpg"
    code, out, err = run(["generate", "again", "--size", "64", "-o", str(target)], capsys)
    assert code == 0, err
    assert target.exists() and f"wrote: {target}" in out
    assert live.engine.calls == 2


def test_generate_json_output(live: Any, tmp_path: Path, capsys) -> None:
    code, out, _ = run(
        ["generate", "--size", "64", "--url", live.url, "--token", API_KEY, "--json",
         "-o", str(tmp_path / "x.webp"), "--format", "webp"],
        capsys,
    )  # fmt: skip
    assert code == 0
    meta = json.loads(out)
    assert meta["prompt"] == "white cat holding a sign reading Scuffed"
    assert meta["images"][0]["format"] == "webp" and "data" not in meta["images"][0]
    assert meta["paths"] == [str(tmp_path / "x.webp")] and (tmp_path / "x.webp").exists()


def test_generate_display_opens_the_image(live: Any, tmp_path: Path, capsys, monkeypatch) -> None:
    from PIL import Image

    shown: list[Any] = []
    monkeypatch.setattr(Image.Image, "show", lambda self, *a, **k: shown.append(self.size))
    code, _, _ = run(
        ["generate", "--size", "64", "--url", live.url, "--token", API_KEY, "--display",
         "-o", str(tmp_path)],
        capsys,
    )  # fmt: skip
    assert code == 0 and shown == [(64, 64)]


@pytest.mark.parametrize(
    ("args", "expected_code", "message"),
    [
        (["generate", "--size", "1000"], 2, "width"),
        (["generate", "--size", "12x"], 2, "--size"),
        (["generate", "--steps", "0", "--size", "64"], 2, "steps"),
    ],
)
def test_invalid_input_exit_2_before_network(
    live: Any, capsys, args: list[str], expected_code: int, message: str
) -> None:
    code, _, err = run([*args, "--url", live.url, "--token", API_KEY], capsys)
    assert code == expected_code and message in err
    assert live.engine.calls == 0


def test_no_config_exit_3(capsys) -> None:
    code, out, err = run(["generate", "a cat"], capsys)
    assert code == 3 and out == ""
    assert "jaguar generate --url" in err and "JAGUAR_MODAL_APP" in err and "local" in err


def test_bad_token_exit_4_and_token_not_printed(live: Any, capsys) -> None:
    code, out, err = run(["info", "--url", live.url, "--token", "sk-wrong-SECRET-999"], capsys)
    assert code == 4 and "error:" in err
    assert "sk-wrong-SECRET-999" not in out + err


def test_not_found_exit_5(live: Any, capsys) -> None:
    code, _, err = run(["health", "--url", f"{live.url}/nope", "--token", API_KEY], capsys)
    assert code == 5 and "error:" in err


def test_info_health_reload(live: Any, capsys) -> None:
    code, out, _ = run(["info", "--url", live.url, "--token", API_KEY], capsys)
    assert code == 0 and "device: cpu" in out
    code, out, _ = run(["health", "--json"], capsys)  # the URL was saved by the previous run
    assert code == 0 and json.loads(out)["ready"] is True
    code, _, err = run(["reload"], capsys)
    assert code == 4 and API_KEY not in err  # the api token is not the admin token
    code, out, err = run(["reload", "--admin-token", ADMIN_KEY], capsys)
    assert code == 0 and "reloaded" in err and "fake" in out


def test_conflicting_flags_exit_3(live: Any, capsys) -> None:
    code, _, err = run(["info", "--url", live.url, "--modal-app", "x"], capsys)
    assert code == 3 and "Choose one" in err


def test_cli_local_tiny(client_cache_dir: str, tmp_path: Path, capsys, monkeypatch) -> None:
    pytest.importorskip("diffusers")
    monkeypatch.setenv("JAGUAR_CACHE_DIR", client_cache_dir)
    code, out, err = run(
        ["generate", "a cat", "--local", "tiny", "--device", "cpu", "--size", "64",
         "--steps", "2", "--seed", "3", "-o", str(tmp_path / "cat.png")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "model: tiny (source: local" in out and "seed: 3" in out
    assert (tmp_path / "cat.png").exists()


def test_subprocess_entry_point(live: Any, tmp_path: Path, isolated_env: Path) -> None:
    jaguar = Path(sys.executable).with_name("jaguar")
    if not jaguar.exists():
        pytest.skip("the jaguar console script is not installed in this environment")
    env = {**os.environ, "JAGUAR_CONFIG": str(isolated_env), "JAGUAR_API_KEY": API_KEY}
    proc = subprocess.run(
        [str(jaguar), "generate", "a cat", "--size", "64", "--url", live.url,
         "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "seed:" in proc.stdout and len(list(tmp_path.glob("*.jpg"))) == 1
    assert API_KEY not in proc.stdout + proc.stderr
    proc = subprocess.run(
        [str(jaguar), "generate", "--size", "1000"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 2 and "width" in proc.stderr
