"""Fixtures for the client tests: an isolated environment, live servers, a fault-injecting proxy.

Everything talks over real sockets on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jaguar_sdk import _constants as C
from jaguar_sdk._core import ClientCore, RetryPolicy
from jaguar_sdk.server._service import EngineLike
from tests.support import FakeEngine, LiveServer, serve_engine

API_KEY = "sk-test-CLIENTSECRET-123456"
ADMIN_KEY = "sk-admin-ADMINSECRET-654321"

_ENV_VARS = (
    C.ENV_BASE_URL,
    C.ENV_API_KEY,
    C.ENV_MODEL,
    C.ENV_MODAL_APP,
    C.ENV_MODAL_CLASS,
    C.ENV_MODAL_ENVIRONMENT,
    C.ENV_TIMEOUT,
    C.ENV_MAX_RETRIES,
    C.ENV_CONFIG,
    C.ENV_LOG,
)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    """No JAGUAR_* variable leaks in; the user config file is a temp path."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "jaguar-config" / "config.json"
    monkeypatch.setenv(C.ENV_CONFIG, str(config))
    return config


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> RetryPolicy:
    """Short backoff (10 ms) and a 0.3 s Retry-After cap so retry tests stay fast."""
    policy = RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.02, retry_after_cap_s=0.3)
    monkeypatch.setattr(ClientCore, "policy", policy)
    return policy


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def make_live() -> Iterator[ServerFactory]:
    """``make_live(engine=None, api_key=API_KEY, admin_key=ADMIN_KEY)`` -> a started LiveServer."""
    servers: list[LiveServer] = []

    def factory(
        engine: EngineLike | None = None,
        *,
        api_key: str | None = API_KEY,
        admin_key: str | None = ADMIN_KEY,
    ) -> LiveServer:
        chosen = engine if engine is not None else FakeEngine()
        server = serve_engine(chosen, api_key=api_key, admin_key=admin_key)
        server.engine = chosen  # type: ignore[attr-defined]
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def live(make_live: ServerFactory) -> LiveServer:
    """A live server around a FakeEngine, with API and admin tokens."""
    return make_live()


# --- raw HTTP helpers ---------------------------------------------------------------------------
def read_message(conn: socket.socket) -> bytes | None:
    """Read one HTTP/1.1 message framed by Content-Length; ``None`` at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def http_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> bytes:
    """A complete HTTP/1.1 response with a JSON body."""
    content = json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += [f"Content-Length: {len(content)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + content


class FaultProxy:
    """A raw-socket TCP proxy in front of a server that misbehaves on the first requests.

    Args:
        upstream: ``"http://127.0.0.1:port"`` of the real server, or ``None``.
        actions: What to do with request ``i`` (then ``"pass"`` for the rest):
            ``"pass"`` forward and answer; ``"status:CODE[:RETRY_AFTER]"`` answer an error
            envelope without forwarding; ``"drop_after"`` forward, let the server answer, then
            close the client connection without replying; ``"sleep:S"`` wait S seconds, then
            forward; ``"kill"`` close the connection and stop listening (a server killed
            mid-request).

    Attributes:
        url: The proxy's URL.
        requests: Requests received so far.
        paths: The request lines received, in order.
    """

    def __init__(self, upstream: str | None, actions: list[str]) -> None:
        self.upstream = upstream
        self.actions = list(actions)
        self.requests = 0
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _forward(self, message: bytes) -> bytes:
        assert self.upstream is not None
        host, port = self.upstream.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as up:
            up.sendall(message)
            reply = read_message(up)
        assert reply is not None
        return reply

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            while True:
                message = read_message(conn)
                if message is None:
                    return
                request_line, _, rest = message.partition(b"\r\n")
                head = rest.partition(b"\r\n\r\n")[0].decode("latin-1")
                with self._lock:
                    index = self.requests
                    self.requests += 1
                    self.paths.append(request_line.decode())
                    self.headers.append(
                        {
                            k.strip().lower(): v.strip()
                            for k, _, v in (line.partition(":") for line in head.split("\r\n"))
                        }
                    )
                action = self.actions[index] if index < len(self.actions) else "pass"
                kind, _, arg = action.partition(":")
                try:
                    if kind == "pass":
                        conn.sendall(self._forward(message))
                    elif kind == "status":
                        code, _, retry_after = arg.partition(":")
                        headers = {"Retry-After": retry_after} if retry_after else {}
                        error = {
                            "code": "not_ready" if code == "503" else "error",
                            "message": f"injected {code}",
                        }
                        if code == "429":
                            error["code"] = "rate_limited"
                        if code in ("502", "500"):
                            error["code"] = "server_error"
                        if code == "422":
                            error.update(
                                code="invalid_request", message="width: too wide", field="width"
                            )
                        conn.sendall(http_response(int(code), {"error": error}, headers))
                        return
                    elif kind == "drop_after":
                        self._forward(message)
                        return  # close without replying
                    elif kind == "sleep":
                        time.sleep(float(arg))
                        conn.sendall(self._forward(message))
                    elif kind == "kill":
                        self.close()
                        return
                except OSError:
                    return

    def close(self) -> None:
        """Stop listening."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


@pytest.fixture
def make_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """``make_proxy(upstream_url, actions)`` -> a :class:`FaultProxy`, closed after the test."""
    proxies: list[FaultProxy] = []

    def factory(upstream: str | None, actions: list[str]) -> FaultProxy:
        proxy = FaultProxy(upstream, actions)
        proxies.append(proxy)
        return proxy

    yield factory
    for proxy in proxies:
        proxy.close()


# --- the real tiny engine -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def client_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A session cache folder for the tiny model (unless JAGUAR_CACHE_DIR is already set)."""
    return os.environ.get(C.ENV_CACHE_DIR) or str(tmp_path_factory.mktemp("jaguar-cache"))


@pytest.fixture(scope="session")
def real_tiny_engine(request: pytest.FixtureRequest, client_cache_dir: str) -> Iterator[Any]:
    """The project's ``tiny_engine`` fixture, or one built here when it does not exist."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    try:
        yield request.getfixturevalue("tiny_engine")
        return
    except pytest.FixtureLookupError:
        pass
    from jaguar_sdk.engine import Engine

    saved = os.environ.get(C.ENV_CACHE_DIR)
    os.environ[C.ENV_CACHE_DIR] = client_cache_dir
    try:
        engine = Engine.load("tiny", device="cpu")
    finally:
        if saved is None:
            os.environ.pop(C.ENV_CACHE_DIR, None)
        else:
            os.environ[C.ENV_CACHE_DIR] = saved
    yield engine
    engine.close()
