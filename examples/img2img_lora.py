"""Image to image, then the same request with a LoRA adapter.

Runs in-process on the offline ``tiny`` model unless a deployment is configured: the starting
image is drawn here, and a tiny random LoRA is built offline into the local weights folder (the
``volume:`` source), so nothing is downloaded. The images are noise (random weights), but every
step is the real one. Against a real deployment, pass your own image and adapter:

    python examples/img2img_lora.py
    python examples/img2img_lora.py --url http://127.0.0.1:8000 --image photo.jpg \\
        --lora owner/watercolour-lora:0.8 --prompt "a watercolour painting"
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from PIL import Image, ImageDraw

from jaguar_sdk import JaguarClient, JaguarError

TINY_LORA = "volume:loras/tiny-style.safetensors:0.8"


def make_client(url: str | None) -> JaguarClient:
    if url:
        return JaguarClient(base_url=url)
    configured = any(os.environ.get(k) for k in ("JAGUAR_BASE_URL", "JAGUAR_MODAL_APP"))
    return JaguarClient() if configured else JaguarClient.local(model="tiny")


def starting_image(path: Path) -> Path:
    """A simple picture to start from: sky, sun, hills."""
    image = Image.new("RGB", (320, 192), (90, 150, 220))
    draw = ImageDraw.Draw(image)
    draw.ellipse((230, 20, 290, 80), fill=(250, 210, 60))
    draw.polygon([(0, 192), (0, 120), (110, 70), (220, 130), (320, 100), (320, 192)], (60, 130, 60))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def tiny_lora_on_the_volume() -> None:
    """Build the offline tiny LoRA into the local weights folder (what `volume:` reads)."""
    from jaguar_sdk.engine import build_tiny_lora
    from jaguar_sdk.weights import local_weights_root

    target = local_weights_root() / "loras"
    if not (target / "tiny-style.safetensors").is_file():
        build_tiny_lora(target, weight_name="tiny-style.safetensors")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="base URL of a `jaguar serve` or Modal web endpoint")
    parser.add_argument("--image", type=Path, help="the starting image (default: drawn here)")
    parser.add_argument("--lora", default=None, help=f"adapter (default: {TINY_LORA})")
    parser.add_argument("--prompt", default="the same landscape as an oil painting")
    parser.add_argument("--strength", type=float, default=0.6)
    parser.add_argument("--out", type=Path, default=Path("jaguar-output") / "img2img")
    args = parser.parse_args()

    image = args.image or starting_image(args.out / "start.png")
    try:
        with make_client(args.url) as client:
            if args.lora is None and client.info().model.id == "tiny":
                tiny_lora_on_the_volume()
            lora = args.lora or TINY_LORA
            options = {"image": image, "strength": args.strength, "seed": 42}
            plain = client.generate(args.prompt, **options)
            styled = client.generate(args.prompt, loras=[lora], **options)
            cached = client.info().extra.get("lora", {}).get("cached", [])
    except JaguarError as exc:  # a bad image, an adapter that does not fit...: field and fix
        print(f"failed: {exc}")
        return 1

    for name, result in (("img2img", plain), ("img2img-lora", styled)):
        path = result.image.save(args.out / f"{name}.jpg")
        print(f"saved {path} ({result.image.width}x{result.image.height}, seed {result.seed})")
    print(f"the adapter changed the image: {plain.image.data != styled.image.data}")
    print("cached adapters: " + ", ".join(str(item["source"]) for item in cached))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
