"""Reusable test helpers: a fake engine and a live uvicorn server (also used by benchmarks)."""

from .fake_engine import FakeEngine
from .live_server import LiveServer, serve_engine

__all__ = ["FakeEngine", "LiveServer", "serve_engine"]
