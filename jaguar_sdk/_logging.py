"""Logging: stdlib ``logging`` under the ``jaguar_sdk`` logger, switched on by ``JAGUAR_LOG``.

Secrets never reach a log line: a filter redacts bearer tokens, API keys and Modal proxy
secrets from every message and argument that passes through the ``jaguar_sdk`` loggers.
The same filter escapes control characters (CR, LF, ESC, NUL, U+2028...), so text that came
from a request (a path with ``%0A``, a webhook URL) can never forge a log line or a terminal
escape.
"""

from __future__ import annotations

import logging
import os
import re

from ._constants import ENV_LOG

__all__ = ["RedactingFilter", "configure_logging", "escape_controls", "get_logger", "redact"]

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s'\",]+"),
    re.compile(
        r"(?i)((?:api[_-]?key|token|secret|password|modal-secret|modal-key)"
        r"['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"
    ),
    re.compile(r"\b(wk|ws|ak|as|hf)(-|_)[A-Za-z0-9]{6,}"),
)


def redact(text: str) -> str:
    """Replace anything that looks like a credential with ``***``.

    Example:
        >>> redact("Authorization: Bearer abc123")
        'Authorization: Bearer ***'
    """
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 2 and pattern.pattern.startswith(r"\b"):
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
        else:
            text = pattern.sub(lambda m: f"{m.group(1)}***", text)
    return text


#: C0 and C1 controls, DEL, the Unicode line and paragraph separators, and lone surrogates.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def escape_controls(text: str) -> str:
    r"""Write control characters as visible escapes (``\n`` becomes ``\x0a``).

    Example:
        >>> escape_controls("GET /x\r\nPOST /v1/admin/reload 200")
        'GET /x\\x0d\\x0aPOST /v1/admin/reload 200'
    """
    return _CONTROLS.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) <= 0xFF else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )


class RedactingFilter(logging.Filter):
    """A logging filter that redacts credentials and escapes control characters.

    It works on the formatted message (never on the traceback the handler's formatter adds),
    so a multi-line traceback stays readable while no argument can add a line of its own.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = escape_controls(redact(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_logger = logging.getLogger("jaguar_sdk")
_logger.addFilter(RedactingFilter())
_logger.addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """A ``jaguar_sdk`` logger whose records are redacted at the source.

    A filter on the parent ``jaguar_sdk`` logger does not see records logged on its children,
    so every module logger carries its own :class:`RedactingFilter`: handlers that users attach
    anywhere (root included) never receive a credential.

    Args:
        name: The logger name, e.g. ``"jaguar_sdk.http"``.

    Returns:
        The logger.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger


def configure_logging(level: str | None = None) -> None:
    """Send ``jaguar_sdk`` logs to stderr at ``level`` (or ``$JAGUAR_LOG``: info / debug).

    Does nothing when neither is set, so libraries embedding jaguar_sdk keep control.
    """
    chosen = (level or os.environ.get(ENV_LOG, "")).strip().lower()
    if chosen not in ("info", "debug", "warning", "error"):
        return
    handler = next((h for h in _logger.handlers if getattr(h, "_jaguar", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._jaguar = True  # type: ignore[attr-defined]
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        _logger.addHandler(handler)
    _logger.setLevel(chosen.upper())
