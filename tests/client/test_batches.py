"""Batches: ``generate_iter`` hands items out as they finish, ``generate_many`` in input order,
with at most ``concurrency`` in flight, in both flavours (in-process transport, real service)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from jaguar_sdk import (
    AsyncJaguarClient,
    GenerationResult,
    InvalidRequestError,
    JaguarClient,
    JaguarError,
)
from jaguar_sdk._async_pool import iter_bounded as aiter_bounded
from jaguar_sdk._pool import iter_bounded
from jaguar_sdk._transports.local import AsyncLocalTransport, LocalTransport
from jaguar_sdk.server._service import JaguarService
from tests.support import FakeEngine

SMALL: dict[str, Any] = {"width": 64, "height": 64, "steps": 1}
WAIT_S = 10.0  # a hang guard, never a timing


class GatedEngine(FakeEngine):
    """A fake engine where the prompt ``"slow"`` waits for :attr:`gate`; every generation can
    also wait at a barrier; it counts generations started and the most in flight at once."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.opened_by: str | None = None  # a prompt whose generation opens the gate
        self.barrier = barrier
        self.started = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._count = threading.Lock()

    def generate(self, request: Any, *, request_id: str, on_progress: Any = None) -> Any:
        with self._count:
            self.started += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.barrier is not None:
                self.barrier.wait(WAIT_S)
            if request.prompt == "slow":
                assert self.gate.wait(WAIT_S), "the test never opened the gate"
            result = super().generate(request, request_id=request_id, on_progress=on_progress)
            if request.prompt == self.opened_by:
                self.gate.set()
            return result
        finally:
            with self._count:
                self.in_flight -= 1


def _service(engine: GatedEngine) -> JaguarService:
    service = JaguarService(lambda: engine)
    service.start()
    return service


@pytest.fixture
def engine() -> Iterator[GatedEngine]:
    engine = GatedEngine()
    yield engine
    engine.gate.set()


def test_generate_iter_hands_out_items_as_they_finish(engine: GatedEngine) -> None:
    items: list[Any] = ["slow", "fast", {"prompt": "bad", "width": 65}]
    with JaguarClient(transport=LocalTransport(_service(engine))) as client:
        batch = client.generate_iter(items, concurrency=2, seed=5, **SMALL)
        index, bad = next(batch)  # a validation error never leaves the client: it comes first
        assert index == 2 and isinstance(bad, InvalidRequestError) and bad.field == "width"
        index, fast = next(batch)  # "slow" is still held at the gate
        assert index == 1 and isinstance(fast, GenerationResult) and fast.prompt == "fast"
        engine.gate.set()
        index, slow = next(batch)
        assert index == 0 and isinstance(slow, GenerationResult) and slow.prompt == "slow"
        assert next(batch, None) is None


def test_async_generate_iter_hands_out_items_as_they_finish(engine: GatedEngine) -> None:
    async def main() -> None:
        transport = AsyncLocalTransport(_service(engine))
        async with AsyncJaguarClient(transport=transport) as client:
            batch = client.generate_iter(["slow", "fast"], concurrency=2, **SMALL)
            index, fast = await batch.__anext__()
            assert index == 1 and isinstance(fast, GenerationResult)
            engine.gate.set()
            index, slow = await batch.__anext__()
            assert index == 0 and isinstance(slow, GenerationResult) and slow.prompt == "slow"
            with pytest.raises(StopAsyncIteration):
                await batch.__anext__()

    asyncio.run(main())


def test_generate_many_returns_input_order_whatever_the_finishing_order(
    engine: GatedEngine,
) -> None:
    engine.opened_by = "fast"  # "slow" finishes after "fast"
    with JaguarClient(transport=LocalTransport(_service(engine))) as client:
        out = client.generate_many(["slow", "fast", ""], concurrency=2, **SMALL)
    assert [getattr(r, "prompt", None) for r in out[:2]] == ["slow", "fast"]
    assert isinstance(out[2], InvalidRequestError) and out[2].field == "prompt"


def test_in_process_batches_are_direct_calls_by_default(engine: GatedEngine) -> None:
    engine.gate.set()
    service = _service(engine)
    with JaguarClient(transport=LocalTransport(service)) as client:
        assert all(isinstance(r, GenerationResult) for r in client.generate_many(["a", "b"]))
        assert service._jobs is None  # the job store was never needed
        client.generate_many(["c"], use_jobs=True, **SMALL)
        assert service._jobs is not None and len(service.jobs) == 1


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_at_most_concurrency_items_are_in_flight(flavour: str) -> None:
    engine = GatedEngine(barrier=threading.Barrier(3))  # passes only with 3 in flight at once
    prompts = [f"p{i}" for i in range(9)]
    if flavour == "sync":
        with JaguarClient(transport=LocalTransport(_service(engine))) as client:
            out: list[Any] = client.generate_many(prompts, concurrency=3, **SMALL)
    else:

        async def main() -> list[Any]:
            transport = AsyncLocalTransport(_service(engine))
            async with AsyncJaguarClient(transport=transport) as client:
                return await client.generate_many(prompts, concurrency=3, **SMALL)

        out = asyncio.run(main())
    assert all(isinstance(r, GenerationResult) for r in out)
    assert [r.prompt for r in out] == prompts
    assert engine.max_in_flight == 3


def test_leaving_generate_iter_early_starts_no_more_items(engine: GatedEngine) -> None:
    prompts = [f"p{i}" for i in range(10)]
    with JaguarClient(transport=LocalTransport(_service(engine))) as client:
        for _index, outcome in client.generate_iter(prompts, concurrency=2, **SMALL):
            assert isinstance(outcome, GenerationResult)
            break
    assert engine.started <= 4  # the two in flight, and at most one refill for each


def test_generate_iter_checks_its_arguments_at_the_call() -> None:
    with JaguarClient(base_url="http://127.0.0.1:9") as client:
        with pytest.raises(TypeError, match="colour"):
            client.generate_iter(["a"], colour="red")
        with pytest.raises(ValueError, match="concurrency"):
            client.generate_iter(["a"], concurrency=0)
        with pytest.raises(TypeError, match="list"):
            client.generate_iter("a cat")


def test_each_item_keeps_its_own_error(engine: GatedEngine) -> None:
    engine.fail = True
    engine.gate.set()
    with JaguarClient(transport=LocalTransport(_service(engine))) as client:
        out = client.generate_many(["a", "b"], concurrency=2, max_retries=0, **SMALL)
    assert all(isinstance(r, JaguarError) and "fake engine failure" in str(r) for r in out)


# --- the pools themselves ---------------------------------------------------------------------
def test_iter_bounded_yields_every_index_once_and_reads_items_lazily() -> None:
    taken: list[int] = []

    def source() -> Iterator[int]:
        for i in range(6):
            taken.append(i)
            yield i

    pairs = iter_bounded(lambda x: x * 10, source(), 2)
    first = next(pairs)
    assert len(taken) <= 4  # two started, at most one refill each: never the whole input
    rest = list(pairs)
    assert sorted([first, *rest]) == [(i, i * 10) for i in range(6)]


def test_async_iter_bounded_cancels_what_runs_when_left_early() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def work(x: int) -> int:
        started.append(x)
        if x == 0:
            return 0
        try:
            await asyncio.Event().wait()  # never set: runs until cancelled
        except asyncio.CancelledError:
            cancelled.append(x)
            raise
        return x  # pragma: no cover

    async def main() -> None:
        pairs = aiter_bounded(work, range(5), 2)
        assert await pairs.__anext__() == (0, 0)
        await pairs.aclose()

    asyncio.run(main())
    assert set(started) <= {0, 1, 2}  # two slots, one refill when item 0 finished
    assert 1 in cancelled and set(cancelled) == set(started) - {0}
