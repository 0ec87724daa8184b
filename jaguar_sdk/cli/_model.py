"""``jaguar model ...``: manage model weights.

``jaguar model tiny DIR`` builds the tiny offline test model. More ``model`` sub-commands
(``status``, ``check``, ...) live in their own modules named in :data:`MODEL_COMMAND_MODULES`,
each exposing ``register_model(model_subparsers)``. Heavy imports happen inside handlers only.
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path
from typing import Any

from .._extras import require_extras

__all__ = ["MODEL_COMMAND_MODULES", "register"]

#: Modules under ``jaguar_sdk.cli`` that add ``jaguar model <name>`` sub-commands through
#: ``register_model(model_subparsers)``. ``tiny`` is registered here.
MODEL_COMMAND_MODULES: tuple[str, ...] = ("_model_versions",)


def register(subparsers: Any) -> None:
    """Add the ``model`` command and its sub-commands.

    Args:
        subparsers: The root parser's sub-parsers action.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "model",
        help="manage model weights (build the tiny test model, ...)",
        description="Manage model weights.",
    )
    model_subparsers = parser.add_subparsers(dest="model_command", metavar="MODEL_COMMAND")
    parser.set_defaults(handler=lambda args: _print_help(parser))
    _register_tiny(model_subparsers)
    for name in MODEL_COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register_model(model_subparsers)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _register_tiny(model_subparsers: Any) -> None:
    parser: argparse.ArgumentParser = model_subparsers.add_parser(
        "tiny",
        help="build the tiny random Flux model (offline, under 1 MB) into a folder",
        description=(
            "Build the tiny randomly initialised FluxPipeline (the structure of shuttle-jaguar "
            "in under 1 MB; images look like noise) into DIR, in diffusers layout. "
            "No network. Serve it with `jaguar serve --model DIR`."
        ),
    )
    parser.add_argument("directory", metavar="DIR", help="folder to write (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (0)")
    parser.set_defaults(handler=_run_tiny)


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _run_tiny(args: argparse.Namespace) -> int:
    require_extras("engine", what="`jaguar model tiny`")
    from ..engine import build_tiny_model

    started = time.perf_counter()
    folder = build_tiny_model(args.directory, seed=args.seed)
    elapsed = time.perf_counter() - started
    size = _folder_size(folder)
    print(folder)
    print(f"tiny model written: {_human(size)} ({size} bytes) in {elapsed:.2f}s")
    return 0
