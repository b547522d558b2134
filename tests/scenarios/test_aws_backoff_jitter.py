"""AWS "Exponential Backoff And Jitter" (2015): the blog's qualitative claims, reproduced.

100 clients contend for one row under optimistic concurrency. Work = write attempts per
client (tries_per_request); time = when the last client succeeds (latency_max, since all
clients start at t = 0).
"""

from __future__ import annotations

import pytest

from simres.experiments.replications import replicate

REPS = 12


@pytest.fixture(scope="module")
def means() -> dict[str, dict[str, float]]:
    df = replicate("aws-backoff-jitter", variants=["no-backoff", "exponential", "full-jitter", "equal-jitter",
                                                   "decorrelated-jitter"], reps=REPS)
    assert (df["success_rate"] == 1.0).all()  # every client eventually writes
    g = df.groupby("variant")[["tries_per_request", "latency_max", "latency_mean"]].agg(["mean", "std"])
    return {v: {k: row[(k, "mean")] for k in ("tries_per_request", "latency_max", "latency_mean")}
            | {"work_sd": row[("tries_per_request", "std")], "time_sd": row[("latency_max", "std")]}
            for v, row in g.iterrows()}


@pytest.mark.slow
def test_every_variant_varies_from_run_to_run(means: dict[str, dict[str, float]]) -> None:
    # The contenders draw independent network delays: no variant is in lock step (before
    # the members' streams were keyed by member, un-jittered variants gave N(N+1)/2 writes
    # with zero spread)
    for v, m in means.items():
        assert m["work_sd"] > 0.01 and m["time_sd"] > 0.001, (v, m)


@pytest.mark.slow
def test_exponential_without_jitter_is_by_far_the_slowest(means: dict[str, dict[str, float]]) -> None:
    slowest = means["exponential"]["latency_max"]
    for v, m in means.items():
        if v != "exponential":
            assert slowest > 5 * m["latency_max"], (v, m)


@pytest.mark.slow
def test_full_jitter_does_the_least_work(means: dict[str, dict[str, float]]) -> None:
    work = {v: m["tries_per_request"] for v, m in means.items()}
    assert min(work, key=work.get) == "full-jitter"
    assert work["full-jitter"] < 0.5 * work["exponential"]


@pytest.mark.slow
def test_equal_jitter_a_little_more_work_and_slower(means: dict[str, dict[str, float]]) -> None:
    full, equal = means["full-jitter"], means["equal-jitter"]
    assert full["tries_per_request"] < equal["tries_per_request"] < 1.2 * full["tries_per_request"]
    assert equal["latency_max"] > full["latency_max"]


@pytest.mark.slow
def test_decorrelated_a_little_faster_but_more_work(means: dict[str, dict[str, float]]) -> None:
    full, dec = means["full-jitter"], means["decorrelated-jitter"]
    assert dec["tries_per_request"] > full["tries_per_request"]
    assert dec["latency_mean"] < full["latency_mean"]
    assert dec["latency_max"] < 1.05 * full["latency_max"]


@pytest.mark.slow
def test_no_backoff_finishes_first_with_the_most_work(means: dict[str, dict[str, float]]) -> None:
    none = means["no-backoff"]
    for v, m in means.items():
        if v != "no-backoff":
            assert none["tries_per_request"] > m["tries_per_request"], v
            assert none["latency_max"] < m["latency_max"], v
