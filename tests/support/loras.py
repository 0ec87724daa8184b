"""Fixtures for LoRA adapters: tiny random adapters built with peft, a Hub and a weights folder.

- ``lora_files`` (session): ``style`` and ``other`` fit the tiny model (random, non-zero
  weights: they change its images); ``misfit`` was built for a wider transformer (wrong
  shapes); ``wrong_base`` targets layers Flux does not have (an adapter for another model);
  ``not_lora`` holds no LoRA weight at all.
- ``lora_hub``: a local mirror standing in for the Hub (``LocalFolderFetcher``), holding
  ``acme/tiny-style`` at :data:`LORA_SHA` (``main`` points at it).
- ``weights_root``: a weights folder (the Volume) with the adapters under ``loras/``.
- ``adapter_store`` / ``lora_engine``: the store over both, and a tiny CPU engine using it
  (fresh per test: each starts with an empty adapter cache).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "LORA_REPO",
    "LORA_SHA",
    "adapter_store",
    "lora_engine",
    "lora_files",
    "lora_hub",
    "weights_root",
]

LORA_REPO = "acme/tiny-style"
LORA_SHA = "c0ffee00" * 5


@pytest.fixture(scope="session")
def lora_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("peft", reason="the engine extra (peft) is not installed")
    import torch
    from safetensors.torch import save_file

    from jaguar_sdk.engine import build_tiny_lora
    from jaguar_sdk.engine.tiny import TINY

    root = tmp_path_factory.mktemp("lora-files")
    wide = replace(TINY, attention_head_dim=32, axes_dims_rope=(8, 8, 16))
    files = {
        "style": build_tiny_lora(root / "style", seed=1),
        "other": build_tiny_lora(root / "other", seed=2, rank=8),
        "misfit": build_tiny_lora(root / "misfit", seed=3, sizes=wide),
    }
    generator = torch.Generator().manual_seed(4)
    wrong = {
        f"transformer.down_blocks.0.attentions.0.to_q.lora_{ab}.weight": torch.randn(
            shape, generator=generator
        )
        for ab, shape in (("A", (4, 32)), ("B", (32, 4)))
    }
    files["wrong_base"] = root / "wrong-base.safetensors"
    save_file(wrong, str(files["wrong_base"]))
    files["not_lora"] = root / "not-lora.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(files["not_lora"]))
    return files


@pytest.fixture
def lora_hub(tmp_path: Path, lora_files: dict[str, Path]) -> Path:
    hub = tmp_path / "lora-hub"
    folder = hub / LORA_REPO / LORA_SHA
    folder.mkdir(parents=True)
    shutil.copyfile(lora_files["style"], folder / "tiny-lora.safetensors")
    (hub / LORA_REPO / "refs").mkdir()
    (hub / LORA_REPO / "refs" / "main").write_text(LORA_SHA)
    return hub


@pytest.fixture
def weights_root(tmp_path: Path, lora_files: dict[str, Path]) -> Path:
    root = tmp_path / "weights"
    (root / "loras").mkdir(parents=True)
    for name, path in lora_files.items():
        shutil.copyfile(path, root / "loras" / f"{name.replace('_', '-')}.safetensors")
    return root


@pytest.fixture
def adapter_store(weights_root: Path, lora_hub: Path) -> Any:
    from jaguar_sdk.weights import AdapterStore, LocalFolderFetcher, WeightStore

    return AdapterStore(WeightStore(weights_root), fetcher=LocalFolderFetcher(lora_hub))


@pytest.fixture
def lora_engine(tiny_model_dir: Path, adapter_store: Any) -> Iterator[Any]:
    from jaguar_sdk.engine import Engine

    engine = Engine.load(tiny_model_dir, device="cpu", adapters=adapter_store)
    yield engine
    engine.close()
