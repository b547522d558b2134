"""baseline: the healthy reference system stays green at normal and at 1.5x traffic."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult

from ._helpers import of, replicate_frames

NAME = "baseline"
VARIANTS = ("normal", "peak-load")
REPS = 2
OVERRIDES = {"duration": 25}


def measure(res: RunResult) -> Mapping[str, float]:
    return {}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure, overrides=OVERRIDES)


@pytest.mark.parametrize("variant", VARIANTS)
def test_everything_green(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, variant, "success_rate") >= 0.999)
    assert np.all(of(reps, variant, "latency_p99") < 0.25)  # measured ~0.10 s and ~0.11 s
    assert np.all(of(reps, variant, "slo_attainment") >= 0.99)
    assert np.all(of(reps, variant, "tries_per_request") == 1.0)
    for svc in ("api", "db"):
        assert np.all(of(reps, variant, f"utilization:{svc}") < 0.5)


def test_recommendations_is_the_busiest_tier_at_peak(reps: pd.DataFrame) -> None:
    recs = of(reps, "peak-load", "utilization:recommendations")
    assert np.all(recs > of(reps, "peak-load", "utilization:api"))
    assert np.all((recs > 0.6) & (recs < 0.95))  # measured ~0.83: close to its limit
