"""Recovery after a fault: did the system come back once the trigger was gone, and when?

The verdict that separates a transient overload from a metastable failure. For each
fault (``fault_intervals``), requests are binned by *start* time in windows of
``window`` seconds. The fault has *recovered* at the first window ``k``, counted from
``fault_end``, that starts a *hold* period (``hold`` seconds of whole windows) in which

    every window:      success_rate >= baseline_success_rate - success_tolerance   and
    the whole period:  p99          <= p99_factor * baseline_p99

(one-sided: doing better than the baseline is fine). The success rate is judged window by
window, so a relapse inside the hold period fails it. The p99 (of the successful requests,
by default) is pooled over the hold period: the p99 of a single one-second window holds
so few requests that it is essentially its second-largest latency, and such noise alone
would keep a healthy system "unrecovered". ``recovery_time`` is the start of window ``k``
minus ``fault_end``, so it has the resolution of one window.
When no such run fits before ``t_end`` the fault is *not recovered* (``recovered=False``,
``recovery_time=NaN``): the metastable outcome. A system that only comes back in the last
``hold`` seconds is reported not recovered: its recovery cannot be confirmed.

A recovery must also last. The *horizon* is the start of the next fault that begins after
this one ended, or ``t_end``. The last ``hold`` seconds of whole windows before the horizon
are judged pooled: the success rate against the same limit (with three standard errors of
slack when that is more than the tolerance), and at most 1 % of the latencies above the
p99 limit (plus three standard errors); when they fail, the
system came back and fell over again: ``status="relapsed"``, ``recovered=False``, and
``recovery_time`` keeps the time of the first recovery. When the first recovery itself
reaches past the horizon, the first hold period is the last one there is to judge.

:func:`stable_at_end` is the fault-free counterpart, computed for every run: the last
``hold`` seconds before ``t_end`` against the early part of the run (see its docstring), so a
system that collapses with no trigger at all is flagged too.

Baseline: the whole windows of ``[warmup, fault_start)`` (grid anchored at ``warmup``)
that overlap no fault's active interval. ``baseline_success_rate`` and ``baseline_p99``
pool the requests of those windows, as the hold period's p99 does.

Edge cases, each with a ``status``:
- ``not_ended``: the fault never ended, or ended at or after ``t_end``: nothing to judge
  (``recovered`` is NA, ``recovery_time`` NaN).
- ``no_baseline``: no fault-free baseline window with traffic and successes before the
  fault (it started at or before the warm-up ends, say): NA and NaN as well.
- Windows with no requests fail (silence after a fault means stuck clients, e.g. closed
  loop users all waiting), *unless* the baseline itself had empty windows: then traffic
  is too sparse for an empty window to be evidence either way, and empty windows pass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simres.metrics._common import (
    EPS,
    MetricsError,
    Population,
    check_positive,
    grouped_quantiles,
    n_windows,
    population_mask,
    success_mask,
    window_index,
)
from simres.metrics.faults import fault_intervals

STATUSES: tuple[str, ...] = ("recovered", "relapsed", "not_recovered", "not_ended", "no_baseline")
"""Every ``status`` a fault's row can have."""

RECOVERY_COLUMNS: tuple[str, ...] = (
    "fault", "kind", "start", "end", "baseline_success_rate", "baseline_p99", "recovered",
    "recovery_time", "status",
)


def recovery(requests: pd.DataFrame, events: pd.DataFrame, *, t_end: float,
             warmup: float = 0.0, window: float = 1.0, hold: float = 5.0,
             success_tolerance: float = 0.02, p99_factor: float = 1.5,
             population: Population = "success") -> pd.DataFrame:
    """Recovery verdict and time for every fault in ``events`` (see the module docstring).

    Args:
        requests: the requests frame (all of it: the baseline and the post-fault windows
            are selected here by start time).
        events: the events frame (``fault_start`` / ``fault_end`` rows are used).
        t_end: end of the observation, normally the run ``duration`` (no requests start
            after it, so later windows would look empty).
        warmup: start of the baseline.
        window: window length in seconds.
        hold: how long the windows must keep passing, in seconds (at least one window).
        success_tolerance: allowed absolute drop of the success rate below baseline.
        p99_factor: allowed ratio of a window's p99 to the baseline p99.
        population: whose latency the p99 is of: ``"success"`` or ``"all"`` finished.

    Returns:
        One row per fault with :data:`RECOVERY_COLUMNS`; ``recovered`` is a nullable
        boolean (NA when there is nothing to judge).
    """
    check_positive("window", window)
    if not hold >= 0:
        raise MetricsError(f"hold: must be >= 0, got {hold!r}")
    if not success_tolerance >= 0:
        raise MetricsError(f"success_tolerance: must be >= 0, got {success_tolerance!r}")
    check_positive("p99_factor", p99_factor)
    faults = fault_intervals(events)
    start = requests["start"].to_numpy(dtype=float)
    ok = success_mask(requests["outcome"])
    latency = np.where(population_mask(requests, population),
                       requests["latency"].to_numpy(dtype=float), np.nan)
    active_s = faults["start"].to_numpy(dtype=float)
    active_e = np.nan_to_num(faults["end"].to_numpy(dtype=float), nan=np.inf)
    need = max(1, int(np.ceil(hold / window - EPS)))

    rows = []
    for f in faults.itertuples(index=False):  # one iteration per fault, a handful per run
        row = {"fault": f.fault, "kind": f.kind, "start": f.start, "end": f.end,
               "baseline_success_rate": np.nan, "baseline_p99": np.nan,
               "recovered": pd.NA, "recovery_time": np.nan, "status": ""}
        rows.append(row)
        # Baseline: fault-free whole windows of [warmup, fault start).
        nb = n_windows(warmup, f.start, window) if f.start > warmup else 0
        b_count, b_ok, _ = _window_stats(start, ok, latency, warmup, window, nb)
        b_t = warmup + window * np.arange(nb)
        clean = ~((b_t[:, None] < active_e) & (b_t[:, None] + window > active_s)).any(axis=1)
        b_count, b_ok = b_count[clean], b_ok[clean]
        if b_count.sum() > 0:
            row["baseline_success_rate"] = b_ok.sum() / b_count.sum()
        b_idx = window_index(start, warmup, window, nb) if nb else np.full(start.shape, -1)
        in_base = b_idx >= 0
        in_base[in_base] = clean[b_idx[in_base]]
        b_lat = latency[in_base]
        b_lat = b_lat[np.isfinite(b_lat)]
        if b_lat.size:
            row["baseline_p99"] = float(np.quantile(b_lat, 0.99))
        if not (np.isfinite(f.end) and f.end < t_end):
            row["status"] = "not_ended"
            continue
        if not (np.isfinite(row["baseline_success_rate"]) and np.isfinite(row["baseline_p99"])):
            row["status"] = "no_baseline"
            continue
        # Post-fault windows: [end, t_end) on a grid anchored at the fault's end.
        n = n_windows(f.end, t_end, window)
        count, n_ok, _ = _window_stats(start, ok, latency, f.end, window, n)
        sparse = bool((b_count == 0).any())
        with np.errstate(invalid="ignore", divide="ignore"):
            passing = ((n_ok / np.maximum(count, 1)
                        >= row["baseline_success_rate"] - success_tolerance - EPS) & (count > 0))
        if sparse:
            passing |= count == 0
        p99_limit = p99_factor * row["baseline_p99"]
        first = _first_hold(passing, need, start, latency, f.end, window, p99_limit, allow_empty=sparse)
        if first is None:
            row.update(recovered=False, status="not_recovered")
            continue
        row["recovery_time"] = first * window
        later = active_s[active_s >= f.end]
        horizon = min(t_end, float(later.min())) if later.size else t_end
        n_h = n_windows(f.end, horizon, window)
        lasting = True
        if first + need < n_h:  # the last hold period before the horizon is not the first one
            lo = f.end + (n_h - need) * window
            lasting = _healthy(start, ok, latency, lo, lo + need * window, row["baseline_success_rate"],
                               success_tolerance, p99_limit, allow_empty=sparse)
        row.update(recovered=lasting, status="recovered" if lasting else "relapsed")

    frame = pd.DataFrame(rows, columns=list(RECOVERY_COLUMNS))
    frame["recovered"] = frame["recovered"].astype("boolean")
    for col in ("start", "end", "baseline_success_rate", "baseline_p99", "recovery_time"):
        frame[col] = frame[col].astype(float)
    for col in ("fault", "kind", "status"):
        frame[col] = frame[col].astype(object)
    return frame


def _healthy(start: np.ndarray, ok: np.ndarray, latency: np.ndarray, lo: float, hi: float,
             reference: float, tolerance: float, p99_limit: float, *, allow_empty: bool) -> bool:
    """Whether the requests started in ``[lo, hi)`` pass, pooled: success rate and p99.

    Pooled over the whole period (not window by window), with room for sampling noise,
    because a relapse is a collapse, not a wobble: the success rate may fall below
    ``reference`` by ``tolerance`` or by three standard errors of a share of that many
    requests, whichever is larger; and at most 1 % of the latencies may exceed
    ``p99_limit`` (the p99 criterion, as an exceedance share), plus three standard errors.
    The p99 of a quiet period of a few hundred requests is one of its two largest values,
    far too noisy to compare with a limit directly.
    """
    sel = (start >= lo) & (start < hi)
    lat = latency[sel]
    lat = lat[np.isfinite(lat)]
    return healthy_counts(int(sel.sum()), int(ok[sel].sum()), int(lat.size), int((lat > p99_limit).sum()),
                          reference, tolerance, allow_empty=allow_empty)


def healthy_counts(n: int, n_ok: int, n_lat: int, n_slow: int, reference: float, tolerance: float, *,
                   allow_empty: bool) -> bool:
    """:func:`_healthy`'s test on counts: ``n`` requests, ``n_ok`` successes, ``n_lat`` latencies
    of the p99 population, ``n_slow`` of them above the limit (the summary mode's histograms
    give the same counts, :mod:`simres.metrics.streaming_recovery`)."""
    if n == 0:
        return allow_empty
    slack = max(tolerance, 3.0 * float(np.sqrt(reference * (1.0 - reference) / n)))
    if n_ok / n < reference - slack - EPS:
        return False
    if n_lat == 0:
        return False
    return n_slow <= 0.01 * n_lat + 3.0 * float(np.sqrt(0.01 * 0.99 * n_lat))


def stable_at_end(requests: pd.DataFrame, events: pd.DataFrame, *, t_end: float, warmup: float = 0.0,
                  hold: float = 5.0, success_tolerance: float = 0.02, p99_factor: float = 1.5,
                  population: Population = "success") -> float:
    """1.0 if the last ``hold`` seconds before ``t_end`` are as healthy as the run's start, else 0.0.

    The fault-free stability verdict, for every run. *Final period*: requests started in
    ``[t_end - hold, t_end)``. *Reference*: requests started in ``[warmup, r)`` outside
    every fault's active interval, where ``r`` is the first fault's start or, without faults
    (or when that leaves nothing), the midpoint of ``[warmup, t_end - hold)``: the early
    part of the run. Stable when the final period's pooled success rate is at least the
    reference's minus ``success_tolerance`` (or minus three standard errors, if more) and at
    most 1 % (+ 3 standard errors) of its latencies above ``p99_factor`` times the
    reference's p99 (the relapse test of :func:`recovery`). NaN when either period has no
    requests or the reference no successes. A system that tips over with no trigger (offered
    load above its metastability bound) gives 0.0; one that is steadily bad from the start
    gives 1.0: it is stable, and its success rate says the rest.
    """
    final_lo = t_end - hold
    if not final_lo > warmup:
        return float("nan")
    faults = fault_intervals(events)
    starts = faults["start"].to_numpy(dtype=float)
    ends = np.nan_to_num(faults["end"].to_numpy(dtype=float), nan=np.inf)
    mid = warmup + (final_lo - warmup) / 2.0
    ref_hi = float(starts.min()) if starts.size and starts.min() > warmup else mid
    start = requests["start"].to_numpy(dtype=float)
    ok = success_mask(requests["outcome"])
    latency = np.where(population_mask(requests, population), requests["latency"].to_numpy(dtype=float), np.nan)
    ref = (start >= warmup) & (start < min(ref_hi, final_lo))
    if starts.size:
        ref &= ~((start[:, None] >= starts) & (start[:, None] < ends)).any(axis=1)
    n = int(ref.sum())
    ref_lat = latency[ref]
    ref_lat = ref_lat[np.isfinite(ref_lat)]
    if n == 0 or ref_lat.size == 0:
        return float("nan")
    final = (start >= final_lo) & (start < t_end)
    if not final.any():
        return float("nan")
    healthy = _healthy(start, ok, latency, final_lo, t_end, ok[ref].sum() / n, success_tolerance,
                       p99_factor * float(np.quantile(ref_lat, 0.99)), allow_empty=False)
    return 1.0 if healthy else 0.0


def _window_stats(start: np.ndarray, ok: np.ndarray, latency: np.ndarray, t0: float,
                  window: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Requests started, successes, and p99 of ``latency`` (NaN rows ignored) per window."""
    if n == 0:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty.astype(np.int64), empty
    idx = window_index(start, t0, window, n)
    valid = idx >= 0
    count = np.bincount(idx[valid], minlength=n)
    n_ok = np.bincount(idx[valid & ok], minlength=n)
    p99 = grouped_quantiles(idx, latency, n, (0.99,))[:, 0]
    return count, n_ok, p99


def _first_hold(passing: np.ndarray, need: int, start: np.ndarray, latency: np.ndarray, t0: float,
                window: float, p99_limit: float, *, allow_empty: bool) -> int | None:
    """First window starting ``need`` passing windows whose pooled p99 is within the limit."""
    if passing.size < need:
        return None
    runs = np.convolve(passing.astype(np.int64), np.ones(need, dtype=np.int64), mode="valid")
    candidates = np.flatnonzero(runs == need)
    if candidates.size == 0:
        return None
    order = np.argsort(start, kind="stable")
    s_sorted, l_sorted = start[order], latency[order]
    # Candidates are few and the first usually passes: a loop with two binary searches each.
    for k in candidates:
        lo = t0 + k * window
        a, b = np.searchsorted(s_sorted, [lo, lo + need * window], side="left")
        lat = l_sorted[a:b]
        lat = lat[np.isfinite(lat)]
        if lat.size == 0:
            if allow_empty:
                return int(k)
            continue
        if np.quantile(lat, 0.99) <= p99_limit:
            return int(k)
    return None
