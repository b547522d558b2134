"""saga-payment-partition: without retries on the compensations, refunds routed to the
partitioned payment instance fail and leave sagas inconsistent; with retries (and a backoff)
far fewer or none are; a compensation timeout below the service time defeats the retries."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult
from simres.metrics.stats import mean_ci, paired_difference

from ._helpers import fault_window, of, replicate_frames

NAME = "saga-payment-partition"
VARIANTS = ("no-compensation-retries", "compensation-retries", "short-compensation-timeout")
REPS = 4


def measure(res: RunResult) -> Mapping[str, float]:
    start, end = fault_window(res, "partition")
    ev = res.events
    kinds = ev["kind"].astype(str)
    inc = ev[kinds == "saga_inconsistent"]
    times = inc["time"].to_numpy(dtype=float)
    r = res.requests
    started = r[(r["start"] >= start) & (r["start"] < end)]
    inside = set(started["request_id"].tolist())
    inc_in = sum(1 for rid in inc["value"].to_numpy(dtype=float) if int(rid) in inside)
    return {"inconsistent_events": float(len(inc)),
            "inconsistent_outside": float(((times < start) | (times > end + 1.0)).sum()),
            "during_inconsistent": inc_in / len(started) if len(started) else float("nan")}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


def test_without_compensation_retries_sagas_are_left_inconsistent(reps: pd.DataFrame) -> None:
    # Half the refunds during the partition go to the dark instance: ~20 % ship failures x 1/2.
    during = of(reps, "no-compensation-retries", "during_inconsistent")
    assert np.all((during > 0.06) & (during < 0.15))
    share = of(reps, "no-compensation-retries", "sagas_inconsistent")
    assert np.all((share > 0.02) & (share < 0.06))
    # Only the partition does it: outside it every compensation gets through.
    assert np.all(of(reps, "no-compensation-retries", "inconsistent_outside") == 0)
    # An inconsistent saga stays partially applied until the run ends (p99 of tens of seconds).
    assert np.all(of(reps, "no-compensation-retries", "saga_partial_time_p99") > 30)


def test_compensation_retries_leave_far_fewer_or_none(reps: pd.DataFrame) -> None:
    without = of(reps, "no-compensation-retries", "sagas_inconsistent")
    with_retries = of(reps, "compensation-retries", "sagas_inconsistent")
    assert np.all(with_retries < 0.005)
    assert np.all(with_retries <= without / 8)
    assert np.all(of(reps, "compensation-retries", "saga_partial_time_p99") < 5)
    # The forward path is the same: the same share of sagas completes.
    assert np.all(np.abs(of(reps, "compensation-retries", "sagas_completed")
                         - of(reps, "no-compensation-retries", "sagas_completed")) < 0.01)


def test_a_too_short_compensation_timeout_defeats_the_retries(reps: pd.DataFrame) -> None:
    share = of(reps, "short-compensation-timeout", "sagas_inconsistent")
    assert np.all(share > 0.12)
    assert np.all(of(reps, "short-compensation-timeout", "inconsistent_outside") > 50)


def test_shares_add_up(reps: pd.DataFrame) -> None:
    total = reps["sagas_completed"] + reps["sagas_compensated"] + reps["sagas_inconsistent"]
    assert np.all(np.abs(total.to_numpy(dtype=float) - 1) < 0.005)
    assert np.all(reps["wall_time"].to_numpy(dtype=float) < 3)


def test_intervals(reps: pd.DataFrame) -> None:
    # 95 % t intervals over the replications.
    base = mean_ci(of(reps, "no-compensation-retries", "sagas_inconsistent"))
    assert base.lo > 0.02 and base.hi < 0.06
    cut = paired_difference(of(reps, "no-compensation-retries", "sagas_inconsistent"),
                            of(reps, "compensation-retries", "sagas_inconsistent"))
    assert cut.lo > 0.02  # same seeds: the retries save what the single refund loses
    short = mean_ci(of(reps, "short-compensation-timeout", "sagas_inconsistent"))
    assert short.lo > 0.12 and short.hi < 0.22
