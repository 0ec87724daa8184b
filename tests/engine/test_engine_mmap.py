"""Loading without memory-mapped weights, as a CPU memory snapshot needs.

safetensors maps the files by default (``safetensors.torch.load_file``); for a matching dtype the
parameters stay views of the file, so a CPU snapshot would hold mappings of Volume files instead
of the weights. ``mmap=False`` reads every weight into process memory: diffusers models through
``disable_mmap=True``, the transformers text encoders through their own ``disable_mmap=True``.
The tiny model is stored in float32 and loaded in float32 here, as the real bf16 weights are
loaded in bf16: no conversion copies the tensors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jaguar_sdk.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("rss_probe.py")


def _mapped(folder: Path) -> set[str]:
    root = str(folder.resolve())
    return {
        line.split()[-1]
        for line in Path("/proc/self/maps").read_text().splitlines()
        if root in line
    }


def test_without_mmap_no_weight_file_stays_mapped(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))  # mapped by this test only
    mapped = Engine.load_to_cpu(folder, dtype="float32", mmap=True)
    assert {Path(p).parent.name for p in _mapped(folder)} >= {
        "transformer",
        "vae",
        "text_encoder",
        "text_encoder_2",
    }
    mapped.close()
    del mapped
    import gc

    gc.collect()
    engine = Engine.load_to_cpu(folder, dtype="float32", mmap=False)
    assert _mapped(folder) == set()
    assert engine.pipeline.transformer.dtype == torch.float32
    assert type(engine.pipeline.text_encoder_2).__name__ == "T5EncoderModel"
    engine.close()


def _probe(folder: Path, mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, str(PROBE), str(folder), mode, "float32"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_peak_rss_of_the_tiny_load_with_and_without_mmap(
    tiny_model_dir: Path, record_property: pytest.RecordProperty
) -> None:
    mapped = _probe(tiny_model_dir, "mmap")
    read = _probe(tiny_model_dir, "nommap")
    record_property(
        "peak_rss_kib", {"mmap": mapped["peak_rss_kib"], "nommap": read["peak_rss_kib"]}
    )
    assert mapped["mapped_files"] and read["mapped_files"] == []
    weights_kib = int(read["weight_bytes"]) // 1024  # type: ignore[call-overload]
    # Reading a file fully holds its bytes and its tensors at once: at most about twice the
    # weights above the mapped load, plus allocator noise.
    extra = int(read["peak_rss_kib"]) - int(mapped["peak_rss_kib"])  # type: ignore[call-overload]
    assert extra <= 2 * weights_kib + 64 * 1024
