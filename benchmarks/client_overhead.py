"""Client overhead: ``JaguarClient.generate`` vs raw ``httpx.Client.post`` with the same headers.

Both talk to the same live uvicorn server running the real app over ``FakeEngine`` (no model), so
the difference is the client's own cost: validation, building the call, retry bookkeeping,
parsing the JSON into a ``GenerationResult`` and decoding the base64 image. The baseline sends
what the client sends (a fresh ``Idempotency-Key`` and ``X-Request-ID`` per call, the schema
version and ``Accept`` headers), so the server does the same work for both, and does the
minimum a user would with the answer: check the status, parse the JSON, base64-decode the image.

Calls are interleaved one by one (A B C A B C ..., the order rotating every round) and each
round's sample is the mean of its calls, so a slow phase of the shared machine hits every
variant alike; the ratio is taken per round. Goal: client <= 1.05x raw.

A second table, ``client_overhead_parts``, times the pieces of one call in this process
without a network (an ``httpx.MockTransport`` answers with the server's real response bytes),
and the server's idempotency store with a full store, to say where the time goes.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

from ._common import goal, interleave, new_result, noise_note, row, skipped_result
from ._server import fake_server

NAME = "client_overhead"
TITLE = "JaguarClient.generate vs raw httpx post with the same headers (same server, FakeEngine)"
GOAL_RATIO = 1.05
PROMPT = "white cat holding a sign reading Scuffed"
FULL_CALLS, QUICK_CALLS = 1000, 100


def _same_headers() -> dict[str, str]:
    """The headers ``JaguarClient`` sends with a call, fresh ids included (the raw baseline's)."""
    return {
        "Accept": "application/json",
        "X-Jaguar-Schema-Version": "1",
        "X-Request-ID": f"req_{uuid.uuid4().hex}",
        "Idempotency-Key": str(uuid.uuid4()),
    }


def run(quick: bool = False, *, calls: int | None = None) -> dict[str, Any]:
    """Measure per-call latency of the SDK client and of raw httpx, interleaved call by call.

    Args:
        quick: 100 calls each instead of 1000.
        calls: Override the number of calls per variant.

    Returns:
        The result record (ms per call; ratio client / raw), with the per-part table in
        ``sub_results``.
    """
    started = time.perf_counter()
    try:
        from jaguar_sdk import JaguarClient
    except ImportError as exc:
        return skipped_result(NAME, TITLE, f"jaguar_sdk.JaguarClient not available: {exc}")
    import httpx

    from jaguar_sdk import GenerateRequest

    n = calls if calls is not None else (QUICK_CALLS if quick else FULL_CALLS)
    per_round = 10
    payload = GenerateRequest(prompt=PROMPT).model_dump(mode="json", exclude_unset=True)
    result = new_result(
        NAME, TITLE, baseline="raw httpx.Client.post, same headers, + json + b64decode", unit="ms"
    )

    with fake_server(0.0) as url, httpx.Client(base_url=url, timeout=30.0) as raw:
        client = JaguarClient(base_url=url)
        try:

            def raw_call(headers: Callable[[], dict[str, str]] | None) -> Any:
                def call() -> None:
                    extra = headers() if headers is not None else None
                    response = raw.post("/v1/generate", json=payload, headers=extra)
                    response.raise_for_status()
                    data = response.json()
                    if not base64.b64decode(data["images"][0]["data"]):
                        raise RuntimeError("empty image")

                return call

            def client_call() -> None:
                out = client.generate(PROMPT)
                if not out.images[0].data:
                    raise RuntimeError("empty image")

            samples, cpu = _interleave_calls(
                {
                    "raw httpx, same headers": raw_call(_same_headers),
                    "JaguarClient.generate": client_call,
                    "raw httpx, no extra headers (reference)": raw_call(None),
                },
                rounds=max(3, n // per_round),
                per_round=per_round,
            )
            response = raw.post("/v1/generate", json=payload)
        finally:
            client.close()
    base = samples["raw httpx, same headers"]
    cpu_base = cpu["raw httpx, same headers"]
    for label, values in samples.items():
        cpu_row = row(label, cpu[label], cpu_base)
        result["rows"].append(
            row(
                label,
                values,
                base,
                scale=1000.0,
                thread_cpu_ms=round(cpu_row["median"] * 1000, 3),
                cpu_ratio=round(cpu_row["ratio"], 3),
            )
        )
    ratio = result["rows"][1]["ratio"]
    result["goals"].append(
        goal("client / raw httpx (same headers) per-call time", ratio, GOAL_RATIO, at_most=True)
    )
    extra_ms = result["rows"][1]["median"] - result["rows"][0]["median"]
    result["notes"].append(
        f"client adds {extra_ms:.3f} ms per call (median of {per_round}-call round means); "
        f"{n} calls per variant, interleaved call by call; "
        f"{len(response.content)} B JSON answer (1024x1024 JPEG from FakeEngine)"
    )
    result["notes"].append(
        "ratio = round mean / raw-httpx (same headers) round mean in the same round; "
        "> 1 is slower than raw; thread_cpu_ms / cpu_ratio = CPU time of the calling thread "
        "alone (time.thread_time), the same comparison without the server or the waits"
    )
    if quick:
        result["notes"].append(
            noise_note(max(3, n // per_round), FULL_CALLS // per_round, "rounds")
        )
    result["sub_results"] = [parts(response.content, dict(response.headers), quick=quick)]
    result["elapsed_s"] = time.perf_counter() - started
    return result


def _interleave_calls(
    variants: dict[str, Callable[[], None]], *, rounds: int, per_round: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per round: ``per_round`` calls of each variant, one by one in rotating order.

    Returns:
        Each variant's mean wall time per call in each round, and its mean CPU time of the
        calling thread (``time.thread_time``: the client's own work, not the server's, which
        runs in another thread, nor time spent waiting).
    """
    labels = list(variants)
    samples: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in labels}
    for _ in range(per_round):  # warm-up: connections, caches
        for label in labels:
            variants[label]()
    for round_index in range(rounds):
        spent = dict.fromkeys(labels, 0.0)
        worked = dict.fromkeys(labels, 0.0)
        for call_index in range(per_round):
            shift = (round_index + call_index) % len(labels)
            for label in labels[shift:] + labels[:shift]:
                c0, t0 = time.thread_time(), time.perf_counter()
                variants[label]()
                spent[label] += time.perf_counter() - t0
                worked[label] += time.thread_time() - c0
        for label in labels:
            samples[label].append(spent[label] / per_round)
            cpu[label].append(worked[label] / per_round)
    return samples, cpu


def parts(body: bytes, headers: dict[str, str], *, quick: bool = False) -> dict[str, Any]:
    """Time the pieces of one ``generate`` call in-process, without a network.

    An ``httpx.MockTransport`` answers every request with ``body`` and ``headers`` (the live
    server's real answer), so the rows are CPU time of this process only.

    Args:
        body: The JSON answer of ``POST /v1/generate``.
        headers: Its headers.
        quick: Fewer repetitions.

    Returns:
        A result record in microseconds per call (baseline: the raw httpx call, same headers).
    """
    import httpx
    from tenacity import Retrying

    from jaguar_sdk import GenerateRequest, JaguarClient
    from jaguar_sdk._core import parse_reply
    from jaguar_sdk._transports._base import Reply
    from jaguar_sdk._transports.http import HttpTransport, _client_options
    from jaguar_sdk.server._idempotency import IdempotencyStore

    result = new_result(
        f"{NAME}_parts",
        "where one call's time goes, in-process without a network (httpx.MockTransport)",
        baseline="raw httpx post with the same headers + json + b64decode (mock answer)",
        unit="us",
    )
    answer = httpx.MockTransport(lambda _: httpx.Response(200, content=body, headers=headers))
    client = JaguarClient(base_url="http://bench")
    core = client._core
    transport = core.transport
    assert isinstance(transport, HttpTransport)
    # The transport's own client, answered by the mock: the default path (owned client).
    transport._client.close()
    transport._client = mock = httpx.Client(
        transport=answer, **_client_options(core.config.connect_timeout, None, None)
    )
    payload = GenerateRequest(prompt=PROMPT).model_dump(mode="json", exclude_unset=True)
    plan = core.plan_generate("generate", PROMPT, {})
    reply = Reply(data=body, is_json=True)
    store = IdempotencyStore()
    kept = object()
    for _ in range(store._max_entries):  # a full store, as on a busy server
        store.run(str(uuid.uuid4()), lambda: kept)  # type: ignore[arg-type, return-value]

    def raw_call() -> None:
        response = mock.post(
            "http://bench/v1/generate",
            json=payload,
            headers=_same_headers(),
        )
        response.raise_for_status()
        base64.b64decode(response.json()["images"][0]["data"])

    pieces: dict[str, Callable[[], Any]] = {
        "raw httpx, same headers (mock answer)": raw_call,
        "JaguarClient.generate (mock answer)": lambda: client.generate(PROMPT),
        "  plan: validate the prompt, ids, Call": lambda: core.plan_generate(
            "generate", PROMPT, {}
        ),
        "  build the httpx request": lambda: transport._build(mock, plan.call),
        "  send + read the answer (transport)": lambda: core.sync_transport().send(plan.call),
        "  parse into GenerationResult (base64 included)": lambda: parse_reply("generate", reply),
        "(tenacity's loop, now paid only after a failed attempt)": lambda: Retrying(
            **core.retry_kwargs
        )(lambda _: None, plan),
        "server: idempotency store, full (256 keys), new key": lambda: store.run(
            str(uuid.uuid4()),
            lambda: kept,  # type: ignore[arg-type, return-value]
        ),
    }
    repeats = 200 if quick else 1000

    def timed(fn: Callable[[], Any]) -> Callable[[], float]:
        def measure() -> float:
            t0 = time.perf_counter()
            for _ in range(repeats):
                fn()
            return (time.perf_counter() - t0) / repeats

        return measure

    samples = interleave({k: timed(v) for k, v in pieces.items()}, 5 if quick else 15, warmup=1)
    base = samples["raw httpx, same headers (mock answer)"]
    for label, values in samples.items():
        result["rows"].append(row(label, values, base, scale=1e6))
    client.close()
    result["notes"].append(
        "indented rows are parts of the JaguarClient.generate row; each sample is the mean of "
        f"{repeats} calls; the ratio column compares each to the raw call"
    )
    return result
