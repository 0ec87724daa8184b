"""Configuration resolution: arguments, then environment, then the user config file."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from jaguar_sdk import ConfigurationError, JaguarClient
from jaguar_sdk._config import load_user_config, resolve_config, save_user_config, user_config_path


def test_nothing_configured_explains_the_three_ways(isolated_env: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        JaguarClient()
    message = str(info.value)
    assert "base_url" in message and "jaguar generate --url" in message
    assert "JAGUAR_MODAL_APP" in message and "JaguarClient.from_modal()" in message
    assert "JaguarClient.local(model='tiny')" in message
    assert str(isolated_env) in message


def test_argument_beats_env_beats_file(monkeypatch: pytest.MonkeyPatch, isolated_env) -> None:
    save_user_config(base_url="http://file:1", api_key="file-key", timeout=11, max_retries=4)
    cfg = resolve_config({})
    assert (cfg.base_url, cfg.api_key, cfg.timeout, cfg.max_retries) == (
        "http://file:1",
        "file-key",
        11.0,
        4,
    )
    assert cfg.chosen_by == str(isolated_env)

    monkeypatch.setenv("JAGUAR_BASE_URL", "http://env:2/")
    monkeypatch.setenv("JAGUAR_API_KEY", "env-key")
    monkeypatch.setenv("JAGUAR_TIMEOUT", "22")
    monkeypatch.setenv("JAGUAR_MAX_RETRIES", "5")
    cfg = resolve_config({})
    assert (cfg.base_url, cfg.api_key, cfg.timeout, cfg.max_retries) == (
        "http://env:2",
        "env-key",
        22.0,
        5,
    )
    assert cfg.chosen_by == "environment"

    cfg = resolve_config(
        {"base_url": "http://arg:3", "api_key": "arg-key", "timeout": 33, "max_retries": 0}
    )
    assert (cfg.base_url, cfg.api_key, cfg.timeout, cfg.max_retries) == (
        "http://arg:3",
        "arg-key",
        33.0,
        0,
    )
    assert cfg.chosen_by == "argument"


def test_modal_chosen_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAGUAR_MODAL_APP", "my-app")
    monkeypatch.setenv("JAGUAR_MODAL_CLASS", "MyCls")
    monkeypatch.setenv("JAGUAR_MODAL_ENVIRONMENT", "dev")
    cfg = resolve_config({})
    assert (cfg.backend, cfg.modal_app, cfg.modal_class, cfg.modal_environment) == (
        "modal",
        "my-app",
        "MyCls",
        "dev",
    )


def test_local_chosen_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAGUAR_MODEL", "tiny")
    assert resolve_config({}).backend == "local"


def test_explicit_argument_overrides_env_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAGUAR_MODAL_APP", "my-app")
    cfg = resolve_config({"base_url": "http://127.0.0.1:9"})
    assert cfg.backend == "http" and cfg.modal_app is None


def test_two_explicit_backends_conflict() -> None:
    with pytest.raises(ConfigurationError, match="base_url and modal_app"):
        JaguarClient(base_url="http://127.0.0.1:9", modal_app="x")
    with pytest.raises(ConfigurationError, match="Two ways"):
        JaguarClient(base_url="http://127.0.0.1:9", model="tiny")


def test_two_env_backends_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAGUAR_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("JAGUAR_MODAL_APP", "x")
    with pytest.raises(ConfigurationError, match="JAGUAR_BASE_URL and JAGUAR_MODAL_APP"):
        JaguarClient()


@pytest.mark.parametrize(
    ("name", "value"),
    [("JAGUAR_TIMEOUT", "soon"), ("JAGUAR_TIMEOUT", "-1"), ("JAGUAR_MAX_RETRIES", "two")],
)
def test_malformed_env_values(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("JAGUAR_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        JaguarClient()


def test_bad_base_url_scheme() -> None:
    with pytest.raises(ConfigurationError, match="http://"):
        JaguarClient(base_url="127.0.0.1:8000")


def test_malformed_config_file(isolated_env: Path) -> None:
    isolated_env.parent.mkdir(parents=True)
    isolated_env.write_text("{not json")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        JaguarClient()


def test_save_user_config_is_atomic_json_0600(isolated_env: Path) -> None:
    path = save_user_config(base_url="http://127.0.0.1:1", api_key="k")
    assert path == isolated_env == user_config_path()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "api_keys": {"http://127.0.0.1:1": "k"},  # the token is stored for its origin
        "base_url": "http://127.0.0.1:1",
    }
    save_user_config(api_key=None, modal_app="app")  # merge; None removes
    assert load_user_config() == {"base_url": "http://127.0.0.1:1", "modal_app": "app"}
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temp files left
    with pytest.raises(ConfigurationError, match="Unknown config keys"):
        save_user_config(colour="red")


def test_config_path_default_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAGUAR_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_config_path() == tmp_path / "xdg" / "jaguar" / "config.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_config_path() == tmp_path / "home" / ".config" / "jaguar" / "config.json"


def test_explicit_config_path_argument(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"base_url": "http://127.0.0.1:7", "max_retries": 1}))
    with JaguarClient(config_path=other) as client:
        assert "127.0.0.1:7" in repr(client) and "max_retries=1" in repr(client)


def test_from_modal_without_the_modal_extra_fails_when_called(monkeypatch) -> None:
    # sys.modules[name] = None is how Python marks a module absent: importing it raises
    # ModuleNotFoundError and importlib.util.find_spec returns None (importlib/util.py).
    monkeypatch.setitem(sys.modules, "modal", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'jaguar-sdk\[modal\]'"):
        JaguarClient.from_modal()  # at once, not at the first call
    monkeypatch.setenv("JAGUAR_MODAL_APP", "env-app")
    with pytest.raises(ConfigurationError, match=r"jaguar-sdk\[modal\]"):
        JaguarClient()


def test_from_modal_builds_the_modal_transport(monkeypatch) -> None:
    from jaguar_sdk._transports import modal as modal_transport

    built: list[tuple[str, str, str | None]] = []

    class FakeModalTransport:
        name = "modal"

        def __init__(self, app: str, cls_name: str, *, environment: str | None = None) -> None:
            built.append((app, cls_name, environment))

        def send(self, call):  # pragma: no cover - not called
            raise AssertionError

        def close(self) -> None:
            pass

    monkeypatch.setattr(modal_transport, "ModalTransport", FakeModalTransport)
    with JaguarClient.from_modal("my-app", "MyCls", environment="dev") as client:
        assert "modal_app='my-app'" in repr(client)
    monkeypatch.setenv("JAGUAR_MODAL_APP", "env-app")
    JaguarClient().close()
    assert built == [("my-app", "MyCls", "dev"), ("env-app", "JaguarModel", None)]


def test_a_saved_token_belongs_to_its_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    save_user_config(base_url="http://a.example:8000/", api_key="key-a")
    assert resolve_config({}).api_key == "key-a"  # the saved URL with its token
    assert (
        resolve_config({"base_url": "http://A.Example:8000/v1"}).api_key == "key-a"
    )  # same origin
    for other in ("http://b.example:8000", "http://a.example:8001", "https://a.example:8000"):
        assert resolve_config({"base_url": other}).api_key is None, other
    save_user_config(base_url="http://b.example", api_key="key-b")  # a second server
    assert resolve_config({"base_url": "http://b.example:80"}).api_key == "key-b"
    assert resolve_config({"base_url": "http://a.example:8000"}).api_key == "key-a"
    # an argument or $JAGUAR_API_KEY is the caller's choice: it goes to any server
    assert resolve_config({"base_url": "http://c.example", "api_key": "arg"}).api_key == "arg"
    monkeypatch.setenv("JAGUAR_API_KEY", "env")
    assert resolve_config({"base_url": "http://c.example"}).api_key == "env"


def test_a_token_from_an_older_config_file_stays_with_its_url(isolated_env: Path) -> None:
    isolated_env.parent.mkdir(parents=True)
    isolated_env.write_text(json.dumps({"base_url": "http://old:1", "api_key": "legacy"}))
    assert resolve_config({}).api_key == "legacy"
    assert resolve_config({"base_url": "http://new:2"}).api_key is None
    save_user_config(base_url="http://new:2")  # rewriting the file keeps it, per origin
    assert load_user_config() == {
        "base_url": "http://new:2",
        "api_keys": {"http://old:1": "legacy"},
    }
    with pytest.raises(ConfigurationError, match="base_url"):
        save_user_config(path=isolated_env.with_name("empty.json"), api_key="orphan")


def test_origin_of() -> None:
    from jaguar_sdk._config import origin_of

    assert origin_of("https://Host.example/v1") == "https://host.example:443"
    assert origin_of("http://[::1]:8000") == "http://[::1]:8000"
    for bad in ("ftp://x", "http://", "http://x:99999"):
        with pytest.raises(ConfigurationError):
            origin_of(bad)
