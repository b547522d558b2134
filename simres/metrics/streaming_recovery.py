"""The recovery verdict and ``stable_at_end`` in summary mode, from per-window counts and sketches.

:func:`simres.metrics.recovery.recovery` and :func:`~simres.metrics.recovery.stable_at_end`
read the whole requests frame: per-window success rates, and the p99 pooled over the
baseline, over a candidate hold period and over the last hold before the horizon. In
summary mode the same inputs are accumulated as the request rows are recorded:

- per window of ``window`` seconds, on the grid each verdict uses (the baseline's grid
  anchored at ``warmup``, and one grid anchored at each scheduled fault end), the exact
  number of requests started and of successes, and a log-bucket histogram of the latencies
  of the p99 population (successes) with DDSketch's mapping at relative accuracy
  :data:`~simres.metrics.streaming.ALPHA`;
- for ``stable_at_end``, the same three for its reference period (requests started in
  ``[warmup, r)`` outside every fault) and its final period ``[t_end - hold, t_end)``.

The verdicts are then computed with the frame version's rules, window for window. The
counts, so every success-rate test, are exact; a pooled p99 is the histogram's (within
``ALPHA`` of the order statistic, as every summary-mode percentile), and an exceedance
count ("at most 1 % above the limit") counts whole buckets above it, so a verdict can
differ from full mode only when a p99 is within about 1 % of its limit. Memory is one
histogram per window that saw a success: it grows with the run's length, not its load.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from simres.metrics._common import EPS, n_windows, window_index
from simres.metrics.faults import fault_intervals
from simres.metrics.recovery import healthy_counts


class LogHistogram:
    """Latency counts per DDSketch bucket (``ceil(log(v) / log(gamma))``), mergeable and exact per bucket."""

    __slots__ = ("counts", "n")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        """Bucket key -> count; key ``TINY`` holds values too small for the mapping."""
        self.n = 0

    def add(self, keys: np.ndarray) -> None:
        """Add values already mapped to keys (see :func:`keys_of`)."""
        if keys.size == 0:
            return
        ks, cs = np.unique(keys, return_counts=True)
        counts = self.counts
        for k, c in zip(ks.tolist(), cs.tolist(), strict=True):
            counts[k] = counts.get(k, 0) + c
        self.n += int(keys.size)

    def merge(self, other: LogHistogram) -> None:
        counts = self.counts
        for k, c in other.counts.items():
            counts[k] = counts.get(k, 0) + c
        self.n += other.n

    def quantile(self, q: float) -> float:
        """The value at rank ``q * (n - 1)``, as ``DDSketch.get_quantile_value`` (NaN when empty)."""
        if self.n == 0:
            return math.nan
        rank = q * (self.n - 1)
        cum = 0
        for k in sorted(self.counts):
            cum += self.counts[k]
            if cum > rank:
                return value_of(k)
        return value_of(max(self.counts))

    def count_above(self, limit: float) -> int:
        """How many values are in buckets whose value is above ``limit``."""
        return sum(c for k, c in self.counts.items() if value_of(k) > limit)


TINY = -(2**62)
"""The key of values at or below the mapping's smallest positive value (shown as 0)."""


def keys_of(values: np.ndarray) -> np.ndarray:
    """DDSketch bucket keys of latencies (``TINY`` for values too small to map)."""
    from simres.metrics.streaming import LatencySketch

    v = np.asarray(values, dtype=float)
    keys = np.full(v.shape, TINY, dtype=np.int64)
    pos = v > LatencySketch.mapping.min_possible
    keys[pos] = np.ceil(np.log(v[pos]) / LatencySketch._log_gamma).astype(np.int64)
    return keys


def value_of(key: int) -> float:
    """The representative value of a bucket (DDSketch's)."""
    from simres.metrics.streaming import LatencySketch

    return 0.0 if key == TINY else float(LatencySketch.mapping.value(key))


class _Grid:
    """Requests started, successes and a latency histogram per window of one grid."""

    __slots__ = ("count", "hist", "n", "ok", "t0")

    def __init__(self, t0: float, n: int) -> None:
        self.t0 = t0
        self.n = n
        self.count = np.zeros(n, dtype=np.int64)
        self.ok = np.zeros(n, dtype=np.int64)
        self.hist: dict[int, LogHistogram] = {}

    def pooled(self, lo: int, hi: int) -> LogHistogram:
        out = LogHistogram()
        for k in range(lo, hi):
            h = self.hist.get(k)
            if h is not None:
                out.merge(h)
        return out


class _Period:
    """Requests started, successes and a latency histogram of one period."""

    __slots__ = ("count", "hist", "ok")

    def __init__(self) -> None:
        self.count = 0
        self.ok = 0
        self.hist = LogHistogram()


class StreamRecovery:
    """The inputs of the recovery verdict and ``stable_at_end``, accumulated chunk by chunk."""

    def __init__(self, *, warmup: float, t_end: float, faults: Sequence[tuple[float, float]],
                 window: float = 1.0, hold: float = 5.0) -> None:
        """``faults``: every scheduled fault's ``(start, end)`` (``end`` inf when it never ends)."""
        self.warmup = warmup
        self.t_end = t_end
        self.window = window
        self.hold = hold
        starts = [s for s, _ in faults]
        last_start = max(starts) if starts else warmup
        self.base = _Grid(warmup, n_windows(warmup, last_start, window) if last_start > warmup else 0)
        self.after: dict[float, _Grid] = {}
        for _, end in faults:
            if math.isfinite(end) and end < t_end:
                self.after[float(end)] = _Grid(end, n_windows(end, t_end, window))
        # stable_at_end's periods (see simres.metrics.recovery.stable_at_end)
        self.final_lo = t_end - hold
        mid = warmup + (self.final_lo - warmup) / 2.0
        self.ref_hi = min(starts) if starts and min(starts) > warmup else mid
        self._active = np.array([[s, e] for s, e in faults], dtype=float).reshape(-1, 2)
        self.ref = _Period()
        self.final = _Period()

    def add(self, start: np.ndarray, ok: np.ndarray, latency: np.ndarray) -> None:
        """One chunk of request rows: start times, success flags, and the p99 population's
        latencies (NaN for requests outside it)."""
        if start.size == 0:
            return
        pop = np.isfinite(latency)
        keys = np.full(start.shape, TINY, dtype=np.int64)
        keys[pop] = keys_of(latency[pop])
        for grid in (self.base, *self.after.values()):
            if grid.n == 0:
                continue
            idx = window_index(start, grid.t0, self.window, grid.n)
            valid = idx >= 0
            if not valid.any():
                continue
            grid.count += np.bincount(idx[valid], minlength=grid.n)
            grid.ok += np.bincount(idx[valid & ok], minlength=grid.n)
            sel = valid & pop
            for w in np.unique(idx[sel]).tolist():
                grid.hist.setdefault(w, LogHistogram()).add(keys[sel & (idx == w)])
        ref = (start >= self.warmup) & (start < min(self.ref_hi, self.final_lo))
        if len(self._active):
            ref &= ~((start[:, None] >= self._active[:, 0]) & (start[:, None] < self._active[:, 1])).any(axis=1)
        final = (start >= self.final_lo) & (start < self.t_end)
        for period, mask in ((self.ref, ref), (self.final, final)):
            if mask.any():
                period.count += int(mask.sum())
                period.ok += int((mask & ok).sum())
                period.hist.add(keys[mask & pop])

    # ------------------------------------------------------------------ verdicts

    def recovery(self, events: pd.DataFrame, *, success_tolerance: float = 0.02,
                 p99_factor: float = 1.5) -> list[dict[str, object]]:
        """One row per fault of ``events`` with ``fault``, ``recovered`` (True, False or None),
        ``recovery_time`` and ``status``, by :func:`simres.metrics.recovery.recovery`'s rules."""
        faults = fault_intervals(events)
        active_s = faults["start"].to_numpy(dtype=float)
        active_e = np.nan_to_num(faults["end"].to_numpy(dtype=float), nan=np.inf)
        window, warmup, t_end = self.window, self.warmup, self.t_end
        need = max(1, int(np.ceil(self.hold / window - EPS)))
        rows: list[dict[str, object]] = []
        for f in faults.itertuples(index=False):
            row: dict[str, object] = {"fault": f.fault, "recovered": None, "recovery_time": math.nan, "status": ""}
            rows.append(row)
            nb = min(n_windows(warmup, f.start, window) if f.start > warmup else 0, self.base.n)
            b_t = warmup + window * np.arange(nb)
            clean = ~((b_t[:, None] < active_e) & (b_t[:, None] + window > active_s)).any(axis=1)
            b_count, b_ok = self.base.count[:nb][clean], self.base.ok[:nb][clean]
            base_rate = b_ok.sum() / b_count.sum() if b_count.sum() > 0 else math.nan
            pooled = LogHistogram()
            for k in np.flatnonzero(clean).tolist():
                h = self.base.hist.get(k)
                if h is not None:
                    pooled.merge(h)
            base_p99 = pooled.quantile(0.99)
            if not (math.isfinite(f.end) and f.end < t_end):
                row["status"] = "not_ended"
                continue
            if not (math.isfinite(base_rate) and math.isfinite(base_p99)):
                row["status"] = "no_baseline"
                continue
            grid = self.after.get(float(f.end))
            if grid is None:  # a fault the schedule did not announce: nothing was counted for it
                row["status"] = "not_ended"
                continue
            count, n_ok = grid.count, grid.ok
            sparse = bool((b_count == 0).any())
            with np.errstate(invalid="ignore", divide="ignore"):
                passing = (n_ok / np.maximum(count, 1) >= base_rate - success_tolerance - EPS) & (count > 0)
            if sparse:
                passing |= count == 0
            limit = p99_factor * base_p99
            first = _first_hold(passing, need, grid, limit, allow_empty=sparse)
            if first is None:
                row.update(recovered=False, status="not_recovered")
                continue
            row["recovery_time"] = first * window
            later = active_s[active_s >= f.end]
            horizon = min(t_end, float(later.min())) if later.size else t_end
            n_h = n_windows(f.end, horizon, window)
            lasting = True
            if first + need < n_h:
                lo = n_h - need
                lasting = _healthy(int(count[lo:n_h].sum()), int(n_ok[lo:n_h].sum()), grid.pooled(lo, n_h),
                                   base_rate, success_tolerance, limit, allow_empty=sparse)
            row.update(recovered=lasting, status="recovered" if lasting else "relapsed")
        return rows

    def stable_at_end(self, *, success_tolerance: float = 0.02, p99_factor: float = 1.5) -> float:
        """:func:`simres.metrics.recovery.stable_at_end` from the two periods."""
        if not self.final_lo > self.warmup:
            return math.nan
        ref, final = self.ref, self.final
        if ref.count == 0 or ref.hist.n == 0 or final.count == 0:
            return math.nan
        healthy = _healthy(final.count, final.ok, final.hist, ref.ok / ref.count, success_tolerance,
                           p99_factor * ref.hist.quantile(0.99), allow_empty=False)
        return 1.0 if healthy else 0.0


def _first_hold(passing: np.ndarray, need: int, grid: _Grid, limit: float, *, allow_empty: bool) -> int | None:
    """The first window starting ``need`` passing windows whose pooled p99 is within ``limit``."""
    if passing.size < need:
        return None
    runs = np.convolve(passing.astype(np.int64), np.ones(need, dtype=np.int64), mode="valid")
    for k in np.flatnonzero(runs == need).tolist():
        pooled = grid.pooled(k, k + need)
        if pooled.n == 0:
            if allow_empty:
                return int(k)
            continue
        if pooled.quantile(0.99) <= limit:
            return int(k)
    return None


def _healthy(n: int, n_ok: int, hist: LogHistogram, reference: float, tolerance: float, limit: float, *,
             allow_empty: bool) -> bool:
    """:func:`simres.metrics.recovery.healthy_counts` with the slow count from a histogram."""
    slow = hist.count_above(limit) if hist.n else 0
    return healthy_counts(n, n_ok, hist.n, slow, reference, tolerance, allow_empty=allow_empty)


def schedule(faults: Iterable[object]) -> list[tuple[float, float]]:
    """``(start, end)`` of every scenario fault (``end`` inf when it never ends)."""
    out = []
    for f in faults:
        end = getattr(f, "end", None)
        out.append((float(f.at), math.inf if end is None else float(end)))  # type: ignore[attr-defined]
    return out
