"""LoRA adapters on the tiny engine: applied to one request only, downloaded once to the Volume
and verified, cached (LRU), refused with a clear error when they do not fit, and swapped into a
compiled transformer without recompiling.

The adapters are tiny random ones built with peft (``tests/support/loras.py``); the Hub is a
local mirror (``LocalFolderFetcher``), the Volume a temporary folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from jaguar_sdk import GenerateRequest, InvalidRequestError
from jaguar_sdk.engine import Engine
from jaguar_sdk.weights import AdapterStore, LocalFolderFetcher, WeightStore
from jaguar_sdk.weights.manifest import verify_folder
from tests.support.loras import LORA_REPO, LORA_SHA

STYLE = "volume:loras/style.safetensors"
OTHER = "volume:loras/other.safetensors"


def image(engine: Engine, loras: list[str] | None = None, seed: int = 11) -> bytes:
    fields: dict[str, Any] = {"prompt": "a cat", "width": 64, "height": 64, "seed": seed}
    if loras is not None:
        fields["loras"] = loras
    result = engine.generate(GenerateRequest.model_validate(fields), request_id="req_lora")
    return result.images[0].data


def adapters_in(engine: Engine) -> set[str]:
    return {name for names in engine.pipeline.get_list_adapters().values() for name in names}


def test_one_requests_adapter_never_leaks_into_the_next(lora_engine: Engine) -> None:
    first = image(lora_engine)
    styled = image(lora_engine, [f"{STYLE}:0.8"])
    last = image(lora_engine)
    assert first == last  # seed S, then a LoRA, then seed S again: identical bytes
    assert styled != first
    assert image(lora_engine, [f"{STYLE}:0.8"]) == styled  # and the LoRA is deterministic too
    # inactive between requests: every LoRA layer is switched off
    assert all(
        getattr(module, "disable_adapters", True)
        for module in lora_engine.pipeline.transformer.modules()
        if hasattr(module, "lora_A")
    )


def test_scales_and_combinations_change_the_image(lora_engine: Engine) -> None:
    base = image(lora_engine)
    outputs = {
        image(lora_engine, [f"{STYLE}:0.4"]),
        image(lora_engine, [f"{STYLE}:1.2"]),
        image(lora_engine, [OTHER]),
        image(lora_engine, [f"{STYLE}:0.4", OTHER]),
    }
    assert len(outputs) == 4 and base not in outputs
    assert image(lora_engine, [f"{STYLE}:0"]) == base  # scale 0 adds exactly nothing
    # the same bytes under two names (the Hub copy of style) are one adapter, scales added
    assert image(lora_engine, [f"{STYLE}:0.5", f"{LORA_REPO}:0.7"]) == image(
        lora_engine, [f"{STYLE}:1.2"]
    )


def test_a_hub_adapter_is_downloaded_once_to_the_volume_and_verified(
    tiny_model_dir: Path, weights_root: Path, lora_hub: Path
) -> None:
    fetcher = LocalFolderFetcher(lora_hub)
    engine = Engine.load(
        tiny_model_dir,
        device="cpu",
        adapters=AdapterStore(WeightStore(weights_root), fetcher=fetcher),
    )
    first = image(engine, [f"{LORA_REPO}:0.8"])
    assert image(engine, [f"{LORA_REPO}:0.8"]) == first
    assert fetcher.fetches == 1
    folder = weights_root / "adapters" / "acme--tiny-style" / f"{LORA_SHA}--any"
    report = verify_folder(folder, full=True)  # sizes and sha256 against its manifest
    assert report.ok and not report.extra, report.summary()
    assert (weights_root / "adapters" / "acme--tiny-style" / "refs" / "main").read_text() == (
        LORA_SHA
    )
    assert not list((weights_root / ".staging").iterdir())
    # the same bytes from the Volume path: one cache entry (the key is the content's sha256)
    assert image(engine, ["volume:loras/style.safetensors:0.8"]) == first
    assert len(engine.info().extra["lora"]["cached"]) == 1
    engine.close()

    # another container on the same Volume: no download
    again = Engine.load(
        tiny_model_dir,
        device="cpu",
        adapters=AdapterStore(WeightStore(weights_root), fetcher=fetcher),
    )
    assert image(again, [f"{LORA_REPO}/tiny-lora.safetensors@main:0.8"]) == first
    assert fetcher.fetches == 2  # weight_name given: its own verified copy, fetched once
    assert image(again, [f"{LORA_REPO}:0.8"]) == first and fetcher.fetches == 2
    again.close()


def test_the_cache_is_bounded_least_recently_used_first(
    tiny_model_dir: Path, adapter_store: AdapterStore, weights_root: Path, lora_files: Any
) -> None:
    from jaguar_sdk.engine.tiny import build_tiny_lora

    for seed in (5, 6):
        build_tiny_lora(weights_root / "loras", seed=seed, weight_name=f"s{seed}.safetensors")
    engine = Engine(
        Engine.load(tiny_model_dir, device="cpu").pipeline,
        model_ref=Engine.load_to_cpu(tiny_model_dir).model_ref,
        dtype=torch.float32,
        adapters=adapter_store,
        max_cached_adapters=3,
    )
    base = image(engine)
    for name in ("style", "other", "s5", "style", "s6"):  # "other" is the least recent
        image(engine, [f"volume:loras/{name}.safetensors"])
    cached = [item["source"] for item in engine.info().extra["lora"]["cached"]]
    assert cached == [f"volume:loras/{n}.safetensors" for n in ("s6", "style", "s5")]
    assert len(adapters_in(engine)) == 3
    assert image(engine) == base
    with pytest.raises(ValueError, match="at least 3"):
        Engine(engine.pipeline, model_ref=engine.model_ref, dtype=torch.float32,
               max_cached_adapters=2)  # fmt: skip


@pytest.mark.parametrize(
    ("adapter", "words"),
    [
        ("volume:loras/misfit.safetensors", "has shape (4, 64), expected (r, 32)"),
        ("volume:loras/wrong-base.safetensors", "no layer transformer.down_blocks"),
        ("volume:loras/not-lora.safetensors", "does not fit this model"),
    ],
)
def test_an_adapter_that_does_not_fit_is_refused_and_the_engine_serves_on(
    lora_engine: Engine, adapter: str, words: str
) -> None:
    base = image(lora_engine)
    with pytest.raises(InvalidRequestError) as info:
        image(lora_engine, [STYLE, adapter])
    assert info.value.field == "loras" and info.value.code == "adapter_mismatch"
    assert words in info.value.message, info.value.message
    assert image(lora_engine) == base  # nothing of it was loaded: same bytes as before
    assert adapters_in(lora_engine) <= {e.name for e in lora_engine.loras._entries.values()}
    assert image(lora_engine, [STYLE]) != base  # and adapters still work


@pytest.mark.parametrize(
    ("adapter", "words"),
    [
        ("volume:loras/missing.safetensors", "no file 'loras/missing.safetensors'"),
        ("volume:adapters/x.safetensors", "holds the store's own copies"),
        ("volume:models/x.safetensors", "holds the store's own copies"),
        ("acme/no-such-repo", "not found"),
        (f"{LORA_REPO}/other.safetensors", "not found"),
    ],
)
def test_an_adapter_that_is_not_there_is_refused_by_name(
    lora_engine: Engine, adapter: str, words: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        image(lora_engine, [adapter])
    assert info.value.field == "loras" and words in info.value.message, info.value.message


def test_a_path_may_not_leave_the_volume(lora_engine: Engine, weights_root: Path) -> None:
    outside = weights_root.parent / "outside.safetensors"
    outside.write_bytes((weights_root / "loras" / "style.safetensors").read_bytes())
    (weights_root / "loras" / "link.safetensors").symlink_to(outside)
    with pytest.raises(InvalidRequestError, match="leads off the Volume"):
        image(lora_engine, ["volume:loras/link.safetensors"])


def test_an_engine_without_an_adapter_store_refuses_loras(tiny_engine: Engine) -> None:
    with pytest.raises(InvalidRequestError, match="without an adapter store") as info:
        image(tiny_engine, [STYLE])
    assert info.value.field == "loras"
    assert tiny_engine.info().extra["lora"]["store"] is False


def test_info_lists_the_cached_adapters(lora_engine: Engine) -> None:
    image(lora_engine, [OTHER, f"{LORA_REPO}:0.5"])
    lora = lora_engine.info().extra["lora"]
    assert lora["mode"] == "eager" and lora["max_cached"] == 8
    assert [item["source"] for item in lora["cached"]] == [LORA_REPO, OTHER]
    assert {item["revision"] for item in lora["cached"]} == {LORA_SHA, None}
    assert all(len(item["sha256"]) == 64 and item["uses"] == 1 for item in lora["cached"])


def test_hotswap_switches_adapters_in_a_compiled_transformer_without_recompiling(
    tiny_model_dir: Path, adapter_store: AdapterStore
) -> None:
    """torch.compile with the eager backend: Dynamo traces and guards exactly as with inductor
    (the graphs just run eagerly), so its counters show every (re)compilation on a CPU."""
    from torch._dynamo.utils import counters

    eager = Engine.load(tiny_model_dir, device="cpu", adapters=adapter_store)
    expected = {
        key: image(eager, loras)
        for key, loras in {
            "none": None,
            "style": [f"{STYLE}:0.8"],
            "other": [OTHER],
            "style-0.3": [f"{STYLE}:0.3"],
            "both": [f"{STYLE}:0.8", OTHER],
        }.items()
    }
    eager.close()

    engine = Engine.load(tiny_model_dir, device="cpu", adapters=adapter_store)
    engine.loras.enable_hotswap(engine.pipeline, slots=3, rank=8)
    assert image(engine) == expected["none"]  # the zero slots change nothing
    torch._dynamo.reset()
    counters.clear()
    engine.pipeline.transformer.compile_repeated_blocks(fullgraph=True, backend="eager")
    warm = [None, [f"{STYLE}:0.8"], [f"{STYLE}:0.8", OTHER]]  # each active-slot count once
    for loras in warm:
        image(engine, loras)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    got = {
        "style": image(engine, [f"{STYLE}:0.8"]),
        "other": image(engine, [OTHER]),  # another adapter into slot 0
        "style-0.3": image(engine, [f"{STYLE}:0.3"]),  # another scale
        "none": image(engine),
        "both": image(engine, [f"{STYLE}:0.8", OTHER]),
    }
    assert counters["stats"]["unique_graphs"] == graphs  # no recompilation on any switch
    assert got == {key: expected[key] for key in got}  # the same images as without compile
    lora = engine.info().extra["lora"]
    assert lora["mode"] == "hotswap" and lora["slots"] == 3 and lora["swaps"] >= 4
    engine.close()


def test_hotswap_refuses_what_a_slot_cannot_hold(
    tiny_model_dir: Path, adapter_store: AdapterStore
) -> None:
    engine = Engine.load(tiny_model_dir, device="cpu", adapters=adapter_store)
    engine.loras.enable_hotswap(engine.pipeline, slots=3, rank=4)
    with pytest.raises(InvalidRequestError, match="rank 8 is above this server's hotswap rank 4"):
        image(engine, [OTHER])  # rank 8 > the slots' 4
    assert image(engine, [STYLE]) != image(engine)  # rank 4 fits
    engine.close()


def test_a_failed_download_is_a_retryable_502_and_nothing_is_published(
    tiny_model_dir: Path, weights_root: Path, lora_hub: Path
) -> None:
    from jaguar_sdk import ServerError
    from jaguar_sdk._core import is_retryable

    class Offline(LocalFolderFetcher):
        def fetch(self, *args: Any, **kwargs: Any) -> str:
            raise ConnectionError("the network is down")

        def fetch_files(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionError("the network is down")

    engine = Engine.load(
        tiny_model_dir,
        device="cpu",
        adapters=AdapterStore(WeightStore(weights_root), fetcher=Offline(lora_hub)),
    )
    with pytest.raises(ServerError) as info:
        image(engine, [LORA_REPO])
    assert info.value.status_code == 502 and info.value.code == "adapter_download_failed"
    assert is_retryable(info.value)
    assert not list((weights_root / "adapters").rglob("*.safetensors"))  # nothing published
    assert image(engine, [STYLE]) != image(engine)  # the engine serves on
    engine.close()
