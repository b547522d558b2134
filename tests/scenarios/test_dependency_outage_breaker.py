"""dependency-outage-breaker: a breaker fails fast during a dependency outage and recovers
through half-open afterwards."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult

from ._helpers import (
    breaker_transitions,
    fault_window,
    of,
    outcome_share,
    replicate_frames,
    success_latency,
    success_share,
)

NAME = "dependency-outage-breaker"
VARIANTS = ("no-breaker", "breaker")
REPS = 3
FAULT = "inventory-outage"


def measure(res: RunResult) -> Mapping[str, float]:
    start, end = fault_window(res, FAULT)
    q = res.requests
    during = (start + 2, end)
    tr = breaker_transitions(res, "inventory")
    out: dict[str, float] = {
        "during_success": success_share(q, *during),
        "during_degraded": outcome_share(q, "degraded", *during),
        "during_p50": success_latency(q, *during, 0.5),
        "after_success": success_share(q, end + 10, res.scenario.duration),
        "breakers": float(tr["component"].nunique()),
    }
    # Per breaker: first open after the crash, last close after the restart, reopen count
    # while the dependency is still down, and whether it ends closed.
    opened, closed, reopened, ends_closed = [], [], [], []
    for _, b in tr.groupby("component"):
        o = b[(b["new"] == "open") & (b["time"] >= start)]["time"]
        c = b[(b["new"] == "closed") & (b["time"] >= end)]["time"]
        opened.append(o.min() - start if len(o) else np.nan)
        closed.append(c.min() - end if len(c) else np.nan)
        reopened.append(float(((b["old"] == "half_open") & (b["new"] == "open") & (b["time"] < end)).sum()))
        ends_closed.append(float(b["new"].iloc[-1] == "closed"))
    out["open_after"] = float(np.max(opened)) if opened else np.nan
    out["close_after"] = float(np.max(closed)) if closed else np.nan
    out["min_reopens"] = float(np.min(reopened)) if reopened else 0.0
    out["all_end_closed"] = float(np.min(ends_closed)) if ends_closed else 0.0
    return out


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


def test_without_breaker_the_outage_takes_the_api_down(reps: pd.DataFrame) -> None:
    # Every request waits ~1 s on the dead dependency: the api's workers saturate.
    assert np.all(of(reps, "no-breaker", "during_success") < 0.05)
    assert np.all(of(reps, "no-breaker", "breakers") == 0)


def test_breaker_fails_fast_during_the_outage(reps: pd.DataFrame) -> None:
    # Measured: 100 % success, all degraded (fallback), median latency ~6 ms.
    assert np.all(of(reps, "breaker", "during_success") >= 0.98)
    assert np.all(of(reps, "breaker", "during_degraded") >= 0.95)
    assert np.all(of(reps, "breaker", "during_p50") < 0.02)


def test_breaker_opens_fast_probes_and_closes_through_half_open(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "breaker", "breakers") == 2)  # one per api instance
    # Every breaker opens within ~1 s of the crash (measured 1.0-1.1 s) ...
    assert np.all(of(reps, "breaker", "open_after") < 3.0)
    # ... probes while the dependency is down and reopens (3 times in 20 s) ...
    assert np.all(of(reps, "breaker", "min_reopens") >= 2)
    # ... and closes on the first half-open round after the restart (open_for is 5 s).
    assert np.all(of(reps, "breaker", "close_after") <= 6.0)
    assert np.all(of(reps, "breaker", "all_end_closed") == 1.0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_both_recover_after_the_outage(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, variant, f"recovered:{FAULT}") == 1.0)
    assert np.all(of(reps, variant, "after_success") >= 0.99)
