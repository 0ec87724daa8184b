"""The blocking client and job handle are generated from the asyncio ones, never hand-edited."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _unasync() -> object:
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_fresh() -> None:
    unasync = _unasync()
    for target, text in unasync.generated().items():  # type: ignore[attr-defined]
        current = (ROOT / target).read_text(encoding="utf-8")
        assert current == text, f"{target} is stale: run `python scripts/unasync.py`"


def test_the_generator_drops_await_and_maps_names() -> None:
    unasync = _unasync()
    out = unasync.unasync(  # type: ignore[attr-defined]
        '"""doc"""\nimport asyncio\n'
        "async def f(c: AsyncJaguarClient) -> AsyncJob:\n"
        "    async with c:\n        await asyncio.sleep(1)\n    return await c.aclose()\n",
        '"""generated"""',
    )
    assert out == (
        '"""generated"""\nimport time\n'
        "def f(c: JaguarClient) -> Job:\n"
        "    with c:\n        time.sleep(1)\n    return c.close()\n"
    )
