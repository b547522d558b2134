"""hedging-under-overload: a 30 ms hedge cuts p99 at 23 % load; at 83 % on a server that
runs cancelled work to the end it hedges every request and the server collapses. A p95
delay collapses too, gRPC throttling only partly; a 5 % budget keeps it up (p99 a little
worse than no hedging); a server that drops cancelled work makes the hedge nearly free."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult
from simres.metrics.stats import mean_ci, paired_difference

from ._helpers import of, replicate_frames, success_share

NAME = "hedging-under-overload"
VARIANTS = ("low-none", "low-fixed", "none", "fixed", "p95", "grpc-throttling", "budget-5pct", "fixed-cancel")
REPS = 4


def measure(res: RunResult) -> Mapping[str, float]:
    return {"late_success": success_share(res.requests, 15, res.scenario.duration)}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


def test_at_low_load_a_fixed_hedge_cuts_p99_for_a_few_percent_more_tries(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "low-none", "latency_p99") > 0.15)  # the slow mode, ~0.22 s
    assert np.all(of(reps, "low-fixed", "latency_p99") < 0.4 * of(reps, "low-none", "latency_p99"))  # ~0.05 s
    extra = mean_ci(of(reps, "low-fixed", "hedge_extra_load"))
    assert extra.lo > 0.03 and extra.hi < 0.1  # ~6 %
    assert mean_ci(of(reps, "low-fixed", "hedge_win_share")).lo > 0.6
    assert np.all(of(reps, "low-fixed", "success_rate") == 1.0)


@pytest.mark.parametrize("variant", ("fixed", "p95"))
def test_near_saturation_the_hedges_tip_the_server_over(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, "none", "success_rate") == 1.0)
    assert np.all(of(reps, "none", "utilization:search") < 0.9)  # ~0.83
    # every request sends its hedge, the server does twice the work and answers nobody in time
    assert np.all(of(reps, variant, "hedge_extra_load") > 0.95)
    assert np.all(of(reps, variant, "utilization:search") > 0.98)
    assert np.all(of(reps, variant, "success_rate") < 0.1)  # measured 0-6 %
    assert np.all(of(reps, variant, "hedge_win_share") < 0.05)


def test_grpc_throttling_stops_hedging_only_partly(reps: pd.DataFrame) -> None:
    # timeouts cost tokens, but a try times out only after 1 s of queue: hedging stops late
    ok = of(reps, "grpc-throttling", "success_rate")
    assert np.all((ok > 0.1) & (ok < 0.9))  # measured 0.30-0.55
    assert np.all(of(reps, "grpc-throttling", "hedge_extra_load") < 0.5)
    assert np.all(of(reps, "grpc-throttling", "utilization:search") > 0.95)


def test_a_hedge_budget_keeps_the_server_up_at_a_small_cost_in_tail(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "budget-5pct", "success_rate") >= 0.99)
    extra = of(reps, "budget-5pct", "hedge_extra_load")
    assert np.all((extra > 0.045) & (extra < 0.06))  # 5 % of requests + 1 per second
    # the extra load raises utilisation and, near saturation, the tail: hedging does not pay here
    for metric, margin in (("utilization:search", 0.02), ("latency_p99", 0.0), ("latency_p999", 0.0)):
        assert paired_difference(of(reps, "budget-5pct", metric), of(reps, "none", metric)).lo > margin


def test_where_the_server_drops_cancelled_work_the_hedge_is_nearly_free(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "fixed-cancel", "success_rate") == 1.0)
    assert np.all(of(reps, "fixed-cancel", "latency_p99") < 0.4 * of(reps, "none", "latency_p99"))
    # cancelled slow originals give their workers back: less work than not hedging at all
    busy = "utilization:search"
    assert paired_difference(of(reps, "fixed-cancel", busy), of(reps, "none", busy)).hi < -0.1
    assert mean_ci(of(reps, "fixed-cancel", "hedge_extra_load")).hi < 0.15  # ~10 %
