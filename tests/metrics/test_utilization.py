"""Utilisation and queue length from the timeline."""

from __future__ import annotations

import numpy as np
import pytest

from simres.metrics import mean_queue_length, service_load, utilization


def test_utilization_is_mean_of_busy_over_workers(make_timeline):
    tl = make_timeline(time=[0, 1, 2, 3, 0, 1, 2, 3],
                       service=["api"] * 4 + ["db"] * 4,
                       busy=[1, 2, 4, 4, 0, 0, 0, 0],
                       workers=[4, 4, 4, 2, 2, 0, 2, 2],
                       queue_len=[0, 0, 3, 5, 1, 1, 1, 1])

    util = utilization(tl, t0=1.0, t1=4.0)
    queue = mean_queue_length(tl, t0=1.0, t1=4.0)

    assert util["api"] == pytest.approx((0.5 + 1.0 + 2.0) / 3)
    assert util["db"] == pytest.approx(0.0)  # the workers == 0 bucket is left out
    assert queue["api"] == pytest.approx(8 / 3)
    assert queue["db"] == pytest.approx(1.0)


def test_service_without_buckets_in_interval_is_nan(make_timeline):
    tl = make_timeline(time=[0, 1], service=["api", "db"], busy=1, workers=2)
    load = service_load(tl, t0=1.0, t1=2.0)
    assert np.isnan(load.at["api", "utilization"])
    assert load.at["db", "utilization"] == pytest.approx(0.5)
    assert load.at["db", "inflight"] == pytest.approx(1.0)
