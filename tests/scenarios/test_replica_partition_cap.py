"""replica-partition-cap: a replica cut off from its primary serves stale reads (AP) or refuses them (CP).

Replica 0 of 3 is cut off from the primary's log in [30, 60); viewers keep reaching it. The
window [31, 60) starts a second in, when a consistent replica has noticed (max_staleness 1 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult, run
from simres.scenario.loading import load_scenario

from ._helpers import of, replicate_frames, success_share

NAME = "replica-partition-cap"
VARIANTS = ("available", "consistent", "consistent-retry", "bounded-5s", "all-replicas-cut")
REPS = 5
REPLICA = "accounts-replica"


def _replica(res: RunResult, t0: float, t1: float) -> pd.DataFrame:
    tl = res.timeline
    return tl[(tl["service"] == REPLICA) & (tl["time"] >= t0) & (tl["time"] < t1)]


def measure(res: RunResult) -> Mapping[str, float]:
    """Before the partition ([10, 30)), in it ([31, 60)) and after it ([62, 90))."""
    out: dict[str, float] = {}
    for name, (t0, t1) in {"before": (10.0, 30.0), "during": (31.0, 60.0), "after": (62.0, 90.0)}.items():
        rows = _replica(res, t0, t1)
        reads, refused = rows["reads"].sum(), rows["reads_refused"].sum()
        out[f"{name}_stale"] = float(rows["stale_reads"].sum() / reads) if reads else np.nan
        out[f"{name}_refused"] = float(refused / (reads + refused))
        out[f"{name}_ryw"] = float(rows["ryw_violations"].sum())
        out[f"{name}_lag"] = float(rows["replication_lag"].max())
        out[f"{name}_success"] = success_share(res.requests, t0, t1, client="viewers")
    return out


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


def test_before_the_partition_every_variant_is_fresh_and_available(reps: pd.DataFrame) -> None:
    for v in VARIANTS:
        assert np.all(of(reps, v, "before_success") > 0.999)
        assert np.all(of(reps, v, "before_refused") == 0)
        assert np.all(of(reps, v, "before_lag") < 0.5)  # a 20 ms mean propagation delay


def test_available_serves_stale_reads_and_users_miss_their_own_writes(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "available", "during_success") > 0.999)
    assert np.all(of(reps, "available", "during_refused") == 0)
    stale = of(reps, "available", "during_stale")
    before = of(reps, "available", "before_stale")
    assert np.all(stale > before + 0.15)  # replica 0's third of the reads is stale throughout
    assert np.all(of(reps, "available", "during_lag") > 28)  # it misses everything written since 30 s
    assert np.all(of(reps, "available", "during_ryw") > 10 * np.maximum(of(reps, "available", "before_ryw"), 1))
    assert np.all(of(reps, "available", "read_staleness_p99:accounts-replica") > 10)


def test_consistent_refuses_instead_and_never_serves_data_staler_than_it_vouches_for(reps: pd.DataFrame) -> None:
    refused = of(reps, "consistent", "during_refused")
    assert np.all((refused > 0.28) & (refused < 0.39))  # a third of the reads, at replica 0
    assert np.all(of(reps, "consistent", "during_success") < 0.75)
    assert np.all(of(reps, "consistent", "read_staleness_max:accounts-replica") < 1.1)
    assert np.all(of(reps, "consistent", "during_ryw") < of(reps, "available", "during_ryw") / 10)


def test_retries_on_a_refusal_get_both_when_only_one_replica_is_cut(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "consistent-retry", "during_success") > 0.99)
    assert np.all(of(reps, "consistent-retry", "read_staleness_max:accounts-replica") < 1.1)


def test_the_bound_sets_the_point_on_the_curve(reps: pd.DataFrame) -> None:
    # bounded-5s refuses from 5 s into the partition (fewer refusals), serving reads up to ~5 s stale
    b5, cp = of(reps, "bounded-5s", "during_refused"), of(reps, "consistent", "during_refused")
    assert np.all(b5 < cp - 0.03)
    assert np.all(of(reps, "bounded-5s", "read_staleness_max:accounts-replica") < 5.1)
    assert np.all(of(reps, "bounded-5s", "read_staleness_max:accounts-replica") > 4)


def test_with_every_replica_cut_off_consistency_costs_availability(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "all-replicas-cut", "during_refused") > 0.95)
    assert np.all(of(reps, "all-replicas-cut", "during_success") < 0.05)


def test_everything_recovers_after_the_partition(reps: pd.DataFrame) -> None:
    for v in VARIANTS:
        assert np.all(of(reps, v, "after_success") > 0.999)
        assert np.all(of(reps, v, "after_lag") < 0.5)


def test_the_staleness_bound_traces_the_availability_consistency_curve() -> None:
    """Tightening max_staleness trades availability for freshness, monotonically (one seed, CRN)."""
    points = []
    for bound in (1.0, 3.0, 10.0, None):
        over = ({"services.accounts-replica.replica.mode": "available"} if bound is None else
                {"services.accounts-replica.replica.mode": "consistent",
                 "services.accounts-replica.replica.max_staleness": bound})
        res = run(load_scenario(NAME, overrides={**over, "duration": 70, "drain": 0}))
        points.append((res.summary["read_refused_rate:accounts-replica"],
                       res.summary["read_staleness_p99:accounts-replica"]))
    refused, p99 = zip(*points, strict=True)
    assert all(a > b for a, b in pairwise(refused))  # looser bound: fewer refusals
    assert all(a < b for a, b in pairwise(p99))  # and staler reads
