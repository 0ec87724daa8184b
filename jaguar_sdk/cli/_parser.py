"""The argument parser of ``jaguar``: a mistyped flag is reported by its own sub-command.

With plain argparse, a sub-command hands the arguments it does not know back to the root parser
(``_SubParsersAction.__call__`` calls ``parser.parse_known_args`` and stores the rest under
``_UNRECOGNIZED_ARGS_ATTR``, Lib/argparse.py), so ``jaguar generate --szie 64`` printed the
root's usage. Here every parser refuses unknown arguments itself, with its own usage and the
closest flag it does know.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any

__all__ = ["JaguarArgumentParser"]


class JaguarArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that names the closest known flag for an unknown one.

    Sub-parsers made by :meth:`add_subparsers` are of this class too (argparse builds them with
    the parent's class), so each level reports its own mistakes.

    Example:
        >>> parser = JaguarArgumentParser(prog="demo")
        >>> _ = parser.add_argument("--size")
        >>> parser.suggest(["--szie", "64"])
        'unrecognized arguments: --szie 64 (did you mean --size?)'
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse, and refuse what is left over (see the module docstring)."""
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(self.suggest(extras))
        return parsed, extras

    def suggest(self, extras: list[str]) -> str:
        """The "unrecognized arguments" message, with the closest known flag of each."""
        known = [flag for flag in self._option_string_actions if flag.startswith("--")]
        hints: list[str] = []
        for extra in extras:
            if not extra.startswith("--"):
                continue
            close = difflib.get_close_matches(extra.partition("=")[0], known, n=1, cutoff=0.6)
            if close and close[0] not in hints:
                hints.append(close[0])
        message = f"unrecognized arguments: {' '.join(extras)}"
        if hints:
            message += f" (did you mean {' or '.join(hints)}?)"
        return message
