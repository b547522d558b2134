"""Rates and shares of request outcomes: success rate, goodput, throughput, SLO attainment.

Ratios (success rate, outcome shares) are over the frame they are given: select the
requests first (``measured_requests`` for the steady state). Per-second rates take an
explicit interval ``[t0, t1)``, select the rows that *start* in it themselves and divide
by its length, so a rate can never be divided by the wrong duration.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simres.metrics._common import (
    check_interval,
    check_positive,
    factorize,
    finished_mask,
    in_interval,
    labels_of,
    priority_labels,
    ratio,
    success_mask,
)
from simres.outcomes import REQUEST_OUTCOMES


def measured_requests(requests: pd.DataFrame, *, warmup: float, duration: float,
                      ) -> pd.DataFrame:
    """The steady-state requests: those that start in ``[warmup, duration)``."""
    check_interval(warmup, duration)
    return requests.loc[in_interval(requests["start"], warmup, duration)]


def success_rate(requests: pd.DataFrame) -> float:
    """Share of requests that succeeded (ok or degraded); unfinished ones count as failed.

    NaN when there are no requests.
    """
    ok = success_mask(requests["outcome"])
    return float(ratio(ok.sum(), ok.size))


def goodput(requests: pd.DataFrame, *, t0: float, t1: float) -> float:
    """Successful requests per second among those that start in ``[t0, t1)``."""
    check_interval(t0, t1)
    sel = in_interval(requests["start"], t0, t1)
    return float((success_mask(requests["outcome"]) & sel).sum() / (t1 - t0))


def throughput(requests: pd.DataFrame, *, t0: float, t1: float) -> float:
    """Finished requests (any outcome but unfinished) per second, of those starting in [t0, t1)."""
    check_interval(t0, t1)
    sel = in_interval(requests["start"], t0, t1)
    return float((finished_mask(requests) & sel).sum() / (t1 - t0))


def tries_per_second(attempts: pd.DataFrame, *, t0: float, t1: float) -> pd.Series:
    """Tries sent to each service per second: attempts with ``sent`` starting in ``[t0, t1)``.

    A try counts at its start time at the caller (as the timeline's ``arrivals``). The
    result is indexed by service; every service that appears in ``attempts`` is listed,
    with 0.0 when none of its tries fall in the interval.
    """
    check_interval(t0, t1)
    codes, labels = factorize(attempts["service"], categories=labels_of(attempts["service"]))
    sel = attempts["sent"].to_numpy(dtype=bool) & in_interval(attempts["start"], t0, t1)
    counts = np.bincount(codes[sel & (codes >= 0)], minlength=len(labels))
    return pd.Series(counts / (t1 - t0), index=pd.Index(labels, name="service"),
                     name="tries_per_s", dtype=float)


def slo_attainment(requests: pd.DataFrame, *, target: float) -> float:
    """Share of requests that succeed with latency ``<= target`` seconds (NaN if none)."""
    check_positive("target", target)
    ok = success_mask(requests["outcome"])
    lat = requests["latency"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        good = ok & (lat <= target)
    return float(ratio(good.sum(), ok.size))


def outcome_shares(requests: pd.DataFrame) -> dict[str, float]:
    """Share of requests with each outcome of ``REQUEST_OUTCOMES`` (all keys, NaN if empty).

    Outcomes not in the vocabulary are counted in the denominator but not reported.
    """
    n = len(requests)
    codes, _ = factorize(requests["outcome"], categories=REQUEST_OUTCOMES)
    counts = np.bincount(codes[codes >= 0], minlength=len(REQUEST_OUTCOMES))
    shares = ratio(counts, n) if n else np.full(len(REQUEST_OUTCOMES), np.nan)
    return {o: float(s) for o, s in zip(REQUEST_OUTCOMES, shares, strict=True)}


def outcome_shares_by(requests: pd.DataFrame, *, by: str = "priority") -> pd.DataFrame:
    """Per value of column ``by``: ``count``, ``success_rate`` and the share of each outcome.

    The outcome columns are named after ``REQUEST_OUTCOMES`` (``shed``, ``rejected``,
    ``throttled``, ``breaker_open``...). For ``by="priority"`` the rows are ordered as
    ``PRIORITIES`` where present, so the most important class comes first.
    """
    labels = priority_labels(requests[by]) if by == "priority" else labels_of(requests[by])
    g, _ = factorize(requests[by], categories=labels)
    o, _ = factorize(requests["outcome"], categories=REQUEST_OUTCOMES)
    n_g, n_o = len(labels), len(REQUEST_OUTCOMES)
    count = np.bincount(g[g >= 0], minlength=n_g)
    both = (g >= 0) & (o >= 0)
    table = np.bincount(g[both] * n_o + o[both], minlength=n_g * n_o).reshape(n_g, n_o)
    ok = success_mask(requests["outcome"])
    frame = pd.DataFrame({"count": count.astype(np.int64),
                          "success_rate": ratio(np.bincount(g[ok & (g >= 0)], minlength=n_g),
                                                count)},
                         index=pd.Index(labels, name=by))
    for j, outcome in enumerate(REQUEST_OUTCOMES):
        frame[outcome] = ratio(table[:, j], count)
    return frame
