"""The ``jaguar`` command line.

Each sub-command lives in its own module with a ``register(subparsers)`` function; heavy
imports happen inside the command handlers, so ``jaguar --help`` stays fast. Errors are the
library's messages in the command line's words (:func:`~jaguar_sdk.cli._wording.for_cli`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .._exceptions import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    JaguarError,
    NotFoundError,
)
from .._version import __version__
from ._parser import JaguarArgumentParser
from ._wording import for_cli

__all__ = ["EXIT_CODES", "build_parser", "main"]

_COMMAND_MODULES = ("_client_commands", "_serve", "_model")

#: Exit status per error class; the first matching class wins.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidRequestError, 2),
    (ConfigurationError, 3),
    (AuthenticationError, 4),
    (NotFoundError, 5),
    (JaguarError, 1),
)


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every sub-command registered."""
    parser = JaguarArgumentParser(
        prog="jaguar",
        description="Shuttle Jaguar text-to-image: generate, serve and manage the model.",
    )
    parser.add_argument("--version", action="version", version=f"jaguar-sdk {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jaguar`` command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns:
        The exit status: 0 on success, 2 for invalid input, 3 for configuration, 4 for auth,
        5 for not found, 1 for any other error, 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    from .._logging import configure_logging

    configure_logging({0: None, 1: "info"}.get(args.verbose, "debug"))
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except JaguarError as exc:
        print(f"error: {for_cli(str(exc))}", file=sys.stderr)
        return next(code for cls, code in EXIT_CODES if isinstance(exc, cls))
    except OSError as exc:
        logging.getLogger("jaguar_sdk.cli").debug("OS error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1
