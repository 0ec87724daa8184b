"""Reusable test helpers: a fake engine and a live uvicorn server (also used by benchmarks)."""

from .fake_engine import FakeEngine
from .live_server import LiveServer

__all__ = ["FakeEngine", "LiveServer"]
