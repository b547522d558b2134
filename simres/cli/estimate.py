"""A time estimate before long work: "40 run(s), about 1 min on 2 workers (...)".

How: a **pilot run** of the scenario itself (as it will run: overrides and faults
included), in this process, after a throwaway 0.1 s run that does the imports, so what is
timed is simulation and not start-up. The pilot stops after :data:`BUDGET` wall seconds;
one run then takes the elapsed time over the share of simulated time covered (exact when
the pilot finished). Runs are independent, so ``N`` runs on ``J`` workers take
``ceil(N / J)`` rounds of one run each. The pilot costs at most ~0.5 s, a small price
before work that takes minutes.

It is an estimate, and says so: a pilot stopped early has seen the start of the run only,
so a fault later on that tips a variant into a retry storm (many more tries per request)
makes that variant slower than estimated, while load that comes at the start (a batch
herd) makes the run faster than estimated; variants that change the load change the cost;
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
    share of simulated time covered.
    """
    from simres.experiments.runs import run
    from simres.scenario.loading import load_scenario

    with warnings.catch_warnings():  # the command has shown the scenario's warnings already
        warnings.simplefilter("ignore")
        sc = load_scenario(scenario, overrides=dict(overrides or {}) or None)
        warm = load_scenario(sc, overrides={"duration": min(0.1, sc.duration), "warmup": 0.0, "faults": []})
        run(warm)  # the first run in a process imports the model: not part of the timing
        return _pilot(sc, budget)


def _pilot(sc: Any, budget: float) -> tuple[float, float, float]:
    from simres.experiments.runs import run

    reached = [0.0, 1.0]
    t0 = time.perf_counter()

    def watch(now: float, end: float) -> None:
        reached[:] = [now, end]
        if time.perf_counter() - t0 >= budget and 0 < now < end:
            raise _Enough

    try:
        run(sc, progress=watch)
        reached[0] = reached[1]
    except _Enough:
        pass
    elapsed = time.perf_counter() - t0
    now, end = reached
    return elapsed / max(now / end, 1e-9), now, end


def estimate(scenario: Any, *, runs: int, workers: int, overrides: Mapping[str, Any] | None = None) -> Estimate:
    """The :class:`Estimate` of ``runs`` runs of ``scenario`` (with ``overrides``) on ``workers`` workers."""
    per_run, covered, end = per_run_seconds(scenario, overrides)
    return Estimate(runs=runs, workers=max(1, min(workers, runs)), per_run=per_run, covered=covered, end_time=end)


def workers_for(jobs: int | None, tasks: int) -> int:
    """How many worker processes ``--jobs`` gives ``tasks`` runs (as :func:`simres.cli._util.executor_for`)."""
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
