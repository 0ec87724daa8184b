"""The documentation site builds with ``mkdocs build --strict``: a broken link, a missing page
in the nav or a docstring mkdocstrings cannot render fails the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.examples._support import REPO


def test_docs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(REPO / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"

    client = (site / "reference" / "client" / "index.html").read_text(encoding="utf-8")
    for anchor in (
        "jaguar_sdk.JaguarClient.generate",
        "jaguar_sdk.AsyncJaguarClient.generate_many",
    ):
        assert f'id="{anchor}"' in client, f"API reference lacks {anchor}"
    for page in ("quickstart", "cli", "errors", "deploy", "architecture", "performance", "server"):
        assert (site / page / "index.html").is_file(), page
