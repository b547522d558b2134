"""Replications and comparisons: many runs of one scenario, summarised with confidence.

Every variant of a comparison uses the same list of replication seeds, so variant A's
replicate 3 and variant B's replicate 3 see the same arrivals and service times (common
random numbers): differences are paired and sharp.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from simres.metrics.directions import direction, lower_is_better  # noqa: F401 (re-exported)
from simres.metrics.stats import aggregate_recovery, aggregate_replications, paired_difference
from simres.progress import ProgressArg, reporter
from simres.rng import check_seed, replication_seeds
from simres.scenario.loading import load_scenario, parse_overrides
from simres.scenario.schema import Scenario

HEADLINE = ("success_rate", "goodput", "latency_all_p50", "latency_all_p99", "latency_all_p999",
            "tries_per_request", "work_per_success", "latency_p50", "latency_p99", "latency_p999")
"""Metrics in a comparison's headline (:mod:`simres.reporting.tables`): latencies of every
request (a failure at the time its client gave up) before the latencies of successes, which
leave the failures out."""


def run_point(scenario: Scenario | Mapping[str, Any] | str, *, seed: int, variant: str | None = None,
              overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One run reduced to a flat row: seed, variant, wall time and every summary metric.

    This is the unit of work that replications and sweeps ship to executors: it takes
    and returns plain data, so it pickles cheaply and runs the same anywhere.
    """
    from simres.experiments.runs import run

    res = run(scenario, seed=seed, variant=variant, overrides=overrides)
    row: dict[str, Any] = {"variant": variant or "", "seed": seed, "wall_time": res.wall_time}
    row.update(res.summary)
    return row


def replicate(
    scenario: Scenario | Mapping[str, Any] | str | os.PathLike[str],
    *,
    variants: Sequence[str | None] | None = None,
    reps: int = 10,
    seed: int | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    progress: ProgressArg = False,
    executor: Any = None,
) -> pd.DataFrame:
    """Run ``reps`` independent replications of each variant, with common random numbers.

    Returns one row per (variant, replicate): ``scenario``, ``variant``, ``replicate``,
    ``seed``, ``wall_time`` and one column per summary metric. ``variants=None`` runs the
    scenario as written. ``executor`` is anything with ``map(fn, items)`` preserving
    order (default: serial in this process).
    """
    # One order everywhere: the scenario, then the variant, then the overrides (the explicit
    # flag wins). Each task applies its variant and then the overrides to the scenario as written.
    ov = None if not overrides else dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    base = load_scenario(scenario)
    sc = load_scenario(base, overrides=ov)
    for v in names_of(variants):
        if v is not None:
            load_scenario(base, variant=v, overrides=ov)  # a bad variant fails here, before any run
    names = names_of(variants)
    seeds = replication_seeds(sc.seed if seed is None else check_seed(seed), reps)
    data = base.model_dump(mode="json", by_alias=True)
    tasks = [(v, ov, i, s) for v in names for i, s in enumerate(seeds)]
    report = reporter(progress if len(tasks) > 1 or callable(progress) else False, len(tasks), label=sc.name)
    rows: list[dict[str, Any]] = []
    for k, row in enumerate(_map_tasks(executor, data, tasks), start=1):
        rows.append(row)
        report(k, len(tasks))
    report.close()
    df = pd.DataFrame(rows)
    df.insert(0, "scenario", sc.name)
    return df


def names_of(variants: Sequence[str | None] | None) -> list[str | None]:
    """The variants to run: the given ones, or the scenario as written (``[None]``)."""
    return list(variants) if variants else [None]


RepTask = tuple[str | None, dict[str, Any] | None, int, int]
"""One replication as shipped to a worker: (variant, overrides, replicate, seed); the scenario is shared."""


def _map_tasks(executor: Any, data: dict[str, Any], tasks: list[RepTask]) -> Iterator[dict[str, Any]]:
    """The rows of ``tasks`` in order. A simres executor gets the scenario once as its ``shared``
    object (sent to each worker once, not with every replication); any other object with an
    order-preserving ``map(fn, items)`` gets it inside every item."""
    from simres.experiments.executors import Executor

    if isinstance(executor, Executor):
        return executor.map(_task, tasks, shared=data)
    mapper = executor.map if executor is not None else map
    return mapper(_inline_task, [(data, *t) for t in tasks])


def _task(data: dict[str, Any], task: RepTask) -> dict[str, Any]:
    variant, overrides, rep, seed = task
    row = run_point(data, seed=seed, variant=variant, overrides=overrides)
    row["replicate"] = rep
    return row


def _inline_task(task: tuple[Any, ...]) -> dict[str, Any]:
    return _task(task[0], task[1:])  # type: ignore[arg-type]


def compare(
    scenario: Scenario | Mapping[str, Any] | str | os.PathLike[str] | pd.DataFrame,
    *,
    reps: int = 10,
    seed: int | None = None,
    variants: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    progress: ProgressArg = False,
    executor: Any = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> pd.DataFrame:
    """Compare every variant of a scenario (or the given ``variants``) over replications.

    Accepts a scenario (runs :func:`replicate` first) or a replications frame. Returns a
    tidy frame, one row per (metric, variant): ``mean``, ``lo``, ``hi``, ``halfwidth``,
    ``n``, ``best`` (the best variant for that metric), ``diff_vs_best`` with its
    ``p_value`` from a paired t-test across replications, and ``significant``
    (``p_value < 1 - confidence``). The scenario's ``controls`` are compared but never best.

    The frame is a :class:`~simres.experiments.results.Comparison`: in Jupyter it shows
    as a compact table, ``.replications`` holds the runs, and ``.plot("percentiles")``
    draws them.
    """
    from simres.experiments.results import Comparison

    controls: list[str] = []
    if isinstance(scenario, pd.DataFrame):
        reps_df = scenario
    else:
        sc = load_scenario(scenario)
        names: list[str | None] = list(variants) if variants else (list(sc.variants) or [None])
        reps_df = replicate(sc, variants=names, reps=reps, seed=seed, progress=progress, executor=executor,
                            overrides=overrides)
        controls = [c for c in sc.controls if c in names]
    # controls (the scenario's `controls:`) are compared but never best, as in `simres compare`
    return Comparison(compare_frame(reps_df, metrics=metrics, confidence=confidence, controls=controls),
                      replications=reps_df, controls=controls)


def compare_frame(reps_df: pd.DataFrame, *, metrics: Sequence[str] | None = None,
                  confidence: float = 0.95, controls: Sequence[str] = ()) -> pd.DataFrame:
    """The comparison of :func:`compare` computed from a replications frame.

    ``best`` follows the metric's registered direction
    (:func:`simres.metrics.directions.direction`): a descriptive metric (utilisation,
    count, throughput, queue length) has no best, nor does a metric on which every
    variant has the same mean. ``controls`` are compared but never best. On a metric of
    the successful requests only (``latency_p99``, not ``latency_all_p99``) a variant whose
    success rate is significantly below the best one's, by more than a tenth of the share
    above the statistic (0.1 % for a p99), cannot be best: its tail is shorter because it
    failed its slow requests. When only one variant is comparable, it is best only if it
    beats the others anyway; otherwise such a metric has no best.
    """
    df = reps_df.copy()
    df["variant"] = df["variant"].fillna("").astype(str)
    id_cols = {"scenario", "variant", "replicate", "seed", "wall_time", "run_id", "error"}
    if metrics is None:
        metrics = [c for c in df.columns if c not in id_cols and pd.api.types.is_numeric_dtype(df[c])
                   and not df[c].isna().all()]
    agg = aggregate_replications(df, group_cols=["variant"], metrics=list(metrics), confidence=confidence)
    out = []
    for metric, part in agg.groupby("metric", sort=False):
        part = part.copy()
        means = part.set_index("variant")["mean"]
        best = None
        ranked = means.drop([c for c in controls if c in means.index]).dropna()
        tail = _survivor_tail(str(metric))
        if tail is not None:  # a faster tail from failing more requests is no win
            serving = _serving_variants(df, [str(v) for v in ranked.index], tail, confidence)
            if serving is not None:
                kept = ranked[ranked.index.isin(serving)]
                if len(kept) == 1:  # the one variant that serves as well as the best is best only if it also
                    better = kept.iloc[0] <= ranked.min() if direction(str(metric)) == "lower" else \
                        kept.iloc[0] >= ranked.max()  # beats those that failed more: else nothing compares
                    kept = kept if better else kept.iloc[:0]
                ranked = kept
        way = direction(str(metric))
        if way is not None and len(ranked) and not _all_equal(means.dropna()):
            best = ranked.idxmin() if way == "lower" else ranked.idxmax()
        part["best"] = part["variant"] == best
        diffs, pvals = [], []
        for v in part["variant"]:
            if best is None or v == best:
                diffs.append(0.0 if v == best else np.nan)
                pvals.append(np.nan)
                continue
            a = df[df.variant == v].sort_values("replicate")[metric].to_numpy(dtype=float)
            b = df[df.variant == best].sort_values("replicate")[metric].to_numpy(dtype=float)
            if len(a) != len(b) or len(a) < 2:
                diffs.append(float(np.nanmean(a) - np.nanmean(b)))
                pvals.append(np.nan)
                continue
            with warnings.catch_warnings():
                # identical replications (e.g. a deterministic metric) make scipy warn; p is NaN then
                warnings.simplefilter("ignore", RuntimeWarning)
                pdiff = paired_difference(a, b, confidence=confidence)
            diffs.append(pdiff.mean)
            pvals.append(pdiff.p_value)
        part["diff_vs_best"] = diffs
        part["p_value"] = pvals
        part["significant"] = part["p_value"] < (1 - confidence)
        out.append(part)
    res = pd.concat(out, ignore_index=True) if out else agg
    return res


def _survivor_tail(metric: str) -> float | None:
    """For a metric of the successful requests only (``latency_*``, not ``latency_all_*``): the
    share of requests above the statistic (0.01 for a p99, 0.5 for a median or the mean, 0
    for the maximum); None for any other metric."""
    base = metric.split(":", 1)[0]
    if not base.startswith("latency_") or base.startswith("latency_all_"):
        return None
    stat = base.removeprefix("latency_")
    if stat == "max":
        return 0.0
    if stat.startswith("p") and stat[1:].isdigit():
        digits = stat[1:]
        return 1.0 - float(f"0.{digits}") if len(digits) > 1 else 0.5
    return 0.5


def _serving_variants(df: pd.DataFrame, variants: Sequence[str], tail: float,
                      confidence: float) -> set[str] | None:
    """Which ``variants`` are comparable on a statistic of the successes with ``tail`` share
    above it: those whose success rate is not below the best one's by more than a tenth of
    that tail and significantly (paired t-test over replications). None without a success
    rate to judge by.

    A variant that fails the slowest Δ of its requests moves such a statistic as if they
    had been cut from the top: a p99 is shifted once Δ nears 1 %, a median only near 50 %.
    """
    if "success_rate" not in df.columns or len(variants) < 2:
        return None
    mine = df[df.variant.isin(variants)]
    means = mine.groupby("variant")["success_rate"].mean().dropna()
    if len(means) < 2:
        return None
    top = str(means.idxmax())
    b = mine[mine.variant == top].sort_values("replicate")["success_rate"].to_numpy(dtype=float)
    keep = {top}
    for v in means.index:
        if v == top:
            continue
        if means[top] - means[v] <= 0.1 * tail:
            keep.add(str(v))
            continue
        a = mine[mine.variant == v].sort_values("replicate")["success_rate"].to_numpy(dtype=float)
        if len(a) != len(b) or len(a) < 2:
            keep.add(str(v))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            d = paired_difference(a, b, confidence=confidence)
        if not (d.mean < 0 and d.p_value < 1 - confidence):
            keep.add(str(v))
    return keep


def _all_equal(values: pd.Series) -> bool:
    """Whether every value is the same, up to float noise (nothing to choose between)."""
    if len(values) < 2:
        return False
    lo, hi = float(values.min()), float(values.max())
    return hi - lo <= 1e-9 * max(abs(lo), abs(hi), 1e-12)


def recovery_verdicts(reps_df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per variant and fault: the share of replications that did not recover (binomial CI)."""
    df = reps_df.copy()
    df["variant"] = df["variant"].fillna("").astype(str)
    return aggregate_recovery(df, group_cols=["variant"], confidence=confidence)


COMPARE_DEFAULT = 16
"""Metrics ``simres compare`` shows unless ``--metrics`` picks others."""

_COMPARE_FIRST = ("success_rate", "goodput", "latency_all_p50", "latency_all_p99", "latency_all_p999",
                  "latency_p99", "tries_per_request", "work_per_success", "amplification:*", "recovered:*",
                  "recovery_time:*", "stable_at_end", "utilization:*", "queue_len:*")
"""The default view of a comparison, in this order (patterns expand in the frame's order)."""


def compare_table(reps: pd.DataFrame, *, metrics: Sequence[str] | None = None, controls: Sequence[str] = (),
                  width: int | None = None, confidence: float = 0.95) -> str:
    """The comparison ``simres compare`` prints: metrics x variants, in units, at most ``width`` columns.

    Each cell is the mean over replications with its 95 % interval at two significant
    digits (:func:`simres.metrics.display.format_interval`; a 0/1 metric such as
    ``recovered:*`` is a share of runs with its Wilson interval); ``*`` marks the best
    variant, ``~`` one not significantly different from it (paired t-test). Metrics with no
    data are left out; without ``metrics`` the first :data:`COMPARE_DEFAULT` of the
    headline metrics are shown and the last line says how many more there are and how to
    see them. Variants that do not fit the width continue in a block below, the metric
    column repeated, so no line is longer than ``width`` (120 by default, or the terminal's
    if narrower).
    """
    import fnmatch

    from rich.console import Console

    from simres.metrics.display import format_interval

    if width is None:
        console = Console()
        width = min(120, console.width) if console.is_terminal else 120
    cmp = compare_frame(reps, metrics=list(metrics) if metrics else None, controls=controls,
                        confidence=confidence)
    cmp = cmp[cmp["mean"].notna()]
    with_data = list(dict.fromkeys(cmp["metric"]))
    if metrics:
        shown = with_data
    else:
        shown = []
        for p in _COMPARE_FIRST:
            shown += [m for m in with_data if fnmatch.fnmatchcase(m, p) and m not in shown]
        shown = shown[:COMPARE_DEFAULT]
    variants = [v for v in dict.fromkeys(reps["variant"].fillna("").astype(str)) if v in set(cmp["variant"])]
    labels = {v: (v or "(as written)") + (" (control)" if v in controls else "") for v in variants}
    cells: dict[tuple[str, str], str] = {}
    marked = set(cmp.loc[cmp["best"], "metric"])
    for row in cmp.itertuples(index=False):
        if row.metric not in shown:
            continue
        mark = ""
        if row.best:
            mark = " *"
        elif row.metric in marked and row.variant not in controls and not row.significant \
                and not math.isnan(row.p_value):
            mark = " ~"
        cells[(row.metric, row.variant)] = format_interval(row.metric, row.mean, row.halfwidth, lo=row.lo,
                                                           hi=row.hi) + mark
    mw = min(max([len(m) for m in shown] + [6]), 30)
    cw = {v: max(len(labels[v]), *(len(cells.get((m, v), "-")) for m in shown)) for v in variants}
    blocks: list[list[str]] = [[]]
    used = mw
    for v in variants:
        if blocks[-1] and used + 2 + cw[v] > width:
            blocks.append([])
            used = mw
        blocks[-1].append(v)
        used += 2 + cw[v]
    n = int(reps.groupby(reps["variant"].fillna("").astype(str)).size().min()) if len(reps) else 0
    lines = [f"{len(variants)} variant(s) x {n} replication(s), common random numbers; "
             f"mean ± {round(confidence * 100)} % interval"[: width]]
    for block in blocks:
        lines.append("")
        lines.append(f"{'metric':<{mw}}" + "".join(f"  {labels[v]:>{cw[v]}}" for v in block))
        for m in shown:
            name = m if len(m) <= mw else m[: mw - 1] + "…"
            lines.append(f"{name:<{mw}}" + "".join(f"  {cells.get((m, v), '-'):>{cw[v]}}" for v in block))
    lines.append("")
    lines.append("* best   ~ not significantly different from the best (paired t-test)   "
                 "a share of runs: [Wilson interval]"[: width])
    hidden = len(with_data) - len(shown)
    if hidden > 0:
        lines.append(f"{len(shown)} of {len(with_data)} metrics with data shown; --metrics 'PATTERN' "
                     "shows others (e.g. 'latency_*', all), -o FILE writes every run"[: width])
    return "\n".join(lines)

