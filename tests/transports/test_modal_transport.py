"""The Modal transport, with `modal.Cls.from_name` replaced by a stand-in that runs the REAL
`deploy.app.JaguarModel` methods in-process (`.local()`): the transport's code path (lookup,
payload, `.remote`/`.spawn` + `FunctionCall.get(timeout)` + `cancel`, error mapping) is unchanged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any

import modal
import modal.exception as me
import pytest

import deploy.app as deploy_app
from jaguar_sdk import (
    AsyncJaguarClient,
    AuthenticationError,
    ConfigurationError,
    GenerationError,
    GenerationResult,
    InvalidRequestError,
    JaguarClient,
    JaguarConnectionError,
    JaguarError,
    JaguarTimeoutError,
    ModelInfo,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from jaguar_sdk._request import GenerateRequest
from jaguar_sdk._transports._base import AsyncTransport, Call, SyncTransport
from jaguar_sdk._transports.modal import (
    AsyncModalTransport,
    ModalTransport,
    build_payload,
    map_modal_error,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")

_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)


# --- the stand-in for Modal's client objects -------------------------------------------------
class _Method:
    """`obj.method.remote(...)` with `.aio`, like a modal Function."""

    def __init__(self, fn: Any) -> None:
        self._fn = fn
        self.aio = self._aio

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    async def _aio(self, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_pool, lambda: self._fn(*args, **kwargs))


class FakeFunctionCall:
    """`FunctionCall`: `.get(timeout)` raises builtin TimeoutError, like modal 1.6.4."""

    def __init__(self, future: concurrent.futures.Future[Any], log: list[str]) -> None:
        self._future = future
        self.log = log
        self.get = _Method(self._get)
        self.cancel = _Method(self._cancel)

    def _get(self, timeout: float | None = None) -> Any:
        self.log.append(f"get(timeout={'set' if timeout is not None else None})")
        try:
            return self._future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError("not ready") from None  # builtin, as modal raises

    def _cancel(self) -> None:
        self.log.append("cancel")
        self._future.cancel()


class FakeFunction:
    def __init__(self, run: Any, log: list[str], delay_s: float, error: BaseException | None):
        self._run = run
        self.log = log
        self.delay_s = delay_s
        self.error = error
        self.remote = _Method(self._remote)
        self.spawn = _Method(self._spawn)

    def _call(self, payload: dict[str, Any]) -> Any:
        if self.error is not None:
            raise self.error
        time.sleep(self.delay_s)
        return self._run(payload)

    def _remote(self, payload: dict[str, Any]) -> Any:
        self.log.append("remote")
        return self._call(payload)

    def _spawn(self, payload: dict[str, Any]) -> FakeFunctionCall:
        self.log.append("spawn")
        if self.error is not None:
            raise self.error
        return FakeFunctionCall(_pool.submit(self._call, payload), self.log)


class FakeRemoteObj:
    """`modal.Cls.from_name(app, name)()`: methods run `deploy.app.JaguarModel().<m>.local()`."""

    def __init__(self, stub: Stub) -> None:
        self._stub = stub
        self._local = deploy_app.JaguarModel()

    def __getattr__(self, name: str) -> FakeFunction:
        if name not in ("generate", "info", "health", "reload"):
            raise me.NotFoundError(f"Class has no method {name}")
        run = getattr(self._local, name).local
        return FakeFunction(run, self._stub.log, self._stub.delay_s, self._stub.error)


class Stub:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.lookups: list[tuple[str, str, str | None]] = []
        self.delay_s = 0.0
        self.error: BaseException | None = None

    def from_name(self, app: str, name: str, *, environment_name: str | None = None) -> Any:
        self.lookups.append((app, name, environment_name))
        return lambda: FakeRemoteObj(self)


@pytest.fixture
def stub(modal_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Stub:
    s = Stub()
    monkeypatch.setattr(modal.Cls, "from_name", s.from_name)
    return s


def small(**kw: Any) -> dict[str, Any]:
    return {"width": 64, "height": 64, **kw}


# --- through the real clients ----------------------------------------------------------------
def test_sync_client_over_modal_transport_returns_a_generation_result(stub: Stub) -> None:
    transport = ModalTransport("shuttle-jaguar", "JaguarModel", environment="dev")
    assert isinstance(transport, SyncTransport)
    assert transport.name == "modal"
    with JaguarClient(transport=transport) as client:
        result = client.generate("a jaguar", seed=5, **small())
        info = client.info()
        health = client.health()
    assert isinstance(result, GenerationResult)
    assert result.seed == 5
    assert result.images[0].width == 64
    assert result.model.source == "volume"  # downloaded by the weights step, read from the Volume
    assert isinstance(info, ModelInfo) and info.model.id == "acme/tiny-jaguar"
    assert health.ready
    assert stub.lookups == [("shuttle-jaguar", "JaguarModel", "dev")]  # looked up once
    assert "spawn" in stub.log  # the client always has a read timeout: spawn + get(timeout)
    assert "get(timeout=set)" in stub.log


def test_async_client_over_modal_transport(stub: Stub) -> None:
    async def go() -> GenerationResult:
        transport = AsyncModalTransport()
        assert isinstance(transport, AsyncTransport)
        async with AsyncJaguarClient(transport=transport) as client:
            return await client.generate("a jaguar", seed=9, **small())

    result = asyncio.run(go())
    assert result.seed == 9
    assert stub.lookups == [("shuttle-jaguar", "JaguarModel", None)]


def test_no_limit_uses_remote(stub: Stub) -> None:
    request = GenerateRequest(prompt="a cat", seed=1, **small())
    call = Call(operation="generate", request=request, request_id="req_x", idempotency_key="k1")
    reply = ModalTransport().send(call)
    assert stub.log == ["remote"]
    assert reply.is_json is False
    assert isinstance(reply.data, dict)
    assert reply.request_id == "req_x"
    assert GenerationResult.model_validate(reply.data).request_id == "req_x"

    async def go() -> Any:
        return await AsyncModalTransport().send(call)

    assert asyncio.run(go()).request_id == "req_x"


def test_error_envelopes_are_left_to_the_core(stub: Stub) -> None:
    call = Call(operation="info", request_id="req_e")
    stub_payload = build_payload(call) | {"schema_version": 99}
    obj = FakeRemoteObj(stub)
    data = obj.info.remote(stub_payload)
    assert data["error"]["code"] == "incompatible_version"

    bad = GenerateRequest.model_construct(prompt="a cat", width=65, height=64)
    reply = ModalTransport().send(Call(operation="generate", request=bad, request_id="r"))
    assert isinstance(reply.data, dict) and reply.data["error"]["field"] == "width"


def test_deadline_spawns_waits_and_cancels(stub: Stub) -> None:
    with JaguarClient(transport=ModalTransport(), max_retries=0) as client:
        client.health()  # warm the stand-in "container" first
        stub.delay_s = 3.0
        started = time.monotonic()
        with pytest.raises(JaguarTimeoutError) as info:
            client.generate("slow", deadline=0.5, **small())
    assert time.monotonic() - started < 2.5
    assert "cancel" in stub.log
    assert stub.log.index("spawn") < stub.log.index("cancel")
    assert "cancelled" in str(info.value)


def test_async_deadline_cancels_too(stub: Stub) -> None:
    async def go() -> None:
        async with AsyncJaguarClient(transport=AsyncModalTransport(), max_retries=0) as client:
            await client.health()
            stub.delay_s = 3.0
            with pytest.raises(JaguarTimeoutError):
                await client.generate("slow", timeout=0.4, **small())

    asyncio.run(go())
    assert "cancel" in stub.log


def test_env_var_picks_the_modal_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JAGUAR_BASE_URL", "JAGUAR_MODEL", "JAGUAR_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JAGUAR_MODAL_APP", "my-jaguar")
    monkeypatch.setenv("JAGUAR_MODAL_ENVIRONMENT", "staging")
    client = JaguarClient()
    transport = client._core.sync_transport()
    assert isinstance(transport, ModalTransport)
    assert (transport.app, transport.cls_name, transport.environment) == (
        "my-jaguar",
        "JaguarModel",
        "staging",
    )
    assert "my-jaguar" in repr(transport)


def test_from_modal_builds_the_modal_transport() -> None:
    client = JaguarClient.from_modal("x-app", environment="e")
    transport = client._core.sync_transport()
    assert isinstance(transport, ModalTransport)
    assert transport.app == "x-app"


# --- exception mapping -----------------------------------------------------------------------
MAPPING: list[tuple[BaseException, type[JaguarError], str]] = [
    (me.NotFoundError("Lookup failed for Cls 'JaguarModel'"), NotFoundError, "modal deploy"),
    (me.AuthError("Token missing. Could not authenticate"), AuthenticationError, "modal token new"),
    (me.PermissionDeniedError("no"), PermissionDeniedError, "permission"),
    (me.ConnectionError("Could not connect to the Modal server."), JaguarConnectionError, "reach"),
    (me.ClientClosed("closed"), JaguarConnectionError, "reach"),
    (me.FunctionTimeoutError("took too long"), JaguarTimeoutError, "JAGUAR_TIMEOUT_S"),
    (me.TimeoutError("modal timeout"), JaguarTimeoutError, "Timed out"),
    (TimeoutError("builtin"), JaguarTimeoutError, "Timed out"),
    (me.OutputExpiredError("gone"), JaguarTimeoutError, "expired"),
    (me.ResourceExhaustedError("Resource Exhausted"), RateLimitError, "JAGUAR_MAX_CONTAINERS"),
    (me.InputCancellation("cancelled"), GenerationError, "cancelled"),
    (me.RemoteError("crash"), GenerationError, "modal app logs"),
    (me.ExecutionError("Could not deserialize remote exception"), GenerationError, "logs"),
    (me.DeserializationError("bad"), GenerationError, "logs"),
    (me.SerializationError("bad"), GenerationError, "logs"),
    (ValueError("raised in the method"), GenerationError, "raised an error"),
    (me.InternalFailure("internal"), ServerError, "retrying may help"),
    (me.InternalError("internal"), ServerError, "retrying may help"),
    (me.ServiceError("unavailable"), ServerError, "retrying may help"),
    (me.InvalidError("bad call"), InvalidRequestError, "rejected"),
    (me.RequestSizeError("too big"), InvalidRequestError, "rejected"),
    (me.VersionError("old client"), ConfigurationError, "pip install -U modal"),
    (me.Error("something else"), JaguarError, "Modal failed"),
]


@pytest.mark.parametrize(("exc", "expected", "hint"), MAPPING, ids=lambda v: type(v).__name__)
def test_each_modal_exception_maps(
    exc: BaseException, expected: type[JaguarError], hint: str
) -> None:
    mapped = map_modal_error(exc, app="shuttle-jaguar", cls_name="JaguarModel", request_id="r1")
    assert type(mapped) is expected
    assert hint in str(mapped)
    assert mapped.request_id == "r1"
    assert "'JaguarModel'" in mapped.message and "'shuttle-jaguar'" in mapped.message


def test_retryability_of_mapped_errors() -> None:
    from jaguar_sdk._core import is_retryable

    def mapped(exc: BaseException) -> JaguarError:
        return map_modal_error(exc, app="a", cls_name="C")

    assert is_retryable(mapped(me.ConnectionError("x")))
    assert is_retryable(mapped(me.InternalFailure("x")))
    assert is_retryable(mapped(me.ResourceExhaustedError("x")))
    assert not is_retryable(mapped(me.RemoteError("x")))
    assert not is_retryable(mapped(me.NotFoundError("x")))
    assert not is_retryable(mapped(me.AuthError("x")))


@pytest.mark.parametrize(("exc", "expected", "hint"), MAPPING, ids=lambda v: type(v).__name__)
def test_transport_raises_mapped_errors_sync_and_async(
    stub: Stub, exc: BaseException, expected: type[JaguarError], hint: str
) -> None:
    stub.error = exc
    call = Call(operation="health", request_id="req_m", read_timeout=5.0)
    with pytest.raises(expected) as info:
        ModalTransport().send(call)
    assert info.value.request_id == "req_m"
    assert isinstance(info.value.__cause__, BaseException)

    async def go() -> None:
        await AsyncModalTransport().send(Call(operation="health", request_id="req_m"))

    with pytest.raises(expected):
        asyncio.run(go())


def test_messages_never_include_tokens() -> None:
    exc = me.AuthError("bad token=as-abcdefgh12345678 Authorization: Bearer sk-secret-value")
    text = str(map_modal_error(exc, app="a", cls_name="C"))
    assert "as-abcdefgh12345678" not in text
    assert "sk-secret-value" not in text
    environment = map_modal_error(me.NotFoundError("x"), app="a", cls_name="C", environment="dev")
    assert "'dev'" in str(environment)


def test_not_deployed_through_the_client(stub: Stub) -> None:
    stub.error = me.NotFoundError("Lookup failed for Cls 'JaguarModel' from the 'nope' app")
    with (
        JaguarClient(transport=ModalTransport("nope")) as client,
        pytest.raises(NotFoundError, match=r"modal deploy deploy/app\.py"),
    ):
        client.info()


def test_without_a_token_the_real_modal_client_raises_authentication_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No stand-in: the real modal 1.6.4 client, no token -> instant AuthError, mapped."""
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    transport = ModalTransport("shuttle-jaguar")
    with pytest.raises(AuthenticationError, match="modal token new"):
        transport.send(Call(operation="health", request_id="r"))
