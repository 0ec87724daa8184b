"""Quickstart: one image, saved to disk, with its seed and timings.

Runs in-process on the offline ``tiny`` model (random weights: the image is noise) unless a
deployment is configured. Point it at a real one with ``--url`` or ``JAGUAR_BASE_URL``, or at
Modal with ``JAGUAR_MODAL_APP=shuttle-jaguar``.

    python examples/quickstart.py
    python examples/quickstart.py --url http://127.0.0.1:8000 --prompt "a jaguar in the rain"
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from jaguar_sdk import JaguarClient, JaguarError


def make_client(url: str | None) -> JaguarClient:
    if url:
        return JaguarClient(base_url=url)
    configured = any(os.environ.get(k) for k in ("JAGUAR_BASE_URL", "JAGUAR_MODAL_APP"))
    return JaguarClient() if configured else JaguarClient.local(model="tiny")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="base URL of a `jaguar serve` or Modal web endpoint")
    parser.add_argument("--prompt", default="white cat holding a sign reading Scuffed")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("jaguar-output"))
    args = parser.parse_args()

    try:
        with make_client(args.url) as client:
            result = client.generate(args.prompt, width=args.size, height=args.size, seed=42)
    except JaguarError as exc:  # every failure is a JaguarError with a message saying what to do
        print(f"failed: {exc}")
        return 1

    path = result.image.save(args.out / "quickstart.jpg")
    print(f"saved {path} ({result.image.width}x{result.image.height}, seed {result.seed})")
    print(f"model {result.model.id} from {result.model.source}", end="; ")
    print(f"total {result.timings.total_s:.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
