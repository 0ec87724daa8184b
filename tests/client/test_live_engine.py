"""Both clients against a real server running the real tiny FluxPipeline, and in-process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jaguar_sdk import (
    AsyncJaguarClient,
    AuthenticationError,
    GenerationResult,
    InvalidRequestError,
    JaguarClient,
)
from tests.client.conftest import ADMIN_KEY, API_KEY

SMALL: dict[str, Any] = {"width": 64, "height": 64, "steps": 2}


@pytest.fixture(scope="module")
def tiny_live(real_tiny_engine: Any) -> Any:
    from jaguar_sdk.server import create_app
    from jaguar_sdk.server._service import JaguarService
    from tests.support import LiveServer

    service = JaguarService(lambda: real_tiny_engine)
    service.start()
    with LiveServer(create_app(service, api_key=API_KEY, admin_key=ADMIN_KEY)) as server:
        yield server


def test_sync_client_against_the_tiny_engine(tiny_live: Any, tmp_path: Any) -> None:
    with JaguarClient(base_url=tiny_live.url, api_key=API_KEY) as client:
        result = client.generate("a tiny jaguar", seed=11, output_format="png", **SMALL)
        assert result.seed == 11 and result.model.id == "tiny"
        assert result.image.to_pil().size == (64, 64) and result.image.format == "png"
        again = client.generate("a tiny jaguar", seed=11, output_format="png", **SMALL)
        assert again.image.data == result.image.data  # deterministic per seed
        assert result.timings.total_s > 0 and result.request_id
        assert result.save(tmp_path / "out.png")[0].exists()

        info = client.info()
        assert info.model.id == "tiny" and info.loaded and info.device == "cpu"
        health = client.health()
        assert health.ready and health.status == "ok"

        with pytest.raises(AuthenticationError):
            client.reload_model()  # the API key is not the admin key
        reloaded = client.reload_model(admin_key=ADMIN_KEY)
        assert reloaded.model.id == "tiny"

        out = client.generate_many(
            ["a cat", {"prompt": "a dog", "width": 1000}, "a bird"], concurrency=2, **SMALL
        )
    assert [type(r).__name__ for r in out] == [
        "GenerationResult",
        "InvalidRequestError",
        "GenerationResult",
    ]
    assert isinstance(out[1], InvalidRequestError) and out[1].field == "width"
    assert [r.prompt for r in out if isinstance(r, GenerationResult)] == ["a cat", "a bird"]


def test_async_client_against_the_tiny_engine(tiny_live: Any) -> None:
    async def main() -> None:
        async with AsyncJaguarClient(base_url=tiny_live.url, api_key=API_KEY) as client:
            result = await client.generate("a tiny jaguar", seed=11, **SMALL)
            assert result.seed == 11 and result.image.to_pil().size == (64, 64)
            assert (await client.info()).model.id == "tiny"
            assert (await client.health()).ready
            assert (await client.reload_model(admin_key=ADMIN_KEY)).loaded
            out = await client.generate_many(
                ["one", "", "three", "four"], concurrency=2, seed=1, **SMALL
            )
            assert [type(r).__name__ for r in out] == [
                "GenerationResult",
                "InvalidRequestError",
                "GenerationResult",
                "GenerationResult",
            ]
            assert isinstance(out[1], InvalidRequestError) and out[1].field == "prompt"
            assert [r.prompt for r in out if isinstance(r, GenerationResult)] == [
                "one",
                "three",
                "four",
            ]

    asyncio.run(main())


def test_local_client_end_to_end(
    monkeypatch: pytest.MonkeyPatch, client_cache_dir: str, tiny_live: Any
) -> None:
    monkeypatch.setenv("JAGUAR_CACHE_DIR", client_cache_dir)
    with JaguarClient.local(model="tiny", device="cpu") as client:
        assert "model='tiny'" in repr(client)
        result = client.generate("a tiny jaguar", seed=11, **SMALL)
        assert result.model.id == "tiny" and result.model.source == "local"
        assert client.health().ready and client.info().model.id == "tiny"
        with pytest.raises(InvalidRequestError) as info:
            client.generate("x", width=1000)
        assert info.value.field == "width"
    # identical in shape (and, for the same seed, in pixels) to the HTTP path
    with JaguarClient(base_url=tiny_live.url, api_key=API_KEY) as http_client:
        over_http = http_client.generate("a tiny jaguar", seed=11, **SMALL)
    assert set(result.model_dump()) == set(over_http.model_dump())
    assert result.image.data == over_http.image.data


def test_async_local_client(monkeypatch: pytest.MonkeyPatch, client_cache_dir: str) -> None:
    monkeypatch.setenv("JAGUAR_CACHE_DIR", client_cache_dir)

    async def main() -> None:
        client = AsyncJaguarClient.local(model="tiny", device="cpu")
        async with client:
            results = await client.generate_many(["a", "b"], **SMALL)
            assert all(isinstance(r, GenerationResult) for r in results)

    asyncio.run(main())


def test_local_timeout_does_not_generate_twice(fast_retries: Any) -> None:
    from jaguar_sdk import JaguarTimeoutError
    from jaguar_sdk._transports.local import LocalTransport
    from jaguar_sdk.server._service import JaguarService
    from tests.support import FakeEngine

    engine = FakeEngine(delay_s=1.0)
    service = JaguarService(lambda: engine)
    service.start()
    with JaguarClient(transport=LocalTransport(service), timeout=0.2, max_retries=1) as client:
        with pytest.raises(JaguarTimeoutError):
            client.generate("a cat", width=64, height=64)  # two attempts, one run
        assert engine.calls == 1
        result = client.generate("a cat", width=64, height=64, timeout=2, idempotency_key="k1")
        assert result.images
    assert engine.calls == 2  # one per logical call; the timed-out retry reused the first run
