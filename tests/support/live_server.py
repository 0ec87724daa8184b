"""Run a real uvicorn server for an ASGI app in a background thread.

Example:
    >>> with LiveServer(app) as server:               # doctest: +SKIP
    ...     httpx.get(f"{server.url}/v1/health")
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["LiveServer", "serve_engine"]


class LiveServer:
    """A uvicorn server on 127.0.0.1 with an ephemeral port, in a background thread.

    The socket is bound before the thread starts, so :attr:`url` is known at once and no
    other process can take the port. ``start`` returns once uvicorn accepts connections;
    ``stop`` asks it to exit and waits for the thread.

    Args:
        app: The ASGI application.
        startup_timeout_s: How long ``start`` waits for uvicorn to be up.
        **config: Extra ``uvicorn.Config`` arguments (e.g. ``log_level="info"``); defaults are
            ``log_level="warning"``, ``lifespan="on"``, ``timeout_graceful_shutdown=5``.

    Attributes:
        host: ``"127.0.0.1"``.
        port: The bound port.
        url: ``"http://127.0.0.1:<port>"`` (no trailing slash).
    """

    host = "127.0.0.1"

    def __init__(self, app: Any, *, startup_timeout_s: float = 10.0, **config: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Without TCP_NODELAY, Nagle plus delayed ACKs hold each response back ~40 ms.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((self.host, 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        settings: dict[str, Any] = {
            "log_level": "warning",
            "lifespan": "on",
            "timeout_graceful_shutdown": 5,  # stop() never hangs on a stuck request
        }
        settings.update(config)
        self._server = uvicorn.Server(uvicorn.Config(app, **settings))
        self._startup_timeout_s = startup_timeout_s
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # reported by start()
            self._error = exc

    def start(self) -> LiveServer:
        """Start serving; returns once the server accepts connections.

        Raises:
            RuntimeError: If uvicorn failed or did not start in time.
        """
        if self._thread is not None:
            raise RuntimeError("LiveServer already started")
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn did not start on {self.url}: {self._error!r}")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for it (idempotent)."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout_s)
        self._sock.close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_engine(
    engine: Any,
    *,
    started: bool = True,
    service_options: dict[str, Any] | None = None,
    uvicorn: dict[str, Any] | None = None,
    **app_options: Any,
) -> LiveServer:
    """A started :class:`LiveServer` running ``create_app`` around a service for ``engine``,
    under the uvicorn settings of ``jaguar serve`` (its hardened protocol and limits).

    Args:
        engine: The engine the service serves (a ``FakeEngine``, the tiny engine...).
        started: Load the service now (``False`` leaves it "loading").
        service_options: Extra ``JaguarService`` arguments (e.g. ``max_jobs``).
        uvicorn: ``uvicorn.Config`` settings; default ``uvicorn_options()``, as ``jaguar serve``.
        **app_options: ``create_app`` arguments (``api_key``, ``admin_key``...).

    Returns:
        The running server, with the service as ``server.service``; stop it when done.
    """
    from jaguar_sdk.server import create_app
    from jaguar_sdk.server._serve import uvicorn_options
    from jaguar_sdk.server._service import JaguarService

    service = JaguarService(lambda: engine, **(service_options or {}))
    if started:
        service.start()
    settings = {**uvicorn_options(), "timeout_graceful_shutdown": 5, **(uvicorn or {})}
    server = LiveServer(create_app(service, **app_options), **settings).start()
    server.service = service  # type: ignore[attr-defined]
    return server
