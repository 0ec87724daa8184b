"""Batch throughput: ``generate_many`` of 16 prompts vs 16 calls in a row, vs server capacity.

The server runs the real app over ``FakeEngine(delay_s=0.05)`` wrapped so generation is
serialised, as the real engine's GPU lock serialises it. The server's capacity is therefore
``1 / delay_s`` = 20 images/s; a client can only approach it by keeping a request queued while
another generates (hiding its own round trip and parsing). Rounds interleave: in a row (baseline),
``generate_many(concurrency=4)``, ``generate_many(concurrency=16)`` and, for reference, raw
httpx from 4 threads. Goal: batch of 16 >= 0.9x capacity.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._common import goal, interleave, new_result, row, skipped_result
from ._server import fake_server

NAME = "concurrency"
TITLE = "batch of 16 prompts: throughput vs in-a-row and vs server capacity"
GOAL_RATIO = 0.9
BATCH = 16


def run(quick: bool = False, *, delay_s: float = 0.05, rounds: int | None = None) -> dict[str, Any]:
    """Measure wall time for 16 images done three ways, interleaved.

    Args:
        quick: 3 rounds instead of 7.
        delay_s: Simulated (serialised) GPU seconds per image.
        rounds: Override the number of measured rounds.

    Returns:
        The result record (seconds per batch; ``img_per_s``; ``vs_capacity`` = throughput x delay).
    """
    started = time.perf_counter()
    try:
        from jaguar_sdk import JaguarClient
    except ImportError as exc:
        return skipped_result(NAME, TITLE, f"jaguar_sdk.JaguarClient not available: {exc}")
    import httpx

    from jaguar_sdk import GenerateRequest

    n = rounds if rounds is not None else (3 if quick else 7)
    prompts = [f"a jaguar, variation {i}" for i in range(BATCH)]
    capacity = 1.0 / delay_s
    result = new_result(
        NAME, TITLE, baseline=f"{BATCH} JaguarClient.generate calls in a row", unit="s"
    )
    with fake_server(delay_s) as url, httpx.Client(base_url=url, timeout=60.0) as raw:
        client = JaguarClient(base_url=url)
        has_many = hasattr(client, "generate_many")
        try:

            def in_a_row() -> None:
                for prompt in prompts:
                    client.generate(prompt)

            def many(concurrency: int) -> Any:
                def call() -> None:
                    out = list(client.generate_many(prompts, concurrency=concurrency))
                    if len(out) != BATCH:
                        raise RuntimeError(f"generate_many returned {len(out)} results")

                return call

            def raw_threads() -> None:
                def one(prompt: str) -> None:
                    body = GenerateRequest(prompt=prompt).model_dump(mode="json")
                    raw.post("/v1/generate", json=body).raise_for_status()

                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(one, prompts))

            variants: dict[str, Any] = {"in a row": in_a_row}
            if has_many:
                variants["generate_many concurrency=4"] = many(4)
                variants["generate_many concurrency=16"] = many(16)
            variants["raw httpx, 4 threads (reference)"] = raw_threads
            samples = interleave(variants, n, warmup=1)
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()
    if not has_many:
        result["notes"].append("JaguarClient has no generate_many yet: only the reference rows")
    base = samples["in a row"]
    for label, values in samples.items():
        median_s = sorted(values)[len(values) // 2]
        throughput = BATCH / median_s
        r = row(
            label,
            values,
            base,
            img_per_s=round(throughput, 2),
            vs_capacity=round(throughput / capacity, 3),
        )
        # For batches a lower time is better; also give the speed-up over in-a-row.
        r["speedup_vs_in_a_row"] = round(1.0 / r["ratio"], 3) if r.get("ratio") else None
        result["rows"].append(r)
    best = None
    for r in result["rows"]:
        if r["label"].startswith("generate_many concurrency=4"):
            best = r["vs_capacity"]
    result["goals"].append(
        goal(
            f"generate_many({BATCH}, concurrency=4) throughput / server capacity",
            best,
            GOAL_RATIO,
            at_most=False,
        )
    )
    result["notes"].append(
        f"capacity = 1/delay = {capacity:.0f} img/s (generation serialised like the GPU lock); "
        "ratio = batch time / in-a-row time in the same round (< 1 is faster)"
    )
    result["elapsed_s"] = time.perf_counter() - started
    return result
