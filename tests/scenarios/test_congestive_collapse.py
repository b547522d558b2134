"""congestive-collapse (published experiment 4 of docs/scenarios.md).

Latency = 1 s + 10 ms per request in flight, 3 s timeout, 3 tries, no cancellation, a 5 s
spike to 2x. Claims: without backoff goodput stays collapsed; full-jitter backoff
recovers, provided its window is long (30 s base) compared with the time the in-flight
work needs to drain; with an SDK-style 1 s base it does not.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult
from simres.outcomes import SUCCESS_OUTCOMES

from ._helpers import fault_window, in_window, of, replicate_frames

pytestmark = pytest.mark.slow

NAME = "congestive-collapse"
VARIANTS = ("no-backoff", "full-jitter", "full-jitter-long", "token-bucket")
REPS = 4
OVERRIDES = {"duration": 70}
RATE = 45.0


def measure(res: RunResult) -> Mapping[str, float]:
    """Goodput from 20 s after the spike to the end; in-flight work before and at the end."""
    _, end = fault_window(res, "spike")
    t0, t1 = end + 20, res.scenario.duration
    w = in_window(res.requests, t0, t1)
    tl = res.timeline
    base = tl[(tl["time"] >= res.scenario.warmup) & (tl["time"] < 20)]["inflight"].max()
    last = tl[(tl["time"] >= t1 - 5) & (tl["time"] < t1)]["inflight"].mean()
    return {"late_goodput": float(w["outcome"].isin(SUCCESS_OUTCOMES).sum() / (t1 - t0)),
            "inflight_before": float(base), "inflight_end": float(last)}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure, overrides=OVERRIDES)


@pytest.mark.parametrize("variant", ["no-backoff", "full-jitter"])
def test_goodput_stays_collapsed(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, variant, "recovered:spike") == 0.0)
    # Measured: goodput 0-1 req/s out of 45 offered, 20-45 s after the spike.
    assert np.all(of(reps, variant, "late_goodput") < 0.1 * RATE)
    # In-flight work keeps piling up: many times the ~80 requests in flight before.
    assert np.all(of(reps, variant, "inflight_end") > 5 * of(reps, variant, "inflight_before"))


@pytest.mark.parametrize("variant", ["full-jitter-long", "token-bucket"])
def test_long_backoff_or_budget_recovers(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, variant, "recovered:spike") == 1.0)
    assert np.nanmax(of(reps, variant, "recovery_time:spike")) <= 15.0
    assert np.all(of(reps, variant, "late_goodput") > 0.9 * RATE)
    assert np.all(of(reps, variant, "inflight_end") < 2 * of(reps, variant, "inflight_before"))
