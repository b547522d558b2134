"""A time estimate before long work: "40 run(s), about 1 min on 2 workers (...)".

How: a **pilot run** of the scenario itself (as it will run: overrides and faults
included), in this process, after a throwaway 0.1 s run that does the imports, so what is
timed is simulation and not start-up. The pilot stops after :data:`BUDGET` wall seconds;
one run then takes the elapsed time over the share of the run's **offered requests** that
the pilot covered (:func:`offered_share`: the clients' arrival rates, their start and stop
times, profiles and load faults integrated over simulated time; exact when the pilot
finished), so a batch at the start or a load spike later on is weighed by the requests it
brings, not by the seconds it lasts. Runs are independent, so ``N`` runs on ``J`` workers take
``ceil(N / J)`` rounds of one run each. The pilot costs at most ~0.5 s, a small price
before work that takes minutes.

It is an estimate, and says so: a pilot stopped early has seen the start of the run only,
so a fault later on that tips a variant into a retry storm (many more tries per request)
makes that variant slower than estimated; variants that change the load change the cost;
and other work on the machine slows the workers. A single run gets no estimate (its
progress bar says how long is left).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BUDGET = 0.5
"""Wall seconds the pilot may take: it stops there and extrapolates."""

MIN_TICKS = 3
"""Progress ticks (chunks of simulated time) a pilot covers at least before it may stop."""

SHOW_ABOVE = 5.0
"""Seconds of estimated work above which a command prints its estimate before starting."""


@dataclass(frozen=True)
class Estimate:
    """How long ``runs`` runs take on ``workers`` workers, from a pilot that simulated ``covered`` seconds."""

    runs: int
    workers: int
    per_run: float
    covered: float
    end_time: float

    @property
    def seconds(self) -> float:
        """Wall-clock seconds of the whole work: rounds of ``workers`` runs in parallel."""
        return math.ceil(self.runs / max(self.workers, 1)) * self.per_run

    def __str__(self) -> str:
        who = "1 worker" if self.workers == 1 else f"{self.workers} workers"
        how = ("a timed pilot run" if self.covered >= self.end_time
               else f"a pilot of its first {self.covered:.3g} s")
        return (f"{self.runs} run(s), about {human(self.seconds)} on {who} "
                f"(one run of {self.end_time:g} simulated s: about {human(self.per_run)}, from {how})")


def human(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min``, ``1.5 h``."""
    if seconds < 1:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Enough(Exception):
    """Raised from the pilot's progress callback to stop it once it has run long enough to extrapolate."""


def per_run_seconds(scenario: Any, overrides: Mapping[str, Any] | None = None,
                    budget: float = BUDGET) -> tuple[float, float, float]:
    """``(seconds per run, simulated seconds the pilot covered, simulated length of a run)``.

    The pilot is the scenario itself (with ``overrides``), run in this process until it
    ends or ``budget`` wall seconds pass; then one run takes the elapsed time over the
    share of the offered requests covered (:func:`offered_share`).
    """
    from simres.experiments.runs import run
    from simres.scenario.loading import load_scenario

    with warnings.catch_warnings():  # the command has shown the scenario's warnings already
        warnings.simplefilter("ignore")
        sc = load_scenario(scenario, overrides=dict(overrides or {}) or None)
        warm = load_scenario(sc, overrides={"duration": min(0.1, sc.duration), "warmup": 0.0, "faults": []})
        run(warm)  # the first run in a process imports the model: not part of the timing
        return _pilot(sc, budget)


def offered_share(sc: Any, t: float, end: float, *, points: int = 4001) -> float:
    """Share of the expected client requests of a run ending at ``end`` offered before ``t``.

    The sum over client populations of ``count x rate(t)`` (a profile's rate, a load
    fault's factor while it lasts, zero outside the population's ``start``-``stop``),
    integrated on a grid of ``points`` instants. A closed-loop population counts as a
    steady rate (its pace depends on the latencies the pilot is measuring). With no
    offered load at all, the share of simulated time.
    """
    import numpy as np

    if end <= 0:
        return 1.0
    grid = np.linspace(0.0, end, points)
    total = np.zeros_like(grid)
    for name, cl in sc.clients.items():
        arr = cl.arrival
        if arr.kind == "profile":
            rate = np.array([arr.rate_at(x) for x in grid])
        else:
            rate = np.full_like(grid, getattr(arr, "rate", 1.0))
        if arr.kind != "closed":
            for f in sc.faults:
                if f.kind == "load" and f.client == name:
                    stop = f.end if f.end is not None else np.inf
                    rate = np.where((grid >= f.at) & (grid < stop), rate * f.factor, rate)
        stop = min(cl.stop if cl.stop is not None else np.inf, float(sc.duration))  # none after the drain starts
        total += np.where((grid >= cl.start) & (grid < stop), rate * cl.count, 0.0)
    cum = np.concatenate([[0.0], np.cumsum((total[1:] + total[:-1]) / 2 * np.diff(grid))])
    if cum[-1] <= 0:
        return min(max(t / end, 0.0), 1.0)
    return float(np.interp(min(max(t, 0.0), end), grid, cum) / cum[-1])


def _pilot(sc: Any, budget: float) -> tuple[float, float, float]:
    from simres.experiments.runs import run

    reached = [0.0, 1.0]
    ticks = [0]
    t0 = time.perf_counter()

    def watch(now: float, end: float) -> None:
        reached[:] = [now, end]
        ticks[0] += 1
        spent = time.perf_counter() - t0
        # At least MIN_TICKS progress ticks (unless the budget is long gone): one stall of the
        # machine in the first tick would otherwise be extrapolated over the whole run.
        if spent >= budget and 0 < now < end and (ticks[0] >= MIN_TICKS or spent >= 4 * budget):
            raise _Enough

    try:
        run(sc, progress=watch)
        reached[0] = reached[1]
    except _Enough:
        pass
    elapsed = time.perf_counter() - t0
    now, end = reached
    share = 1.0 if now >= end else offered_share(sc, now, end)
    return elapsed / max(share, 1e-9), now, end


def estimate(scenario: Any, *, runs: int, workers: int, overrides: Mapping[str, Any] | None = None) -> Estimate:
    """The :class:`Estimate` of ``runs`` runs of ``scenario`` (with ``overrides``) on ``workers`` workers."""
    per_run, covered, end = per_run_seconds(scenario, overrides)
    return Estimate(runs=runs, workers=max(1, min(workers, runs)), per_run=per_run, covered=covered, end_time=end)


def workers_for(jobs: int | None, tasks: int) -> int:
    """How many worker processes ``--jobs`` gives ``tasks`` runs (local workers start on demand,
    so :func:`simres.cli._util.command_executor` starts no more than this)."""
    from simres.experiments.executors import available_cores

    if jobs == 1 or tasks <= 1:
        return 1
    return min(jobs or available_cores(), tasks)


def announce_estimate(scenario: Any, *, runs: int, workers: int, overrides: Mapping[str, Any] | None = None,
                      quiet: bool = False, dry_run: bool = False) -> Estimate | None:
    """Print the estimate (stderr) before work of more than :data:`SHOW_ABOVE` s; always under ``dry_run``.

    ``--quiet`` prints nothing (unless ``dry_run``: there the estimate is the result, on stdout).
    """
    import click

    if quiet and not dry_run:
        return None
    est = estimate(scenario, runs=runs, workers=workers, overrides=overrides)
    if dry_run:
        click.echo(str(est))
    elif est.seconds > SHOW_ABOVE:
        click.echo(str(est), err=True)
    return est
