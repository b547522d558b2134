"""Output analysis across independent replications: intervals, paired tests, aggregation.

As docs/metrics.md (Replications) states: independent replications summarised as mean +- t*s/sqrt(R);
paired differences for policies compared under common random numbers; and, for the
bimodal recovered/metastable outcome, the share that stayed failed with a binomial
interval plus the recovery-time distribution, never a pooled mean.

scipy is imported inside the functions that need it: it is slow to import, and the
metrics package is imported by every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from simres.metrics._common import MetricsError

SHARE_PREFIXES = ("recovered:", "relapsed:", "stable_at_end")
"""Summary keys that are 0/1 per run: their mean over replications is a share, with a Wilson interval."""

BOUNDED: tuple[str, ...] = (
    "success_rate", "error_rate", "timeout_rate", "connect_timeout_rate", "connection_rate", "rejected_rate",
    "shed_rate", "throttled_rate", "breaker_open_rate", "bulkhead_full_rate", "degraded_rate", "unfinished_rate",
    "slo_attainment", "breaker_open_share", "utilization",
)
"""Summary keys (before any ``:group``) that are shares of one run, between 0 and 1: their t interval
over replications is clipped to [0, 1] (with two replications it can otherwise pass 100 %)."""

ID_COLUMNS: tuple[str, ...] = ("run_id", "replicate", "seed", "wall_time")
"""Columns of a sweep frame that identify a run rather than measure it."""


class MeanCI(NamedTuple):
    """A sample mean with its two-sided confidence interval."""

    mean: float
    lo: float
    hi: float
    halfwidth: float


class BinomialCI(NamedTuple):
    """A proportion ``k / n`` with its Wilson score interval."""

    p: float
    lo: float
    hi: float


class PairedDifference(NamedTuple):
    """Mean of ``a - b`` over pairs, its t interval, and the paired t-test p-value."""

    mean: float
    lo: float
    hi: float
    halfwidth: float
    p_value: float
    n: int


def _is_metric_dtype(column: pd.Series) -> bool:
    """Numeric and not boolean: the columns ``aggregate_replications`` treats as metrics."""
    return (pd.api.types.is_numeric_dtype(column)
            and not pd.api.types.is_bool_dtype(column))


def _check_confidence(confidence: float) -> None:
    """Raise ``MetricsError`` unless ``0 < confidence < 1``."""
    if not 0 < confidence < 1:
        raise MetricsError(f"confidence: must be in (0, 1), got {confidence!r}")


def _t_halfwidth(std: np.ndarray, n: np.ndarray, confidence: float) -> np.ndarray:
    """``t_{(1+c)/2, n-1} * s / sqrt(n)``, NaN where ``n < 2``."""
    from scipy.stats import t as student_t

    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = student_t.ppf((1 + confidence) / 2, np.where(n >= 2, n - 1, np.nan))
        return np.where(n >= 2, q * np.asarray(std, dtype=float) / np.sqrt(n), np.nan)


def mean_ci(values: Sequence[float] | np.ndarray | pd.Series, *, confidence: float = 0.95,
            ) -> MeanCI:
    """Mean and Student-t confidence interval of independent replications.

    NaN values are dropped first. With no values everything is NaN. With one value the
    mean is that value and ``lo``, ``hi``, ``halfwidth`` are NaN: the spread is unknown
    (not infinite), so any "is the true value inside the interval?" check fails instead
    of passing vacuously. With zero variance the half-width is 0.
    """
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return MeanCI(np.nan, np.nan, np.nan, np.nan)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size >= 2 else np.nan
    hw = float(_t_halfwidth(np.array(std), np.array(x.size), confidence))
    return MeanCI(mean, mean - hw, mean + hw, hw)


def binomial_ci(k: int, n: int, *, confidence: float = 0.95) -> BinomialCI:
    """Proportion ``k / n`` with the Wilson score interval.

    Wilson rather than the normal (Wald) interval because replication counts are small
    and the shares of interest (runs that never recovered) are often 0 or 1, where Wald
    collapses to a zero-width interval. ``n == 0`` gives NaN throughout.
    """
    _check_confidence(confidence)
    if n < 0 or k < 0 or k > n:
        raise MetricsError(f"binomial_ci: need 0 <= k <= n, got k={k!r}, n={n!r}")
    if n == 0:
        return BinomialCI(np.nan, np.nan, np.nan)
    from scipy.stats import norm

    z = float(norm.ppf((1 + confidence) / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return BinomialCI(float(p), float(lo), float(hi))


def paired_difference(a: Sequence[float] | np.ndarray | pd.Series,
                      b: Sequence[float] | np.ndarray | pd.Series, *,
                      confidence: float = 0.95) -> PairedDifference:
    """Mean of ``a - b`` with a t interval and the two-sided paired t-test p-value.

    ``a[i]`` and ``b[i]`` are the same replication (same seed) under two variants, so
    common random numbers cancel in the difference. Pairs with a NaN are dropped. When
    every difference is the same (zero variance) scipy's test is undefined; then the
    p-value is 1.0 if that difference is 0 and 0.0 otherwise, with a zero-width interval.
    Fewer than two pairs give NaN interval and p-value.
    """
    _check_confidence(confidence)
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise MetricsError(f"paired_difference: a and b need the same length, got "
                           f"{x.size} and {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    d = x - y
    n = int(d.size)
    if n == 0:
        return PairedDifference(np.nan, np.nan, np.nan, np.nan, np.nan, 0)
    ci = mean_ci(d, confidence=confidence)
    if n < 2:
        return PairedDifference(ci.mean, np.nan, np.nan, np.nan, np.nan, n)
    if np.all(d == d[0]):
        p_value = 1.0 if d[0] == 0 else 0.0
        return PairedDifference(ci.mean, ci.mean, ci.mean, 0.0, p_value, n)
    from scipy.stats import ttest_rel

    p_value = float(ttest_rel(x, y).pvalue)
    return PairedDifference(ci.mean, ci.lo, ci.hi, ci.halfwidth, p_value, n)


def aggregate_replications(df: pd.DataFrame, *, group_cols: Sequence[str] = (),
                           metrics: Sequence[str] | None = None,
                           confidence: float = 0.95) -> pd.DataFrame:
    """Tidy mean and confidence interval of every metric over replications.

    Args:
        df: one row per replication, one column per metric (a sweep's result frame).
        group_cols: the columns that identify a design point (swept parameters); each
            combination is aggregated separately.
        metrics: the metric columns; by default every numeric column that is neither a
            group column nor an id (``run_id``, ``replicate``, ``seed``, ``wall_time``).
        confidence: confidence level of the intervals.

    Returns:
        One row per (group, metric): the group columns, ``metric``, ``mean``, ``lo``,
        ``hi``, ``halfwidth``, ``n`` (non-NaN replications) and ``method``. Metrics named
        ``recovered:*``, ``relapsed:*`` and ``stable_at_end`` are proportions and get a
        Wilson interval (method ``"wilson"``, ``halfwidth`` = half the interval's width); every
        other metric gets Student t (method ``"t"``), clipped to [0, 1] for the shares in
        :data:`BOUNDED`. ``recovery_time:*`` is NaN for runs that did not recover, so its
        mean is conditional on recovery; use :func:`aggregate_recovery` for the verdict.
    """
    _check_confidence(confidence)
    group_cols = list(group_cols)
    if metrics is None:
        skip = set(group_cols) | set(ID_COLUMNS)
        metrics = [c for c in df.columns if c not in skip and _is_metric_dtype(df[c])]
    metrics = list(metrics)
    values = df[metrics].astype(float)
    keys = [df[c] for c in group_cols] if group_cols else np.zeros(len(df), dtype=np.int64)
    grouped = values.groupby(keys, sort=True, dropna=False)
    mean = grouped.mean()
    std = grouped.std(ddof=1)
    count = grouped.count()
    hw = pd.DataFrame(_t_halfwidth(std.to_numpy(), count.to_numpy(), confidence),
                      index=mean.index, columns=mean.columns)
    tidy = pd.DataFrame({
        "mean": mean.stack(),
        "halfwidth": hw.stack(),
        "n": count.stack().astype(np.int64),
    })
    tidy["lo"] = tidy["mean"] - tidy["halfwidth"]
    tidy["hi"] = tidy["mean"] + tidy["halfwidth"]
    tidy["method"] = "t"
    tidy.index = tidy.index.set_names([*(group_cols or ["_group"]), "metric"])
    tidy = tidy.reset_index()
    bounded = tidy["metric"].astype(str).str.split(":", n=1).str[0].isin(BOUNDED).to_numpy()
    if bounded.any():  # a share's interval stays a share: clipped, halfwidth still the t half-width
        tidy.loc[bounded, "lo"] = tidy.loc[bounded, "lo"].clip(lower=0.0)
        tidy.loc[bounded, "hi"] = tidy.loc[bounded, "hi"].clip(upper=1.0)
    prop = tidy["metric"].astype(str).str.startswith(SHARE_PREFIXES).to_numpy()
    if prop.any():
        # A handful of rows (faults x design points): a loop over them is fine.
        k = np.rint(tidy.loc[prop, "mean"].fillna(0) * tidy.loc[prop, "n"]).astype(int)
        wilson = [binomial_ci(int(ki), int(ni), confidence=confidence)
                  for ki, ni in zip(k, tidy.loc[prop, "n"], strict=True)]
        tidy.loc[prop, "lo"] = [w.lo for w in wilson]
        tidy.loc[prop, "hi"] = [w.hi for w in wilson]
        tidy.loc[prop, "halfwidth"] = [(w.hi - w.lo) / 2 for w in wilson]
        tidy.loc[prop, "method"] = "wilson"
    if not group_cols:
        tidy = tidy.drop(columns="_group")
    return tidy[[*group_cols, "metric", "mean", "lo", "hi", "halfwidth", "n", "method"]]


def aggregate_recovery(df: pd.DataFrame, *, group_cols: Sequence[str] = (),
                       confidence: float = 0.95,
                       quantiles: Sequence[float] = (0.5, 0.9)) -> pd.DataFrame:
    """The recovered / metastable verdict over replications, per fault and design point.

    Reads the summary columns ``recovered:<fault>`` (1.0, 0.0 or NaN = not judged) and
    ``recovery_time:<fault>``. Returns one row per (group, fault): ``n`` (replications
    judged), ``not_recovered`` (count; relapses included), ``relapsed`` (of those, the
    runs that recovered and fell back, from ``relapsed:<fault>``), ``share_not_recovered`` with its Wilson
    interval ``lo`` / ``hi``, and the recovery time of the replications that recovered:
    ``recovery_time_p50``, ``recovery_time_p90`` (one column per level of
    ``quantiles``), ``recovery_time_max``. A pooled mean is deliberately absent: a
    bimodal outcome has no meaningful mean.
    """
    _check_confidence(confidence)
    group_cols = list(group_cols)
    faults = [c.split(":", 1)[1] for c in df.columns if str(c).startswith("recovered:")]
    q_names = [f"recovery_time_p{round(q * 100):d}" for q in quantiles]
    rows = []
    groups = df.groupby(group_cols, sort=True, dropna=False) if group_cols else [((), df)]
    # Loops over design points x faults: tens of rows, each a tiny array.
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for fault in faults:
            rec = part[f"recovered:{fault}"].to_numpy(dtype=float)
            judged = ~np.isnan(rec)
            n = int(judged.sum())
            failed = int((rec[judged] == 0).sum())
            ci = binomial_ci(failed, n, confidence=confidence)
            col = f"recovery_time:{fault}"
            times = part[col].to_numpy(dtype=float) if col in part else np.array([])
            times = times[judged & (rec == 1)] if times.size else times
            times = times[~np.isnan(times)]
            row = dict(zip(group_cols, key, strict=True))
            rel_col = f"relapsed:{fault}"
            relapsed = int(np.nansum(part[rel_col].to_numpy(dtype=float))) if rel_col in part else 0
            row.update({"fault": fault, "n": n, "not_recovered": failed, "relapsed": relapsed,
                        "share_not_recovered": ci.p, "lo": ci.lo, "hi": ci.hi})
            qv = np.quantile(times, list(quantiles)) if times.size else [np.nan] * len(q_names)
            row.update(dict(zip(q_names, map(float, qv), strict=True)))
            row["recovery_time_max"] = float(times.max()) if times.size else np.nan
            rows.append(row)
    columns = [*group_cols, "fault", "n", "not_recovered", "relapsed", "share_not_recovered", "lo", "hi",
               *q_names, "recovery_time_max"]
    return pd.DataFrame(rows, columns=columns)
