"""What switching LoRA adapters costs, per request, against the same engine without adapters.

Two engines over random-weight Flux pipelines of the same size (``medium``: 4 double + 8 single
blocks, 8 heads x 64; ``--quick``: the tiny model), each generating one 128x128 image in 4 steps
on the CPU, with random LoRA adapters of rank 16 on the attention layers (built offline with
peft, ``jaguar_sdk.engine.build_tiny_lora``):

* **eager** (the default engine): no adapter (baseline); the same adapter every request; two
  cached adapters alternating; an adapter that is not cached (read, check, load; the LRU cache
  of 3 evicts one every time).
* **hotswap** (``torch.compile`` with Dynamo's ``eager`` backend, so the graphs run eagerly on
  a CPU while tracing and guards are the real ones): no adapter (its baseline); the same
  adapter; two adapters alternating, so every request copies one into the slot; the copy alone.
  The number of graphs Dynamo compiled while switching is a goal: 0.

GPU figures (inductor kernels, bf16, a 12B transformer) are not measured here.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import goal, interleave, new_result, row

NAME = "lora"
TITLE = "switching LoRA adapters, per request (CPU)"
RANK = 16


def _engine(sizes: Any, store: Any, max_cached: int = 3) -> Any:
    import torch

    from jaguar_sdk import ModelRef
    from jaguar_sdk.engine import Engine
    from jaguar_sdk.engine.tiny import build_random_flux_pipeline

    pipe = build_random_flux_pipeline(sizes, seed=0)
    pipe.set_progress_bar_config(disable=True)
    return Engine(
        pipe,
        model_ref=ModelRef(id="random-flux", source="local"),
        dtype=torch.float32,
        adapters=store,
        max_cached_adapters=max_cached,
    )


def run(quick: bool = False, *, repeats: int | None = None) -> dict[str, Any]:
    """Time generations with and without adapters, eager and hotswapped.

    Args:
        quick: The tiny model and 3 rounds (CI smoke) instead of ``medium`` and 8.
        repeats: Override the number of measured rounds.

    Returns:
        The result record (ms per request; ratio vs the same engine without an adapter).
    """
    import torch
    from torch._dynamo.utils import counters

    from jaguar_sdk import GenerateRequest, LoraAdapter
    from jaguar_sdk.engine import build_tiny_lora
    from jaguar_sdk.engine.tiny import TINY
    from jaguar_sdk.weights import AdapterStore, WeightStore

    from ._flux_builder import MEDIUM

    started = time.perf_counter()
    torch.set_num_threads(1)
    sizes = TINY if quick else MEDIUM
    n = repeats if repeats is not None else (3 if quick else 8)
    result = new_result(
        NAME,
        f"{TITLE}: {'tiny' if quick else 'medium'} random Flux, 128x128, 4 steps, rank {RANK}",
        baseline="the same engine, no adapter, same round",
        unit="ms",
    )
    with tempfile.TemporaryDirectory(prefix="jaguar-lora-bench-") as tmp:
        root = Path(tmp)
        names = [f"a{i}" for i in range(6)]
        for seed, name in enumerate(names, start=1):
            build_tiny_lora(
                root / "loras", seed=seed, rank=RANK, sizes=sizes, weight_name=f"{name}.safetensors"
            )
        store = AdapterStore(WeightStore(root))
        eager, swapped = _engine(sizes, store), _engine(sizes, store)
        swapped.loras.enable_hotswap(swapped.pipeline, slots=1, rank=RANK)
        torch._dynamo.reset()
        swapped.pipeline.transformer.compile_repeated_blocks(fullgraph=True, backend="eager")

        def generate(engine: Any, adapter: str | None) -> float:
            fields: dict[str, Any] = {"prompt": "a cat", "width": 128, "height": 128, "seed": 1}
            fields["max_sequence_length"] = 64
            if adapter is not None:
                fields["loras"] = [f"volume:loras/{adapter}.safetensors"]
            t0 = time.perf_counter()
            engine.generate(GenerateRequest.model_validate(fields), request_id="bench")
            return time.perf_counter() - t0

        state = {"eager": 0, "swap": 0, "miss": 0}
        swap_times: list[float] = []

        def alternate(engine: Any, key: str) -> float:
            state[key] += 1
            return generate(engine, names[state[key] % 2])

        def miss() -> float:  # 5 adapters round robin through a cache of 3: never cached
            state["miss"] += 1
            return generate(eager, names[2 + state["miss"] % 4])

        keys = {
            name: store.resolve(LoraAdapter(path=f"loras/{name}.safetensors")).key
            for name in names[:2]
        }

        def swap() -> float:  # the adapter the slot does not hold: a copy every time
            slots = swapped.loras._slots
            before = (slots.swaps, slots.swap_s)
            name = next(n for n in names[:2] if keys[n] != slots.holds[0])
            elapsed = generate(swapped, name)
            swap_times.append(slots.swap_s - before[1])
            assert slots.swaps == before[0] + 1
            return elapsed

        def same() -> float:  # timed once the slot holds it (other variants swap in between)
            generate(swapped, names[0])
            return generate(swapped, names[0])

        for adapter in (None, names[0], names[1]):  # compile every graph variant first
            generate(swapped, adapter)
        graphs = counters["stats"]["unique_graphs"]
        samples = interleave(
            {
                "eager: no adapter (baseline)": lambda: generate(eager, None),
                "eager: same adapter every request": lambda: generate(eager, names[0]),
                "eager: 2 cached adapters alternating": lambda: alternate(eager, "eager"),
                "eager: adapter not cached (read, check, load)": miss,
                "hotswap: no adapter (its baseline)": lambda: generate(swapped, None),
                "hotswap: same adapter every request": same,
                "hotswap: 2 adapters alternating (a swap each)": swap,
            },
            n,
            warmup=1,
        )
        recompiled = counters["stats"]["unique_graphs"] - graphs
        eager.close()
        swapped.close()
    eager_base = samples["eager: no adapter (baseline)"]
    swap_base = samples["hotswap: no adapter (its baseline)"]
    for label, values in samples.items():
        base = swap_base if label.startswith("hotswap") else eager_base
        result["rows"].append(row(label, values, base, scale=1000.0))
    result["rows"].append(
        row("hotswap: the copy into the slot alone", swap_times[-n:], swap_base, scale=1000.0)
    )
    result["goals"].append(
        goal("graphs compiled while switching adapters (hotswap)", recompiled, 0, at_most=True)
    )
    result["notes"].append(
        "ratio = time / the same engine's time without an adapter in the same round; the "
        "hotswap engine is compiled with Dynamo's eager backend (real guards, eager kernels)"
    )
    result["elapsed_s"] = time.perf_counter() - started
    return result
