"""Fixtures for the example tests: run the files in ``examples/`` the way a user would.

The examples run as subprocesses (or, for the notebook, in a Jupyter kernel) with ``cwd`` set to
a fresh ``tmp_path``, so whatever they write lands there. They share one ``JAGUAR_CACHE_DIR`` per
session, so the tiny model is built once; ``JAGUAR_CONFIG`` points at a missing file and the
``JAGUAR_*`` connection variables are cleared, so a developer's own settings never leak in.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.examples._support import REPO

_CLEARED = (
    "JAGUAR_BASE_URL",
    "JAGUAR_API_KEY",
    "JAGUAR_MODEL",
    "JAGUAR_MODAL_APP",
    "JAGUAR_MODAL_CLASS",
    "JAGUAR_MODAL_ENVIRONMENT",
    "JAGUAR_LOG",
)


@pytest.fixture(scope="session")
def example_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of an example subprocess: this venv first on PATH, tiny cached once."""
    pytest.importorskip("diffusers", reason="the engine extra is not installed")
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env["JAGUAR_CACHE_DIR"] = str(tmp_path_factory.mktemp("jaguar-cache"))
    env["JAGUAR_CONFIG"] = str(tmp_path_factory.mktemp("jaguar-config") / "config.json")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"  # the tiny model gains nothing from threads (tests/conftest.py)
    env["TQDM_DISABLE"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    return env
