"""Batch throughput: ``generate_many`` of 16 prompts at each concurrency, vs server capacity.

The server runs the real app over ``FakeEngine(delay_s=0.05)`` wrapped so generation is
serialised, as the real engine's GPU lock serialises it. The server's capacity is therefore
``1 / delay_s`` = 20 images/s; a client can only approach it by keeping a request queued while
another generates (hiding its own round trip and parsing).

Two transports, each with its own baseline (the same 16 ``generate`` calls in a row):

* ``http``: ``JaguarClient(base_url=...)`` against a live uvicorn server;
* ``local``: ``JaguarClient(transport=LocalTransport(service))``, the in-process transport over
  the same service (what ``JaguarClient.local()`` builds around a real engine).

For each, ``generate_many`` at concurrency 2, 4 and 16 in its default mode (direct calls),
and the same on jobs (``use_jobs=True``: submit, a long-polled wait, the result), which is how
the default was chosen. References: ``AsyncJaguarClient.generate_many`` (HTTP, concurrency 4)
and raw httpx from 4 threads. Every variant of both transports runs in one interleaved loop
(the order rotates every round), so a slow phase of the machine hits all of them.

Goals: every default ``generate_many`` row >= 0.95 of capacity, and none slower than its
transport's calls in a row (to within the 1% a paired ratio resolves here).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._common import goal, interleave, new_result, noise_note, row, skipped_result
from ._server import SerialEngine, fake_server

NAME = "concurrency"
TITLE = "batch of 16 prompts: throughput vs in-a-row and vs server capacity"
GOAL_CAPACITY = 0.95
BATCH = 16
CONCURRENCIES = (2, 4, 16)
FULL_ROUNDS, QUICK_ROUNDS = 8, 3
#: "Not slower than in a row" allows this much: in-process, where in a row already runs at
#: ~0.99 of capacity, batch and loop are equal and the paired ratio's p10-p90 spans ~+-0.5%.
RESOLUTION = 0.01


def _check(out: list[Any]) -> None:
    if len(out) != BATCH or any(isinstance(item, Exception) for item in out):
        raise RuntimeError(f"generate_many returned {out!r}")


def run(quick: bool = False, *, delay_s: float = 0.05, rounds: int | None = None) -> dict[str, Any]:
    """Measure wall time for a batch of 16 images done every way, interleaved.

    Args:
        quick: 3 rounds instead of 8.
        delay_s: Simulated (serialised) GPU seconds per image.
        rounds: Override the number of measured rounds.

    Returns:
        The result record for HTTP (seconds per batch; ``img_per_s``; ``vs_capacity`` =
        throughput x delay), with the in-process transport's record in ``sub_results``.
    """
    started = time.perf_counter()
    try:
        from jaguar_sdk import AsyncJaguarClient, GenerateRequest, JaguarClient
        from jaguar_sdk._transports.local import LocalTransport
        from jaguar_sdk.server._service import JaguarService
    except ImportError as exc:
        return skipped_result(NAME, TITLE, f"jaguar_sdk not importable: {exc}")
    import httpx

    from ._common import ensure_repo_on_path

    ensure_repo_on_path()
    from tests.support import FakeEngine

    n = rounds if rounds is not None else (QUICK_ROUNDS if quick else FULL_ROUNDS)
    prompts = [f"a jaguar, variation {i}" for i in range(BATCH)]
    capacity = 1.0 / delay_s
    local_service = JaguarService(lambda: SerialEngine(FakeEngine(delay_s=delay_s)))
    local_service.start()
    loop = asyncio.new_event_loop()
    with fake_server(delay_s) as url, httpx.Client(base_url=url, timeout=60.0) as raw:
        clients = {
            "http": JaguarClient(base_url=url),
            "local": JaguarClient(transport=LocalTransport(local_service)),
        }
        aclient = loop.run_until_complete(_make_async(AsyncJaguarClient, url))
        try:
            variants: dict[str, Any] = {}
            for transport, client in clients.items():

                def in_a_row(client: Any = client) -> None:
                    for prompt in prompts:
                        client.generate(prompt)

                variants[f"{transport}: in a row"] = in_a_row
                for concurrency in CONCURRENCIES:
                    for jobs in (None, True):

                        def many(client: Any = client, c: int = concurrency, j: Any = jobs) -> None:
                            _check(client.generate_many(prompts, concurrency=c, use_jobs=j))

                        mode = "jobs" if jobs else "default"
                        variants[f"{transport}: generate_many c={concurrency} {mode}"] = many

            def async_many() -> None:
                _check(loop.run_until_complete(aclient.generate_many(prompts, concurrency=4)))

            def raw_threads() -> None:
                def one(prompt: str) -> None:
                    body = GenerateRequest(prompt=prompt).model_dump(mode="json")
                    raw.post("/v1/generate", json=body).raise_for_status()

                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(one, prompts))

            variants["http: AsyncJaguarClient.generate_many c=4 (reference)"] = async_many
            variants["http: raw httpx, 4 threads (reference)"] = raw_threads
            samples = interleave(variants, n, warmup=1)
        finally:
            for client in clients.values():
                client.close()
            loop.run_until_complete(aclient.aclose())
            loop.close()
    result = _record("http", samples, capacity, quick)
    result["sub_results"] = [_record("local", samples, capacity, quick)]
    result["elapsed_s"] = time.perf_counter() - started
    return result


async def _make_async(cls: Any, url: str) -> Any:
    return cls(base_url=url)  # made inside the loop that will use its connection pool


def _record(transport: str, samples: dict[str, list[float]], capacity: float, quick: bool) -> Any:
    where = "live uvicorn server" if transport == "http" else "in-process LocalTransport"
    result = new_result(
        NAME if transport == "http" else f"{NAME}_{transport}",
        f"{TITLE} ({transport}: {where})",
        baseline=f"{BATCH} JaguarClient.generate calls in a row ({transport})",
        unit="s",
    )
    prefix = f"{transport}: "
    base = samples[f"{prefix}in a row"]
    for label, values in samples.items():
        if not label.startswith(prefix):
            continue
        median_s = sorted(values)[len(values) // 2]
        throughput = BATCH / median_s
        r = row(
            label[len(prefix) :],
            values,
            base,
            img_per_s=round(throughput, 2),
            vs_capacity=round(throughput / capacity, 3),
        )
        # For batches a lower time is better; also give the speed-up over in-a-row.
        r["speedup_vs_in_a_row"] = round(1.0 / r["ratio"], 3) if r.get("ratio") else None
        result["rows"].append(r)
    defaults = [r for r in result["rows"] if r["label"].endswith(" default")]
    result["goals"].append(
        goal(
            f"{transport}: generate_many({BATCH}) / server capacity, worst of concurrency "
            f"{', '.join(map(str, CONCURRENCIES))}",
            min((r["vs_capacity"] for r in defaults), default=None),
            GOAL_CAPACITY,
            at_most=False,
        )
    )
    result["goals"].append(
        goal(
            f"{transport}: generate_many speed-up over the same calls in a row, worst row "
            f"(not slower: >= {1 - RESOLUTION:g}, the resolution of a paired ratio here)",
            min((r["speedup_vs_in_a_row"] or 0.0 for r in defaults), default=None),
            1.0 - RESOLUTION,
            at_most=False,
        )
    )
    result["notes"].append(
        f"capacity = 1/delay = {capacity:.0f} img/s (generation serialised like the GPU lock); "
        "ratio = batch time / in-a-row time in the same round (< 1 is faster); 'default' = "
        "use_jobs=None (direct calls on the built-in transports), 'jobs' = use_jobs=True "
        "(submit + long-polled wait + result)"
    )
    if quick:
        result["notes"].append(noise_note(QUICK_ROUNDS, FULL_ROUNDS, "rounds"))
    return result
