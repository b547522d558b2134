"""metastability-trigger-size (published experiment 3 of docs/scenarios.md).

Claims: a short or small trigger recovers; a long one does not; a retry budget,
cancellation of abandoned work or a lower load restore recovery; at 97 % load the system
collapses with no trigger at all.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult

from ._helpers import client_tries, of, replicate_frames, success_share

pytestmark = pytest.mark.slow

NAME = "metastability-trigger-size"
VARIANTS = ("short", "small", "long", "long-budget", "long-cancel", "long-lower-load",
            "overload-no-trigger")
REPS = 4


def measure(res: RunResult) -> Mapping[str, float]:
    """Success and tries per request in the last 20 s (20 s after the longest trigger)."""
    t1 = res.scenario.duration
    return {"late_success": success_share(res.requests, t1 - 20, t1),
            "late_tries": client_tries(res.requests, res.attempts, t1 - 20, t1),
            "first_success": success_share(res.requests, 0.0, 5.0)}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


@pytest.mark.parametrize("variant", ["short", "small"])
def test_short_or_small_trigger_recovers(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, variant, "recovered:trigger") == 1.0)
    assert np.nanmax(of(reps, variant, "recovery_time:trigger")) <= 15.0
    assert np.all(of(reps, variant, "late_success") >= 0.98)


def test_long_trigger_never_recovers(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "long", "recovered:trigger") == 0.0)
    assert np.all(of(reps, "long", "late_success") < 0.05)
    assert np.all(of(reps, "long", "late_tries") > 2.5)  # every request uses its 3 tries


@pytest.mark.parametrize("variant", ["long-budget", "long-cancel", "long-lower-load"])
def test_budget_cancellation_or_lower_load_restore_recovery(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, variant, "recovered:trigger") == 1.0)
    assert np.nanmax(of(reps, variant, "recovery_time:trigger")) <= 25.0
    assert np.all(of(reps, variant, "late_success") >= 0.98)


def test_high_load_collapses_without_a_trigger(reps: pd.DataFrame) -> None:
    # Healthy at first (the queue starts empty) ...
    assert np.all(of(reps, "overload-no-trigger", "first_success") >= 0.5)
    # ... then an ordinary queueing fluctuation tips it into the retry storm, with no fault
    # at all. Over 16 replications 15 had collapsed by 40 s (success 0 in the last 20 s).
    collapsed = of(reps, "overload-no-trigger", "late_success") < 0.2
    assert collapsed.mean() >= 0.75
