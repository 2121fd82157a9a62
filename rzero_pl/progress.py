"""Live progress of one long piece of work: done / total, elapsed and ETA.

A piece of work that takes minutes (a rollout step's generation, the curriculum's votes, a
benchmark's scoring, the toy base build) opens a ``Progress`` around it, and whoever does the
work reports to the innermost one open (``advance``): the engines report completions as their
batches finish without knowing who asked for them, and report nothing when none is open.

On a terminal the line is a live rich bar (nested under Lightning's own bar while a fit
runs; gone when the work ends). In a log (not a terminal) it is a plain line at most every
``interval`` seconds (default 30, the run's ``progress_interval``) and never one per item:

    curriculum votes: 420/1000 questions (42%) · elapsed 1m 02s · ETA 1m 26s

``rzero_pl.run.progress`` is the other line: one per phase change, for the whole run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from rzero_pl.errors import check_number
from rzero_pl.scale.distributed import is_rank_zero

INTERVAL = 30.0  # seconds between two lines in a log: a few lines per long step, never floods
REFRESH = 0.1  # seconds between two updates of a terminal's bar
_settings = {"interval": INTERVAL}
_open: list[Progress] = []  # the pieces of work in progress, innermost last


def set_interval(seconds: float) -> None:
    """Seconds between two lines in a log for every ``Progress`` opened from now on (the
    run's ``progress_interval``; 0: a line at every report)."""
    check_number("progress_interval", seconds, at_least=0)
    _settings["interval"] = float(seconds)


def duration(seconds: float | None) -> str:
    """``?``, ``42s``, ``3m 05s`` or ``2h 07m``."""
    if seconds is None:
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def eta(done: float, total: float, elapsed: float) -> float | None:
    """Seconds left at the rate so far: ``elapsed × (total − done) / done``; None before the
    first report (no rate yet)."""
    if done <= 0:
        return None
    return elapsed * max(total - done, 0) / done


def line(label: str, done: int, total: int, unit: str, elapsed: float, note: str = "") -> str:
    """``label: done/total unit (p%) · elapsed E · ETA T`` (and ``· note`` when given)."""
    share = f" ({100 * done // total}%)" if total else ""
    text = f"{label}: {done}/{total} {unit}{share} · elapsed {duration(elapsed)}"
    text += f" · ETA {duration(eta(done, total, elapsed))}"
    return f"{text} · {note}" if note else text


class Progress:
    """``done / total`` of one piece of work, shown while it runs (a context manager).

    Args:
        total: Units of work (e.g. questions to vote on).
        label: What the work is (``curriculum votes``).
        unit: What a unit is (``questions``).
        per: Reports per unit: the engines report completions, so m votes make a question.
        interval: Seconds between two lines in a log; None: the run's (``set_interval``).
        clock: Seconds, monotonic (a fake one in tests).
        stream: Where the lines go; None: ``sys.stderr`` (its bar: rich's console).
        live: A live bar (a terminal) or lines (a log); None: whether the console is a terminal.
    """

    def __init__(
        self,
        total: int,
        label: str,
        unit: str = "items",
        per: int = 1,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self.total, self.label, self.unit, self.per = total, label, unit, max(per, 1)
        self.interval = _settings["interval"] if interval is None else interval
        self.clock, self.stream, self.live = clock, stream, live
        self.reports, self.note = 0, ""
        self.start = self.last = clock()
        self.shown = -1  # units in the last line written (-1: none yet)
        self.bar: Any = None
        self.quiet = not is_rank_zero()  # every rank works; one shows it

    @property
    def done(self) -> int:
        return min(self.reports // self.per, self.total)

    def text(self) -> str:
        """The line as it stands now."""
        elapsed = self.clock() - self.start
        return line(self.label, self.done, self.total, self.unit, elapsed, self.note)

    def __enter__(self) -> Progress:
        _open.append(self)
        if self.total > 0 and not self.quiet:
            self.bar = self._bar()
        return self

    def __exit__(self, *exc: Any) -> None:
        _open.remove(self)
        if self.bar is not None:
            self.bar.stop()
        elif self.shown >= 0 and self.shown != self.done and not exc[0]:
            self._write()  # a log that showed the work going on shows its end too

    def advance(self, reports: int = 1, note: str | None = None) -> None:
        """``reports`` more done (completions, steps); ``note`` replaces the line's note."""
        self.reports += reports
        self.note = self.note if note is None else note
        if self.quiet or self.total <= 0:
            return
        now = self.clock()
        if self.bar is not None:
            if now - self.last >= REFRESH or self.done == self.total:
                self.last = now
                self.bar.update(self.task, completed=self.done, description=self.text())
        elif now - self.last >= self.interval:
            self.last = now
            self._write()

    def _write(self) -> None:
        self.shown = self.done
        stream = self.stream or sys.stderr
        stream.write(self.text() + "\n")
        stream.flush()

    def _bar(self) -> Any:
        """A rich bar on a terminal (None in a log): transient, and nested under a live one
        (Lightning's) on the same console."""
        from rich import get_console
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn
        from rich.progress import Progress as RichProgress

        console = get_console() if self.stream is None else Console(file=self.stream)
        if self.live is not None:
            console = Console(file=console.file, force_terminal=self.live)
        if not console.is_terminal:
            return None
        bar = RichProgress(
            BarColumn(), TextColumn("{task.description}"), console=console, transient=True
        )
        self.task = bar.add_task(self.text(), total=self.total)
        bar.start()
        return bar


def advance(reports: int = 1) -> None:
    """Report ``reports`` done to the innermost ``Progress`` open (nothing when none is)."""
    if _open:
        _open[-1].advance(reports)


def reporting() -> bool:
    """Whether a ``Progress`` is open (an engine skips its counting work when none is)."""
    return bool(_open)
