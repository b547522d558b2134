"""Run the validation cases as independent replications and judge each check.

A check passes when the exact value lies inside the Student-t confidence interval of the
replication means *and* the interval is tight (relative half-width at most the case's
stated tolerance), so a check cannot pass by being vague. The runner returns a tidy frame
(one row per check); results depend only on the seed, the replication count and ``quick``,
never on how many processes ran them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simres.experiments.validation.cases import (
    CONFIDENCE,
    DEFAULT_SEED,
    QUICK_SCALE,
    Check,
    Progress,
    ValidationError,
    all_cases,
    case_seed,
    select_cases,
)
from simres.metrics.stats import mean_ci
from simres.rng import replication_seeds

if TYPE_CHECKING:
    from simres.experiments.executors import Executor



# ---------------------------------------------------------------------------- runner


Outcome = tuple[str, int, list[float], int, float]
"""One replication's result: case name, replicate index, check values, unfinished requests, CPU s."""


def _replicate_one(task: tuple[str, float, int, int]) -> Outcome:
    """Run one replication of a case (looked up by name, so the task pickles as plain data)."""
    from simres.experiments.runs import run

    name, scale, rep, seed = task
    case = next(c for c in all_cases() if c.name == name)
    t0 = time.process_time()
    result = run(case.build(scale), seed=seed)
    values = [float(ch.read(result)) for ch in case.checks]
    # every case drains long enough for all measured requests to finish: one that did not
    # was lost by the engine, and would silently bias latency means downwards
    unfinished = round(result.summary["unfinished_rate"] * result.summary["count"])
    return name, rep, values, unfinished, time.process_time() - t0


def run_validation(
    *,
    cases: Sequence[str] = (),
    quick: bool = False,
    reps: int | None = None,
    seed: int = DEFAULT_SEED,
    jobs: int = 1,
    confidence: float = CONFIDENCE,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Run the validation cases and compare each check with its exact value.

    Args:
        cases: glob patterns of case names (all cases if empty); see :func:`select_cases`.
        quick: every case simulates ``QUICK_SCALE`` of its measured time (same replications
            and warm-up), with tolerances scaled by ``1/sqrt(QUICK_SCALE)`` to match.
        reps: replications per case (default: each case's own count); at least 2.
        seed: root seed of the suite.
        jobs: worker processes (1 = in this process). Results do not depend on it.
        confidence: level of the Student-t intervals.
        progress: called as ``progress(done, total)`` after each replication.
        executor: where the replications run (:mod:`simres.experiments.executors`), for example the
            one a command shares between its stages; ``jobs`` is then ignored. Default: ``jobs``
            local processes, started for this call and closed at its end (serial for ``jobs=1``).

    Returns:
        One row per check: ``case``, ``metric``, ``expected``, ``mean``, ``lo``, ``hi``,
        ``halfwidth``, ``rel_halfwidth``, ``tolerance``, ``n``, ``passed``, ``reason``
        (empty, "outside CI", "CI too wide", and/or "N request(s) unfinished": a request
        still in flight after the drain, which the engine lost) and ``cpu_time`` (CPU seconds the case's
        replications took, summed over processes).
    """
    if reps is not None and reps < 2:
        raise ValidationError(f"reps: need at least 2 replications for a confidence interval, got {reps}")
    if jobs < 1:
        raise ValidationError(f"jobs: must be >= 1, got {jobs}")
    if not 0 < confidence < 1:
        raise ValidationError(f"confidence: must be in (0, 1), got {confidence}")
    chosen = select_cases(cases)
    scale = QUICK_SCALE if quick else 1.0
    tasks = []
    for case in chosen:
        n = reps if reps is not None else case.reps
        for rep, s in enumerate(replication_seeds(case_seed(seed, case.name), n)):
            tasks.append((case.cost, (case.name, scale, rep, s)))
    # expensive replications first, so the last ones to finish are short
    ordered = [t for _, t in sorted(tasks, key=lambda x: -x[0])]
    out: dict[str, dict[int, list[float]]] = {c.name: {} for c in chosen}
    cpu: dict[str, float] = dict.fromkeys(out, 0.0)
    lost: dict[str, int] = dict.fromkeys(out, 0)
    for done, (name, rep, values, unfinished, secs) in enumerate(_execute(ordered, jobs, executor), start=1):
        out[name][rep] = values
        cpu[name] += secs
        lost[name] += unfinished
        if progress is not None:
            progress(done, len(ordered))
    rows = []
    tol_scale = 1 / math.sqrt(scale)
    for case in chosen:
        per_rep = [out[case.name][r] for r in sorted(out[case.name])]
        for j, check in enumerate(case.checks):
            row = _compare(case.name, check, [v[j] for v in per_rep], check.tol * tol_scale, confidence,
                           cpu[case.name])
            if lost[case.name]:
                why = f"{lost[case.name]} request(s) unfinished"
                row.update(passed=False, reason=f"{row['reason']}; {why}" if row["reason"] else why)
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


COLUMNS = ("case", "metric", "expected", "mean", "lo", "hi", "halfwidth", "rel_halfwidth", "tolerance", "n",
           "passed", "reason", "cpu_time")
"""Columns of the frame :func:`run_validation` returns."""


def _execute(tasks: list[tuple[str, float, int, int]], jobs: int, executor: Executor | None) -> Iterable[Outcome]:
    """The replications' outcomes in completion order; the first failure is raised."""
    from contextlib import closing

    from simres.experiments.executors import ProcessExecutor

    if executor is None and (jobs == 1 or len(tasks) == 1):
        yield from map(_replicate_one, tasks)
        return
    owned = executor is None
    ex = ProcessExecutor(min(jobs, len(tasks))) if executor is None else executor
    try:
        with closing(ex.as_completed(_replicate_one, tasks)) as outcomes:
            for outcome in outcomes:
                if outcome.error is not None:
                    raise outcome.error
                yield outcome.value
    finally:
        if owned:
            ex.close()


def _compare(case: str, check: Check, values: list[float], tol: float, confidence: float,
             cpu: float) -> dict[str, Any]:
    ci = mean_ci(values, confidence=confidence)
    scale = abs(check.expected) if check.expected != 0 else 1.0
    rel = ci.halfwidth / scale
    # a deterministic result (zero-width interval) may differ from the formula by float rounding
    slack = 1e-9 * scale
    inside = bool(ci.lo - slack <= check.expected <= ci.hi + slack)
    tight = bool(rel <= tol)
    reason = "" if inside and tight else ("outside CI" if not inside else "CI too wide")
    return {
        "case": case, "metric": check.metric, "expected": check.expected, "mean": ci.mean, "lo": ci.lo,
        "hi": ci.hi, "halfwidth": ci.halfwidth, "rel_halfwidth": rel, "tolerance": tol,
        "n": int(np.sum(~np.isnan(np.asarray(values, dtype=float)))), "passed": inside and tight,
        "reason": reason, "cpu_time": cpu,
    }


def format_table(df: pd.DataFrame, *, confidence: float = CONFIDENCE) -> str:
    """The result frame as an aligned text table: expected vs simulated mean +- half-width."""
    head = ("case", "metric", "expected", f"simulated ({round(confidence * 100)}% CI)", "rel.hw", "tol", "result")
    lines = []
    for r in df.itertuples(index=False):
        verdict = "pass" if r.passed else f"FAIL ({r.reason})"
        lines.append((r.case, r.metric, _num(r.expected), f"{_num(r.mean)} ± {_num(r.halfwidth)}",
                      f"{100 * r.rel_halfwidth:.2f}%", f"{100 * r.tolerance:.2f}%", verdict))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    right = {2, 3, 4, 5}

    def fmt(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    return "\n".join([fmt(head), *(fmt(line) for line in lines)])


def _num(x: float) -> str:
    if x is None or math.isnan(x):
        return "nan"
    ax = abs(x)
    if ax != 0 and (ax >= 1e4 or ax < 1e-3):
        return f"{x:.4g}"
    return f"{x:.4f}"
