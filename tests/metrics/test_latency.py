"""Latency percentiles, per group and over time, against numpy on known data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simres.metrics import latency_by, latency_over_time, latency_percentiles
from simres.metrics._common import MetricsError, grouped_quantiles

LEVELS = [0.5, 0.9, 0.99, 0.999]


def test_percentiles_of_successes_match_numpy(make_requests, rng):
    lat = rng.exponential(0.2, 5000)
    outcome = np.where(np.arange(5000) % 10 == 0, "timeout", "ok").astype(object)
    outcome[::97] = "degraded"
    req = make_requests(np.arange(5000) * 0.01, latency=lat, outcome=outcome)
    lat = req["latency"].to_numpy()  # end - start, rounded as the frame stores it
    good = lat[np.isin(outcome, ["ok", "degraded"])]

    stats = latency_percentiles(req)

    assert stats["count"] == good.size
    assert stats["mean"] == pytest.approx(good.mean())
    assert stats["max"] == good.max()
    for name, q in zip(["p50", "p90", "p99", "p999"], LEVELS, strict=True):
        assert stats[name] == pytest.approx(np.quantile(good, q), rel=1e-12)


def test_all_population_includes_failures_but_not_unfinished(make_requests):
    req = make_requests([0, 1, 2, 3], latency=[1.0, 2.0, 3.0, 99.0],
                        outcome=["ok", "timeout", "shed", "unfinished"])

    stats = latency_percentiles(req, population="all")

    assert stats["count"] == 3
    assert stats["mean"] == pytest.approx(2.0)
    assert stats["max"] == 3.0
    assert latency_percentiles(req)["count"] == 1


def test_empty_population_is_nan(make_requests):
    stats = latency_percentiles(make_requests([0.0, 1.0], outcome="error"))

    assert stats["count"] == 0
    assert np.isnan(stats["p99"]) and np.isnan(stats["mean"]) and np.isnan(stats["max"])


def test_unknown_population_is_rejected(make_requests):
    with pytest.raises(MetricsError, match="population"):
        latency_percentiles(make_requests([0.0]), population="some")  # type: ignore[arg-type]


def test_latency_by_client_matches_numpy_per_group(make_requests, rng):
    n = 3000
    client = rng.choice(["web", "batch", "mobile"], n)
    lat = rng.lognormal(-2, 1, n)
    req = make_requests(np.arange(n) * 0.01, latency=lat, client=client)
    lat = req["latency"].to_numpy()
    by = latency_by(req, by="client")

    assert list(by.index) == ["batch", "mobile", "web"]
    for name in ("batch", "mobile", "web"):
        mine = lat[client == name]
        assert by.at[name, "count"] == mine.size
        assert by.at[name, "p99"] == pytest.approx(np.quantile(mine, 0.99), rel=1e-12)
        assert by.at[name, "p50"] == pytest.approx(np.median(mine), rel=1e-12)
        assert by.at[name, "max"] == mine.max()
        assert by.at[name, "mean"] == pytest.approx(mine.mean())


def test_latency_by_priority_lists_every_category(make_requests):
    req = make_requests([0, 1, 2], latency=[0.1, 0.2, 0.3], priority=["critical", "low", "low"])

    by = latency_by(req, by="priority")

    assert list(by.index) == ["critical", "high", "medium", "low"]
    assert by.at["high", "count"] == 0 and np.isnan(by.at["high", "p50"])
    assert by.at["low", "p50"] == pytest.approx(0.25)


def test_latency_over_time_bins_by_start(make_requests):
    # window 0: 3 requests (2 ok), window 1: none, window 2: 1 ok
    req = make_requests([0.1, 0.5, 0.9, 2.5], latency=[0.1, 0.3, 5.0, 0.2],
                        outcome=["ok", "ok", "timeout", "ok"])

    over = latency_over_time(req, window=1.0)

    assert list(over["time"]) == [0.0, 1.0, 2.0]
    assert list(over["count"]) == [3, 0, 1]
    assert list(over["ok"]) == [2, 0, 1]
    np.testing.assert_allclose(over["success_rate"], [2 / 3, np.nan, 1.0])
    np.testing.assert_allclose(over["p50"], [0.2, np.nan, 0.2])
    np.testing.assert_allclose(over["goodput"], [2.0, 0.0, 1.0])


def test_latency_over_time_with_explicit_range(make_requests):
    req = make_requests(np.arange(0, 10, 0.5))

    over = latency_over_time(req, window=2.0, t0=2.0, t1=8.0)

    assert list(over["time"]) == [2.0, 4.0, 6.0]
    assert list(over["count"]) == [4, 4, 4]
    assert list(over["goodput"]) == [2.0, 2.0, 2.0]


def test_grouped_quantiles_match_numpy(rng):
    codes = rng.integers(-1, 7, 2000)
    values = rng.normal(size=2000)
    values[::50] = np.nan

    got = grouped_quantiles(codes, values, 8, [0.0, *LEVELS, 1.0])

    for g in range(8):
        mine = values[(codes == g) & ~np.isnan(values)]
        if mine.size == 0:
            assert np.isnan(got[g]).all()
        else:
            np.testing.assert_allclose(got[g], np.quantile(mine, [0.0, *LEVELS, 1.0]),
                                       rtol=1e-12, atol=1e-15)


def test_string_dtype_columns_work_too(make_requests):
    req = make_requests([0, 1], latency=[1.0, 3.0])
    req = req.astype({"client": str, "outcome": str, "priority": str})
    assert isinstance(latency_by(req, by="client"), pd.DataFrame)
    assert latency_percentiles(req)["mean"] == pytest.approx(2.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.floats(0, 1e3, allow_nan=False)), max_size=60),
       st.floats(0, 1))
def test_grouped_quantiles_property(pairs, q):
    codes = np.array([c for c, _ in pairs], dtype=np.int64)
    values = np.array([v for _, v in pairs], dtype=float)
    got = grouped_quantiles(codes, values, 5, [q])[:, 0]
    for g in range(5):
        mine = values[codes == g]
        expected = np.quantile(mine, q) if mine.size else np.nan
        np.testing.assert_allclose(got[g], expected, rtol=1e-9, atol=1e-9)
