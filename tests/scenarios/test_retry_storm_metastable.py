"""retry-storm-metastable: naive retries never recover from a 4 s burst; four fixes do.

The scenario runs 50 s here (the trigger is at 15-19 s), so 31 s are observed after it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult

from ._helpers import client_tries, fault_window, of, replicate_frames, success_share

NAME = "retry-storm-metastable"
VARIANTS = ("naive", "backoff-jitter", "token-bucket", "cancel", "bounded-queue", "lower-load")
FIXES = ("token-bucket", "cancel", "bounded-queue", "lower-load")
REPS = 4
OVERRIDES = {"duration": 50}


def measure(res: RunResult) -> Mapping[str, float]:
    """Success rate and tries per request over the last 16 s (15 s after the trigger ends)."""
    _, end = fault_window(res, "trigger")
    t0, t1 = end + 15, res.scenario.duration
    return {"late_success": success_share(res.requests, t0, t1),
            "late_tries": client_tries(res.requests, res.attempts, t0, t1)}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure, overrides=OVERRIDES)


def test_naive_retries_never_recover(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "naive", "recovered:trigger") == 0.0)
    # Measured over 12 replications: late success 0.000, ~2.99 tries per request.
    assert np.all(of(reps, "naive", "late_success") < 0.05)
    assert np.all(of(reps, "naive", "late_tries") > 2.5)


def test_backoff_alone_does_not_recover(reps: pd.DataFrame) -> None:
    # Backoff delays retries but does not remove any: same stuck state as naive.
    assert np.all(of(reps, "backoff-jitter", "recovered:trigger") == 0.0)
    assert np.all(of(reps, "backoff-jitter", "late_success") < 0.05)


@pytest.mark.parametrize("variant", FIXES)
def test_fixes_recover(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, variant, "recovered:trigger") == 1.0)
    # Recovery times measured over 12 replications: at most 12 s (token-bucket), 18 s
    # (cancel), 7 s (bounded-queue), 4 s (lower-load).
    assert np.nanmax(of(reps, variant, "recovery_time:trigger")) <= 25.0
    assert np.all(of(reps, variant, "late_success") >= 0.95)


def test_token_bucket_stops_the_amplification(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "token-bucket", "late_tries") < 1.1)
    assert np.all(of(reps, "token-bucket", "tries_per_request") < 1.1)
