"""The public surface: sync/async parity, light import, repr, logging without secrets."""

from __future__ import annotations

import asyncio
import inspect
import logging
import subprocess
import sys

import httpx
import pytest

import jaguar_sdk
from jaguar_sdk import AsyncJaguarClient, ConfigurationError, JaguarClient
from jaguar_sdk._transports._base import AsyncTransport, Call, Reply, SyncTransport
from tests.client.conftest import API_KEY

_RENAMED = {"close": "aclose", "__enter__": "__aenter__", "__exit__": "__aexit__"}
#: Return types that differ only by flavour (the job handles).
_RETURN_TWINS = {"Job": "AsyncJob"}
#: Methods that return an iterator (async iterator) instead of being awaited.
_ITERATORS = {"generate_iter"}


def _public(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if (not name.startswith("_") or name in ("__init__", *_RENAMED, *_RENAMED.values()))
        and callable(member)
    }


def test_sync_and_async_surfaces_match() -> None:
    sync, async_ = _public(JaguarClient), _public(AsyncJaguarClient)
    assert {_RENAMED.get(name, name) for name in sync} == set(async_)
    for name, member in sync.items():
        twin = async_[_RENAMED.get(name, name)]
        sig, twin_sig = inspect.signature(member), inspect.signature(twin)  # type: ignore[arg-type]
        if name == "__init__":
            # the same parameters; only the httpx client and transport flavours differ
            assert list(sig.parameters) == list(twin_sig.parameters)
            continue
        assert list(sig.parameters) == list(twin_sig.parameters), name
        for param, twin_param in zip(
            sig.parameters.values(), twin_sig.parameters.values(), strict=True
        ):
            assert param.kind == twin_param.kind and param.default == twin_param.default, name
            assert param.annotation == twin_param.annotation, (name, param.name)
        returns_awaitable = inspect.iscoroutinefunction(twin)
        if name in ("local", "from_modal", "with_options", "__init__", "__repr__"):
            assert not returns_awaitable, name
        elif name in _ITERATORS:  # checks its arguments at once, returns an (async) iterator
            assert not returns_awaitable, name
            assert sig.return_annotation.startswith("Iterator["), name
            assert twin_sig.return_annotation == "Async" + sig.return_annotation, name
        else:
            assert returns_awaitable, name
            returns = _RETURN_TWINS.get(sig.return_annotation, sig.return_annotation)
            assert returns == twin_sig.return_annotation, name
        assert (member.__doc__ is None) == (twin.__doc__ is None), name  # type: ignore[union-attr]


def test_every_public_method_has_a_full_docstring() -> None:
    for cls in (JaguarClient, AsyncJaguarClient):
        for name, member in _public(cls).items():
            if name.startswith("_"):
                continue
            doc = inspect.getdoc(member) or ""
            assert "Example:" in doc, (cls.__name__, name)
            if inspect.signature(member).parameters.keys() - {"self", "cls"}:  # type: ignore[arg-type]
                assert "Args:" in doc, (cls.__name__, name)


def test_import_is_light() -> None:
    code = (
        "import sys, jaguar_sdk; "
        "from jaguar_sdk import JaguarClient, AsyncJaguarClient; "
        "import jaguar_sdk._transports; "
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'fastapi', 'modal', "
        "'starlette', 'uvicorn') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "", out.stdout


def test_exports() -> None:
    assert jaguar_sdk.JaguarClient is JaguarClient
    assert "AsyncJaguarClient" in jaguar_sdk.__all__ and "JaguarClient" in jaguar_sdk.__all__


def test_repr_never_shows_the_key() -> None:
    with JaguarClient(base_url="http://127.0.0.1:9", api_key=API_KEY) as client:
        text = repr(client)
        assert API_KEY not in text and "api_key=set" in text
        assert API_KEY not in repr(client._core.config)
        assert API_KEY not in repr(client._core.transport)


def test_with_options_shares_the_pool(live) -> None:
    client = JaguarClient(base_url=live.url, api_key=API_KEY, max_retries=2)
    fast = client.with_options(timeout=5, max_retries=0)
    assert fast._core.transport is client._core.transport
    assert "max_retries=0" in repr(fast) and "timeout=5.0" in repr(fast)
    assert "max_retries=2" in repr(client)
    assert fast.health().ready
    fast.close()  # closing a copy closes the shared state
    with pytest.raises(jaguar_sdk.JaguarError, match="closed"):
        client.health()
    client.close()  # idempotent


def test_injected_http_client_is_not_closed(live) -> None:
    with httpx.Client() as http:
        with JaguarClient(base_url=live.url, api_key=API_KEY, http_client=http) as client:
            assert client.health().ready
        assert not http.is_closed
        with pytest.raises(ConfigurationError, match="AsyncClient"):
            JaguarClient(base_url=live.url, http_client=httpx.AsyncClient())  # type: ignore[arg-type]


def test_http_client_base_url_is_used(live) -> None:
    with httpx.Client(base_url=live.url) as http, JaguarClient(http_client=http) as client:
        assert client.health().status == "ok"


def test_custom_transport_seam() -> None:
    calls: list[Call] = []

    class Echo:
        name = "echo"

        def send(self, call: Call) -> Reply:
            calls.append(call)
            return Reply(data={"status": "ok", "ready": True, "version": "9", "schema_version": 1})

        def close(self) -> None:
            pass

    assert isinstance(Echo(), SyncTransport)
    with JaguarClient(transport=Echo(), headers={"X-Extra": "1"}) as client:
        assert client.health().version == "9"
        assert "transport='echo'" in repr(client)
    assert calls[0].operation == "health" and calls[0].headers == {"X-Extra": "1"}
    with pytest.raises(ConfigurationError, match="AsyncTransport"):
        AsyncJaguarClient(transport=Echo())  # type: ignore[arg-type]


def test_plain_error_envelope_and_schema_version_are_mapped() -> None:
    class Scripted:
        name = "scripted"

        def __init__(self, data: dict) -> None:
            self.data = data

        async def send(self, call: Call) -> Reply:
            return Reply(data=self.data)

        async def aclose(self) -> None:
            pass

    async def run(data: dict) -> object:
        transport = Scripted(data)
        assert isinstance(transport, AsyncTransport)
        async with AsyncJaguarClient(transport=transport) as client:
            return await client.info()

    error = {"schema_version": 1, "error": {"code": "not_found", "message": "no app"}}
    with pytest.raises(jaguar_sdk.NotFoundError, match="no app"):
        asyncio.run(run(error))
    with pytest.raises(jaguar_sdk.IncompatibleVersionError, match="v2"):
        asyncio.run(run({"schema_version": 2, "whatever": True}))
    with pytest.raises(jaguar_sdk.JaguarError, match="not a valid jaguar payload"):
        asyncio.run(run({"schema_version": 1, "model": 3}))


def test_non_json_error_bodies_are_handled(make_proxy, fast_retries) -> None:
    import socket
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]

    def serve() -> None:
        from tests.client.conftest import read_message

        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                read_message(conn)
                body = b"<html>Bad Gateway from nginx</html>"
                conn.sendall(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\nConnection: close\r\n\r\n"
                    + body
                )

    threading.Thread(target=serve, daemon=True).start()
    try:
        with (
            JaguarClient(base_url=f"http://127.0.0.1:{port}", max_retries=1) as client,
            pytest.raises(jaguar_sdk.ServerError) as info,
        ):
            client.info()
        assert info.value.status_code == 502
        assert "Bad Gateway from nginx" in str(info.value)
    finally:
        sock.close()


def test_debug_logs_headers_but_never_the_key(live, monkeypatch, caplog, make_proxy) -> None:
    monkeypatch.setenv("JAGUAR_LOG", "debug")
    proxy = make_proxy(live.url, ["status:503:0"])
    caplog.set_level(logging.DEBUG, logger="jaguar_sdk")
    with JaguarClient(base_url=proxy.url, api_key=API_KEY) as client:
        client.generate("a cat", width=64, height=64)
    root = logging.getLogger("jaguar_sdk")
    for handler in [h for h in root.handlers if getattr(h, "_jaguar", False)]:
        root.removeHandler(handler)  # undo JAGUAR_LOG=debug for the other tests
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "'authorization': 'Bearer ***'" in text.lower().replace("bearer", "Bearer")
    assert "idempotency-key" in text.lower() and "x-request-id" in text.lower()
    assert "retrying" in text  # the 503 retry logged at INFO
    assert any(r.levelno == logging.INFO and "retrying" in r.getMessage() for r in caplog.records)
    assert API_KEY not in text
    assert API_KEY not in caplog.text


def test_generate_many_rejects_shared_ids_and_unknown_options() -> None:
    with JaguarClient(base_url="http://127.0.0.1:9") as client:
        with pytest.raises(TypeError, match="idempotency_key"):
            client.generate_many(["a"], idempotency_key="k")
        with pytest.raises(TypeError, match="colour"):
            client.generate_many(["a"], colour="red")
        with pytest.raises(TypeError, match="list"):
            client.generate_many("a cat")
        with pytest.raises(ValueError, match="concurrency"):
            client.generate_many(["a"], concurrency=0)


def test_generate_accepts_a_request(live) -> None:
    request = jaguar_sdk.GenerateRequest(prompt="a cat", width=64, height=64, seed=3)
    with JaguarClient(base_url=live.url, api_key=API_KEY) as client:
        result = client.generate(request)
        assert result.seed == 3 and result.images[0].width == 64
        assert client.generate(request, seed=4).seed == 4  # non-default keywords override
    assert live.engine.requests[0] == request


def test_generate_many_progress_bar(live, capsys) -> None:
    with JaguarClient(base_url=live.url, api_key=API_KEY) as client:
        out = client.generate_many(["a", "b", "c"], progress=True, width=64, height=64)
    assert all(isinstance(r, jaguar_sdk.GenerationResult) for r in out)
    assert "3/3" in capsys.readouterr().err
