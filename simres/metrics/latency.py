"""Latency distributions: percentiles overall, per group, and over time.

Latency is ``end - start`` of a logical request, as the client saw it (retries and
backoff included). Two populations matter and are kept apart: *successful* requests
(what a user who got an answer waited) and *all finished* requests (failures included,
so a timeout shows up at its timeout and a fast rejection at its near-zero latency).
Unfinished requests have no latency and are never part of either.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simres.metrics._common import (
    QUANTILES,
    Population,
    check_interval,
    check_positive,
    factorize,
    grouped_mean,
    grouped_quantiles,
    labels_of,
    n_windows,
    population_mask,
    ratio,
    success_mask,
    window_index,
)

STAT_NAMES: tuple[str, ...] = ("count", "mean", *(name for name, _ in QUANTILES), "max")
"""Columns of :func:`latency_by` and keys of :func:`latency_percentiles`."""


def latency_values(requests: pd.DataFrame, *, population: Population = "success") -> np.ndarray:
    """The latencies of the requests in ``population`` (a float array, no NaN)."""
    mask = population_mask(requests, population)
    lat = requests["latency"].to_numpy(dtype=float)[mask]
    return lat[~np.isnan(lat)]


def latency_percentiles(requests: pd.DataFrame, *, population: Population = "success",
                        ) -> dict[str, float]:
    """Count, mean, p50, p90, p99, p99.9 and max latency (seconds) of ``population``.

    Percentiles use numpy's default linear interpolation. Every statistic is NaN when
    the population is empty (count is then 0).
    """
    lat = latency_values(requests, population=population)
    out = {"count": float(lat.size)}
    if lat.size == 0:
        out.update({name: np.nan for name in STAT_NAMES[1:]})
        return out
    out["mean"] = float(lat.mean())
    qs = np.quantile(lat, [q for _, q in QUANTILES])
    out.update({name: float(v) for (name, _), v in zip(QUANTILES, qs, strict=True)})
    out["max"] = float(lat.max())
    return out


def latency_by(requests: pd.DataFrame, *, by: str, population: Population = "success",
               ) -> pd.DataFrame:
    """Latency statistics per value of column ``by`` (``"client"`` or ``"priority"``, say).

    Returns one row per group (index named ``by``, every category of a categorical
    column included) with the columns of :data:`STAT_NAMES`; an empty group has count 0
    and NaN statistics.
    """
    mask = population_mask(requests, population)
    codes, labels = factorize(requests[by], categories=labels_of(requests[by]))
    codes = np.where(mask, codes, -1)
    return _group_stats(codes, requests["latency"].to_numpy(dtype=float), labels, name=by)


def latency_over_time(requests: pd.DataFrame, *, window: float = 1.0, t0: float = 0.0,
                      t1: float | None = None, population: Population = "success",
                      ) -> pd.DataFrame:
    """Per-window request statistics, requests binned by their *start* time.

    Windows are ``[t0 + k*window, t0 + (k+1)*window)`` up to ``t1`` (default: the last
    start, rounded up to a whole window); a partial last window is dropped. Binning by
    start time means a window describes the fate of the requests *issued* in it, which
    is what recovery detection needs (see ``recovery.py``).

    Returns a frame with one row per window, empty windows included: ``time`` (window
    start), ``count`` (requests started), ``ok`` (of which successful), ``success_rate``
    (ok / count, NaN if empty), ``p50``/``p99`` (latency of ``population``, NaN if none),
    and ``goodput`` (ok / window: successful requests started per second).
    """
    check_positive("window", window)
    start = requests["start"].to_numpy(dtype=float)
    if t1 is None:
        last = np.nanmax(start) if start.size else t0
        t1 = t0 + window * max(1.0, np.ceil((last - t0) / window + 1e-12))
    check_interval(t0, t1)
    n = n_windows(t0, t1, window)
    idx = window_index(start, t0, window, n)
    ok = success_mask(requests["outcome"])
    valid = idx >= 0
    count = np.bincount(idx[valid], minlength=n)
    n_ok = np.bincount(idx[valid & ok], minlength=n) if n else np.zeros(0, dtype=np.int64)
    pop = population_mask(requests, population)
    pq = grouped_quantiles(np.where(pop, idx, -1), requests["latency"].to_numpy(dtype=float), n,
                           (0.5, 0.99))
    return pd.DataFrame({
        "time": t0 + window * np.arange(n, dtype=float),
        "count": count.astype(np.int64),
        "ok": n_ok.astype(np.int64),
        "success_rate": ratio(n_ok, count),
        "p50": pq[:, 0],
        "p99": pq[:, 1],
        "goodput": n_ok / window,
    })


def _group_stats(codes: np.ndarray, latency: np.ndarray, labels: list[str], *, name: str,
                 ) -> pd.DataFrame:
    """The :data:`STAT_NAMES` columns for each group code, indexed by ``labels``."""
    n = len(labels)
    valid = (codes >= 0) & ~np.isnan(latency)
    count = np.bincount(codes[valid], minlength=n)
    qs = grouped_quantiles(codes, latency, n, [q for _, q in QUANTILES] + [1.0])
    frame = pd.DataFrame({"count": count.astype(np.int64),
                          "mean": grouped_mean(codes, latency, n)},
                         index=pd.Index(labels, name=name))
    for j, (qname, _) in enumerate(QUANTILES):
        frame[qname] = qs[:, j]
    frame["max"] = qs[:, -1]
    return frame
