"""The update check in model info (``extra["update_check"]``): the deployment's `.local()`
class over a local "hub" (never the real Hub), the TTL cache, failures, and `jaguar info`."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import deploy.app as deploy_app
from jaguar_sdk._constants import SCHEMA_VERSION
from jaguar_sdk._results import ModelInfo
from jaguar_sdk.cli._client_commands import _print_model
from jaguar_sdk.server._service import JaguarService
from jaguar_sdk.weights import (
    LocalFolderFetcher,
    LocalStorage,
    ModelVersions,
    UpdateChecker,
    followed_branch,
)
from tests.support.fake_engine import FakeEngine
from tests.versions.versions_fixtures import REPO, SHA_A, SHA_B, set_main

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")


class FlakyFetcher(LocalFolderFetcher):
    """A local "hub" whose ``resolve`` raises while ``fail`` is set."""

    fail = False

    def resolve(self, repo_id: str, revision: str) -> str:
        if self.fail:
            raise ConnectionError("hub unreachable")
        return super().resolve(repo_id, revision)


@pytest.fixture
def deployed(
    hub: Path, volume: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FlakyFetcher, ModelVersions]]:
    """Revision A is CURRENT on the Volume; the hub's ``main`` has moved on to B."""
    fetcher = FlakyFetcher(hub)
    versions = ModelVersions(LocalStorage(volume), REPO)
    versions.update(fetcher)
    assert versions.current() == SHA_A
    set_main(hub, SHA_B)
    monkeypatch.setenv(deploy_app.ENV_WEIGHTS_DIR, str(volume))
    monkeypatch.setenv("JAGUAR_MODEL_ID", REPO)
    monkeypatch.setenv("JAGUAR_MODEL_REVISION", "main")
    monkeypatch.setattr(deploy_app, "fetcher_factory", lambda: fetcher)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*mounted Volume.*")
        warnings.filterwarnings("ignore", message=".*executing locally.*")
        yield fetcher, versions


def _check(model: Any) -> tuple[ModelInfo, dict[str, Any]]:
    info = ModelInfo.model_validate(model.info.local())
    return info, info.extra["update_check"]


def test_info_reports_a_newer_revision_then_none_after_updating(
    deployed: tuple[FlakyFetcher, ModelVersions],
) -> None:
    fetcher, versions = deployed
    model = deploy_app.JaguarModel()
    info, check = _check(model)
    assert info.model.revision == SHA_A
    assert check["latest_revision"] == SHA_B
    assert check["update_available"] is True
    assert check["error"] is None
    assert datetime.fromisoformat(check["checked_at"]).tzinfo is not None
    assert info.extra["snapshot"] == "cpu"  # the deployment's other extras are still there

    versions.update(fetcher)
    reloaded = ModelInfo.model_validate(model.reload.local({"schema_version": SCHEMA_VERSION}))
    assert reloaded.model.revision == SHA_B
    info, check = _check(model)
    assert info.model.revision == SHA_B
    assert check["latest_revision"] == SHA_B
    assert check["update_available"] is False


def test_a_second_info_call_is_answered_from_the_cache(
    deployed: tuple[FlakyFetcher, ModelVersions],
) -> None:
    fetcher, _ = deployed
    model = deploy_app.JaguarModel()
    model.health.local()  # start the container (loading may resolve refs itself)
    before = fetcher.resolves
    _, first = _check(model)
    assert fetcher.resolves == before + 1
    _, second = _check(model)
    assert fetcher.resolves == before + 1  # no second upstream request within the TTL
    assert second == first


def test_info_still_answers_when_the_hub_fails(
    deployed: tuple[FlakyFetcher, ModelVersions],
) -> None:
    fetcher, _ = deployed
    model = deploy_app.JaguarModel()
    model.health.local()
    fetcher.fail = True
    info, check = _check(model)
    assert info.model.revision == SHA_A
    assert check["error"] == "ConnectionError: hub unreachable"
    assert check["latest_revision"] is None
    assert check["update_available"] is False


def test_checker_ttl_error_retry_and_pinned_commit() -> None:
    now = [0.0]
    calls: list[str] = []
    failing = [False]

    class Fetcher:
        def resolve(self, repo_id: str, revision: str) -> str:
            calls.append(revision)
            if failing[0]:
                raise TimeoutError("slow hub")
            return SHA_B

        def fetch(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("an update check never downloads")

    checker = UpdateChecker(REPO, "main", Fetcher, ttl_s=900, error_ttl_s=60, clock=lambda: now[0])
    assert checker.check(SHA_A)["update_available"] is True
    now[0] = 899
    assert checker.check(SHA_B)["update_available"] is False  # cached latest, new serving rev
    assert len(calls) == 1
    now[0] = 900
    failing[0] = True
    assert checker.check(SHA_A)["error"] == "TimeoutError: slow hub"
    now[0] = 959
    checker.check(SHA_A)
    assert len(calls) == 2  # a failure is cached for error_ttl_s...
    failing[0] = False
    now[0] = 960
    assert checker.check(SHA_A) | {"checked_at": "-"} == {
        "latest_revision": SHA_B,
        "update_available": True,
        "checked_at": "-",
        "error": None,
    }
    assert len(calls) == 3  # ...then retried
    assert followed_branch("main") == "main"
    assert followed_branch(SHA_A) == "main"  # a pinned commit is compared with main


def test_service_merges_info_extras_and_survives_a_failing_hook() -> None:
    engine = FakeEngine()
    service = JaguarService(
        lambda: engine, info_extras=lambda info: {"update_check": {"seen": info.model.revision}}
    )
    service.start()
    assert service.info().extra["update_check"] == {"seen": "fake"}

    def broken(info: ModelInfo) -> dict[str, Any]:
        raise RuntimeError("boom")

    failing = JaguarService(lambda: engine, info_extras=broken)
    failing.start()
    assert "update_check" not in failing.info().extra
    assert failing.call_plain("info")["model"]["revision"] == "fake"


def test_jaguar_info_prints_the_update_check_readably(capsys: pytest.CaptureFixture[str]) -> None:
    check = {
        "latest_revision": SHA_B,
        "update_available": True,
        "checked_at": "2026-11-23T11:30:00+00:00",
        "error": None,
    }
    _print_model({"model": {"id": REPO}, "extra": {"gpu": "H100", "update_check": check}}, False)
    out = capsys.readouterr().out
    assert "extra: gpu=H100\n" in out
    assert f"update: available: {SHA_B} (checked 2026-11-23T11:30:00+00:00;" in out
    _print_model({"extra": {"update_check": {**check, "update_available": False}}}, False)
    assert f"update: up to date ({SHA_B};" in capsys.readouterr().out
    _print_model({"extra": {"update_check": {**check, "error": "ConnectionError: x"}}}, False)
    assert "update: unknown (check failed: ConnectionError: x;" in capsys.readouterr().out
