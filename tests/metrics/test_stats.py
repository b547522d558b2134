"""Confidence intervals, paired differences and replication aggregation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from simres.metrics import (
    aggregate_recovery,
    aggregate_replications,
    binomial_ci,
    mean_ci,
    paired_difference,
)
from simres.metrics._common import MetricsError


def test_mean_ci_coverage_is_nominal(rng):
    samples = rng.normal(3.0, 2.0, size=(2000, 10))
    hits = 0
    for row in samples:
        ci = mean_ci(row)
        hits += ci.lo <= 3.0 <= ci.hi
    assert 0.93 <= hits / 2000 <= 0.97


def test_mean_ci_known_value():
    # mean 2, s = 1, n = 3: t_{0.975, 2} = 4.302653 -> halfwidth 4.302653 / sqrt(3)
    ci = mean_ci([1.0, 2.0, 3.0])
    assert ci.mean == 2.0
    assert ci.halfwidth == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert (ci.lo, ci.hi) == pytest.approx((2 - ci.halfwidth, 2 + ci.halfwidth))


def test_mean_ci_edge_cases():
    assert all(np.isnan(v) for v in mean_ci([]))
    one = mean_ci([4.0])
    assert one.mean == 4.0 and np.isnan(one.halfwidth) and np.isnan(one.lo)
    flat = mean_ci([2.0, 2.0, 2.0])
    assert flat == (2.0, 2.0, 2.0, 0.0)
    assert mean_ci([1.0, np.nan, 3.0]).mean == 2.0
    with pytest.raises(MetricsError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=95)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (3, 7), (40, 200)])
def test_binomial_ci_is_wilson(k, n):
    ours = binomial_ci(k, n)
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert ours.p == pytest.approx(k / n)
    assert (ours.lo, ours.hi) == pytest.approx((ref.low, ref.high), abs=1e-9)


def test_binomial_ci_published_values():
    assert binomial_ci(0, 10).hi == pytest.approx(0.2775, abs=1e-4)
    assert (binomial_ci(5, 10).lo, binomial_ci(5, 10).hi) == pytest.approx((0.2366, 0.7634),
                                                                           abs=1e-4)


def test_binomial_ci_edge_cases():
    assert all(np.isnan(v) for v in binomial_ci(0, 0))
    with pytest.raises(MetricsError):
        binomial_ci(3, 2)


def test_paired_difference_detects_a_real_difference(rng):
    base = rng.normal(10.0, 3.0, 30)  # common random numbers: shared noise per replication
    a = base + 0.5 + rng.normal(0, 0.2, 30)
    b = base + rng.normal(0, 0.2, 30)

    diff = paired_difference(a, b)

    assert diff.p_value < 0.001
    assert diff.lo <= 0.5 <= diff.hi
    assert diff.n == 30


def test_paired_difference_does_not_invent_one(rng):
    base = rng.normal(10.0, 3.0, 30)
    diff = paired_difference(base + rng.normal(0, 0.2, 30), base + rng.normal(0, 0.2, 30))
    assert diff.p_value > 0.05
    assert diff.lo <= 0.0 <= diff.hi


def test_paired_difference_zero_variance_and_nan():
    same = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.p_value == 1.0 and same.halfwidth == 0.0 and same.mean == 0.0
    shifted = paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert shifted.p_value == 0.0 and (shifted.lo, shifted.hi) == (1.0, 1.0)
    dropped = paired_difference([1.0, np.nan, 3.0, 5.0], [0.0, 1.0, 1.0, 2.0])
    assert dropped.n == 3
    with pytest.raises(MetricsError, match="same length"):
        paired_difference([1.0], [1.0, 2.0])


@pytest.fixture
def sweep() -> pd.DataFrame:
    """Two design points x 4 replications, with a recovery verdict per replication."""
    return pd.DataFrame({
        "run_id": range(8),
        "replicate": [0, 1, 2, 3] * 2,
        "seed": range(100, 108),
        "retry.max_attempts": [1] * 4 + [3] * 4,
        "success_rate": [0.9, 0.92, 0.94, 0.96, 0.5, 0.6, np.nan, 0.7],
        "recovered:spike": [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, np.nan],
        "recovery_time:spike": [2.0, 3.0, 4.0, 5.0, np.nan, 9.0, np.nan, np.nan],
        "error": [None] * 8,
    })


def test_aggregate_replications_tidy_and_matches_mean_ci(sweep):
    agg = aggregate_replications(sweep, group_cols=["retry.max_attempts"])

    assert list(agg.columns) == ["retry.max_attempts", "metric", "mean", "lo", "hi",
                                 "halfwidth", "n", "method"]
    assert set(agg["metric"]) == {"success_rate", "recovered:spike", "recovery_time:spike"}
    row = agg[(agg["retry.max_attempts"] == 3) & (agg["metric"] == "success_rate")].iloc[0]
    ref = mean_ci([0.5, 0.6, 0.7])
    assert row["n"] == 3 and row["method"] == "t"
    assert (row["mean"], row["lo"], row["hi"], row["halfwidth"]) == pytest.approx(tuple(ref))
    rec = agg[(agg["retry.max_attempts"] == 3) & (agg["metric"] == "recovered:spike")].iloc[0]
    wilson = binomial_ci(1, 3)
    assert rec["method"] == "wilson" and rec["n"] == 3
    assert (rec["mean"], rec["lo"], rec["hi"]) == pytest.approx((1 / 3, wilson.lo, wilson.hi))


def test_aggregate_replications_without_groups(sweep):
    agg = aggregate_replications(sweep, metrics=["success_rate"])
    assert len(agg) == 1 and agg.at[0, "n"] == 7
    assert agg.at[0, "mean"] == pytest.approx(np.nanmean(sweep["success_rate"]))


def test_aggregate_recovery_reports_share_and_times_not_a_pooled_mean(sweep):
    agg = aggregate_recovery(sweep, group_cols=["retry.max_attempts"]).set_index(
        "retry.max_attempts")

    stable, fragile = agg.loc[1], agg.loc[3]
    assert stable["n"] == 4 and stable["not_recovered"] == 0
    assert stable["share_not_recovered"] == 0.0
    assert stable["hi"] == pytest.approx(binomial_ci(0, 4).hi)
    assert stable["recovery_time_p50"] == pytest.approx(3.5)
    assert stable["recovery_time_max"] == 5.0
    assert fragile["n"] == 3 and fragile["not_recovered"] == 2
    assert fragile["share_not_recovered"] == pytest.approx(2 / 3)
    assert fragile["recovery_time_p50"] == 9.0
    assert "recovery_time_mean" not in agg.columns


def test_aggregate_replications_keeps_a_shares_interval_inside_zero_and_one():
    """Two replications at 99 % and 100 % success: the t interval (99.5 +- 6.4 %) would pass
    100 %; a share's interval is clipped, an unbounded metric's is not."""
    df = pd.DataFrame({"success_rate": [0.99, 1.0], "timeout_rate:client=web": [0.0, 0.01],
                       "latency_p99": [0.99, 1.0], "arrival_rate": [0.99, 1.0]})
    tidy = aggregate_replications(df).set_index("metric")
    t = mean_ci(np.array([0.99, 1.0]))
    assert t.hi > 1.0 and t.lo < 0.99  # the unclipped interval passes 100 %
    assert tidy.at["success_rate", "hi"] == 1.0 and tidy.at["success_rate", "lo"] == pytest.approx(t.lo)
    assert tidy.at["timeout_rate:client=web", "lo"] == 0.0
    assert tidy.at["success_rate", "halfwidth"] == pytest.approx(t.halfwidth)
    for unbounded in ("latency_p99", "arrival_rate"):
        assert tidy.at[unbounded, "hi"] == pytest.approx(t.hi) and tidy.at[unbounded, "lo"] == pytest.approx(t.lo)
