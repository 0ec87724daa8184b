"""Client overhead: ``JaguarClient.generate`` vs a raw ``httpx.Client.post`` of the same JSON.

Both talk to the same live uvicorn server running the real app over ``FakeEngine`` (no model), so
the difference is the client's own cost: validation, building the call, retry bookkeeping,
parsing the JSON into a ``GenerationResult`` and decoding the base64 image. The raw baseline does
the minimum a user would: post, check the status, parse JSON, base64-decode the image.
Calls are interleaved in blocks of 10 (A-block B-block ...), and each sample is a block's mean
per-call time: single-call times on loopback are bimodal (~2 ms or ~42 ms, see the TCP_NODELAY
reference row), and block means keep a per-round ratio meaningful. Goal: client <= 1.05x raw.
"""

from __future__ import annotations

import base64
import socket
import time
from typing import Any

from ._common import goal, interleave, new_result, row, skipped_result
from ._server import fake_server

NAME = "client_overhead"
TITLE = "JaguarClient.generate vs raw httpx post (same server, FakeEngine)"
GOAL_RATIO = 1.05
PROMPT = "white cat holding a sign reading Scuffed"


def run(quick: bool = False, *, calls: int | None = None) -> dict[str, Any]:
    """Measure per-call latency of the SDK client and of raw httpx, interleaved.

    Args:
        quick: 50 calls each instead of 300.
        calls: Override the number of calls per side.

    Returns:
        The result record (ms per call; ratio client / raw).
    """
    started = time.perf_counter()
    try:
        from jaguar_sdk import JaguarClient
    except ImportError as exc:
        return skipped_result(NAME, TITLE, f"jaguar_sdk.JaguarClient not available: {exc}")
    import httpx

    from jaguar_sdk import GenerateRequest

    n = calls if calls is not None else (50 if quick else 300)
    payload = GenerateRequest(prompt=PROMPT).model_dump(mode="json")
    result = new_result(NAME, TITLE, baseline="raw httpx.Client.post + json + b64decode", unit="ms")
    nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    block = 10
    with (
        fake_server(0.0) as url,
        httpx.Client(base_url=url, timeout=30.0) as raw,
        httpx.Client(base_url=url, timeout=30.0, transport=nodelay) as raw_nodelay,
    ):
        client = JaguarClient(base_url=url)
        try:

            def raw_call(http: httpx.Client) -> Any:
                def call() -> None:
                    response = http.post("/v1/generate", json=payload)
                    response.raise_for_status()
                    data = response.json()
                    if not base64.b64decode(data["images"][0]["data"]):
                        raise RuntimeError("empty image")

                return call

            def client_call() -> None:
                out = client.generate(PROMPT)
                if not out.images[0].data:
                    raise RuntimeError("empty image")

            def blocked(fn: Any) -> Any:
                def run_block() -> float:
                    t0 = time.perf_counter()
                    for _ in range(block):
                        fn()
                    return (time.perf_counter() - t0) / block

                return run_block

            samples = interleave(
                {
                    "raw httpx": blocked(raw_call(raw)),
                    "JaguarClient.generate": blocked(client_call),
                    "raw httpx + TCP_NODELAY (reference)": blocked(raw_call(raw_nodelay)),
                },
                max(3, n // block),
                warmup=1,
            )
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()
    base = samples["raw httpx"]
    for label, values in samples.items():
        result["rows"].append(row(label, values, base, scale=1000.0))
    ratio = result["rows"][1]["ratio"]
    result["goals"].append(
        goal("client / raw httpx per-call time", ratio, GOAL_RATIO, at_most=True)
    )
    extra_ms = result["rows"][1]["median"] - result["rows"][0]["median"]
    result["notes"].append(
        f"client adds {extra_ms:.2f} ms per call (median of {block}-call block means); "
        f"{n} calls per variant; 1024x1024 JPEG from FakeEngine"
    )
    result["notes"].append(
        "ratio = block mean / raw-httpx block mean in the same round; > 1 is slower than raw"
    )
    result["elapsed_s"] = time.perf_counter() - started
    return result
