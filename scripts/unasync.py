"""Generate the blocking client from the asyncio one: ``python scripts/unasync.py``.

The asyncio modules are the source (as in httpcore): dropping ``async``/``await`` and mapping
``Async*`` names to their blocking twins is mechanical, the other way round is not. Edit
``jaguar_sdk/_async_client.py`` or ``jaguar_sdk/_async_job.py``, then run this script;
``tests/architecture/test_generated.py`` fails while a generated file is stale.

``python scripts/unasync.py --check`` exits 1 (listing the stale files) instead of writing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: source -> (generated file, its module docstring)
FILES: dict[str, tuple[str, str]] = {
    "jaguar_sdk/_async_client.py": (
        "jaguar_sdk/_client.py",
        '"""``JaguarClient``: the blocking client.\n\n'
        "GENERATED from ``_async_client.py`` by ``scripts/unasync.py``: edit that file, then run\n"
        "``python scripts/unasync.py``. All logic that does not wait on I/O lives in\n"
        ':mod:`jaguar_sdk._core`, shared with ``AsyncJaguarClient``.\n"""',
    ),
    "jaguar_sdk/_async_job.py": (
        "jaguar_sdk/_job.py",
        '"""``Job``: a handle on a submitted job (blocking).\n\n'
        "GENERATED from ``_async_job.py`` by ``scripts/unasync.py``: edit that file, then run\n"
        '``python scripts/unasync.py``.\n"""',
    ),
}

#: Whole phrases first (docstrings), then names, then keywords; applied in this order.
PHRASES: tuple[tuple[str, str], ...] = (
    (
        "Use it from the event loop that created it (its connection pool belongs to that loop).",
        "The client is thread-safe: one connection pool serves every thread.",
    ),
    (" (asyncio)", ""),
    ("Wait until the job finishes.", "Block until the job finishes."),
    ("Items in flight at once.", "Items in flight at once (threads sharing one connection pool)."),
)
NAMES: tuple[tuple[str, str], ...] = (
    ("AsyncJaguarClient", "JaguarClient"),
    ("_AsyncJobClient", "_JobClient"),
    ("AsyncJob", "Job"),
    ("AsyncRetrying", "Retrying"),
    ("AsyncTransport", "SyncTransport"),
    ("AsyncIterator", "Iterator"),
    ("httpx.AsyncClient", "httpx.Client"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("aclose", "close"),
    ("async_transport", "sync_transport"),
    ("asyncio.sleep", "time.sleep"),
    ("aresolve_image_urls", "resolve_image_urls"),
    ("aresolve_many_urls", "resolve_many_urls"),
)
KEYWORDS: tuple[tuple[str, str], ...] = (
    (r"\bimport asyncio\b", "import time"),
    (r"\bfrom \._async_", "from ._"),
    (r'"async"', '"sync"'),
    (r"\basync def\b", "def"),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
)


def _replace_docstring(text: str, docstring: str) -> str:
    end = text.index('"""', 3) + 3
    return docstring + text[end:]


def unasync(text: str, docstring: str) -> str:
    """The blocking module made from the source text of an asyncio module (before formatting)."""
    text = _replace_docstring(text, docstring)
    for old, new in PHRASES:
        text = text.replace(old, new)
    for old, new in NAMES:
        text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(old)}(?![A-Za-z0-9_])", new, text)
    for pattern, new in KEYWORDS:
        text = re.sub(pattern, new, text)
    return text


def _format(text: str, path: str) -> str:
    fixed = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--fix", "--quiet", "--stdin-filename", path, "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--quiet", "--stdin-filename", path, "-"],
        input=fixed or text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout


def generated() -> dict[str, str]:
    """Generated file (relative path) -> the text it must hold."""
    out: dict[str, str] = {}
    for source, (target, docstring) in FILES.items():
        text = (ROOT / source).read_text(encoding="utf-8")
        out[target] = _format(unasync(text, docstring), target)
    return out


def main(argv: list[str]) -> int:
    stale = []
    for target, text in generated().items():
        path = ROOT / target
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(target)
        if "--check" not in argv:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
    if "--check" in argv and stale:
        print("stale (run `python scripts/unasync.py`): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
