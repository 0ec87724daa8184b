"""A live uvicorn server running the real app over a fake engine (no model, no torch)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._common import ensure_repo_on_path


class SerialEngine:
    """Wraps an engine so one request generates at a time, like the real engine's GPU lock.

    Args:
        inner: The engine to serialise (a ``FakeEngine``).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._lock = threading.Lock()

    def generate(self, request: Any, *, request_id: str, on_progress: Any = None) -> Any:
        """Generate under the lock."""
        with self._lock:
            return self.inner.generate(request, request_id=request_id, on_progress=on_progress)

    def info(self) -> Any:
        """The inner engine's info."""
        return self.inner.info()

    def close(self) -> None:
        """Close the inner engine."""
        self.inner.close()


@contextmanager
def fake_server(delay_s: float = 0.0, *, serial: bool = True) -> Iterator[str]:
    """Serve ``create_app`` over a (serialised) ``FakeEngine`` on 127.0.0.1; yields the URL.

    Args:
        delay_s: Seconds each generation sleeps (simulated GPU time).
        serial: Serialise generation (one at a time), as the real engine does.
    """
    ensure_repo_on_path()
    from jaguar_sdk.server import create_app
    from jaguar_sdk.server._service import JaguarService
    from tests.support import FakeEngine, LiveServer

    fake = FakeEngine(delay_s=delay_s)
    engine: Any = SerialEngine(fake) if serial else fake
    service = JaguarService(lambda: engine)
    service.start()
    try:
        with LiveServer(create_app(service)) as server:
            yield server.url
    finally:
        service.close()
