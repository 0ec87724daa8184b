"""``python -m benchmarks [--only NAME[,NAME]] [--quick] [--out PATH]``."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import BENCHMARKS
from ._common import REPO_ROOT, ensure_repo_on_path, format_table, machine_info, skipped_result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the jaguar_sdk benchmarks; print tables and write JSON.",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI smoke)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output (default benchmarks/results/<timestamp>.json)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    args.names = names
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; returns the exit status (1 if any benchmark crashed)."""
    args = parse_args(argv)
    ensure_repo_on_path()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or REPO_ROOT / "benchmarks" / "results" / f"{stamp}.json"
    started = time.perf_counter()
    machine = machine_info()
    print(
        f"machine: {machine['cpu_count']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB, {machine['platform']}, torch {machine['torch_version']}, "
        f"diffusers {machine['diffusers_version']}, GPU: {machine['gpu'] or 'none'}",
        flush=True,
    )
    if args.quick:
        print(
            "--quick: fewer samples (and the medium model only for load); each table's last "
            "note says how much noisier its medians are than the full run's",
            flush=True,
        )
    results: list[dict[str, Any]] = []
    failed = False
    for name in args.names:
        print(f"\n-- running {name}{' (quick)' if args.quick else ''} ...", flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            result = module.run(quick=args.quick)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            result = skipped_result(name, name, f"crashed: {type(exc).__name__}: {exc}")
        results.append(result)
        print(format_table(result), flush=True)
        for sub in result.get("sub_results", []):
            print(format_table(sub), flush=True)
    report = {
        "created_utc": stamp,
        "command": " ".join(
            ["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]
        ),
        "quick": args.quick,
        "machine": machine,
        "total_s": time.perf_counter() - started,
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {out} ({report['total_s']:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
