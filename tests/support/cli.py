"""Run the real ``jaguar`` console script in a subprocess, as a user in a fresh account would.

Each :class:`JaguarCli` has its own temporary ``HOME`` (so the config file is the default
``~/.config/jaguar/config.json`` there), no ``JAGUAR_*`` variable and no ``XDG_CONFIG_HOME`` from
the test's environment, and runs from that home folder (never the checkout, whose sources would
shadow the installed package).

Example:
    >>> cli = JaguarCli(tmp_path / "home")                    # doctest: +SKIP
    >>> cli("health", "--url", server.url).returncode         # doctest: +SKIP
    0
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["JaguarCli", "console_script"]


def console_script(python: str | os.PathLike[str] = sys.executable) -> Path:
    """The ``jaguar`` script installed next to ``python`` (the entry point pip made)."""
    script = Path(python).with_name("jaguar")
    assert script.is_file(), f"{script} is missing: install the package (bash scripts/setup.sh)"
    return script


class JaguarCli:
    """The ``jaguar`` command of one environment, with a home folder of its own.

    Args:
        home: The temporary ``HOME`` (created).
        script: The console script; the test environment's one when omitted.
        env: Extra environment variables for every run.

    Attributes:
        config_path: Where the command keeps its config file.
    """

    def __init__(
        self, home: Path, script: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.script = script or console_script()
        self.config_path = home / ".config" / "jaguar" / "config.json"
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("JAGUAR_") and k not in ("XDG_CONFIG_HOME", "PYTHONPATH")
        }
        self.env = {**base, "HOME": str(home), **(env or {})}

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``jaguar ARGS...``; returns the finished process (text output)."""
        return subprocess.run(
            [str(self.script), *args],
            cwd=self.home,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def config(self) -> dict[str, Any]:
        """The saved config file (``{}`` when there is none)."""
        if not self.config_path.exists():
            return {}
        data: dict[str, Any] = json.loads(self.config_path.read_text(encoding="utf-8"))
        return data
