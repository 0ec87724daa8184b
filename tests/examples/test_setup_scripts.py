"""``scripts/setup.sh`` and ``scripts/generate.sh`` say what they are doing before each slow step.

The scripts run from a copy of the checkout whose ``.venv/bin/python`` and ``.venv/bin/jaguar``
are stand-ins that only record their arguments (the real install takes minutes and the network),
so the test sees what a user sees on a first run: each message, then the step it announces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.examples._support import REPO

STAND_IN = '#!/usr/bin/env bash\necho "ran: $(basename "$0") $*"\n'


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    for name in ("scripts/setup.sh", "scripts/generate.sh", "pyproject.toml"):
        shutil.copy2(REPO / name, root / name)
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "jaguar"):
        (bin_dir / name).write_text(STAND_IN)
        (bin_dir / name).chmod(0o755)
    return root


def _run(script: Path) -> list[str]:
    done = subprocess.run(
        ["bash", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in the order the user reads it
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": "false"},  # no real venv is made
    )
    assert done.returncode == 0, done.stdout
    return done.stdout.splitlines()


def _before(lines: list[str], message: str, step: str) -> None:
    said = next(i for i, line in enumerate(lines) if message in line)
    ran = next(i for i, line in enumerate(lines) if line.startswith("ran: ") and step in line)
    assert said < ran, lines


def test_setup_announces_each_install_step_and_is_silent_when_done(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lines = _run(root / "scripts" / "setup.sh")
    _before(lines, "setup: step 1/2: torch==2.13.0", "torch==2.13.0")
    _before(lines, "setup: step 2/2: jaguar-sdk[all,dev]", ".[all,dev]")
    assert lines[-1].startswith("setup: done in ")
    assert _run(root / "scripts" / "setup.sh") == []  # installed: nothing to say or do


def test_generate_says_what_it_runs(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lines = _run(root / "scripts" / "generate.sh")
    assert lines[0].startswith("setup: installing into .venv")
    _before(lines, "generate: jaguar generate --local tiny", "generate --local tiny")
