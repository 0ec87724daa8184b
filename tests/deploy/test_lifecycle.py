"""The JaguarModel lifecycle via Modal's `.local()`: enter hooks (snap=True, then snap=False),
methods, reload; a temp folder is the Volume and a LocalFolderFetcher over a fake hub is the Hub.

`.local()` runs the real class code in this process with no Modal token: what differs on Modal is
only the Volume mount (here `JAGUAR_WEIGHTS_DIR`), `Volume.commit/reload` (no-ops here) and the
device (CPU here).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import deploy.app as deploy_app
from jaguar_sdk import GenerationResult, HealthStatus, ModelInfo
from jaguar_sdk._constants import SCHEMA_VERSION
from jaguar_sdk.weights import LocalFolderFetcher
from jaguar_sdk.weights.manifest import MANIFEST_NAME

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")

REPO = "acme/tiny-jaguar"
SHA = "feedfacefeedfacefeedfacefeedfacefeedface"
TOKEN = "test-server-token-123"


@pytest.fixture
def fake_hub(tmp_path: Path, tiny_model_dir: Path) -> Path:
    hub = tmp_path / "hub"
    shutil.copytree(tiny_model_dir, hub / REPO / SHA)
    (hub / REPO / SHA / "shuttle-jaguar.safetensors").write_bytes(b"x" * 1000)  # never fetched
    (hub / REPO / "refs").mkdir()
    (hub / REPO / "refs" / "main").write_text(SHA)
    return hub


@pytest.fixture
def modal_env(
    tmp_path: Path, fake_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """Point the class at a temp Volume and the fake hub; yield the shared fetcher."""
    volume = tmp_path / "volume"
    fetcher = LocalFolderFetcher(fake_hub)
    monkeypatch.setenv(deploy_app.ENV_WEIGHTS_DIR, str(volume))
    monkeypatch.setenv("JAGUAR_MODEL_ID", REPO)
    monkeypatch.setenv("JAGUAR_MODEL_REVISION", "main")
    monkeypatch.setenv("JAGUAR_SERVER_TOKEN", TOKEN)
    monkeypatch.setattr(deploy_app, "fetcher_factory", lambda: fetcher)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*mounted Volume.*")
        warnings.filterwarnings("ignore", message=".*executing locally.*")
        yield {"volume": volume, "fetcher": fetcher}


def new_container() -> Any:
    """A fresh instance: `.local()` runs its enter hooks on first use, like a cold container."""
    return deploy_app.JaguarModel()


def payload(**request: Any) -> dict[str, Any]:
    request = {"prompt": "white cat holding a sign", "width": 64, "height": 64, **request}
    return {"schema_version": SCHEMA_VERSION, "request": request, "request_id": "req_test"}


def test_cold_start_downloads_then_next_container_uses_the_volume(
    modal_env: dict[str, Any],
) -> None:
    fetcher: LocalFolderFetcher = modal_env["fetcher"]
    first = new_container()
    info = ModelInfo.model_validate(first.info.local())
    assert info.model.source == "huggingface"
    assert info.model.id == REPO
    assert info.model.revision == SHA
    assert info.device == "cpu"
    assert info.extra["snapshot"] == "cpu"
    assert "ensure_s" in info.extra["store_timings"]
    assert fetcher.fetches == 1
    published = modal_env["volume"] / "models" / "acme--tiny-jaguar" / SHA
    assert (published / MANIFEST_NAME).is_file()
    assert not (published / "shuttle-jaguar.safetensors").exists()

    health = HealthStatus.model_validate(first.health.local())
    assert health.ready and health.status == "ok"

    second = new_container()
    info2 = ModelInfo.model_validate(second.info.local())
    assert info2.model.source == "volume"
    assert fetcher.fetches == 1  # no second download


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
    assert result.model.source == "huggingface"


def test_errors_come_back_as_envelopes(modal_env: dict[str, Any]) -> None:
    model = new_container()
    bad = model.generate.local(payload(width=65))
    assert bad["error"]["code"] == "invalid_request"
    assert bad["error"]["field"] == "width"
    old = model.info.local({"schema_version": 99})
    assert old["error"]["code"] == "incompatible_version"


def test_reload_verifies_and_repairs_a_flipped_byte(modal_env: dict[str, Any]) -> None:
    fetcher: LocalFolderFetcher = modal_env["fetcher"]
    model = new_container()
    before = model.generate.local(payload(seed=3))
    assert "error" not in before

    intact = ModelInfo.model_validate(model.reload.local({"schema_version": SCHEMA_VERSION}))
    assert intact.model.source == "volume"  # full sha256 verify passed: no download
    assert fetcher.fetches == 1

    published = modal_env["volume"] / "models" / "acme--tiny-jaguar" / SHA
    weights = sorted((published / "transformer").glob("*.safetensors"))[0]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # same size: only a full hash finds it
    weights.write_bytes(bytes(data))

    repaired = ModelInfo.model_validate(model.reload.local({"schema_version": SCHEMA_VERSION}))
    assert repaired.model.source == "huggingface"
    assert fetcher.fetches == 2
    assert any((modal_env["volume"] / ".trash").iterdir())  # old copy moved aside, not deleted
    after = model.generate.local(payload(seed=3))
    assert GenerationResult.model_validate(after).seed == 3


def test_web_endpoint_serves_the_same_service_with_auth(modal_env: dict[str, Any]) -> None:
    model = new_container()
    web_app = model.web.local()
    transport = httpx.ASGITransport(app=web_app)

    async def go() -> tuple[int, int, int, int]:
        async with httpx.AsyncClient(transport=transport, base_url="http://modal") as http:
            body = {"prompt": "a cat", "width": 64, "height": 64, "seed": 1}
            anon = await http.post("/v1/generate", json=body)
            ok = await http.post(
                "/v1/generate",
                json=body,
                headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
            )
            admin_anon = await http.post("/v1/admin/reload")
            health = await http.get("/v1/health")
            return anon.status_code, ok.status_code, admin_anon.status_code, health.status_code

    import asyncio

    anon, ok, admin_anon, _health = asyncio.run(go())
    assert anon == 401
    assert ok == 200
    assert admin_anon in (401, 403)


def test_web_endpoint_refuses_to_start_without_its_token(
    modal_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAGUAR_SERVER_TOKEN")
    with pytest.raises(RuntimeError, match="modal secret create jaguar-api-token"):
        new_container().web.local()
