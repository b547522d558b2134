"""chaos-error-injection: 10 % injected failures at db; retries mask them for ~11 % extra
load at db and a latency tail from the swallowed requests; a 50 % breaker stays closed."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult

from ._helpers import breaker_transitions, fault_window, of, replicate_frames, success_latency, success_share

NAME = "chaos-error-injection"
VARIANTS = ("no-retries", "retries", "retries-breaker")
REPS = 2
RATE = 0.1


def measure(res: RunResult) -> Mapping[str, float]:
    start, end = fault_window(res, "chaos")
    t0, t1 = start + 1, end - 1
    a = res.attempts
    db = a[(a["service"].astype(str) == "db") & (a["start"] >= t0) & (a["start"] < t1)]
    calls = float((db["attempt"] == 1).sum())
    return {"during_success": success_share(res.requests, t0, t1),
            "during_p99": success_latency(res.requests, t0, t1, 0.99),
            "db_amplification": float(db["sent"].sum()) / calls if calls else np.nan,
            "before_success": success_share(res.requests, res.scenario.warmup, start),
            "after_success": success_share(res.requests, end + 1, res.scenario.duration),
            "breaker_moves": float(len(breaker_transitions(res, "db")))}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


def test_without_retries_the_chaos_rate_shows_through(reps: pd.DataFrame) -> None:
    # ~2800 requests in the window: 1 - 0.1 = 0.90 within 0.025 (about 4 standard errors).
    assert np.all(np.abs(of(reps, "no-retries", "during_success") - (1 - RATE)) < 0.025)
    assert np.all(np.abs(of(reps, "no-retries", "db_amplification") - 1.0) < 1e-9)


@pytest.mark.parametrize("variant", ["retries", "retries-breaker"])
def test_retries_mask_the_chaos(reps: pd.DataFrame, variant: str) -> None:
    # 3 tries: success 1 - 0.1^3 = 0.999, 1 + 0.1 + 0.01 = 1.11 tries per db call.
    assert np.all(of(reps, variant, "during_success") >= 0.995)
    assert np.all(np.abs(of(reps, variant, "db_amplification") - (1 + RATE + RATE**2)) < 0.02)
    # A third of the injected failures swallow the request: those cost the 0.2 s timeout.
    assert np.all(of(reps, variant, "during_p99") > 0.2)
    assert np.all(of(reps, variant, "before_success") >= 0.999)


def test_breaker_stays_closed_below_its_threshold(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "retries-breaker", "breaker_moves") == 0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_back_to_normal_after_the_chaos(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, variant, "after_success") >= 0.999)
