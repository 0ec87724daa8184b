"""Peak RSS of loading a FluxPipeline with and without memory-mapped weights (one process each).

Run: ``.venv/bin/python tests/engine/rss_probe.py MODEL_DIR mmap|nommap DTYPE``; prints one JSON
line: ``peak_rss_kib`` (``VmHWM``), ``rss_before_kib`` (after the imports, before the load),
``weight_bytes`` (the safetensors files), ``mapped_files`` (weight files still mapped).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main(folder: str, mode: str, dtype_name: str) -> dict[str, object]:
    import diffusers  # noqa: F401  (imports first: the baseline excludes them)
    import torch
    import transformers  # noqa: F401

    from jaguar_sdk.engine._loading import load_pipeline

    root = Path(folder).resolve()
    before = _status_kib("VmRSS")
    pipe = load_pipeline(root, getattr(torch, dtype_name), mmap=mode == "mmap")
    mapped = sorted(
        {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
         if str(root) in line}
    )  # fmt: skip
    assert pipe is not None
    return {
        "mode": mode,
        "peak_rss_kib": _status_kib("VmHWM"),
        "rss_before_kib": before,
        "weight_bytes": sum(p.stat().st_size for p in root.rglob("*.safetensors")),
        "mapped_files": [str(Path(m).relative_to(root)) for m in mapped],
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3])))
