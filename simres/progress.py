"""One progress display for every long task: a bar on a terminal, an HTML bar in Jupyter, nothing elsewhere.

Every progress bar of simres (a run's simulated time, replications, sweep points, the
validation suite) goes through :class:`Progress`, so they all follow the same rules:

- **terminal** (stderr is a TTY): a one-line rich bar on stderr, erased when the task
  ends, so stdout stays the results;
- **Jupyter** (an IPython kernel): an HTML ``<progress>`` element updated in place through
  ``IPython.display`` handles. It needs no ipywidgets, so it never warns ("IProgress not
  found") in an environment without them, and it renders in JupyterLab, the classic
  notebook, VS Code and in saved notebooks alike;
- **anything else** (stderr piped to a file or a CI log, a subprocess): nothing at all.
  A bar redrawn into a log is kilobytes of carriage returns, not information.

It also appears only for work worth watching: not before ``delay`` seconds have passed,
and not when the work is projected to finish within ``min_total`` seconds.

Why rich and not tqdm: rich already draws the terminal tables (``simres run``), so one
library styles all terminal output; tqdm's notebook mode needs ipywidgets and warns
without them, which is the friction this module removes. A foundation module: it imports
no other part of simres, so every layer may use it.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from typing import IO, Any, Literal

Where = Literal["terminal", "notebook"]

ProgressArg = bool | Callable[[int, int], None]
"""What the ``progress=`` argument of the API takes: a bar (True), none (False), or ``callable(done, total)``."""


def in_notebook() -> bool:
    """Whether this process is a Jupyter (IPython) kernel, whose output goes to a notebook."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def destination(stream: IO[str] | None = None) -> Where | None:
    """Where a bar would be drawn now: ``"notebook"``, ``"terminal"`` (stderr is a TTY) or None (nowhere)."""
    if in_notebook():
        return "notebook"
    stream = sys.stderr if stream is None else stream
    try:
        return "terminal" if stream is not None and stream.isatty() else None
    except (AttributeError, ValueError):  # a closed or replaced stream
        return None


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, s = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}:{s:02d}"
    h, m = divmod(minutes, 60)
    return f"{h}:{m:02d}:{s:02d}"


class Progress:
    """A progress bar of ``total`` units of work (runs, points, simulated seconds).

    Args:
        total: the amount of work.
        label: what is running (the scenario's name, ``validate``).
        unit: the unit shown after the counts (``run``, ``pt``, ``sim s``).
        initial: work already done (a resumed sweep).
        enabled: False draws nothing (``--quiet``).
        delay: seconds before a bar may appear, so quick work never flashes one.
        min_total: the bar appears only when the work is projected to take at least this
            many seconds in all (elapsed time over the share done).
        stream: the terminal stream (default ``sys.stderr``); the bar is drawn only if it is a TTY.

    Call :meth:`update` with the work done so far, and :meth:`close` at the end (or use
    it as a context manager). Redraws are limited to ten a second on a terminal and four
    in a notebook, so a caller may update as often as it likes.
    """

    def __init__(self, total: float, *, label: str, unit: str = "run", initial: float = 0, enabled: bool = True,
                 delay: float = 0.5, min_total: float = 0.0, stream: IO[str] | None = None) -> None:
        self.total = float(total)
        self.label = label
        self.unit = unit
        self.done = float(initial)
        self.initial = float(initial)
        self.errors = 0
        self.delay = delay
        self.min_total = min_total
        self.t0 = time.perf_counter()
        self._drawn = 0.0
        self._stream = stream
        self.where: Where | None = destination(stream) if enabled else None
        self._bar: Any = None  # the rich Progress, or the IPython DisplayHandle
        self._task: Any = None

    @property
    def shown(self) -> bool:
        """Whether a bar is on screen now."""
        return self._bar is not None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, done: float, total: float | None = None) -> None:
        """``progress(done, total)``: the callable form the API's ``progress=`` callbacks use."""
        if total is not None:
            self.total = float(total)
        self.update(done)

    def update(self, done: float, *, errors: int | None = None) -> None:
        """Record ``done`` units of work finished (and ``errors`` failed ones) and redraw if due."""
        self.done = float(done)
        if errors is not None:
            self.errors = errors
        if self.where is None:
            return
        now = time.perf_counter()
        if self._bar is None:
            elapsed = now - self.t0
            share = (self.done - self.initial) / max(self.total - self.initial, 1e-12)
            projected = elapsed / share if share > 0 else float("inf")
            if elapsed < self.delay or projected < self.min_total or self.done >= self.total:
                return
            self._open()
        if now - self._drawn >= (0.1 if self.where == "terminal" else 0.25):
            self._draw()
            self._drawn = now

    def close(self) -> None:
        """Take the bar down: erased on a terminal, left as a one-line record of the work in a notebook."""
        if self._bar is None:
            self.where = None
            return
        if self.where == "terminal":
            self._bar.stop()
        else:
            self._bar.update(self._html(final=True))
        self._bar = None
        self.where = None

    # ------------------------------------------------------------------ drawing

    def _open(self) -> None:
        if self.where == "terminal":
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as RichProgress

            console = Console(file=self._stream or sys.stderr, highlight=False)
            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[counts]}"),
                console=console, transient=True, auto_refresh=False, redirect_stdout=False,
                redirect_stderr=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done,
                                            counts=self._counts())
        else:
            from IPython.display import display

            self._bar = display(self._html(), display_id=True)

    def _counts(self, *, final: bool = False) -> str:
        """``12/40 run, 1 error(s), 3 s elapsed, about 9 s left`` (or ``... in 12 s`` at the end)."""
        text = f"{self.done:,.0f}/{self.total:,.0f} {self.unit}"
        text += f", {self.errors} error(s)" if self.errors else ""
        elapsed = time.perf_counter() - self.t0
        if final:
            return f"{text} in {_duration(elapsed)}"
        rate = (self.done - self.initial) / elapsed if elapsed > 0 else 0.0
        text += f", {_duration(elapsed)} elapsed"
        return text + (f", about {_duration((self.total - self.done) / rate)} left" if rate > 0 else "")

    def _draw(self) -> None:
        if self.where == "terminal":
            self._bar.update(self._task, completed=min(self.done, self.total), total=self.total,
                             counts=self._counts())
            self._bar.refresh()
        else:
            self._bar.update(self._html())

    def _html(self, *, final: bool = False) -> Any:
        from IPython.display import HTML

        text = html.escape(f"{self.label}: {self._counts(final=final)}")
        return HTML(f"<div class='simres-progress'><progress value='{min(self.done, self.total):g}' "
                    f"max='{self.total:g}' style='width:20em;vertical-align:middle'></progress> "
                    f"<span style='font-family:monospace'>{text}</span></div>")


class Reporter:
    """What the call sites hold: ``reporter(done, total, errors=0)``, then ``reporter.close()``.

    Wraps the API's ``progress=`` argument: a user's ``callable(done, total)``, a
    :class:`Progress` bar (True), or nothing (False).
    """

    def __init__(self, progress: ProgressArg, total: float, *, label: str, unit: str = "run",
                 initial: float = 0, min_total: float = 0.0) -> None:
        self.user = progress if callable(progress) else None
        self.bar = (Progress(total, label=label, unit=unit, initial=initial, min_total=min_total)
                    if progress and not callable(progress) else None)

    def __call__(self, done: float, total: float, errors: int = 0) -> None:
        if self.user is not None:
            self.user(int(done), int(total))  # type: ignore[call-arg]
        elif self.bar is not None:
            self.bar.total = float(total)
            self.bar.update(done, errors=errors)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def reporter(progress: ProgressArg, total: float, *, label: str, unit: str = "run", initial: float = 0,
             min_total: float = 0.0) -> Reporter:
    """The :class:`Reporter` of an API call's ``progress=`` argument (see there)."""
    return Reporter(progress, total, label=label, unit=unit, initial=initial, min_total=min_total)
