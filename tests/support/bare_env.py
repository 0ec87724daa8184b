"""A virtual environment holding ``pip install jaguar-sdk`` with no extras, built offline.

It models a user's bare install faithfully: a fresh venv (no system or project site-packages),
the package installed from a wheel of this checkout, and its base dependencies resolved by pip
from the package's own metadata, with no index but a folder of wheels. That folder is filled
once from the package registry (``pip download`` of ``[project].dependencies``) and kept under
``.venv/`` for later runs, so the suite needs the registry only on the first run of a checkout.

Example:
    >>> env = build_bare_env(tmp_path)               # doctest: +SKIP
    >>> env.python, env.script("jaguar")             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pip vendors the same parser
    from pip._vendor import tomli as tomllib

__all__ = ["REPO", "BareEnv", "base_requirements", "build_bare_env", "pyproject"]

REPO = Path(__file__).resolve().parents[2]
_PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]


@dataclass(frozen=True)
class BareEnv:
    """The bare environment.

    Attributes:
        root: The venv folder.
        python: Its interpreter.
    """

    root: Path
    python: Path

    def script(self, name: str) -> Path:
        """A console script of the environment (``jaguar``)."""
        return self.root / "bin" / name


def pyproject() -> dict[str, Any]:
    """This checkout's ``pyproject.toml``."""
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def base_requirements() -> list[str]:
    """``[project].dependencies`` of this checkout: what ``pip install jaguar-sdk`` brings."""
    return [str(r) for r in pyproject()["project"]["dependencies"]]


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def _base_wheels() -> Path:
    """The wheels of the base dependencies (downloaded once per dependency list)."""
    wanted = base_requirements()
    key = hashlib.sha256("\n".join([sys.version, *wanted]).encode()).hexdigest()[:16]
    folder = REPO / ".venv" / "bare-install-wheels" / key
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        _run([*_PIP, "download", "--only-binary=:all:", "--dest", str(folder), *wanted])
        (folder / ".complete").write_text("\n".join(wanted) + "\n", encoding="utf-8")
    return folder


def _project_wheel(work: Path) -> Path:
    """A wheel of this checkout, built from a copy (the build leaves nothing in the checkout)."""
    source = work / "src"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "jaguar_sdk",
        source / "jaguar_sdk",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dist = work / "dist"
    _run([*_PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)])
    return dist


def build_bare_env(work: Path) -> BareEnv:
    """Build the bare environment under ``work``.

    Args:
        work: An empty temporary folder.

    Returns:
        The environment, with ``jaguar-sdk`` and its base dependencies only.

    Raises:
        RuntimeError: A pip step failed (its output is in the message).
    """
    wheels = _base_wheels()
    dist = _project_wheel(work)
    root = work / "bare"
    # sys._base_executable: the interpreter this venv was made from, not the project's venv.
    base_python = getattr(sys, "_base_executable", sys.executable)
    _run([base_python, "-m", "venv", "--without-pip", str(root)])
    python = root / "bin" / "python"
    _run(
        [*_PIP, "--python", str(python), "install", "--no-index",
         "--find-links", str(wheels), "--find-links", str(dist), "jaguar-sdk"]
    )  # fmt: skip
    return BareEnv(root=root, python=python)
