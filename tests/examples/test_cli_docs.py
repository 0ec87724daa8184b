"""docs/cli.md documents every flag of the commands it covers (a flag in ``--help`` and nowhere
in the docs is a promise nobody checks)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from jaguar_sdk.cli import build_parser
from tests.examples._support import REPO

COVERED = ("generate", "info", "health", "reload", "serve", "model tiny")


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, Any]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(_subparsers(sub, f"{prefix}{name} "))
    return found


@pytest.mark.parametrize("command", COVERED)
def test_every_flag_is_documented(command: str) -> None:
    docs = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = _subparsers(build_parser())[command]
    flags = [
        flag
        for action in parser._actions
        for flag in action.option_strings
        if flag.startswith("--") and flag != "--help"
    ]
    missing = [flag for flag in flags if f"`{flag}" not in docs]
    assert not missing, f"jaguar {command}: {missing} are not in docs/cli.md"
