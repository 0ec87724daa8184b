"""Fixtures: a fake Hub holding two tiny-model revisions, and a local folder as the Volume."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = "acme/tiny-jaguar"
SHA_A = "a" * 40
SHA_B = "b" * 40
#: The files that differ between revisions A and B.
CHANGED = (
    "transformer/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
)


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two tiny models (seeds 0 and 1): same configs/tokenizers, different weights."""
    from jaguar_sdk.engine.tiny import build_tiny_model

    base = tmp_path_factory.mktemp("tiny")
    return build_tiny_model(base / "a", seed=0), build_tiny_model(base / "b", seed=1)


def set_main(hub: Path, sha: str) -> None:
    """Point the fake Hub's ``main`` at ``sha``."""
    (hub / REPO / "refs").mkdir(parents=True, exist_ok=True)
    (hub / REPO / "refs" / "main").write_text(sha)


@pytest.fixture
def hub(tmp_path: Path, tiny_pair: tuple[Path, Path]) -> Path:
    """``hub/<repo>/<SHA_A|SHA_B>/``, ``main`` -> SHA_A. B is A with the files in
    :data:`CHANGED` taken from the other seed."""
    root = tmp_path / "hub"
    shutil.copytree(tiny_pair[0], root / REPO / SHA_A)
    shutil.copytree(tiny_pair[0], root / REPO / SHA_B)
    for rel in CHANGED:
        shutil.copyfile(tiny_pair[1] / rel, root / REPO / SHA_B / rel)
    set_main(root, SHA_A)
    return root


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    """An empty local folder standing in for the Volume."""
    path = tmp_path / "volume"
    path.mkdir()
    return path
