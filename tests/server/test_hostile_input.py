"""Hostile input at the protocol level and in what gets logged (issue 14, #4 #7 #8 #11).

Stalled connections, oversized headers, malformed framing, lone surrogates, control characters
in the request path: the server stays available, answers JSON in each route's own shape, and
never writes a forged log line.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import FakeEngine, LiveServer, serve_engine


def _raw(port: int, data: bytes, *, timeout_s: float = 10.0) -> bytes:
    """Send raw bytes, return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _status_and_json(answer: bytes) -> tuple[int, str, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers.get("content-type", ""), json.loads(body) if body else {}


# --- protocol-level errors answer JSON; oversized headers 431 (#11) ---------------------------


def test_oversized_headers_answer_431_json(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/v1/health", headers={"X-Big": "a" * (1 << 20)}, timeout=10)
    assert r.status_code == 431
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "request_header_fields_too_large"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS sent to plain HTTP
    ],
)
def test_protocol_errors_answer_400_json(server: LiveServer, request_bytes: bytes) -> None:
    status, content_type, body = _status_and_json(_raw(server.port, request_bytes))
    assert status == 400
    assert content_type.startswith("application/json")
    assert body["error"]["code"] == "bad_request"


def test_a_stalled_request_is_timed_out_with_408_json() -> None:
    from jaguar_sdk.server._serve import uvicorn_options

    server = serve_engine(FakeEngine(), uvicorn=uvicorn_options(header_timeout_s=0.5))
    try:
        # no blank line: the headers never end; the server, not our timeout, ends it
        answer = _raw(server.port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n", timeout_s=20)
    finally:
        server.stop()
    status, content_type, body = _status_and_json(answer)
    assert status == 408 and content_type.startswith("application/json")
    assert body["error"]["code"] == "request_timeout"


def test_protocol_errors_are_logged_at_a_bounded_rate(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    loggers = [logging.getLogger("uvicorn.error"), logging.getLogger("jaguar_sdk")]
    for logger in loggers:
        logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    try:
        for _ in range(60):
            _raw(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    finally:
        for logger in loggers:
            logger.removeHandler(caplog.handler)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(noisy) <= 3, [r.getMessage() for r in noisy][:5]


# --- stalled connections never make the server unavailable (#4) -------------------------------


def test_past_the_connection_bound_the_oldest_stalled_connection_makes_room() -> None:
    from jaguar_sdk.server._serve import uvicorn_options

    server = serve_engine(FakeEngine(), uvicorn=uvicorn_options(max_connections=4))
    stalled = []
    try:
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            stalled.append(sock)
        r = httpx.get(f"{server.url}/v1/health", timeout=10)
        assert r.status_code == 200
        answer = stalled[0].recv(65536)  # the oldest was closed to make room
        status, _, body = _status_and_json(answer)
        assert status == 503 and body["error"]["code"] == "too_many_connections"
    finally:
        for sock in stalled:
            sock.close()
        server.stop()


def test_past_the_connection_bound_with_every_connection_serving_a_newcomer_gets_503() -> None:
    import threading

    from jaguar_sdk.server._serve import uvicorn_options

    gate, entered = threading.Event(), threading.Semaphore(0)

    class Held(FakeEngine):
        def generate(self, request, *, request_id, on_progress=None):
            entered.release()
            assert gate.wait(20)
            return super().generate(request, request_id=request_id, on_progress=on_progress)

    server = serve_engine(Held(), uvicorn=uvicorn_options(max_connections=2))
    body = b'{"prompt": "held", "width": 64, "height": 64}'
    request = (
        b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    busy = []
    try:
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            sock.sendall(request)
            busy.append(sock)
        for _ in range(2):
            assert entered.acquire(timeout=10), "the held requests never reached the engine"
        # Both connections are serving requests: a third one is answered 503 and closed
        # (read without sending, so the close cannot race our own request).
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as newcomer:
            answer = newcomer.recv(65536)
        status, _, error = _status_and_json(answer)
        assert status == 503 and error["error"]["code"] == "too_many_connections"
        gate.set()
        for sock in busy:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        gate.set()
        for sock in busy:
            sock.close()
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The server process, allowed 256 open files (set in the child itself: no preexec_fn).
_SERVE_WITH_256_FILES = (
    "import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
    "from jaguar_sdk.cli import main; sys.exit(main())"
)


def test_health_answers_through_hundreds_of_stalled_connections(tmp_path: Path) -> None:
    """400 connections that send half a request, against a server allowed 256 open files."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SERVE_WITH_256_FILES,
            "serve",
            "--model",
            str(tmp_path / "no-model-here"),  # health answers (status "error") without a model
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "JAGUAR_LOG": ""},
    )
    stalled: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "jaguar serve did not start"
                time.sleep(0.2)
        for _ in range(400):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            stalled.append(sock)
        time.sleep(0.5)  # let the server accept what it will
        # A functional bound, not a benchmark: a stalled server never answers at all.
        r = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1.0)
        assert r.status_code == 200
        assert process.poll() is None
    finally:
        for sock in stalled:
            sock.close()
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
    text = (tmp_path / "serve.log").read_text(errors="replace")
    assert len(text.splitlines()) < 40, text[-2000:]


# --- lone surrogates: each route answers in its own shape (#7) --------------------------------

SURROGATE_KEY = b'{"prompt": "a cat", "width": 64, "height": 64, "\\ud800": 1}'
SURROGATE_PROMPT = b'{"prompt": "a \\udc80 cat", "width": 64, "height": 64}'


@pytest.mark.parametrize("body", [SURROGATE_KEY, SURROGATE_PROMPT])
def test_lone_surrogates_on_the_native_route_are_422_naming_the_field(
    client: httpx.Client, body: bytes
) -> None:
    for path in ("/v1/generate", "/v1/jobs"):
        r = client.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["field"] in ("\\ud800", "prompt")
        assert "surrogate" in error["message"]


@pytest.mark.parametrize("body", [SURROGATE_KEY, SURROGATE_PROMPT])
def test_lone_surrogates_on_the_openai_route_are_422_in_openais_shape(
    client: httpx.Client, body: bytes
) -> None:
    body = body.replace(b'"width": 64, "height": 64', b'"size": "64x64"')
    r = client.post(
        "/v1/images/generations", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] in ("\\ud800", "prompt")


def test_an_unknown_openai_argument_with_odd_characters_renders(client: httpx.Client) -> None:
    r = client.post(
        "/v1/images/generations",
        content=json.dumps({"prompt": "a cat", "size": "64x64", "\u2028\x1b[31m": 1}).encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["param"] == "\u2028\x1b[31m"


# --- log forging (#8) -------------------------------------------------------------------------


def test_control_characters_in_the_path_never_forge_a_log_line(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jaguar_sdk")
    forged = "/v1/x%0D%0APOST%20/v1/admin/reload%20200%201.0ms%0A%1B[31m%E2%80%A8"
    r = client.get(forged)
    assert r.status_code == 404
    client.get("/v1/health")  # flush: the middleware logs after the response
    lines = [rec.getMessage() for rec in caplog.records if rec.name.startswith("jaguar_sdk")]
    assert any("/v1/x" in line for line in lines)
    for line in lines:
        assert not any(ch in line for ch in "\r\n\x1b\u2028"), repr(line)
    assert any("\\x0a" in line and "/v1/x" in line for line in lines)


# --- X-Request-ID: the documented behaviour (#11) ---------------------------------------------


def test_an_unusable_request_id_is_replaced_as_documented(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    params = schema["paths"]["/v1/generate"]["post"]["parameters"]
    rid = next(p for p in params if p["name"] == "X-Request-ID")
    assert "replaced" in rid["description"]
    assert "maxLength" not in rid["schema"]  # any value is accepted, as the server does
    long = "r" * 200
    r = client.get("/v1/health", headers={"X-Request-ID": long})
    assert r.status_code == 200
    assert r.headers["X-Request-ID"] != long and r.headers["X-Request-ID"].startswith("req_")
    kept = client.get("/v1/health", headers={"X-Request-ID": "mine-1"})
    assert kept.headers["X-Request-ID"] == "mine-1"
