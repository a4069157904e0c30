"""Progress of a sweep on stderr: a rich bar on a terminal, plain lines otherwise, nothing
when quiet.

It tells the truth: the stages before the first result (validating, calibrating noise,
starting workers) are named as they happen; runs are counted as their batch finishes; the
ETA comes from the throughput measured since the first batch finished (the first batch
also pays for start-up and compilation, which would inflate any earlier estimate), and it
is shown as unknown until two batches have finished.
"""

from __future__ import annotations

import math
import sys
import time


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "…"
    s = max(0, round(s))
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s}s"


class Progress:
    """Runs done / total with an honest ETA (see the module docstring)."""

    def __init__(self, total: int, *, quiet: bool = False, stream=None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self._first: tuple[float, int] | None = None  # (time, runs done) at the first batch
        self._last_print = 0.0
        self._bar = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    # ------------------------------------------------------------------ stages

    def stage(self, message: str) -> None:
        """A step before (or after) the runs: one line."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(message)
        else:
            print(message, file=self.stream, flush=True)

    def start(self, message: str | None = None) -> None:
        """The runs begin: print ``message`` and show the bar (0 of N, ETA unknown)."""
        if message:
            self.stage(message)
        if self.quiet or self.total <= 0 or not self._tty or self._bar is not None:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("eta {task.fields[eta]}{task.fields[failed]}"),
            console=Console(file=self.stream),
            transient=False,
        )
        self._task = self._bar.add_task("runs", total=self.total, eta="…", failed="")
        self._bar.start()

    # ------------------------------------------------------------------ runs

    def eta(self, now: float | None = None) -> float:
        """Seconds left, from the throughput since the first batch finished (NaN before
        two batches have finished)."""
        now = time.perf_counter() if now is None else now
        if self._first is None or self.done <= self._first[1]:
            return math.nan
        t1, d1 = self._first
        rate = (self.done - d1) / max(now - t1, 1e-9)
        return (self.total - self.done) / rate if rate > 0 else math.nan

    def _timing(self) -> str:
        el = time.perf_counter() - self.t0
        txt = f"elapsed {_fmt_seconds(el)}  eta {_fmt_seconds(self.eta())}"
        if self.failed:
            txt += f"  ({self.failed} failed)"
        return txt

    def advance(self, k: int, failed: int = 0) -> None:
        """``k`` more runs finished (``failed`` failures so far)."""
        now = time.perf_counter()
        self.done += k
        self.failed = failed
        if self._first is None:
            self._first = (now, self.done)
        if self.quiet or self.total <= 0:
            return
        if self._tty:
            if self._bar is None:
                self.start()
            self._bar.update(
                self._task,
                completed=self.done,
                eta=_fmt_seconds(self.eta(now)),
                failed=f"  ({self.failed} failed)" if self.failed else "",
            )
            return
        if now - self._last_print < 2.0 and self.done < self.total:
            return
        self._last_print = now
        width = len(str(self.total))
        msg = f"[{self.done:>{width}}/{self.total}] {self.done / self.total:4.0%}  "
        print(msg + self._timing(), file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
