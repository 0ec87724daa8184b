"""Optional dependencies: one helper turns a missing one into a ConfigurationError naming the
extra. ``sys.modules[name] = None`` is how Python marks a module absent: importing it raises
``ModuleNotFoundError`` and ``importlib.util.find_spec`` returns ``None`` (importlib/util.py)."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

from jaguar_sdk import ConfigurationError, JaguarClient
from jaguar_sdk._extras import EXTRAS, extra_of, import_extra, require_extras
from jaguar_sdk._lazy import lazy_exports
from tests.support import serve_engine
from tests.support.bare_env import base_requirements, pyproject


def _name(requirement: str) -> str:
    return re.split(r"[\s;\[<>=!~]", requirement, maxsplit=1)[0]


def test_the_table_matches_pyproject() -> None:
    extras = pyproject()["project"]["optional-dependencies"]
    for name, modules in EXTRAS.items():
        assert tuple(_name(r) for r in extras[name]) == modules, name
    assert set(EXTRAS) <= set(extras)
    assert not {_name(r) for r in base_requirements()} & {m for ms in EXTRAS.values() for m in ms}


def test_extra_of() -> None:
    assert extra_of("fastapi.responses") == "server"
    assert extra_of("starlette") == "server"  # installed by fastapi
    assert extra_of("tqdm.auto") == "progress"  # the small extra that brings it
    assert extra_of("torch") == "engine" and extra_of("httpx") is None


def test_a_missing_module_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modal", None)
    with pytest.raises(ConfigurationError) as info:
        import_extra("modal", what="Calling a Modal deployment")
    assert str(info.value) == (
        "Calling a Modal deployment needs the modal extra (modal is not installed): "
        "pip install 'jaguar-sdk[modal]'"
    )
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_every_missing_extra_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ConfigurationError, match=r"uvicorn, diffusers are not installed\): "
                       r"pip install 'jaguar-sdk\[server,engine\]'$"):  # fmt: skip
        require_extras("server", "engine", "modal", what="Serving")


def test_an_unrelated_missing_module_is_a_bug_not_an_extra() -> None:
    with pytest.raises(ModuleNotFoundError):
        import_extra("jaguar_sdk_no_such_module", what="Nothing")


def test_lazy_exports_check_the_extras_of_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)
    namespace: dict[str, Any] = {}
    getattr_, _ = lazy_exports(
        "jaguar_sdk.server", {"create_app": "._app"}, namespace, extras={"create_app": ("server",)}
    )
    with pytest.raises(ConfigurationError, match=r"jaguar_sdk\.server\.create_app needs the "):
        getattr_("create_app")
    assert namespace == {}


def test_generate_many_progress_without_tqdm_fails_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support import FakeEngine

    engine = FakeEngine()
    server = serve_engine(engine)
    try:
        monkeypatch.setitem(sys.modules, "tqdm", None)
        with (
            JaguarClient(base_url=server.url) as client,
            pytest.raises(ConfigurationError, match=r"pip install 'jaguar-sdk\[progress\]'"),
        ):
            client.generate_many(["a cat"], progress=True)
        assert engine.calls == 0
    finally:
        server.stop()
