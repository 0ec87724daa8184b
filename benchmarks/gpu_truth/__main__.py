"""``python -m benchmarks.gpu_truth --out DIR [--budget-s S] [--small]``: see the package doc."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._common import REPO_ROOT
from ._report import Recorder, Section, Watchdog, plan
from ._sections import SECTIONS, RunConfig, SectionSkipped, State

DEFAULT_BUDGET_S = 480.0  # the 8 minutes on an H100/H200
#: Sections start only while this share of their estimate is left (estimates are rough).
START_SHARE = 0.6


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    names = [s.name for s in SECTIONS]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_truth",
        description="Answer the open GPU questions at real shapes in one run; write JSON + table.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default benchmarks/results/gpu-truth-<UTC timestamp>/)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=DEFAULT_BUDGET_S,
        help="hard wall-clock budget; the slowest optional sections are dropped first to fit "
        f"(default {DEFAULT_BUDGET_S:g})",
    )
    parser.add_argument(
        "--small", action="store_true", help="tiny pipeline at 128x128 (CPU, the test suite)"
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cuda", "cpu"),
        default="auto",
        help="where the engine runs (auto: cuda when available)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where the random pipeline is saved (a new temporary folder inside it; default "
        "the system temp dir). Needs ~36 GB free at full size.",
    )
    parser.add_argument(
        "--keep-model", action="store_true", help="keep the saved pipeline (default: deleted)"
    )
    parser.add_argument("--reps", type=int, default=None, help="timed calls per variant")
    parser.add_argument(
        "--skip", default="", help=f"comma-separated sections not to run: {', '.join(names)}"
    )
    args = parser.parse_args(argv)
    args.skip_names = [n.strip() for n in args.skip.split(",") if n.strip()]
    unknown = [n for n in args.skip_names if n not in names]
    if unknown:
        parser.error(f"--skip: unknown section(s) {unknown}; choose from {names}")
    if args.budget_s <= 0:
        parser.error(f"--budget-s must be > 0, got {args.budget_s:g}")
    if args.reps is not None and not 1 <= args.reps <= 50:
        parser.error(f"--reps must be 1 to 50, got {args.reps}")
    return args


def make_config(args: argparse.Namespace, work_dir: Path) -> RunConfig:
    """The run's configuration from the options (imports torch for ``--device auto``)."""
    from .._flux_builder import FLUX1, SMALL

    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return RunConfig(
        small=args.small,
        device=device,
        sizes=SMALL if args.small else FLUX1,
        width=128 if args.small else 1024,
        height=128 if args.small else 1024,
        steps=4,
        reps=args.reps or (2 if args.small else 5),
        batch_images=4,
        max_sequence_length=256,
        prompt="white cat holding a sign reading Scuffed",
        work_dir=work_dir,
    )


def _run_section(section: Section, state: State) -> dict[str, Any]:
    started = time.perf_counter()
    record: dict[str, Any] = {"title": section.title, "figures": {}}
    try:
        record["figures"] = section.run(state)
        record["status"] = "ok"
    except SectionSkipped as exc:
        record.update(status="skipped", reason=str(exc))
    except Exception as exc:
        record.update(
            status="error",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=-8),
        )
    record["seconds"] = time.perf_counter() - started
    return record


def main(argv: list[str] | None = None) -> int:
    """Run the sections within the budget; returns 0 when the run completed (errors included)."""
    args = parse_args(argv)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or REPO_ROOT / "benchmarks" / "results" / f"gpu-truth-{stamp}"
    base = args.work_dir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="gpu-truth-", dir=base))

    def cleanup() -> None:
        if not args.keep_model:
            shutil.rmtree(work_dir, ignore_errors=True)

    cfg = make_config(args, work_dir)
    sections = [s for s in SECTIONS if s.name not in args.skip_names]
    dropped = plan(sections, args.budget_s, small=cfg.small)
    header = {
        "created_utc": stamp,
        "command": " ".join(
            ["python -m benchmarks.gpu_truth", *(sys.argv[1:] if argv is None else argv)]
        ),
        "config_summary": cfg.summary(),
        "small": cfg.small,
        "budget_s": args.budget_s,
        "planned": {s.name: s.estimate(cfg.small) for s in sections},
        "dropped": dropped,
        "skipped_by_flag": args.skip_names,
    }
    recorder = Recorder(out, header)
    watchdog = Watchdog(recorder, args.budget_s, cleanup).start()
    state = State(cfg=cfg, remaining=watchdog.remaining)
    print(f"gpu_truth: {cfg.summary()}; budget {args.budget_s:g} s; writing {out}", flush=True)
    succeeded: set[str] = set()
    for section in sections:
        estimate = section.estimate(cfg.small)
        missing = [n for n in section.needs if n not in succeeded]
        if section.name in dropped:
            record: dict[str, Any] = {"status": "skipped", "reason": dropped[section.name]}
        elif missing:
            record = {"status": "skipped", "reason": f"needs {', '.join(missing)} (did not run)"}
        elif section.optional and watchdog.remaining() < START_SHARE * estimate:
            record = {
                "status": "skipped",
                "reason": f"budget: {watchdog.remaining():.0f} s left, estimated {estimate:g} s",
            }
        else:
            print(
                f"-- {section.name}: {section.title} (~{estimate:g} s, "
                f"{watchdog.remaining():.0f} s left)",
                flush=True,
            )
            recorder.begin(section.name)
            record = _run_section(section, state)
        record.setdefault("figures", {})
        record.setdefault("seconds", 0.0)
        recorder.section(section.name, record)
        detail = record.get("error") or record.get("reason") or record["figures"].get("summary")
        print(f"   {section.name}: {record['status']}: {detail}", flush=True)
        if record["status"] == "ok":
            succeeded.add(section.name)
    watchdog.stop()
    cleanup()
    from ._table import answers

    recorder.finish("done", answers=answers(recorder.report()))
    print(f"\nwrote {out} ({recorder.elapsed():.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
