"""thundering-herd-after-partition: the retries that piled up during a partition hit the api
when it heals; exponential backoff spreads the independent web clients, jitter spreads the
synchronised batch cohort, and the fixed-interval herd tips the api into a retry storm."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult

from ._helpers import arrivals_per_window, fault_window, of, replicate_frames, success_share, tries_started

pytestmark = pytest.mark.slow

NAME = "thundering-herd-after-partition"
VARIANTS = ("fixed-interval", "exponential", "full-jitter")
REPS = 3
COHORT = 300


def measure(res: RunResult) -> Mapping[str, float]:
    start, end = fault_window(res, "partition")
    a = res.attempts
    base = arrivals_per_window(a, "api", res.scenario.warmup, start, 0.1).mean()
    after = arrivals_per_window(a, "api", end, end + 10, 0.1)
    first_s = arrivals_per_window(a, "api", end, end + 10, 1.0)
    tries = tries_started(a, "api", end, end + 10)
    return {"base_per_window": float(base),
            "peak_window": float(after.max()),
            "peak_second": float(first_s.max()),
            "post_heal_timeouts": float((tries["outcome"].astype(str) == "timeout").mean()),
            "late_web_success": success_share(res.requests, end + 10, res.scenario.duration, client="web")}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


def test_fixed_interval_herd_tips_the_api_into_a_retry_storm(reps: pd.DataFrame) -> None:
    # The web backlog retries every ~1.5 s: ~900 tries in the busiest second after the
    # heal, 15x the normal 60/s; then nearly every try times out and the api never recovers.
    assert np.all(of(reps, "fixed-interval", "peak_second") >= 10 * 10 * of(reps, "fixed-interval", "base_per_window"))
    assert np.all(of(reps, "fixed-interval", "post_heal_timeouts") > 0.9)
    assert np.all(of(reps, "fixed-interval", "recovered:partition") == 0.0)
    assert np.all(of(reps, "fixed-interval", "late_web_success") < 0.05)


def test_without_jitter_the_synchronised_cohort_arrives_at_once(reps: pd.DataFrame) -> None:
    # The 300 batch workers failed together and retry together: one 0.1 s window holds
    # almost all of them (measured ~330 tries, herd peak-to-mean ~17).
    assert np.all(of(reps, "exponential", "peak_window") >= 0.8 * COHORT)
    assert np.all(of(reps, "exponential", "herd_peak_to_mean:api@partition") >= 10)
    # The burst overloads the api for a moment: measured ~20 % of post-heal tries time out.
    assert np.all(of(reps, "exponential", "post_heal_timeouts") > 0.05)
    # Exponential backoff spreads the independent web backlog: the api recovers.
    assert np.all(of(reps, "exponential", "recovered:partition") == 1.0)


def test_full_jitter_spreads_the_cohort(reps: pd.DataFrame) -> None:
    peak_exp = of(reps, "exponential", "peak_window")
    # Common random numbers: replicate i of both variants sees the same arrivals.
    assert np.all(of(reps, "full-jitter", "peak_window") <= 0.25 * peak_exp)  # measured ~0.14
    assert np.all(of(reps, "full-jitter", "herd_peak_to_mean:api@partition") <= 5)
    assert np.all(of(reps, "full-jitter", "post_heal_timeouts") < 0.01)
    assert np.all(of(reps, "full-jitter", "recovered:partition") == 1.0)
    assert np.nanmax(of(reps, "full-jitter", "recovery_time:partition")) <= 5.0
    assert np.all(of(reps, "full-jitter", "late_web_success") >= 0.99)
