"""Arrival burstiness: peak-to-mean, CV and synchrony on herds and even load."""

from __future__ import annotations

import numpy as np
import pytest

from simres.metrics import arrival_counts, arrival_rate, herd_after_faults, herd_stats
from simres.metrics._common import MetricsError


def test_herd_in_one_window(make_attempts):
    # 100 tries in [3.0, 3.1) within a 10 s interval of 100 windows
    att = make_attempts(request_id=np.arange(100), start=3.0 + np.linspace(0, 0.099, 100))

    stats = herd_stats(att, t0=0.0, t1=10.0)

    row = stats.loc["api"]
    assert row["arrivals"] == 100
    assert row["synchrony"] == pytest.approx(1.0)
    assert row["peak_to_mean"] == pytest.approx(100.0)  # peak 100, mean 1 per window
    assert row["cv"] == pytest.approx(np.sqrt(99.0))  # counts: one 100, ninety-nine 0
    assert row["peak_rate"] == pytest.approx(1000.0)
    assert row["mean_rate"] == pytest.approx(10.0)


def test_even_arrivals(make_attempts):
    # 10 tries in every 0.1 s window for 10 s
    att = make_attempts(request_id=np.arange(1000), start=0.005 + 0.01 * np.arange(1000))

    row = herd_stats(att, t0=0.0, t1=10.0).loc["api"]

    assert row["cv"] == pytest.approx(0.0, abs=1e-12)
    assert row["peak_to_mean"] == pytest.approx(1.0)
    assert row["synchrony"] == pytest.approx(0.1)  # top 10 of 100 windows hold 10 %


def test_window_edges_are_exact(make_attempts):
    # (20.3 - 20) / 0.1 is 2.99999..., yet 20.3 starts window 3
    att = make_attempts(request_id=[0], start=[20.3])
    counts = arrival_counts(att, t0=20.0, t1=21.0)
    assert counts["api"].to_numpy().nonzero()[0].tolist() == [3]


def test_unsent_tries_are_not_arrivals(make_attempts):
    att = make_attempts(request_id=[0, 1, 2], start=[0.01, 0.02, 0.5], sent=[True, False, True])
    counts = arrival_counts(att, t0=0.0, t1=1.0)
    assert counts["api"].sum() == 2
    tidy = arrival_rate(att, t0=0.0, t1=1.0)
    assert tidy["arrivals"].sum() == 2
    assert tidy.loc[tidy["arrivals"] > 0, "rate"].tolist() == [10.0, 10.0]


def test_service_without_arrivals_is_nan(make_attempts):
    att = make_attempts(request_id=[0, 1], start=[0.5, 5.0], service=["api", "db"])
    stats = herd_stats(att, t0=0.0, t1=1.0)
    assert stats.at["db", "arrivals"] == 0
    assert np.isnan(stats.at["db", "synchrony"])


def test_herd_after_fault_end(make_attempts, make_events):
    # steady 1 try per 0.1 s until 30 s, plus a burst of 50 tries right after the fault
    steady = 0.05 + 0.1 * np.arange(300)
    burst = 20.0 + np.linspace(0.0, 0.09, 50)
    att = make_attempts(request_id=np.arange(350), start=np.concatenate([steady, burst]))
    ev = make_events([(10.0, "fault_start", "db_down", "crash", np.nan),
                      (20.0, "fault_end", "db_down", "crash", np.nan)])

    herd = herd_after_faults(att, ev, period=5.0)

    assert len(herd) == 1
    row = herd.iloc[0]
    assert (row["fault"], row["service"], row["t0"], row["t1"]) == ("db_down", "api", 20.0, 25.0)
    # 50 windows: the first has 51 tries, the others 1; the top 5 hold 51 + 4
    assert row["arrivals"] == 100
    assert row["peak_to_mean"] == pytest.approx(51 / 2)
    assert row["synchrony"] == pytest.approx(55 / 100)


def test_herd_after_fault_truncated_at_run_end_and_skips_unfinished(make_attempts, make_events):
    att = make_attempts(request_id=np.arange(10), start=0.05 + 0.1 * np.arange(10))
    ev = make_events([(0.0, "fault_start", "a", "x", np.nan), (0.5, "fault_end", "a", "x", np.nan),
                      (0.6, "fault_start", "b", "x", np.nan)])

    herd = herd_after_faults(att, ev, period=10.0, t_end=1.0)

    assert herd["fault"].tolist() == ["a"]
    assert herd.at[0, "t1"] == 1.0 and herd.at[0, "arrivals"] == 5


def test_bad_top_share(make_attempts):
    with pytest.raises(MetricsError, match="top_share"):
        herd_stats(make_attempts(request_id=[0]), t0=0.0, t1=1.0, top_share=0.0)
