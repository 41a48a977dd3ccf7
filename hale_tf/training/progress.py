"""Training progress on the console: a live line on a terminal, plain lines everywhere else.

On a terminal (the stream's ``isatty()``) one line redraws in place (``\\r``, clear to the end of the line,
at most 10 times a second) and every validation leaves a line of its own above it. Anywhere else (a file,
a pipe, a CI log) nothing is redrawn: one plain line per validation and one at the end, without carriage
returns, backspaces or colour codes. Steps are the run's global step (a phased run counts on across its
phases, as ``summary.json`` does); each line names the phase (``phase 1/2 hale``).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Progress", "ProgressContext", "clear_live_line", "format_metrics", "format_seconds"]

# The live lines currently drawn (at most one in practice); log handlers clear them before writing.
_LIVE: list[Progress] = []
_METRIC_NAMES = {"mrr": ("mrr", 3), "hits@1": ("h@1", 2), "hits@3": ("h@3", 2), "hits@10": ("h@10", 2),
                 "mr": ("mr", 1)}


def clear_live_line() -> None:
    """Erase any live progress line (before a log line is written to the same terminal)."""
    for progress in _LIVE:
        progress.clear()


def format_metrics(metrics: Mapping[str, float], names: tuple[str, ...] = ("mrr", "hits@1", "hits@10")) -> str:
    """``mrr=0.679 h@1=0.52 h@10=0.94``: the named metrics that are present, short names, few digits."""
    parts = []
    for name in names:
        if name in metrics and metrics[name] is not None:
            short, digits = _METRIC_NAMES.get(name, (name, 3))
            value = float(metrics[name])
            parts.append(f"{short}={value:.{digits}f}" if math.isfinite(value) else f"{short}={value}")
    return " ".join(parts)


def format_seconds(seconds: float) -> str:
    """``42.0 s``, ``3m05s``, ``1h02m``."""
    if seconds < 100:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


@dataclass(frozen=True)
class ProgressContext:
    """Where a :func:`hale_tf.training.fit` call sits in a larger run (set by ``fit_phases``).

    Attributes:
        label: named in every line (``phase 1/2 hale``); empty for a plain run.
        run_seconds, run_steps: the whole run's time budget and step limit (the denominators shown).
        last: whether this call ends the run (its stop line then reads as the run's end).
    """

    label: str = ""
    run_seconds: float | None = None
    run_steps: int | None = None
    last: bool = True


class Progress:
    """The console display of one ``fit`` call (see the module docstring).

    ``step_offset``/``seconds_offset`` turn the call's own step and training seconds into the run's.
    """

    def __init__(self, context: ProgressContext, *, budget_s: float | None, max_steps: int | None,
                 step_offset: int = 0, seconds_offset: float = 0.0, stream: TextIO | None = None,
                 live: bool | None = None) -> None:
        self.context = context
        self.stream = stream if stream is not None else sys.stdout
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live
        self.step_offset, self.seconds_offset = step_offset, seconds_offset
        self.total_s = context.run_seconds if context.run_seconds is not None else (
            None if budget_s is None else seconds_offset + budget_s)
        self.max_steps = context.run_steps if context.run_steps is not None else (
            None if max_steps is None else step_offset + max_steps)
        self._drawn = ""
        self._last_draw = 0.0
        self._loss: float | None = None
        if self.live:
            _LIVE.append(self)

    def _prefix(self, step: int, seconds: float) -> str:
        where = f"step {self.step_offset + step}"
        if self.max_steps is not None and self.total_s is None:
            where += f"/{self.max_steps}"
        elapsed = self.seconds_offset + seconds
        when = (f"{format_seconds(elapsed)}/{format_seconds(self.total_s)}" if self.total_s is not None
                else format_seconds(elapsed))
        label = f"{self.context.label}  " if self.context.label else ""
        return f"{label}{where}  {when}"

    def _bar(self, step: int, seconds: float) -> str:
        if self.total_s:
            share = (self.seconds_offset + seconds) / self.total_s
        elif self.max_steps:
            share = (self.step_offset + step) / self.max_steps
        else:
            return ""
        filled = int(round(20 * min(max(share, 0.0), 1.0)))
        return "[" + "#" * filled + "." * (20 - filled) + "] "

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):  # a closed stdout must not stop training
            pass

    def clear(self) -> None:
        if self.live and self._drawn:
            self._write("\r\x1b[K")
            self._drawn = ""

    def update(self, step: int, seconds: float, loss: float) -> None:
        """After a train call: redraw the live line (terminals only; nothing is written otherwise)."""
        self._loss = loss
        if not self.live:
            return
        now = time.monotonic()
        if self._drawn and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        line = f"{self._bar(step, seconds)}{self._prefix(step, seconds)}  loss={loss:.4g}"
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self._write("\r\x1b[K" + line[:width])
        self._drawn = line

    def line(self, text: str) -> None:
        """A line of its own (above the live line, which is redrawn on the next update)."""
        self.clear()
        self._write(text + "\n")

    def validation(self, step: int, seconds: float, metrics: Mapping[str, float], best: bool) -> None:
        loss = f"  loss={self._loss:.4g}" if self._loss is not None else ""
        mark = "  (best)" if best else ""
        self.line(f"{self._prefix(step, seconds)}{loss}  valid {format_metrics(metrics)}{mark}")

    def close(self, text: str | None = None) -> None:
        """The end of the call: clear the live line, print ``text``, stop being a live line."""
        if text:
            self.line(text)
        else:
            self.clear()
        if self in _LIVE:
            _LIVE.remove(self)


_REASONS = {"time_budget": "time budget used", "max_steps": "max_steps reached", "max_epochs": "max_epochs reached",
            "early_stopping": "early stopping: no better validation within the patience",
            "non_finite": "a non-finite value", "interrupted": "interrupted"}


def end_line(reason: str, *, steps: int, train_seconds: float, eval_seconds: float, budget_s: float | None,
             best_step: int | None, best_metrics: Mapping[str, float] | None) -> str:
    """The line that ends a run: why, at which (global) step, time against the budget, the best validation."""
    budget = f" of {format_seconds(budget_s)}" if budget_s else ""
    line = (f"training stopped ({_REASONS.get(reason, reason)}) at step {steps}: {format_seconds(train_seconds)}"
            f"{budget} training, {format_seconds(eval_seconds)} validation")
    if best_step is not None and best_metrics:
        line += f"; best valid {format_metrics(best_metrics)} at step {best_step}"
    return line


def phase_end_line(label: str, reason: str, *, steps: int, phase_seconds: float, last: bool) -> str:
    """The line that ends one phase; it says that the run goes on unless this was the last phase."""
    why = "its share of the run used" if reason in ("time_budget", "max_steps", "max_epochs") and not last \
        else _REASONS.get(reason, reason)
    more = "" if last or reason in ("non_finite", "interrupted") else "; the run continues with the next phase"
    return f"{label} done at step {steps} ({why}, {format_seconds(phase_seconds)} training){more}"
