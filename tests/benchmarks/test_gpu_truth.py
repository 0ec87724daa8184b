"""The GPU-truth script on CPU: the ``--small`` run end to end, the full-size configs on the meta
device, the budget plan, the hard cut, and the Modal wrapper importing offline.

No timing is asserted: only that every section ran (or failed as it must off CUDA), that the
figures were written in the documented format, and that the full-size configs are FLUX.1's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import gpu
from benchmarks._flux_builder import FLUX1, build_pipeline_on, component_parameters
from benchmarks.gpu_truth import __main__ as truth_main
from benchmarks.gpu_truth._measure import count_stage_flops, stage_floors
from benchmarks.gpu_truth._report import CUT_EXIT, Section, plan
from benchmarks.gpu_truth._sections import SECTIONS

ROOT = Path(__file__).resolve().parents[2]
NAMES = [s.name for s in SECTIONS]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One ``--small`` run through the Modal function's body (``run_truth``), on CPU."""
    from benchmarks import gpu_truth_modal

    tmp = tmp_path_factory.mktemp("truth")
    work = tmp / "work"
    files = gpu_truth_modal.run_truth(
        ["--small", "--budget-s", "170", "--work-dir", str(work)], out_dir=tmp / "out"
    )
    return {"files": files, "work": work, "out": tmp / "out"}


def test_small_run_writes_every_file_and_every_section(small_run: dict[str, Any]) -> None:
    files = small_run["files"]
    assert set(files) == {"gpu_truth.jsonl", "gpu_truth.json", "gpu_truth.md", "log.txt"}
    report = json.loads(files["gpu_truth.json"])
    log = files["log.txt"].decode()
    assert report["status"] == "done", log[-3000:]
    assert list(report["sections"]) == NAMES
    statuses = {name: s["status"] for name, s in report["sections"].items()}
    # Off CUDA: fp8 is refused by the engine before any load, h2d has nothing to copy to.
    assert statuses == {**dict.fromkeys(NAMES, "ok"), "fp8": "error", "h2d": "skipped"}, log
    assert "ConfigurationError" in report["sections"]["fp8"]["error"]
    assert "CUDA" in report["sections"]["fp8"]["error"]
    assert report["sections"]["h2d"]["reason"].startswith("needs CUDA")
    assert report["answers"]["goal_met"] is None  # the goal is for full size on a GPU
    assert "[exit status 0]" in log
    # the saved pipeline was removed with its temporary folder
    assert list(small_run["work"].iterdir()) == []


def test_small_run_jsonl_is_the_incremental_record(small_run: dict[str, Any]) -> None:
    events = [json.loads(line) for line in small_run["files"]["gpu_truth.jsonl"].splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "end"
    sections = [e["name"] for e in events if e["event"] == "section"]
    assert sections == NAMES
    times = [e["t_s"] for e in events if e["event"] == "section"]
    assert times == sorted(times)
    assert events[0]["budget_s"] == 170 and events[0]["dropped"] == {}


def test_small_run_figures(small_run: dict[str, Any]) -> None:
    report = json.loads(small_run["files"]["gpu_truth.json"])
    figures = {name: s["figures"] for name, s in report["sections"].items()}
    assert all(v > 0 for v in figures["floor"]["flops"].values())
    assert figures["floor"]["floors"]["image_s"] > 0
    assert set(figures["build"]["parameters"]) == {
        "transformer",
        "vae",
        "text_encoder",
        "text_encoder_2",
    }
    assert figures["save"]["files"] == 4 and figures["save"]["safetensors_gb"] > 0
    assert figures["load"]["engine_device"] == "cpu"
    assert figures["load"]["load_gbps"] > 0
    rows = [r for f in figures.values() for r in f.get("rows", [])]
    variants = [r["variant"] for r in rows]
    assert variants[0] == "Engine.generate, bf16 eager"
    assert any(v.startswith("JaguarClient.local") for v in variants)
    assert any("compiled (not applied off CUDA)" in v for v in variants)
    for r in rows:
        assert r["image_s"] > 0 and r["floor_ratio"] > 0
        assert r["decode_s"] > 0 and r["encode_s"] > 0
    assert figures["eager"]["rows"][0]["image_size"] == "128x128"
    assert figures["eager"]["rows"][0]["text_encode_s"] > 0
    assert figures["compiled"]["applied"] is None  # the engine compiles on CUDA only
    assert figures["client_reload"]["cache"].startswith(("cold", "warm"))
    moments = [m["moment"] for f in figures.values() for m in f.get("memory", [])]
    assert "reload_model(): old and new engine at once" in moments
    assert all(m["rss_gb"] > 0 for f in figures.values() for m in f.get("memory", []))


def test_small_run_snapshot_phase_ran_both_phases(small_run: dict[str, Any]) -> None:
    snap = json.loads(small_run["files"]["gpu_truth.json"])["sections"]["snapshot_phase"]
    fig = snap["figures"]
    assert fig["cuda_visible_devices_at_start"] == ""
    assert fig["engine_device_before_restore"] == "cpu"
    assert fig["cuda_visible_devices_removed"] is True
    # The rule itself: nothing before the snapshot may ask torch.cuda anything.
    assert fig["cuda_queries_before_restore"] == []
    assert fig["cuda_initialized_before_restore"] is False
    # This machine has no GPU: the move fails and the report says so instead of hiding it.
    assert fig["transformer_device"] == "cpu"
    assert fig["verdict"] == "no GPU here"
    assert "No CUDA device is visible after the restore" in fig["error"]  # require_cuda


def test_small_run_table(small_run: dict[str, Any]) -> None:
    table = small_run["files"]["gpu_truth.md"].decode()
    assert table.startswith("# GPU truth (done")
    assert "| variant | s/image |" in table and "| moment | allocated |" in table
    assert "| Engine.generate, bf16 eager |" in table
    for name in NAMES:
        assert f"| {name} | " in table
    assert (small_run["out"] / "gpu_truth.md").read_text() == table


def _same_config(config: Any, expected: dict[str, Any]) -> bool:
    def norm(value: Any) -> Any:
        return tuple(value) if isinstance(value, (list, tuple)) else value

    return {k: norm(config[k]) for k in expected} == {k: norm(v) for k, v in expected.items()}


def test_full_size_configs_are_flux1_on_meta() -> None:
    pipe = build_pipeline_on(FLUX1, device="meta")
    params = component_parameters(pipe)
    # perf.md section 0: transformer 11.89 B, T5-XXL encoder 4.76 B, 33.7 GB in bf16
    assert params["transformer"] == pytest.approx(11.89e9, rel=1e-3)
    assert params["text_encoder_2"] == pytest.approx(4.76e9, rel=1e-3)
    assert 2 * sum(params.values()) == pytest.approx(33.7e9, rel=2e-3)
    t = pipe.transformer.config
    assert (t.num_layers, t.num_single_layers, t.num_attention_heads, t.attention_head_dim) == (
        19,
        38,
        24,
        128,
    )
    assert (t.joint_attention_dim, t.pooled_projection_dim, t.guidance_embeds) == (4096, 768, False)
    # benchmarks.gpu keeps the same configs as plain dicts: they must not drift apart
    assert _same_config(t, gpu.FLUX1_CONFIG)
    assert _same_config(pipe.vae.config, gpu.FLUX_VAE_CONFIG)
    t5, clip = pipe.text_encoder_2.config, pipe.text_encoder.config
    assert (t5.d_model, t5.d_ff, t5.num_layers, t5.num_heads, t5.d_kv) == (4096, 10240, 24, 64, 64)
    assert (t5.vocab_size, t5.feed_forward_proj) == (32128, "gated-gelu")
    assert (clip.hidden_size, clip.num_hidden_layers, clip.intermediate_size) == (768, 12, 3072)
    assert (clip.projection_dim, clip.vocab_size) == (768, 49408)
    assert t5.vocab_size >= len(pipe.tokenizer_2) and clip.vocab_size >= len(pipe.tokenizer)
    assert (pipe.tokenizer.model_max_length, pipe.tokenizer_2.model_max_length) == (77, 512)


def test_full_size_floor_matches_perf_md() -> None:
    flops = count_stage_flops(FLUX1, 1024, 1024, 256)
    # perf.md section 3a (1024x1024, 256 text tokens): 69.47 / 10.47 / 2.40 / 0.013 TFLOP
    assert flops["transformer_step"] == pytest.approx(69.47e12, rel=1e-3)
    assert flops["vae_decode"] == pytest.approx(10.47e12, rel=1e-3)
    assert flops["t5"] == pytest.approx(2.40e12, rel=2e-3)
    assert flops["clip"] == pytest.approx(0.0133e12, rel=1e-2)
    assert stage_floors(flops, 4)["image_s"] == pytest.approx(290.8 / 798, rel=2e-3)


def _section(name: str, est: float, optional: bool = True, **kw: Any) -> Section:
    return Section(name, name, est, est, optional, kw.get("needs", ()), kw.get("run", lambda s: {}))


def test_plan_drops_the_slowest_optional_sections_first() -> None:
    sections = [
        _section("core", 100, optional=False),
        _section("fast", 10),
        _section("slow", 90),
        _section("medium", 40),
    ]
    assert plan(sections, 1000, small=False) == {}
    assert list(plan(sections, 160, small=False)) == ["slow"]
    assert list(plan(sections, 120, small=False)) == ["slow", "medium"]
    assert list(plan(sections, 50, small=False)) == ["slow", "medium", "fast"]  # core stays


def test_runner_records_errors_dependencies_and_budget_drops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(state: Any) -> dict[str, Any]:
        raise ValueError("broken on purpose")

    fake = (
        _section("first", 1, optional=False, run=lambda s: {"summary": "fine"}),
        _section("broken", 1, optional=False, run=boom),
        _section("after", 1, needs=("broken",)),
        _section("slow", 50),
        _section("last", 1, run=lambda s: {"rows": []}),
    )
    monkeypatch.setattr(truth_main, "SECTIONS", fake)
    out = tmp_path / "out"
    argv = ["--small", "--out", str(out), "--budget-s", "20", "--work-dir", str(tmp_path)]
    assert truth_main.main(argv) == 0
    report = json.loads((out / "gpu_truth.json").read_text())
    got = {n: s["status"] for n, s in report["sections"].items()}
    assert got == {
        "first": "ok",
        "broken": "error",
        "after": "skipped",
        "slow": "skipped",
        "last": "ok",
    }
    assert report["sections"]["broken"]["error"] == "ValueError: broken on purpose"
    assert "ValueError" in report["sections"]["broken"]["traceback"]
    assert report["sections"]["after"]["reason"] == "needs broken (did not run)"
    assert report["sections"]["slow"]["reason"].startswith("dropped by --budget-s 20")
    assert report["dropped"] == {"slow": report["sections"]["slow"]["reason"]}


_CUT_SCRIPT = """
import sys, time
from pathlib import Path
from benchmarks.gpu_truth._report import Recorder, Watchdog
out, marker, budget = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
rec = Recorder(out, {"command": "test"})
rec.section("done_part", {"status": "ok", "figures": {"value": 42}})
rec.begin("stuck_part")
Watchdog(rec, budget, cleanup=marker.unlink).start()
print("armed", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(("budget", "reason"), [(0.5, "hard budget 0.5 s"), (50, "SIGTERM")])
def test_a_cut_run_keeps_its_figures(tmp_path: Path, budget: float, reason: str) -> None:
    marker = tmp_path / "work-marker"
    marker.write_text("x")
    proc = subprocess.Popen(
        [sys.executable, "-c", _CUT_SCRIPT, str(tmp_path / "out"), str(marker), str(budget)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "armed\n"
    if reason == "SIGTERM":
        proc.terminate()
    proc.wait(timeout=60)
    assert proc.returncode == CUT_EXIT, proc.stderr.read() if proc.stderr else ""
    report = json.loads((tmp_path / "out" / "gpu_truth.json").read_text())
    assert report["status"] == "cut" and report["reason"] == reason
    assert report["sections"]["done_part"]["figures"] == {"value": 42}
    assert report["sections"]["stuck_part"]["status"] == "cut"
    events = (tmp_path / "out" / "gpu_truth.jsonl").read_text().splitlines()
    assert json.loads(events[-1])["event"] == "cut"
    assert "| stuck_part | cut |" in (tmp_path / "out" / "gpu_truth.md").read_text()
    assert not marker.exists()  # cleanup ran before the exit
    proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()


def test_cli_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--skip", "nope"], ["--budget-s", "0"], ["--reps", "0"]):
        with pytest.raises(SystemExit):
            truth_main.parse_args(bad)
    err = capsys.readouterr().err
    assert "unknown section(s) ['nope']" in err and "--budget-s must be > 0" in err
    args = truth_main.parse_args(["--skip", "fp8,h2d", "--small"])
    assert args.skip_names == ["fp8", "h2d"] and args.small


def test_modal_wrapper_imports_offline_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env.update(HOME=str(tmp_path), MODAL_CONFIG_PATH=str(tmp_path / "none.toml"))
    code = (
        "import json, benchmarks.gpu_truth_modal as m\n"
        "print(json.dumps({'app': m.app.name, 'gpu': m.GPU, 'fn': type(m.gpu_truth).__name__,"
        " 'main': type(m.main).__name__, 'root': str(m.source_root())}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info == {
        "app": "jaguar-gpu-truth",
        "gpu": "H100",
        "fn": "Function",
        "main": "LocalEntrypoint",
        "root": str(ROOT),
    }


def test_modal_outputs_are_written_by_known_name_only(tmp_path: Path) -> None:
    from benchmarks.gpu_truth_modal import write_outputs

    written = write_outputs({"gpu_truth.md": b"# table\n"}, tmp_path / "o")
    assert [p.name for p in written] == ["gpu_truth.md"]
    assert (tmp_path / "o" / "gpu_truth.md").read_bytes() == b"# table\n"
    with pytest.raises(ValueError, match="unexpected output file"):
        write_outputs({"../escape": b"x"}, tmp_path / "o")


def test_cuda_memory_records_reach_the_answers_and_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA branch of ``memory`` feeds ``answers``/``render``; torch.cuda's readings are
    replaced by fixed byte counts (this machine has no GPU), the arithmetic is the real one."""
    import torch

    from benchmarks.gpu_truth._measure import memory
    from benchmarks.gpu_truth._table import answers, render

    readings = {
        "mem_get_info": (40e9, 141e9),  # free, total: 101 GB used on the device
        "memory_reserved": 100e9,  # so 1 GB is the CUDA context
        "memory_allocated": 90e9,
        "max_memory_allocated": 95e9,
        "max_memory_reserved": 78e9,
    }
    for name, value in readings.items():
        monkeypatch.setattr(torch.cuda, name, lambda v=value: v)
    rest = memory("cuda", "at rest")
    assert rest["non_torch_gb"] == pytest.approx(1.0)
    assert rest["headroom_80gb_gb"] == pytest.approx(80 - 78 - 1)
    assert rest["fits_80gb"] is True
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda: 79.5e9)
    reload = memory("cuda", "reload")
    assert reload["fits_80gb"] is False
    row = {"variant": "eager", "image_s": 0.9, "images_per_call": 1, "floor_s": 0.36}
    batch = {"variant": "batch", "image_s": 0.4, "images_per_call": 4}
    report = {
        "status": "done",
        "small": False,
        "sections": {
            "load": {"status": "ok", "figures": {"memory": [rest]}},
            "eager": {"status": "ok", "figures": {"rows": [row, batch], "memory": [reload]}},
            "snapshot_phase": {"status": "ok", "figures": {"verdict": "pass"}},
        },
    }
    got = answers(report)
    assert (got["best_variant"], got["goal_met"]) == ("eager", False)  # batch rows excluded
    assert (got["peak_memory_moment"], got["fits_80gb"]) == ("reload", False)
    assert got["snapshot_verdict"] == "pass"
    table = render(report)
    assert "| reload | 90.0 | 95.0 | 79.5 | -0.5 |" in table
    assert "fits an 80 GB H100: no" in table and "snapshot-phase rule: pass" in table
