"""cache-flush-overload: a cache flush under load never recovers naively; coalescing or shedding does.

The flush is at 20 s of a 60 s run; the late window [40, 60) is 20 s after it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult

from ._helpers import of, replicate_frames, success_share

NAME = "cache-flush-overload"
VARIANTS = ("naive", "coalesce", "shed")
FIXES = ("coalesce", "shed")
REPS = 5
FLUSH = 20.0


def _api(res: RunResult, t0: float, t1: float) -> tuple[float, float]:
    """The api cache's hit ratio and backend calls per lookup over the buckets in [t0, t1)."""
    tl = res.timeline
    rows = tl[(tl["service"] == "api") & (tl["time"] >= t0) & (tl["time"] < t1)]
    lookups = rows["cache_lookups"].sum()
    return float(rows["cache_hits"].sum() / lookups), float(rows["cache_backend"].sum() / lookups)


def measure(res: RunResult) -> Mapping[str, float]:
    """Before the flush ([5, 20)), right after it (the flush's bucket) and late ([40, 60))."""
    before_hits, before_load = _api(res, 5.0, FLUSH)
    flush_hits, _ = _api(res, FLUSH, FLUSH + 1.0)
    late_hits, late_load = _api(res, 40.0, 60.0)
    return {"before_hits": before_hits, "before_load": before_load, "flush_hits": flush_hits,
            "late_hits": late_hits, "late_load": late_load,
            "late_success": success_share(res.requests, 40.0, 60.0),
            "before_success": success_share(res.requests, 5.0, FLUSH)}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


def test_healthy_before_the_flush(reps: pd.DataFrame) -> None:
    for variant in VARIANTS:
        # Measured (5 replications): hit ratio 0.975 to 0.977, 0.024 backend calls per request.
        assert np.all(of(reps, variant, "before_success") > 0.99)
        assert np.all((of(reps, variant, "before_hits") > 0.96) & (of(reps, variant, "before_hits") < 0.99))
        assert np.all(of(reps, variant, "before_load") < 0.04)


def test_flush_empties_the_cache(reps: pd.DataFrame) -> None:
    # The first second after the flush: only keys stored again within it hit.
    # Measured: 0.56 to 0.80 in the flush's second (the hottest keys are stored again within it).
    for variant in VARIANTS:
        assert np.all(of(reps, variant, "flush_hits") < 0.85)
        assert np.all(of(reps, variant, "flush_hits") < of(reps, variant, "before_hits") - 0.15)


def test_naive_stays_down(reps: pd.DataFrame) -> None:
    # The outcome is bimodal (a race between the refill of the hot keys and the db queue
    # outgrowing the timeout). Measured over these 5 replications: 4 stuck (late success
    # 0.000, hit ratio frozen at 0.65 to 0.75, 10-14x the backend load before the flush), 1
    # recovered.
    late = of(reps, "naive", "late_success")
    stuck = late < 0.05
    assert stuck.sum() >= 3
    assert np.all(stuck | (late > 0.98))  # stuck or recovered, nothing in between
    assert np.all(of(reps, "naive", "late_hits")[stuck] < 0.85)
    assert np.all(of(reps, "naive", "late_load")[stuck] > 5 * of(reps, "naive", "before_load")[stuck])


@pytest.mark.parametrize("variant", FIXES)
def test_fixes_recover(reps: pd.DataFrame, variant: str) -> None:
    # Measured: late success 1.000 in every replication, hit ratio 0.956 to 0.959 (above its
    # level before the flush: the cache keeps growing), 0.041 to 0.044 backend calls per request.
    assert np.all(of(reps, variant, "late_success") > 0.98)
    assert np.all(of(reps, variant, "late_hits") > 0.94)
    assert np.all(of(reps, variant, "late_load") < 0.06)
