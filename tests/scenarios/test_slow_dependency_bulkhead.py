"""slow-dependency-bulkhead: without a bulkhead a slow optional dependency takes the whole
api down; with one, the critical path survives and answers degrade gracefully."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult

from ._helpers import fault_window, in_window, of, outcome_share, replicate_frames, success_latency, success_share

NAME = "slow-dependency-bulkhead"
VARIANTS = ("no-bulkhead", "bulkhead", "tight-timeout")
REPS = 3


def measure(res: RunResult) -> Mapping[str, float]:
    """Success, degraded share and latency during the slowdown (2 s in) and after it (5 s on)."""
    start, end = fault_window(res, "slow-recommendations")
    q = res.requests
    during = (start + 2, end)
    after = (end + 5, res.scenario.duration)
    return {"during_success": success_share(q, *during),
            "during_degraded": outcome_share(q, "degraded", *during),
            "during_p50": success_latency(q, *during, 0.5),
            "after_success": success_share(q, *after),
            "after_p99": success_latency(q, *after, 0.99),
            "bulkhead_rejections": float((res.events["kind"] == "bulkhead_rejected").sum()),
            "requests_during": float(len(in_window(q, *during)))}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


def test_without_bulkhead_the_api_goes_down(reps: pd.DataFrame) -> None:
    # Measured: 0 % success while recommendations is slow, although it is optional.
    assert np.all(of(reps, "no-bulkhead", "during_success") < 0.05)


def test_bulkhead_keeps_the_critical_path_up(reps: pd.DataFrame) -> None:
    # Measured: ~98 % success, ~88 % of answers degraded (fallback), median ~15 ms.
    assert np.all(of(reps, "bulkhead", "during_success") >= 0.95)
    assert np.all(of(reps, "bulkhead", "during_degraded") >= 0.7)
    assert np.all(of(reps, "bulkhead", "during_p50") < 0.05)
    # Most recommendations calls during the slowdown were turned away by the bulkhead.
    assert np.all(of(reps, "bulkhead", "bulkhead_rejections") > 0.5 * of(reps, "bulkhead", "requests_during"))


def test_tight_timeout_also_protects_at_a_latency_cost(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "tight-timeout", "during_success") >= 0.95)
    # Every request now waits the 0.1 s timeout on the optional call.
    assert np.all(of(reps, "tight-timeout", "during_p50") > 0.1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_all_recover_when_the_dependency_is_fast_again(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, variant, "after_success") >= 0.99)
    assert np.all(of(reps, variant, "recovered:slow-recommendations") == 1.0)
