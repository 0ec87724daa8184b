"""Session-wide fixtures shared by every test folder.

``tiny_model_dir``: the tiny random Flux model, built once per session (about 0.1 s after the
imports). ``tiny_engine``: an :class:`jaguar_sdk.engine.Engine` on CPU loaded from it, warmed up.
Both need the ``engine`` extra (torch, diffusers); tests that use them are skipped without it.
Do not ``close()`` the shared engine in a test: build your own ``Engine`` for that.

Torch is limited to one intra-op thread here: the tiny model's kernels gain nothing from
threads, and on a busy 2-core machine two OpenMP threads made a 64x64 generation ~8x slower
(0.36-0.5 s instead of 0.05 s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: The deployment's fixtures (fake Hub, Volume folder, Modal stand-ins) and the two-revision Hub,
#: for the deploy, jobs and transport tests.
pytest_plugins = [
    "tests.deploy.fixtures",
    "tests.versions.versions_fixtures",
    "tests.support.loras",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("diffusers", reason="the engine extra is not installed")
    import torch

    from jaguar_sdk.engine import build_tiny_model

    torch.set_num_threads(1)

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny")


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path) -> Any:
    from jaguar_sdk.engine import Engine

    engine = Engine.load(tiny_model_dir, device="cpu")
    engine.warmup()
    yield engine
    engine.close()
