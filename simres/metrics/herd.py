"""Thundering herds: how bursty the arrivals at each service are, especially after a fault.

Arrivals are tries sent to a service (``attempts.sent``), timed at their start at the
caller, counted in small windows (default 0.1 s). Over an interval of W whole windows
with counts ``c_1..c_W`` (empty windows included):

- ``peak_to_mean`` = max(c) / mean(c): 1 for perfectly even load, W when all arrivals
  share one window;
- ``cv`` = std(c) / mean(c) (population std): 0 for even load;
- ``synchrony`` = share of the arrivals that land in the busiest ``ceil(top_share * W)``
  windows: ``top_share`` (0.1) for even load, 1.0 when they all land together.

A synchronised retry wave after a fault ends (every client's backoff expiring at once)
shows up as a high synchrony and peak-to-mean in the period right after ``fault_end``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simres.metrics._common import (
    EPS,
    MetricsError,
    check_interval,
    check_positive,
    factorize,
    labels_of,
    n_windows,
    ratio,
    window_index,
)
from simres.metrics.faults import fault_intervals

HERD_COLUMNS: tuple[str, ...] = ("arrivals", "mean_rate", "peak_rate", "peak_to_mean", "cv",
                                 "synchrony")


def arrival_counts(attempts: pd.DataFrame, *, t0: float, t1: float, window: float = 0.1,
                   ) -> pd.DataFrame:
    """Sent tries per window and service: a wide frame, index = window start, column = service.

    Covers the whole windows of ``[t0, t1)``; every service in ``attempts`` has a column.
    """
    labels, counts = _counts(attempts, t0=t0, t1=t1, window=window)
    time = t0 + window * np.arange(counts.shape[1], dtype=float)
    return pd.DataFrame(counts.T, index=pd.Index(time, name="time"),
                        columns=pd.Index(labels, name="service"))


def arrival_rate(attempts: pd.DataFrame, *, t0: float, t1: float, window: float = 0.1,
                 ) -> pd.DataFrame:
    """Tidy per-window arrivals: columns ``time``, ``service``, ``arrivals``, ``rate`` (per s)."""
    wide = arrival_counts(attempts, t0=t0, t1=t1, window=window)
    tidy = wide.stack().rename("arrivals").reset_index()
    tidy["rate"] = tidy["arrivals"] / window
    return tidy.sort_values(["service", "time"], kind="stable").reset_index(drop=True)


def herd_stats(attempts: pd.DataFrame, *, t0: float, t1: float, window: float = 0.1,
               top_share: float = 0.1) -> pd.DataFrame:
    """Burstiness of arrivals at each service over ``[t0, t1)``.

    Returns one row per service (index ``service``) with :data:`HERD_COLUMNS`:
    ``arrivals`` (count), ``mean_rate`` and ``peak_rate`` (per second), and
    ``peak_to_mean``, ``cv``, ``synchrony`` as defined in the module docstring (NaN when
    the service had no arrivals or the interval holds no whole window).
    """
    if not 0 < top_share <= 1:
        raise MetricsError(f"top_share: must be in (0, 1], got {top_share!r}")
    labels, counts = _counts(attempts, t0=t0, t1=t1, window=window)
    return pd.DataFrame(_stats(counts, window=window, top_share=top_share),
                        index=pd.Index(labels, name="service"))


def herd_after_faults(attempts: pd.DataFrame, events: pd.DataFrame, *, period: float = 10.0,
                      window: float = 0.1, top_share: float = 0.1, t_end: float | None = None,
                      ) -> pd.DataFrame:
    """:func:`herd_stats` for the ``period`` seconds after each fault ends.

    The interval is ``[fault_end, min(fault_end + period, t_end))``; a fault that never
    ended, or ended at or after ``t_end``, is skipped. Returns a tidy frame with columns
    ``fault``, ``service``, ``t0``, ``t1`` and :data:`HERD_COLUMNS`.
    """
    check_positive("period", period)
    faults = fault_intervals(events)
    frames = []
    for fault, end in zip(faults["fault"], faults["end"].astype(float), strict=True):
        t1 = end + period if t_end is None else min(end + period, t_end)
        if not np.isfinite(end) or t1 - end < window - EPS:
            continue
        stats = herd_stats(attempts, t0=end, t1=t1, window=window, top_share=top_share)
        stats = stats.reset_index()
        stats.insert(0, "fault", fault)
        stats.insert(2, "t0", end)
        stats.insert(3, "t1", t1)
        frames.append(stats)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("fault", "service") else float)
                             for c in ("fault", "service", "t0", "t1", *HERD_COLUMNS)})
    return pd.concat(frames, ignore_index=True)


def _counts(attempts: pd.DataFrame, *, t0: float, t1: float, window: float,
            ) -> tuple[list[str], np.ndarray]:
    """Service labels and a (services x windows) array of sent-try counts."""
    check_positive("window", window)
    check_interval(t0, t1)
    n = n_windows(t0, t1, window)
    codes, labels = factorize(attempts["service"], categories=labels_of(attempts["service"]))
    idx = window_index(attempts["start"].to_numpy(dtype=float), t0, window, n)
    keep = attempts["sent"].to_numpy(dtype=bool) & (idx >= 0) & (codes >= 0)
    flat = np.bincount(codes[keep] * n + idx[keep], minlength=len(labels) * n)
    return labels, flat.reshape(len(labels), n)


def _stats(counts: np.ndarray, *, window: float, top_share: float) -> dict[str, np.ndarray]:
    """The :data:`HERD_COLUMNS` arrays for a (services x windows) count array."""
    n_svc, n = counts.shape
    total = counts.sum(axis=1).astype(float)
    if n == 0:
        nan = np.full(n_svc, np.nan)
        return {"arrivals": total, "mean_rate": nan, "peak_rate": nan, "peak_to_mean": nan,
                "cv": nan, "synchrony": nan}
    mean = total / n
    peak = counts.max(axis=1).astype(float)
    std = counts.std(axis=1)
    k = max(1, int(np.ceil(top_share * n - EPS)))
    top = -np.sort(-counts, axis=1)[:, :k].sum(axis=1)
    busy = total > 0
    return {
        "arrivals": total,
        "mean_rate": mean / window,
        "peak_rate": peak / window,
        "peak_to_mean": np.where(busy, ratio(peak, mean), np.nan),
        "cv": np.where(busy, ratio(std, mean), np.nan),
        "synchrony": np.where(busy, ratio(top, total), np.nan),
    }
