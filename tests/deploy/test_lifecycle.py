"""The JaguarModel lifecycle via Modal's `.local()`: the weights step, enter hooks (snap=True,
then snap=False), methods, reload; a temp folder is the Volume and a LocalFolderFetcher over a
fake hub is the Hub.

`.local()` runs the real class code in this process with no Modal token: what differs on Modal is
only the Volume mount (here `JAGUAR_WEIGHTS_DIR`), `Volume.commit/reload` (no-ops here, or the
stand-in Volume in test_restore.py) and the device (CPU here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import deploy.app as deploy_app
from deploy.weights import DOWNLOAD_COMMAND, WeightsMissingError
from jaguar_sdk import GenerationResult, HealthStatus, ModelInfo
from jaguar_sdk._constants import SCHEMA_VERSION
from jaguar_sdk.weights import LocalFolderFetcher
from jaguar_sdk.weights.manifest import MANIFEST_NAME
from tests.deploy.fixtures import REPO, SHA, new_container, payload

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")


def test_weights_step_downloads_then_every_container_reads_the_volume(
    modal_env: dict[str, Any],
) -> None:
    fetcher: LocalFolderFetcher = modal_env["fetcher"]
    assert modal_env["weights"]["source"] == "huggingface"
    assert modal_env["weights"]["revision"] == SHA
    assert fetcher.fetches == 1
    published = modal_env["volume"] / "models" / "acme--tiny-jaguar" / SHA
    assert (published / MANIFEST_NAME).is_file()
    assert not (published / "shuttle-jaguar.safetensors").exists()

    first = new_container()
    info = ModelInfo.model_validate(first.info.local())
    assert (info.model.id, info.model.revision, info.model.source) == (REPO, SHA, "volume")
    assert info.device == "cpu"
    assert info.extra["snapshot"] == "cpu"
    assert info.extra["weights_from"] == "volume"
    assert info.extra["restored"] is False
    assert {"ensure_s", "load_s"} <= set(info.extra["snapshot_timings"])
    assert {"to_device_s", "warmup_s", "after_restore_s"} <= set(info.load_timings)
    health = HealthStatus.model_validate(first.health.local())
    assert health.ready and health.status == "ok"

    second = new_container()
    assert ModelInfo.model_validate(second.info.local()).model.source == "volume"
    again = deploy_app.download_weights.local()
    assert again["source"] == "volume"
    assert fetcher.fetches == 1  # neither a container nor a second weights run downloads


def test_missing_weights_fail_fast_naming_the_weights_step(bare_env: dict[str, Any]) -> None:
    fetcher: LocalFolderFetcher = bare_env["fetcher"]
    with pytest.raises(WeightsMissingError) as info:
        new_container().health.local()
    assert DOWNLOAD_COMMAND in str(info.value)
    assert "JAGUAR_ON_MISSING_WEIGHTS=download" in str(info.value)
    assert fetcher.fetches == 0 and fetcher.resolves == 0  # the GPU container asked no Hub
    volume: Path = bare_env["volume"]
    assert not (volume / ".locks").exists() and not (volume / ".staging").exists()


def test_download_mode_fetches_through_the_weights_function(
    bare_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAGUAR_ON_MISSING_WEIGHTS", "download")
    monkeypatch.setenv("JAGUAR_STARTUP_TIMEOUT_S", "3600")
    ran: list[bool] = []
    real = deploy_app.run_weights_function

    def spy(force: bool) -> dict[str, Any]:
        ran.append(force)
        return real(force)

    monkeypatch.setattr(deploy_app, "run_weights_function", spy)
    info = ModelInfo.model_validate(new_container().info.local())
    assert ran == [False]
    assert bare_env["fetcher"].fetches == 1
    assert info.extra["weights_from"] == "huggingface"
    assert info.model.source == "huggingface"


def test_generate_returns_plain_data_a_result_accepts(modal_env: dict[str, Any]) -> None:
    model = new_container()
    out = model.generate.local(payload(seed=7, output_format="png"))
    assert out["schema_version"] == SCHEMA_VERSION
    assert isinstance(out["images"][0]["data"], bytes)  # raw bytes, no base64, no pickled models
    result = GenerationResult.model_validate(out)
    assert result.seed == 7
    assert result.request_id == "req_test"
    assert result.images[0].data.startswith(b"\x89PNG")
    assert (result.images[0].width, result.images[0].height) == (64, 64)
    assert result.model.source == "volume"


def test_errors_come_back_as_envelopes(modal_env: dict[str, Any]) -> None:
    model = new_container()
    bad = model.generate.local(payload(width=65))
    assert bad["error"]["code"] == "invalid_request"
    assert bad["error"]["field"] == "width"
    old = model.info.local({"schema_version": 99})
    assert old["error"]["code"] == "incompatible_version"


def test_reload_verifies_repairs_and_answers_what_info_answers(
    modal_env: dict[str, Any],
) -> None:
    fetcher: LocalFolderFetcher = modal_env["fetcher"]
    model = new_container()
    before = model.generate.local(payload(seed=3))
    assert "error" not in before
    info = model.info.local()

    intact = model.reload.local({"schema_version": SCHEMA_VERSION})
    assert set(intact) == set(info)
    assert set(intact["extra"]) == set(info["extra"])  # the deployment extras too
    assert ModelInfo.model_validate(intact).model.source == "volume"  # sha256 passed
    assert fetcher.fetches == 1

    published = modal_env["volume"] / "models" / "acme--tiny-jaguar" / SHA
    weights = sorted((published / "transformer").glob("*.safetensors"))[0]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # same size: only a full hash finds it
    weights.write_bytes(bytes(data))

    repaired = ModelInfo.model_validate(model.reload.local({"schema_version": SCHEMA_VERSION}))
    assert repaired.model.source == "huggingface"
    assert repaired.extra["weights_from"] == "huggingface"
    assert fetcher.fetches == 2
    assert any((modal_env["volume"] / ".trash").iterdir())  # old copy moved aside, not deleted
    after = model.generate.local(payload(seed=3))
    assert GenerationResult.model_validate(after).seed == 3
