"""The CPU weights function: a killed download leaves nothing behind for the next run.

A weights run is killed mid-download (SIGKILL, as Modal stops a container that ran past its
timeout): no ``finally`` runs, so its staging folder and its lock file stay on the Volume. The
killed run was another container (its host name differs, so its pid cannot be checked here) and
its lock goes stale once its heartbeat stops (``_locking.py``: ``stale_after_s``, 600 s); the
test ages the lock by that much instead of waiting. The next run must remove the orphan at once,
not after ``staging_max_age_s`` (6 hours).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import deploy.app as deploy_app
from tests.deploy.fixtures import SHA

ROOT = Path(__file__).resolve().parents[2]

KILLED_RUN = r"""
import os, signal, socket, sys
socket.gethostname = lambda: "container-a"  # the killed run was another container
import deploy.app as deploy_app
from jaguar_sdk.weights import LocalFolderFetcher

fetcher = LocalFolderFetcher(sys.argv[1])
fetcher.on_file = lambda n: n >= 3 and os.kill(os.getpid(), signal.SIGKILL)
deploy_app.fetcher_factory = lambda: fetcher
deploy_app.download_weights.local()
"""


def test_a_killed_download_is_cleaned_by_the_next_run(
    bare_env: dict[str, Any],
    fake_hub: Path,
) -> None:
    volume: Path = bare_env["volume"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_TOKEN")}
    env["PYTHONPATH"] = str(ROOT)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(fake_hub)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    orphans = list((volume / ".staging").iterdir())
    assert len(orphans) == 1 and any(orphans[0].rglob("*.json"))  # partial files left behind
    locks = list((volume / ".locks").iterdir())
    assert len(locks) == 1
    stale = time.time() - 700  # no heartbeat for longer than stale_after_s (600 s)
    os.utime(locks[0], (stale, stale))

    got = deploy_app.download_weights.local()

    assert got["source"] == "huggingface" and got["revision"] == SHA
    assert list((volume / ".staging").iterdir()) == []  # the orphan went with this run
    assert list((volume / ".locks").iterdir()) == []


def test_a_running_download_of_another_revision_is_left_alone(
    bare_env: dict[str, Any],
) -> None:
    volume: Path = bare_env["volume"]
    other = volume / ".staging" / f"acme--tiny-jaguar--{'0' * 40}--1-abc"
    other.mkdir(parents=True)
    (other / "model_index.json").write_text("{}")
    deploy_app.download_weights.local()
    assert other.is_dir()  # not this lock's download: only the 6-hour sweep removes it


@pytest.mark.parametrize("force", [False, True])
def test_the_weights_function_answers_what_it_did(
    bare_env: dict[str, Any],
    force: bool,
) -> None:
    first = deploy_app.download_weights.local()
    again = deploy_app.download_weights.local(force=force)
    assert first["source"] == "huggingface" and again["source"] == "volume"
    assert again["full_verified"] is force
    assert Path(again["path"]).name == SHA
