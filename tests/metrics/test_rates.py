"""Success rate, goodput, throughput, tries/s, SLO attainment and outcome shares."""

from __future__ import annotations

import numpy as np
import pytest

from simres.metrics import (
    goodput,
    measured_requests,
    outcome_shares,
    outcome_shares_by,
    slo_attainment,
    success_rate,
    throughput,
    tries_per_second,
)
from simres.metrics._common import MetricsError


@pytest.fixture
def ten(make_requests):
    """Ten requests at t = 0..9: 6 ok, 1 degraded, 1 error, 1 timeout, 1 unfinished."""
    outcome = ["ok"] * 6 + ["degraded", "error", "timeout", "unfinished"]
    latency = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.05, 2.0, 0.0]
    return make_requests(np.arange(10.0), latency=latency, outcome=outcome)


def test_success_rate_counts_degraded_and_fails_unfinished(ten):
    assert success_rate(ten) == pytest.approx(0.7)


def test_success_rate_of_nothing_is_nan(make_requests):
    assert np.isnan(success_rate(make_requests([])))


def test_goodput_and_throughput_over_an_interval(ten):
    # [2, 8): requests 2..7 -> ok 2,3,4,5,6(degraded) = 5 successes; 6 finished
    assert goodput(ten, t0=2.0, t1=8.0) == pytest.approx(5 / 6)
    assert throughput(ten, t0=2.0, t1=8.0) == pytest.approx(6 / 6)
    # whole run: 7 successes, 9 finished over 10 s
    assert goodput(ten, t0=0.0, t1=10.0) == pytest.approx(0.7)
    assert throughput(ten, t0=0.0, t1=10.0) == pytest.approx(0.9)


def test_bad_interval_is_rejected(ten):
    with pytest.raises(MetricsError, match="t0 must be < t1"):
        goodput(ten, t0=5.0, t1=5.0)


def test_slo_attainment(ten):
    # successes with latency <= 0.35: 0.1, 0.2, 0.3 -> 3 of 10 requests
    assert slo_attainment(ten, target=0.35) == pytest.approx(0.3)
    assert slo_attainment(ten, target=10.0) == pytest.approx(0.7)


def test_measured_requests_drop_warmup_and_tail(ten):
    m = measured_requests(ten, warmup=3.0, duration=9.0)
    assert list(m["start"]) == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def test_outcome_shares(ten):
    shares = outcome_shares(ten)
    assert shares["ok"] == pytest.approx(0.6)
    assert shares["unfinished"] == pytest.approx(0.1)
    assert shares["shed"] == 0.0
    assert sum(shares.values()) == pytest.approx(1.0)


def test_outcome_shares_by_priority(make_requests):
    priority = ["critical"] * 4 + ["low"] * 6
    outcome = ["ok", "ok", "ok", "rejected", "shed", "shed", "shed", "throttled", "ok", "ok"]
    req = make_requests(np.arange(10.0), outcome=outcome, priority=priority)

    by = outcome_shares_by(req, by="priority")

    assert list(by.index) == ["critical", "high", "medium", "low"]
    assert by.at["critical", "success_rate"] == pytest.approx(0.75)
    assert by.at["critical", "rejected"] == pytest.approx(0.25)
    assert by.at["low", "shed"] == pytest.approx(0.5)
    assert by.at["low", "throttled"] == pytest.approx(1 / 6)
    assert by.at["high", "count"] == 0 and np.isnan(by.at["high", "shed"])


def test_tries_per_second_counts_only_sent_tries_in_interval(make_attempts):
    att = make_attempts(request_id=np.arange(8),
                        start=[0.5, 1.0, 1.5, 2.0, 2.5, 3.5, 1.0, 1.2],
                        service=["api"] * 6 + ["db", "db"],
                        sent=[True, True, True, False, True, True, True, True])

    tps = tries_per_second(att, t0=1.0, t1=3.0)

    assert tps.to_dict() == {"api": pytest.approx(3 / 2), "db": pytest.approx(2 / 2)}
