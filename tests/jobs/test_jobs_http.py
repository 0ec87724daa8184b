"""Jobs over HTTP against a real uvicorn server: submit, wait, progress, cancel, bound."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from jaguar_sdk import (
    AsyncJaguarClient,
    GenerationResult,
    InvalidRequestError,
    JaguarClient,
    JaguarError,
    JaguarTimeoutError,
    Job,
    JobCancelledError,
    JobPendingError,
    NotFoundError,
    ProgressEvent,
    RateLimitError,
)
from tests.jobs.conftest import ServerFactory, SteppingEngine

SMALL = {"width": 64, "height": 64}


def test_submit_status_wait_result(make_server: ServerFactory) -> None:
    server = make_server()
    with JaguarClient(base_url=server.url) as client:
        job = client.submit("a jaguar", seed=3, **SMALL)
        assert job.id.startswith("job_")
        assert job.last_status.state in ("queued", "running", "succeeded")
        final = job.wait(timeout=20)
        assert final.state == "succeeded" and final.done
        assert job.status().state == "succeeded"
        result = job.result(timeout=20)
    assert isinstance(result, GenerationResult)
    assert result.seed == 3 and result.images[0].width == 64


def test_async_client_jobs(make_server: ServerFactory) -> None:
    server = make_server(SteppingEngine())

    async def go() -> tuple[list[str], GenerationResult]:
        async with AsyncJaguarClient(base_url=server.url) as client:
            job = await client.submit("a jaguar", seed=4, steps=3, **SMALL)
            stages = [event.stage async for event in job.events(timeout=20)]
            again = await client.get_job(job.id)
            return stages, await again.result(timeout=20)

    stages, result = asyncio.run(go())
    assert stages[-1] == "done" and stages[0] == "queued"
    assert result.seed == 4


def test_progress_events_arrive_in_order(make_server: ServerFactory) -> None:
    server = make_server(SteppingEngine())
    seen: list[ProgressEvent] = []
    with JaguarClient(base_url=server.url) as client:
        job = client.submit("a jaguar", steps=4, **SMALL)
        final = job.wait(timeout=20, on_progress=seen.append)
        iterated = list(client.get_job(job.id).events(timeout=20))
    assert final.state == "succeeded"
    expected = [("queued", 0)] + [("running", k) for k in range(1, 5)] + [("encoding", 4)]
    assert [(e.stage, e.step) for e in seen][:6] == expected
    assert seen[-1].stage == "done" and seen[-1].fraction == 1.0
    # a fresh iterator over a finished job replays the whole history, in the same order
    assert [(e.stage, e.step) for e in iterated] == [(e.stage, e.step) for e in seen]


def test_result_of_a_running_job_is_pending_and_wait_times_out(make_server: ServerFactory) -> None:
    engine = SteppingEngine(hold_at_step=1)
    server = make_server(engine)
    with JaguarClient(base_url=server.url, max_retries=0) as client:
        job = client.submit("a jaguar", steps=2, **SMALL)
        assert engine.reached.wait(10)
        with pytest.raises(JobPendingError) as pending:
            client._run(client._core.plan_job("job_result", job.id))
        assert pending.value.status_code == 409
        with pytest.raises(JaguarTimeoutError, match="did not finish within"):
            job.wait(timeout=0.2)
        status = job.status()
        assert status.state == "running"
        assert status.progress is not None and status.progress.step == 1
        engine.release()
        assert job.result(timeout=20).images


def test_cancel_while_queued(make_server: ServerFactory) -> None:
    engine = SteppingEngine(hold_at_step=1)
    server = make_server(engine)
    with JaguarClient(base_url=server.url) as client:
        first = client.submit("runs first", steps=2, **SMALL)
        assert engine.reached.wait(10)
        second = client.submit("waits behind it", steps=2, **SMALL)
        assert second.status().state == "queued"
        after = second.cancel()
        assert after.state == "cancelled"
        assert after.events[-1].stage == "cancelled"
        engine.release()
        assert first.wait(timeout=20).state == "succeeded"
        with pytest.raises(JobCancelledError) as info:
            second.result(timeout=20)
    assert info.value.status_code == 409
    assert engine.calls == 1  # the cancelled job never reached the engine


def test_cancel_while_running_stops_between_steps(make_server: ServerFactory) -> None:
    engine = SteppingEngine(hold_at_step=2)
    server = make_server(engine)
    with JaguarClient(base_url=server.url) as client:
        job = client.submit("a long one", steps=10, **SMALL)
        assert engine.reached.wait(10)
        assert job.cancel().state == "running"  # it stops at the next step boundary
        engine.release()
        final = job.wait(timeout=20)
        with pytest.raises(JobCancelledError):
            job.result(timeout=20)
    assert final.state == "cancelled"
    assert final.failure is not None and final.failure["code"] == "job_cancelled"
    assert engine.steps_run == 2  # the report of step 3 raised: steps 3..10 never ran


def test_from_id_in_a_fresh_client(make_server: ServerFactory) -> None:
    server = make_server()
    with JaguarClient(base_url=server.url) as first:
        job_id = first.submit("a jaguar", seed=11, **SMALL).id
    with JaguarClient(base_url=server.url) as fresh:
        assert fresh.get_job(job_id).result(timeout=20).seed == 11
        assert Job.from_id(job_id, fresh).wait(timeout=20).state == "succeeded"
        with pytest.raises(NotFoundError):
            fresh.get_job("job_does_not_exist")


def test_jobs_beyond_the_bound_are_refused_not_dropped(make_server: ServerFactory) -> None:
    engine = SteppingEngine(hold_at_step=1)
    server = make_server(engine, max_jobs=2)
    with JaguarClient(base_url=server.url, max_retries=0) as client:
        kept = [client.submit("one", **SMALL), client.submit("two", **SMALL)]
        with pytest.raises(RateLimitError) as info:
            client.submit("three", **SMALL)
        raw = httpx.post(f"{server.url}/v1/jobs", json={"prompt": "four", **SMALL})
        engine.release()
        assert [job.wait(timeout=20).state for job in kept] == ["succeeded", "succeeded"]
        # finished jobs make room again
        assert client.submit("five", **SMALL).wait(timeout=20).state == "succeeded"
    assert info.value.code == "job_store_full" and info.value.status_code == 429
    assert "unfinished jobs" in info.value.message
    assert raw.status_code == 429 and raw.json()["error"]["code"] == "job_store_full"
    assert "Retry-After" in raw.headers


def test_job_routes_need_the_token_and_validate(make_server: ServerFactory) -> None:
    server = make_server(api_key="tok")
    unauth = httpx.post(f"{server.url}/v1/jobs", json={"prompt": "x", **SMALL})
    assert unauth.status_code == 401
    with JaguarClient(base_url=server.url, api_key="tok") as client:
        with pytest.raises(InvalidRequestError) as bad:
            client.submit("x", width=65, height=64)
        assert bad.value.field == "width"
        with pytest.raises(InvalidRequestError, match="webhook secret"):
            client.submit("x", webhook_url="http://127.0.0.1:9/hook", **SMALL)
        with pytest.raises(InvalidRequestError, match="http"):
            client.submit("x", webhook_url="ftp://example.org/x", **SMALL)


def test_generate_many_with_one_bad_item_keeps_the_others(make_server: ServerFactory) -> None:
    server = make_server()
    items = [{"prompt": "ok one", "seed": 1}, {"prompt": "bad", "width": 65}, "ok two"]
    with JaguarClient(base_url=server.url) as client:
        out = client.generate_many(items, concurrency=2, seed=2, **SMALL)
    assert isinstance(out[0], GenerationResult) and out[0].seed == 1
    assert isinstance(out[1], JaguarError) and getattr(out[1], "field", None) == "width"
    assert isinstance(out[2], GenerationResult) and out[2].seed == 2
