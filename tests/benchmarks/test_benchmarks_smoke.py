"""Smoke tests of the benchmark harness: structure only, never timings."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from benchmarks import client_overhead, concurrency, encoding, gpu
from benchmarks.__main__ import parse_args
from benchmarks._common import format_table, goal, interleave, percentile, row


def _check_result(result: dict[str, Any]) -> None:
    for key in ("name", "title", "baseline", "unit", "rows", "goals", "skipped", "notes"):
        assert key in result
    json.dumps(result)  # JSON serialisable
    assert isinstance(format_table(result), str)
    for r in result["rows"]:
        assert isinstance(r["label"], str)
        for key in ("median", "p10", "p90"):
            assert isinstance(r[key], float) and math.isfinite(r[key])
        assert r["p10"] <= r["median"] <= r["p90"]
        if "ratio" in r:
            assert isinstance(r["ratio"], float) and r["ratio"] > 0
            assert 0 < r["ratio_p10"] <= r["ratio_p90"]
    for g in result["goals"]:
        assert g["met"] in (True, False, None)


def test_encoding_benchmark_structure() -> None:
    result = encoding.run(quick=True, size=128, repeats=2)
    _check_result(result)
    assert result["skipped"] is None
    labels = [r["label"] for r in result["rows"]]
    assert labels[0].startswith("engine default")
    assert {"PNG level 6 (Pillow default)", "JPEG q90", "WebP q90 method 0"} <= set(labels)
    assert all(r["bytes"] > 0 for r in result["rows"])
    assert result["rows"][0]["ratio"] == pytest.approx(1.0)
    assert result["goals"][0]["met"] in (True, False)


def test_synthetic_image_is_deterministic() -> None:
    a = encoding.synthetic_image(64, seed=3)
    b = encoding.synthetic_image(64, seed=3)
    assert a.size == (64, 64) and a.mode == "RGB"
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != encoding.synthetic_image(64, seed=4).tobytes()


def test_gpu_skip_path(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(gpu, "cuda_available", lambda: False)
    result = gpu.run(quick=True, count_flops=False)
    _check_result(result)
    assert result["skipped"] == "no CUDA GPU"
    assert "skipped: no CUDA GPU" in capsys.readouterr().out
    assert result["goals"][0]["met"] is None
    assert result["floor_s"] == pytest.approx(312.8 / 798, rel=1e-3)


def test_interleave_row_and_goal() -> None:
    clock = iter(range(1, 100))
    samples = interleave({"a": lambda: 1.0, "b": lambda: float(next(clock))}, 4, warmup=1)
    assert len(samples["a"]) == len(samples["b"]) == 4
    r = row("b", samples["b"], samples["a"])
    assert r["ratio"] > 0 and r["n"] == 4
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert goal("x", 1.0, 2.0, at_most=True)["met"] is True
    assert goal("x", None, 2.0, at_most=True)["met"] is None


def test_cli_parses_subsets() -> None:
    args = parse_args(["--only", "encoding,gpu", "--quick"])
    assert args.names == ["encoding", "gpu"] and args.quick
    with pytest.raises(SystemExit):
        parse_args(["--only", "nope"])


def test_concurrency_benchmark_structure() -> None:
    result = concurrency.run(delay_s=0.002, rounds=1)
    _check_result(result)
    (local,) = result["sub_results"]
    _check_result(local)
    for record, transport in ((result, "http"), (local, "local")):
        labels = [r["label"] for r in record["rows"]]
        assert labels[0] == "in a row"
        for c in concurrency.CONCURRENCIES:
            assert f"generate_many c={c} default" in labels
            assert f"generate_many c={c} jobs" in labels
        assert all(r["vs_capacity"] > 0 for r in record["rows"])
        assert [g["goal"].split(":")[0] for g in record["goals"]] == [transport, transport]


def test_client_overhead_benchmark_structure() -> None:
    result = client_overhead.run(quick=True, calls=30)
    _check_result(result)
    assert [r["label"] for r in result["rows"]][:2] == [
        "raw httpx, same headers",
        "JaguarClient.generate",
    ]
    (parts,) = result["sub_results"]
    _check_result(parts)
    assert any("idempotency" in r["label"] for r in parts["rows"])
    assert any("noisy" in note for note in result["notes"])  # --quick says how noisy it is
