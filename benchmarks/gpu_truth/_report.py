"""Incremental output, the budget plan and the hard wall-clock limit of a GPU-truth run.

Three files under ``--out``, all rewritten or appended after every section, so a run cut short
(budget, SIGTERM, a machine taken back) keeps every figure measured so far:

* ``gpu_truth.jsonl``: one JSON object per event (``start``, one ``section`` per section,
  ``end`` or ``cut``), appended and flushed to disk as it happens;
* ``gpu_truth.json``: the whole report so far (header + sections), replaced atomically;
* ``gpu_truth.md``: the same as short Markdown tables, replaced atomically.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSONL = "gpu_truth.jsonl"
JSON = "gpu_truth.json"
TABLE = "gpu_truth.md"
#: Exit status of a run stopped by its hard budget (as `timeout` reports it).
CUT_EXIT = 124


@dataclass(frozen=True)
class Section:
    """One measured part of the run.

    Attributes:
        name: Key in the report.
        title: One line for the table.
        est_s: Planned seconds on an H100/H200 (full size).
        est_small_s: Planned seconds with ``--small`` on a CPU.
        optional: Whether ``--budget-s`` may drop it (core sections always run).
        needs: Sections that must have succeeded first.
        run: ``run(state) -> figures``.
    """

    name: str
    title: str
    est_s: float
    est_small_s: float
    optional: bool
    needs: tuple[str, ...]
    run: Callable[[Any], dict[str, Any]]

    def estimate(self, small: bool) -> float:
        """Planned seconds for this mode."""
        return self.est_small_s if small else self.est_s


def plan(sections: Sequence[Section], budget_s: float, *, small: bool) -> dict[str, str]:
    """Which optional sections to drop so the estimated total fits ``budget_s``.

    The slowest optional section is dropped first, then the next slowest, until the estimate
    fits or only core sections are left.

    Args:
        sections: Every section, in run order.
        budget_s: The wall-clock budget in seconds.
        small: Use the ``--small`` estimates.

    Returns:
        Section name to the reason it was dropped (empty when everything fits).
    """
    total = sum(s.estimate(small) for s in sections)
    dropped: dict[str, str] = {}
    for section in sorted(
        (s for s in sections if s.optional), key=lambda s: s.estimate(small), reverse=True
    ):
        if total <= budget_s:
            break
        dropped[section.name] = (
            f"dropped by --budget-s {budget_s:g}: estimated {section.estimate(small):g} s, "
            f"the slowest optional section left while the plan ({total:g} s) did not fit"
        )
        total -= section.estimate(small)
    return dropped


class Recorder:
    """Writes the report as it grows; safe to call from the watchdog thread.

    Args:
        out_dir: The output folder (created).
        header: What the run is (command, machine, plan); the ``start`` event.
    """

    def __init__(self, out_dir: Path, header: dict[str, Any]) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.header = dict(header)
        self.sections: dict[str, dict[str, Any]] = {}
        self.status = "running"
        self.started = time.monotonic()
        self.current: str | None = None
        self._lock = threading.RLock()
        (out_dir / JSONL).write_text("", encoding="utf-8")
        self._event({"event": "start", **self.header})
        self._rewrite()

    def elapsed(self) -> float:
        """Seconds since the recorder started."""
        return time.monotonic() - self.started

    def begin(self, name: str) -> None:
        """Mark ``name`` as the section running now (what a cut reports)."""
        with self._lock:
            self.current = name

    def section(self, name: str, record: dict[str, Any]) -> None:
        """Store one section's record (``status``, ``seconds``, ``figures``...) and write."""
        with self._lock:
            entry = {"name": name, "t_s": round(self.elapsed(), 2), **record}
            self.sections[name] = entry
            self.current = None
            self._event({"event": "section", **entry})
            self._rewrite()

    def finish(self, status: str, **extra: Any) -> None:
        """Close the report: ``status`` is ``"done"`` or ``"cut"``."""
        with self._lock:
            self.status = status
            self.header.update(extra)
            self._event(
                {"event": "end" if status == "done" else "cut", "t_s": self.elapsed(), **extra}
            )
            self._rewrite()

    def cut(self, reason: str) -> None:
        """Record that the run is being stopped now, marking the running section as cut."""
        with self._lock:
            if self.current is not None and self.current not in self.sections:
                self.sections[self.current] = {
                    "name": self.current,
                    "t_s": round(self.elapsed(), 2),
                    "status": "cut",
                    "reason": reason,
                    "figures": {},
                }
            self.finish("cut", reason=reason)

    def report(self) -> dict[str, Any]:
        """The report as written to ``gpu_truth.json``."""
        return {
            "status": self.status,
            "elapsed_s": round(self.elapsed(), 2),
            **self.header,
            "sections": self.sections,
        }

    def _event(self, payload: dict[str, Any]) -> None:
        with open(self.out_dir / JSONL, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(payload, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _rewrite(self) -> None:
        from ._table import render

        report = self.report()
        _replace(self.out_dir / JSON, json.dumps(report, indent=2, default=str) + "\n")
        _replace(self.out_dir / TABLE, render(report))


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader sees the old or the new file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class Watchdog:
    """The hard budget: at the deadline (or on SIGTERM) record a cut and exit at once.

    A CUDA call or a compilation cannot be interrupted from Python, so the watchdog does not
    raise into the main thread: it writes the cut from its own thread, runs ``cleanup`` and
    ends the process with :data:`CUT_EXIT` (``os._exit``, skipping whatever the main thread
    is blocked in). Everything written before is already on disk.

    Args:
        recorder: Where the cut is recorded.
        budget_s: Seconds from now to the deadline.
        cleanup: Run before exiting (e.g. remove the work folder); errors are ignored.
    """

    def __init__(
        self, recorder: Recorder, budget_s: float, cleanup: Callable[[], None] | None = None
    ) -> None:
        self.recorder = recorder
        self.cleanup = cleanup
        self.deadline = time.monotonic() + budget_s
        self._timer = threading.Timer(budget_s, self._fire, args=(f"hard budget {budget_s:g} s",))
        self._timer.daemon = True
        self._previous_handler: Any = None

    def start(self) -> Watchdog:
        """Arm the timer and the SIGTERM handler (when called from the main thread)."""
        self._timer.start()
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(
                signal.SIGTERM, lambda signum, frame: self._fire("SIGTERM")
            )
        return self

    def remaining(self) -> float:
        """Seconds left before the deadline."""
        return self.deadline - time.monotonic()

    def stop(self) -> None:
        """Disarm (the run finished in time) and restore the previous SIGTERM handler."""
        self._timer.cancel()
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None

    def _fire(self, reason: str) -> None:
        try:
            print(f"\n!! stopping: {reason}; figures so far are in {self.recorder.out_dir}")
            self.recorder.cut(reason)
            if self.cleanup is not None:
                self.cleanup()
        finally:
            os._exit(CUT_EXIT)
