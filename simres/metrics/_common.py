"""Shared building blocks of the metric functions: masks, intervals and grouped quantiles.

Everything here is vectorised numpy. The grouped quantile is the one hot spot of a
summary (percentiles per window, per client, per priority): it sorts once by
(group, value) and reads every group's order statistics by index, instead of calling
``np.quantile`` once per group in a Python loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from simres.errors import SimresError
from simres.outcomes import PRIORITIES, SUCCESS_OUTCOMES, UNFINISHED

QUANTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p999", 0.999),
)
"""The latency percentiles every summary reports, keyed by their summary suffix."""

Population = Literal["success", "all"]
"""Which requests a latency statistic covers: successful ones, or all finished ones."""

EPS = 1e-9
"""Slack for float window arithmetic (0.1 * 100 is not exactly 10)."""


class MetricsError(SimresError, ValueError):
    """A metric function was called with an invalid argument (names the argument and value).

    Lives here until ``simres/errors.py`` adopts it; it derives from the one root
    ``SimresError`` and from ``ValueError`` so plain ``except ValueError`` still works.
    """


def check_positive(name: str, value: float) -> None:
    """Raise ``MetricsError`` unless ``value`` is a finite number > 0."""
    if not (np.isfinite(value) and value > 0):
        raise MetricsError(f"{name}: must be a finite number > 0, got {value!r}")


def check_interval(t0: float, t1: float) -> None:
    """Raise ``MetricsError`` unless ``t0 < t1`` (both finite)."""
    if not (np.isfinite(t0) and np.isfinite(t1) and t0 < t1):
        raise MetricsError(f"interval: t0 must be < t1 (both finite), got t0={t0!r}, t1={t1!r}")


def success_mask(outcome: pd.Series) -> np.ndarray:
    """Boolean array: which rows are successful responses (ok or degraded)."""
    return outcome.isin(SUCCESS_OUTCOMES).to_numpy(dtype=bool)


def finished_mask(requests: pd.DataFrame) -> np.ndarray:
    """Boolean array: which requests finished (have an end time and are not ``unfinished``)."""
    end = requests["end"].to_numpy(dtype=float)
    return ~np.isnan(end) & ~requests["outcome"].eq(UNFINISHED).to_numpy(dtype=bool)


def population_mask(requests: pd.DataFrame, population: Population) -> np.ndarray:
    """Boolean array: which requests belong to ``population`` ("success" or "all" finished)."""
    if population == "success":
        return success_mask(requests["outcome"])
    if population == "all":
        return finished_mask(requests)
    raise MetricsError(f"population: must be 'success' or 'all', got {population!r}")


def in_interval(times: pd.Series | np.ndarray, t0: float | None, t1: float | None) -> np.ndarray:
    """Boolean array: ``t0 <= time < t1`` (a ``None`` bound is open)."""
    t = np.asarray(times, dtype=float)
    mask = np.ones(t.shape, dtype=bool)
    if t0 is not None:
        mask &= t >= t0
    if t1 is not None:
        mask &= t < t1
    return mask


def n_windows(t0: float, t1: float, window: float) -> int:
    """How many whole windows of ``window`` s fit in ``[t0, t1)`` (a partial tail is dropped)."""
    return max(0, int(np.floor((t1 - t0) / window + EPS)))


def window_index(times: np.ndarray, t0: float, window: float, n: int) -> np.ndarray:
    """Window index of each time on the grid ``t0 + k * window``; -1 outside ``[0, n)``."""
    idx = np.floor((np.asarray(times, dtype=float) - t0) / window + EPS).astype(np.int64)
    idx[(idx < 0) | (idx >= n)] = -1
    return idx


def factorize(values: pd.Series, *, categories: Sequence[str] | None = None,
              ) -> tuple[np.ndarray, list[str]]:
    """Integer codes and labels of a string/categorical column (-1 for missing).

    With ``categories`` the labels are exactly those, in that order, and values outside
    them get -1; otherwise the labels are the sorted distinct values.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.asarray(values.cat.codes, dtype=np.int64)
        uniques = pd.Index(values.cat.categories)
    else:
        raw, uniques = pd.factorize(values, sort=True)
        codes = np.asarray(raw, dtype=np.int64)
    if categories is None:
        return codes, [str(u) for u in uniques]
    # Remap the few distinct values, not the rows: -1 stays -1, unknown values become -1.
    remap = np.append(pd.Index(list(categories)).get_indexer(uniques.astype(str)), -1)
    return remap[codes], list(categories)


def labels_of(values: pd.Series) -> list[str]:
    """The distinct labels of a column: its categories if categorical, else sorted values."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(c) for c in values.cat.categories]
    return sorted(str(v) for v in pd.unique(values.dropna()))


def priority_labels(values: pd.Series) -> list[str]:
    """The priorities present in ``values``, most important first (unknown ones last, sorted)."""
    present = labels_of(values)
    return [p for p in PRIORITIES if p in present] + [p for p in present if p not in PRIORITIES]


def grouped_quantiles(codes: np.ndarray, values: np.ndarray, n_groups: int,
                      qs: Iterable[float]) -> np.ndarray:
    """Quantiles of ``values`` within each group, as ``np.quantile`` (linear) would give.

    Args:
        codes: group index of each value, in ``[0, n_groups)``; rows with -1 are ignored.
        values: the values; NaN rows are ignored.
        n_groups: number of groups (rows of the result).
        qs: quantile levels in [0, 1].

    Returns:
        Array of shape ``(n_groups, len(qs))``; NaN for an empty group.
    """
    qs = list(qs)
    codes = np.asarray(codes, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    keep = (codes >= 0) & ~np.isnan(values)
    codes, values = codes[keep], values[keep]
    out = np.full((n_groups, len(qs)), np.nan)
    if values.size == 0:
        return out
    order = np.lexsort((values, codes))
    v = values[order]
    counts = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    n = counts[has]
    first = starts[has]
    for j, q in enumerate(qs):  # a loop over a handful of levels, not over groups
        h = (n - 1) * q
        lo = np.floor(h).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        a, b = v[first + lo], v[first + hi]
        out[has, j] = a + (h - lo) * (b - a)
    return out


def grouped_mean(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of ``values`` per group (NaN values and -1 codes ignored; NaN for an empty group)."""
    codes = np.asarray(codes, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    keep = (codes >= 0) & ~np.isnan(values)
    total = np.bincount(codes[keep], weights=values[keep], minlength=n_groups)
    count = np.bincount(codes[keep], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def ratio(num: float | np.ndarray, den: float | np.ndarray) -> np.ndarray:
    """``num / den`` with NaN (not inf, not a warning) where ``den == 0``."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)
