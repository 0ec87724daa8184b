"""Messages in the command line's words: the same messages, each Python phrase as its flag.

Errors are written once, for the Python API, with the phrases of
:data:`jaguar_sdk._exceptions.PHRASES` ("pass api_key=...", "raise timeout="); the command line
prints them through :func:`for_cli`, which swaps each phrase for the flag that does the same
(``--token TOKEN``, ``--timeout SECONDS``). A test keeps the two tables' keys equal.
"""

from __future__ import annotations

from .. import _constants as C
from .._exceptions import PHRASES

__all__ = ["CLI_PHRASES", "for_cli"]

#: The flag for each phrase of :data:`~jaguar_sdk._exceptions.PHRASES` (same keys).
CLI_PHRASES: dict[str, str] = {
    "http": "`jaguar generate --url http://host:8000 --token TOKEN`",
    "modal": f"`jaguar generate --modal-app {C.DEFAULT_MODAL_APP}`",
    "local": "`jaguar generate --local tiny`",
    "api_key": "pass --token TOKEN",
    "admin_key": "--admin-token TOKEN",
    "timeout": "raise --timeout SECONDS",
    "deadline": "",  # the command line has no per-call deadline
}


def for_cli(message: str) -> str:
    """``message`` with every Python phrase replaced by its command-line flag.

    Example:
        >>> for_cli("A cold start can take minutes: raise timeout= or use deadline=.")
        'A cold start can take minutes: raise --timeout SECONDS.'
    """
    # Longest first, so a phrase inside another one is never replaced on its own.
    for key in sorted(PHRASES, key=lambda k: -len(PHRASES[k])):
        message = message.replace(PHRASES[key], CLI_PHRASES[key])
    return message
