"""adaptive-limit-vs-bulkhead: the api loses 3/4 of its workers for 20 s. Without a cap the
queue outgrows the timeout (goodput ~0); a generous fixed bulkhead holds ~100 requests and
its p99 sits at the timeout; a tight one refuses ~12 % in normal time; adaptive limits
(Envoy's gradient controller, Netflix's Vegas and Gradient2) refuse almost nothing in
normal time and keep goodput near the remaining capacity, Envoy's limit falling to ~4 per
instance and back."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult
from simres.metrics.stats import mean_ci, paired_difference

from ._helpers import fault_window, in_window, of, outcome_share, replicate_frames, success_latency

NAME = "adaptive-limit-vs-bulkhead"
VARIANTS = ("no-limit", "bulkhead", "tight-bulkhead", "gradient2", "vegas", "envoy")
ADAPTIVE = ("gradient2", "vegas", "envoy")
REPS = 5
CAPACITY_DURING = 2 * 2 / 0.0373  # 2 instances x 2 workers left, ~37.3 ms per request: ~107 req/s


def client_limits_at(events: pd.DataFrame, t: float) -> float:
    """Sum over the client members of their limit in force at time t (NaN without any)."""
    e = events[(events["kind"] == "limit") & events["component"].astype(str).str.contains("->", regex=False)]
    e = e[e["time"] <= t]
    return float(e.groupby(e["component"].astype(str))["value"].last().sum()) if len(e) else np.nan


def measure(res: RunResult) -> Mapping[str, float]:
    start, end = fault_window(res, "drop")
    req = res.requests
    tl = res.timeline[res.timeline["service"].astype(str) == "api"]

    def goodput(t0: float, t1: float) -> float:
        w = in_window(req, t0, t1)
        return float(w["outcome"].isin(("ok", "degraded")).sum()) / (t1 - t0)

    def held(t0: float, t1: float) -> float:
        return float(tl[(tl["time"] >= t0) & (tl["time"] < t1)]["inflight"].mean())

    def limit(t0: float, t1: float, how: str) -> float:
        if "limit" not in tl:
            return np.nan
        return float(getattr(tl[(tl["time"] >= t0) & (tl["time"] < t1)]["limit"], how)())

    before, during = (5.0, start), (start + 1, end)
    return {"goodput_before": goodput(*before), "goodput_during": goodput(*during),
            "p99_during": success_latency(req, *during, 0.99),
            "full_before": outcome_share(req, "bulkhead_full", *before),
            "failed_before": 1 - goodput(*before) * (before[1] - before[0]) / len(in_window(req, *before)),
            "held_before": held(*before), "held_during": held(start + 2, end),
            "limit_before": limit(10, start, "min"), "limit_during_max": limit(start + 1, end, "max"),
            "limit_after": limit(end + 5, res.scenario.duration, "min"),
            "client_limit_before": client_limits_at(res.events, start - 0.5),
            "client_limit_cut": client_limits_at(res.events, start + 3),
            "client_limit_late": client_limits_at(res.events, end - 0.5)}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


def test_without_a_limit_the_queue_outgrows_the_timeout(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "no-limit", "goodput_during") < 5)  # measured ~0.03 req/s
    assert np.all(of(reps, "no-limit", "held_during") > 500)  # ~1,500 requests queued
    # the backlog outlives the drop: the api needs several seconds to work through it
    assert np.all(of(reps, "no-limit", "recovery_time:drop") >= 4)


@pytest.mark.parametrize("variant", ("no-limit", "bulkhead", *ADAPTIVE))
def test_normal_time_is_served_except_by_the_tight_bulkhead(reps: pd.DataFrame, variant: str) -> None:
    assert mean_ci(of(reps, variant, "failed_before")).hi < 0.005
    gap = paired_difference(of(reps, "tight-bulkhead", "failed_before"), of(reps, variant, "failed_before"))
    assert gap.lo > 0.08  # the tight bulkhead refuses ~12 % of requests the api had room for


def test_the_tight_bulkhead_refuses_in_normal_time(reps: pd.DataFrame) -> None:
    full = mean_ci(of(reps, "tight-bulkhead", "full_before"))
    assert full.lo > 0.08 and full.hi < 0.18  # measured ~0.125
    assert np.all(of(reps, "bulkhead", "full_before") == 0)


def test_the_generous_bulkhead_holds_too_much_when_capacity_drops(reps: pd.DataFrame) -> None:
    held = of(reps, "bulkhead", "held_during")
    # 4 members x 25 slots, and a little more: a try that timed out frees its slot while the
    # api still works on it
    assert np.all(held > 90)
    assert np.all(of(reps, "bulkhead", "p99_during") > 0.9)  # at the 1 s timeout
    assert mean_ci(of(reps, "bulkhead", "goodput_during")).hi < 0.85 * CAPACITY_DURING


@pytest.mark.parametrize("variant", ADAPTIVE)
def test_an_adaptive_limit_keeps_goodput_near_the_remaining_capacity(reps: pd.DataFrame, variant: str) -> None:
    assert mean_ci(of(reps, variant, "goodput_during")).lo > 0.85 * CAPACITY_DURING  # ~100-106 req/s
    assert paired_difference(of(reps, variant, "goodput_during"), of(reps, "bulkhead", "goodput_during")).lo > 10
    assert paired_difference(of(reps, variant, "held_during"), of(reps, "bulkhead", "held_during")).hi < -20


@pytest.mark.parametrize("variant", ("vegas", "envoy"))
def test_vegas_and_envoy_cut_the_tail_against_the_bulkhead(reps: pd.DataFrame, variant: str) -> None:
    assert paired_difference(of(reps, variant, "p99_during"), of(reps, "bulkhead", "p99_during")).hi < -0.15


def test_envoys_limit_falls_with_the_capacity_and_climbs_back(reps: pd.DataFrame) -> None:
    # normal time: the gradient sits at its ceiling, 1,000 per instance
    assert np.all(of(reps, "envoy", "limit_before") >= 1000)
    assert np.all(of(reps, "envoy", "limit_during_max") < 40)  # ~8 in all for 4 workers left
    assert np.all(of(reps, "envoy", "limit_after") >= 1000)
    assert np.all(of(reps, "envoy", "held_during") < 15)
    assert np.all(of(reps, "envoy", "p99_during") < 0.3)  # measured ~0.16 s


def test_gradient2_cuts_its_limit_then_drifts_back_up(reps: pd.DataFrame) -> None:
    before, cut, late = (of(reps, "gradient2", k) for k in ("client_limit_before", "client_limit_cut",
                                                           "client_limit_late"))
    assert np.all(cut < 0.8 * before)
    assert np.all(late > 1.5 * cut)  # the long RTT average has caught up with the slow RTTs
    assert paired_difference(of(reps, "gradient2", "p99_during"), of(reps, "vegas", "p99_during")).lo > 0
