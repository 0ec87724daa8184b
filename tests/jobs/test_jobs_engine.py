"""Jobs on the real tiny FluxPipeline engine: real progress events, and cancellation that
stops the diffusers denoising loop between steps."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from jaguar_sdk import JaguarClient, JobCancelledError, ProgressEvent
from jaguar_sdk._request import GenerateRequest
from jaguar_sdk._results import GenerationResult
from jaguar_sdk.server._service import ProgressCallback
from tests.jobs.conftest import GATE_TIMEOUT_S, ServerFactory

SMALL = {"width": 64, "height": 64}


class HeldEngine:
    """The shared tiny engine, held after it reports denoising step ``hold_at`` until released.

    Attributes:
        reported: Every event the real engine reported, in order.
    """

    def __init__(self, engine: Any, hold_at: int) -> None:
        self._engine = engine
        self.hold_at = hold_at
        self.reached = threading.Event()
        self.gate = threading.Event()
        self.reported: list[ProgressEvent] = []

    def generate(
        self,
        request: GenerateRequest,
        *,
        request_id: str,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        def spy(event: ProgressEvent) -> None:
            self.reported.append(event)
            if on_progress is not None:
                on_progress(event)  # raises JobCancelledError once the job is cancelled
            if event.stage == "running" and event.step == self.hold_at:
                self.reached.set()
                assert self.gate.wait(GATE_TIMEOUT_S)

        result: GenerationResult = self._engine.generate(
            request, request_id=request_id, on_progress=spy
        )
        return result

    def info(self) -> Any:
        return self._engine.info()

    def close(self) -> None:  # the session engine is shared: never close it here
        pass


def test_real_engine_progress_events_in_order(make_server: ServerFactory, tiny_engine: Any) -> None:
    engine = HeldEngine(tiny_engine, hold_at=0)
    engine.gate.set()
    server = make_server(engine)
    seen: list[ProgressEvent] = []
    with JaguarClient(base_url=server.url) as client:
        job = client.submit("a jaguar", steps=3, seed=1, **SMALL)
        assert job.wait(timeout=60, on_progress=seen.append).state == "succeeded"
        assert job.result(timeout=5).images[0].width == 64
    stages = [(e.stage, e.step) for e in seen]
    assert stages == [
        ("queued", 0),  # once: the store queues the job, the engine only runs it
        ("running", 1),
        ("running", 2),
        ("running", 3),
        ("decoding", 3),
        ("encoding", 3),
        ("done", 3),
    ]


def test_cancel_stops_the_real_denoising_loop_between_steps(
    make_server: ServerFactory, tiny_engine: Any
) -> None:
    engine = HeldEngine(tiny_engine, hold_at=2)
    server = make_server(engine)
    with JaguarClient(base_url=server.url) as client:
        job = client.submit("a jaguar", steps=8, **SMALL)
        assert engine.reached.wait(60)
        job.cancel()
        engine.gate.set()
        final = job.wait(timeout=60)
        reported = list(engine.reported)
        with pytest.raises(JobCancelledError):
            job.result(timeout=5)
        # the engine still serves afterwards (its GPU lock was released)
        follow_up = client.submit("after", steps=2, **SMALL)
        assert follow_up.wait(timeout=60).state == "succeeded"
    assert final.state == "cancelled"
    # the pipeline stopped in step 3's callback: steps 4..8, decode and encode never ran
    assert [(e.stage, e.step) for e in reported if e.stage != "queued"] == [
        ("running", 1),
        ("running", 2),
        ("running", 3),
    ]
