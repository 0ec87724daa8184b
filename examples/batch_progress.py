"""A batch of prompts with bounded concurrency, a progress bar, and per-item errors.

One bad item (here an invalid size) comes back as an error in its place; the others still
produce images.

    python examples/batch_progress.py
"""

from __future__ import annotations

from pathlib import Path

from jaguar_sdk import GenerateRequest, JaguarClient, JaguarError

PROMPTS = [
    "a jaguar resting on a branch",
    "a lighthouse at dusk, oil painting",
    "a bowl of ramen, studio photo",
    "an astronaut cat, watercolour",
]


def main() -> int:
    requests: list[str | GenerateRequest | dict[str, object]] = [
        GenerateRequest(prompt=p, width=256, height=256, seed=i) for i, p in enumerate(PROMPTS)
    ]
    requests.append({"prompt": "this one is invalid", "width": 1000})  # not a multiple of 16

    out = Path("jaguar-output/batch")
    with JaguarClient.local(model="tiny") as client:
        outcomes = client.generate_many(requests, concurrency=2, progress=True)

    failures = 0
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, JaguarError):
            failures += 1
            print(f"[{i}] failed: {outcome}")
        else:
            paths = outcome.save(out, stem=f"item{i}")
            print(f"[{i}] seed {outcome.seed} -> {paths[0]}")
    return 0 if failures == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
