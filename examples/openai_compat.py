"""The OpenAI Python client, unchanged, pointed at the server's OpenAI-compatible route.

Start a server, then run this:

    jaguar serve --model tiny --token secret-token &
    python examples/openai_compat.py --base-url http://127.0.0.1:8000/v1 --api-key secret-token
"""

from __future__ import annotations

import argparse
import base64
from pathlib import Path

from openai import OpenAI


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key", default="unused-without-a-server-token")
    parser.add_argument("--out", type=Path, default=Path("jaguar-output/openai.png"))
    args = parser.parse_args()

    client = OpenAI(base_url=args.base_url, api_key=args.api_key)
    response = client.images.generate(
        model="shuttle-jaguar",
        prompt="a jaguar in the rain, cinematic",
        n=1,
        size="256x256",
        response_format="b64_json",
    )
    data = response.data or []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(base64.b64decode(data[0].b64_json or ""))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
