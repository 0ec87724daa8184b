"""Shared helpers: interleaved timing, robust statistics, result records, tables, machine info.

Every benchmark returns a plain JSON-serialisable dict (a *result*):

``{"name", "title", "baseline", "unit", "rows": [...], "goals": [...], "skipped", "notes",
"elapsed_s"}``

Each row is one measured variant: ``median``/``p10``/``p90`` of its samples (in ``unit``) and
``ratio``/``ratio_p10``/``ratio_p90``: the variant against the baseline, computed pair by pair
from interleaved runs (A B A B ...) so slow phases of a shared, noisy machine hit both sides.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(__file__).resolve().parent / ".cache"


def ensure_repo_on_path() -> None:
    """Make ``tests.support`` importable (``tests`` is a plain folder at the repo root)."""
    root = str(REPO_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation.

    Args:
        values: At least one sample.
        q: Percentile from 0 to 100.

    Returns:
        The interpolated percentile.
    """
    data = sorted(values)
    if not data:
        raise ValueError("percentile of no samples")
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def summarize(values: Sequence[float]) -> dict[str, float | int]:
    """Median, p10, p90 and count of samples."""
    return {
        "median": float(statistics.median(values)),
        "p10": percentile(values, 10),
        "p90": percentile(values, 90),
        "n": len(values),
    }


def interleave(
    variants: dict[str, Callable[[], float | None]],
    repeats: int,
    *,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Run every variant ``repeats`` times, interleaved (A B C A B C ...).

    Each callable either returns its own measurement (e.g. seconds it timed itself, excluding
    set-up) or ``None``, in which case its wall time is measured here. The order is rotated on
    every round so no variant always runs right after another.

    Args:
        variants: Label to callable; the first is the baseline by convention.
        repeats: Measured rounds.
        warmup: Unmeasured rounds first.

    Returns:
        Label to the list of measurements, in round order (index i of every list is round i).
    """
    labels = list(variants)
    samples: dict[str, list[float]] = {label: [] for label in labels}
    for round_index in range(warmup + repeats):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            started = time.perf_counter()
            measured = variants[label]()
            elapsed = time.perf_counter() - started if measured is None else float(measured)
            if round_index >= warmup:
                samples[label].append(elapsed)
    return samples


def row(
    label: str,
    values: Sequence[float],
    baseline: Sequence[float] | None = None,
    *,
    scale: float = 1.0,
    higher_is_better: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """One table row: statistics of ``values`` (times ``scale``) and the paired ratio.

    The ratio is ``value / baseline`` per round (so for times, ``> 1`` means slower than the
    baseline); with ``higher_is_better`` (throughputs) it is still ``value / baseline`` (so
    ``> 1`` means more throughput). Rounds are paired by index.

    Args:
        label: The variant's name.
        values: Its samples.
        baseline: The baseline's samples from the same rounds, or ``None`` for no ratio.
        scale: Multiplier for display units (e.g. 1000 for ms from seconds).
        higher_is_better: Only recorded, to tell readers which way is good.
        **extra: More fields for the row (bytes, GB/s, ...).

    Returns:
        The row dict.
    """
    out: dict[str, Any] = {"label": label}
    stats = summarize([v * scale for v in values])
    out.update(stats)
    if baseline is not None:
        pairs = [v / b for v, b in zip(values, baseline, strict=False) if b > 0]
        if pairs:
            out["ratio"] = float(statistics.median(pairs))
            out["ratio_p10"] = percentile(pairs, 10)
            out["ratio_p90"] = percentile(pairs, 90)
    out["higher_is_better"] = higher_is_better
    out.update(extra)
    return out


def goal(description: str, value: float | None, target: float, *, at_most: bool) -> dict[str, Any]:
    """A goal record: ``met`` is ``None`` when the value was not measured."""
    met: bool | None = None
    if value is not None:
        met = value <= target if at_most else value >= target
    return {
        "goal": description,
        "value": value,
        "target": target,
        "comparison": "<=" if at_most else ">=",
        "met": met,
    }


def noise_note(quick_n: int, full_n: int, what: str) -> str:
    """How much noisier a ``--quick`` figure is than the full run's.

    A median's standard error shrinks as ``1/sqrt(n)``, so with ``quick_n`` samples instead of
    ``full_n`` a ratio's median moves about ``sqrt(full_n / quick_n)`` times as far from run to
    run (docs/performance.md gives the measured spreads of both modes).

    Example:
        >>> noise_note(10, 100, "rounds")
        '--quick: 10 rounds instead of 100: medians about 3.2x as noisy as the full run'
    """
    factor = math.sqrt(full_n / quick_n)
    return (
        f"--quick: {quick_n} {what} instead of {full_n}: medians about {factor:.1f}x as noisy "
        "as the full run"
    )


def new_result(name: str, title: str, *, baseline: str, unit: str) -> dict[str, Any]:
    """An empty result record for one benchmark."""
    return {
        "name": name,
        "title": title,
        "baseline": baseline,
        "unit": unit,
        "rows": [],
        "goals": [],
        "skipped": None,
        "notes": [],
        "elapsed_s": None,
    }


def skipped_result(name: str, title: str, reason: str) -> dict[str, Any]:
    """A result for a benchmark that could not run here, saying why."""
    result = new_result(name, title, baseline="n/a", unit="n/a")
    result["skipped"] = reason
    return result


def machine_info() -> dict[str, Any]:
    """Where the numbers came from: CPU, platform, library versions, GPU."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
    }
    for module in ("torch", "diffusers", "transformers", "safetensors", "PIL", "httpx", "numpy"):
        try:
            imported = __import__(module)
            info[f"{module}_version"] = getattr(imported, "__version__", "unknown")
        except Exception:  # not installed: recorded as None
            info[f"{module}_version"] = None
    info["gpu"] = None
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda_version"] = torch.version.cuda
    except Exception:
        pass
    try:
        from jaguar_sdk import __version__

        info["jaguar_sdk_version"] = __version__
    except Exception:
        info["jaguar_sdk_version"] = None
    return info


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        magnitude = abs(value)
        if magnitude == 0:
            return "0"
        if magnitude >= 100:
            return f"{value:.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        if magnitude >= 0.1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


_SKIP_COLUMNS = {"label", "p10", "p90", "ratio_p10", "ratio_p90", "higher_is_better"}


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of one result (also used to write docs/performance.md)."""
    lines = [f"== {result['name']}: {result['title']}"]
    if result.get("skipped"):
        lines.append(f"   skipped: {result['skipped']}")
        lines.extend(f"   note: {note}" for note in result.get("notes", []))
        return "\n".join(lines)
    unit = result.get("unit", "")
    lines.append(f"   baseline: {result['baseline']}   (unit: {unit}; median [p10-p90])")
    rows = result.get("rows", [])
    extras: list[str] = []
    for r in rows:
        for key in r:
            if key not in _SKIP_COLUMNS and key not in extras and key not in ("median", "n"):
                extras.append(key)
    header = ["variant", f"median {unit}", "p10-p90", "n", *extras]
    table = [header]
    for r in rows:
        cells = [
            r["label"],
            _fmt(r.get("median")),
            f"{_fmt(r.get('p10'))}-{_fmt(r.get('p90'))}" if "p10" in r else "-",
            _fmt(r.get("n")),
        ]
        for key in extras:
            if key == "ratio" and "ratio" in r:
                cells.append(f"{_fmt(r['ratio'])}x [{_fmt(r['ratio_p10'])}-{_fmt(r['ratio_p90'])}]")
            else:
                cells.append(_fmt(r.get(key)))
        table.append(cells)
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for index, cells in enumerate(table):
        lines.append("   " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
        if index == 0:
            lines.append("   " + "  ".join("-" * w for w in widths))
    for g in result.get("goals", []):
        status = {True: "MET", False: "NOT MET", None: "not measured"}[g["met"]]
        lines.append(
            f"   goal: {g['goal']}: {_fmt(g['value'])} {g['comparison']} {_fmt(g['target'])}"
            f" -> {status}"
        )
    lines.extend(f"   note: {note}" for note in result.get("notes", []))
    if result.get("elapsed_s") is not None:
        lines.append(f"   ({result['elapsed_s']:.1f} s)")
    return "\n".join(lines)
