"""First use of the ``jaguar`` command, run as a real console script with a temporary HOME.

Tokens are kept per server, the config is saved only after a call proved it, messages speak in
flags, a mistyped flag is answered by its own sub-command, ``--local`` shows its load time and
the engine path prints no library noise.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jaguar_sdk import AuthenticationError, JaguarClient
from jaguar_sdk._exceptions import PHRASES
from jaguar_sdk.cli._wording import CLI_PHRASES, for_cli
from tests.client.conftest import API_KEY, FaultProxy
from tests.support.cli import JaguarCli

# One attempt: a refused connection fails at once instead of after the backoff.
NO_RETRY = {"JAGUAR_MAX_RETRIES": "0"}


@pytest.fixture
def cli(tmp_path: Path) -> JaguarCli:
    return JaguarCli(tmp_path / "home", env=NO_RETRY)


def test_a_saved_token_is_only_sent_to_its_own_server(
    cli: JaguarCli, live: Any, make_live: Any, make_proxy: Callable[..., FaultProxy], tmp_path
) -> None:
    other = make_live(api_key=None, admin_key=None)  # server B: open, behind a header recorder
    b = make_proxy(other.url, [])

    done = cli("generate", "--url", live.url, "--token", API_KEY, "--size", "64", "-o", "out")
    assert done.returncode == 0, done.stderr
    done = cli("info", "--url", b.url)
    assert done.returncode == 0, done.stderr
    assert "authorization" not in b.headers[-1]  # A's token never reaches B
    assert cli.config() == {"base_url": b.url, "api_keys": {live.url: API_KEY}}
    assert API_KEY not in done.stdout + done.stderr

    # back to A without --token: its own saved token is used
    done = cli("info", "--url", live.url)
    assert done.returncode == 0, done.stderr
    # $JAGUAR_API_KEY is the user's explicit choice: it goes where --url points
    done = cli("info", "--url", b.url, env={"JAGUAR_API_KEY": "sk-env-choice"})
    assert done.returncode == 0, done.stderr
    assert b.headers[-1]["authorization"] == "Bearer sk-env-choice"
    assert "sk-env-choice" not in str(cli.config())  # the environment's token is not saved


def test_the_config_is_saved_only_after_a_call_proved_it(cli: JaguarCli, live: Any) -> None:
    closed = FaultProxy(None, [])
    closed.close()  # a port nobody listens on: a mistyped URL
    done = cli("info", "--url", closed.url, "--token", API_KEY)
    assert done.returncode == 1 and "error:" in done.stderr
    assert not cli.config_path.exists()

    done = cli("info", "--url", live.url, "--token", "sk-wrong-SECRET-999")
    assert done.returncode == 4
    assert not cli.config_path.exists()  # a wrong token is not saved either

    # health needs no token, so it proves the URL but not the token
    done = cli("health", "--url", live.url, "--token", "sk-wrong-SECRET-999")
    assert done.returncode == 0, done.stderr
    assert f"saved base_url {live.url} to {cli.config_path}" in done.stderr
    assert "--token was not saved" in done.stderr
    assert cli.config() == {"base_url": live.url}

    done = cli("info", "--url", live.url, "--token", API_KEY)
    assert done.returncode == 0, done.stderr
    assert f"saved base_url {live.url} and its token to {cli.config_path}" in done.stderr
    assert cli.config() == {"base_url": live.url, "api_keys": {live.url: API_KEY}}
    assert stat.S_IMODE(os.stat(cli.config_path).st_mode) == 0o600
    assert [p.name for p in cli.config_path.parent.iterdir()] == ["config.json"]

    done = cli("info")  # later runs need no flag
    assert done.returncode == 0 and "device: cpu" in done.stdout


def test_a_401_on_the_command_line_names_the_flag(cli: JaguarCli, live: Any) -> None:
    done = cli("info", "--url", live.url)
    assert done.returncode == 4
    assert "pass --token TOKEN" in done.stderr and "JAGUAR_API_KEY" in done.stderr
    assert "api_key=" not in done.stderr
    # the Python API keeps the Python wording, from the same message
    with JaguarClient(base_url=live.url) as client, pytest.raises(AuthenticationError) as info:
        client.info()
    assert PHRASES["api_key"] in str(info.value)


def test_no_configuration_on_the_command_line_names_flags(cli: JaguarCli) -> None:
    done = cli("generate", "a cat")
    assert done.returncode == 3
    assert "--url http://host:8000 --token TOKEN" in done.stderr
    assert "--local tiny" in done.stderr and "--modal-app" in done.stderr
    assert "JaguarClient" not in done.stderr


def test_every_python_phrase_has_a_command_line_twin() -> None:
    assert set(CLI_PHRASES) == set(PHRASES)
    everything = " | ".join(PHRASES.values())
    rewritten = for_cli(everything)
    assert not any(phrase in rewritten for phrase in PHRASES.values() if phrase.strip())
    assert "=" not in rewritten.replace("http://", "")


@pytest.mark.parametrize(
    ("args", "usage", "suggestion"),
    [
        (["generate", "x", "--szie", "64"], "usage: jaguar generate ", "did you mean --size?"),
        (["info", "--jsn"], "usage: jaguar info ", "did you mean --json?"),
        (["model", "tiny", "d", "--sed", "1"], "usage: jaguar model tiny ", "did you mean --seed?"),
        (["--verbsoe", "info"], "usage: jaguar [", "did you mean --verbose?"),
    ],
)
def test_a_mistyped_flag_shows_its_command_usage_and_the_closest_flag(
    cli: JaguarCli, args: list[str], usage: str, suggestion: str
) -> None:
    done = cli(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(usage), done.stderr
    assert suggestion in done.stderr


def test_local_generate_shows_its_load_time_and_no_library_noise(
    cli: JaguarCli, client_cache_dir: str
) -> None:
    pytest.importorskip("diffusers")
    done = cli(
        "generate", "a cat", "--local", "tiny", "--device", "cpu", "--size", "64",
        "--steps", "2", "--seed", "3", "--progress", "-o", "cat.png",
        env={"JAGUAR_CACHE_DIR": client_cache_dir},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    match = re.search(r"load (\d+\.\d+)s \(in this process", done.stdout)
    assert match, done.stdout
    assert float(match.group(1)) > 0  # the model was loaded here, before the request
    assert "requires torchvision" not in done.stderr  # the project's own import, silenced
    assert "jaguar: 100%" in done.stderr  # --progress drew its bar (2/2 steps)
    assert (cli.home / "cat.png").is_file()
