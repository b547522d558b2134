"""The model: determinism, named random streams, load balancers, queues, faults' plumbing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import run

from .conftest import single_queue


def test_same_seed_identical_frames() -> None:
    sc = single_queue(rate=0.9, mean=1.0, duration=500)
    a, b = run(sc, seed=7), run(sc, seed=7)
    for name in ("requests", "attempts", "timeline", "events"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.summary.keys() == b.summary.keys()
    np.testing.assert_array_equal(np.array(list(a.summary.values())), np.array(list(b.summary.values())))


def test_different_seed_differs() -> None:
    sc = single_queue(rate=0.9, mean=1.0, duration=500)
    a, b = run(sc, seed=7), run(sc, seed=8)
    assert not np.array_equal(a.requests["start"].to_numpy(), b.requests["start"].to_numpy())


def test_adding_a_client_does_not_change_other_arrivals() -> None:
    sc = single_queue(rate=2.0, mean=0.1, workers=2, duration=200)
    sc2 = {**sc, "clients": {**sc["clients"], "batch": {"target": "api", "arrival": {"kind": "poisson", "rate": 3.0}}}}
    a, b = run(sc, seed=3), run(sc2, seed=3)
    sa = a.requests.loc[a.requests.client == "web", "start"].to_numpy()
    sb = b.requests.loc[b.requests.client == "web", "start"].to_numpy()
    np.testing.assert_array_equal(np.sort(sa), np.sort(sb))
    # ... while the extra client does change the web latencies (they share the service)
    la = a.requests.loc[a.requests.client == "web"].sort_values("start")["latency"].to_numpy()
    lb = b.requests.loc[b.requests.client == "web"].sort_values("start")["latency"].to_numpy()
    assert not np.allclose(la, lb)


def _lb_scenario(lb: str, slow_instance: bool = False) -> dict:
    sc = single_queue(rate=40.0, mean=0.02, workers=1, duration=300, load_balancer=lb, instances=4)
    if slow_instance:
        sc["faults"] = [{"kind": "slowdown", "service": "api", "instance": 0, "at": 0, "factor": 4}]
        sc["drain"] = 30.0
    return sc


def test_round_robin_is_exactly_even() -> None:
    r = run(_lb_scenario("round_robin"))
    counts = r.attempts.groupby("instance").size().to_numpy()
    assert counts.max() - counts.min() <= 1


def test_random_is_roughly_even() -> None:
    r = run(_lb_scenario("random"))
    counts = r.attempts.groupby("instance").size().to_numpy()
    n = counts.sum()
    # each share within 4 binomial standard deviations of 1/4
    sd = np.sqrt(n * 0.25 * 0.75)
    assert np.all(np.abs(counts - n / 4) < 4 * sd), counts


@pytest.mark.parametrize("lb", ["least_outstanding", "power_of_two"])
def test_load_aware_balancers_avoid_a_slow_instance(lb: str) -> None:
    aware = run(_lb_scenario(lb, slow_instance=True))
    rr = run(_lb_scenario("round_robin", slow_instance=True))
    share_aware = (aware.attempts.instance == 0).mean()
    share_rr = (rr.attempts.instance == 0).mean()
    assert share_rr == pytest.approx(0.25, abs=0.01)
    assert share_aware < 0.2
    assert aware.summary["latency_p99"] < rr.summary["latency_p99"]


def test_bounded_queue_rejects_and_counts() -> None:
    # M/M/1/K with K = 1 + capacity: blocking probability checked in test_queueing
    r = run(single_queue(rate=2.0, mean=1.0, duration=300, queue={"capacity": 2}))
    rejected = (r.requests.outcome == "rejected").sum()
    assert rejected > 0
    assert r.timeline["rejected"].sum() == rejected
    assert r.timeline["queue_len"].max() <= 2


def test_lifo_same_mean_longer_tail() -> None:
    fifo = [run(single_queue(rate=0.8, mean=1.0, duration=20000, warmup=500), seed=s) for s in (1, 2)]
    lifo = [run(single_queue(rate=0.8, mean=1.0, duration=20000, warmup=500, queue={"discipline": "lifo"}), seed=s)
            for s in (1, 2)]
    m_f = np.mean([r.summary["latency_mean"] for r in fifo])
    m_l = np.mean([r.summary["latency_mean"] for r in lifo])
    assert m_l == pytest.approx(m_f, rel=0.1)  # work-conserving: same mean (Little)
    p_f = np.mean([r.summary["latency_p999"] for r in fifo])
    p_l = np.mean([r.summary["latency_p999"] for r in lifo])
    assert p_l > 1.5 * p_f


def test_closed_loop_littles_law() -> None:
    # N users, zero think time, one server: throughput = mu, latency = N / mu
    sc = single_queue(rate=1.0, mean=0.1, duration=2000, warmup=100)
    sc["clients"]["web"]["arrival"] = {"kind": "closed", "users": 5, "think_time": 0}
    r = run(sc)
    assert r.summary["throughput"] == pytest.approx(10.0, rel=0.05)
    assert r.summary["latency_mean"] == pytest.approx(0.5, rel=0.05)


def test_profile_arrivals_follow_the_rate() -> None:
    sc = single_queue(rate=1.0, mean=0.001, workers=4, duration=200)
    sc["clients"]["web"]["arrival"] = {"kind": "profile", "points": [{"at": 0, "rate": 20}, {"at": 100, "rate": 80}]}
    r = run(sc)
    first = (r.requests.start < 100).sum() / 100
    second = (r.requests.start >= 100).sum() / 100
    assert first == pytest.approx(20, rel=0.1)
    assert second == pytest.approx(80, rel=0.1)


def test_profile_ramps_and_steps_give_poisson_counts_of_the_integrated_rate() -> None:
    """Linear ramps, a step given as two points at one instant, a trickle after a burst: the
    count in each stretch is Poisson with mean the integral of the rate (within 4 sd), and the
    thinning source's bisection gives the profile's own rate_at, bit for bit."""
    from simres.model.client import _ProfileSource
    from simres.scenario.clients import ProfileArrivals

    points = [{"at": 0, "rate": 10}, {"at": 40, "rate": 90}, {"at": 40, "rate": 5}, {"at": 80, "rate": 5},
              {"at": 100, "rate": 400}, {"at": 101, "rate": 2}]
    arr = ProfileArrivals(kind="profile", shape="linear", points=points)
    src = _ProfileSource(None, None, None, arr, 200.0, None)  # type: ignore[arg-type]
    for t in [-1.0, 0.0, 13.37, 39.999, 40.0, 40.0001, 79.5, 80.0, 100.5, 100.999, 101.0, 150.0]:
        assert src.rate_at(t) == arr.rate_at(t), t
    sc = single_queue(rate=1.0, mean=0.0005, workers=16, duration=200)
    sc["clients"]["web"]["arrival"] = arr.model_dump()
    starts = run(sc).requests.start.to_numpy()
    # integral of the rate over each stretch: ramp 10->90 over 40 s, 5 flat, ramp 5->400 over 20 s,
    # 400->2 over 1 s, then 2 per second to the end
    for lo, hi, mean in [(0, 40, 2000.0), (40, 80, 200.0), (80, 100, 4050.0), (100, 101, 201.0), (101, 200, 198.0)]:
        n = ((starts >= lo) & (starts < hi)).sum()
        assert abs(n - mean) < 4 * mean**0.5, (lo, hi, n, mean)


def test_constant_arrivals_are_evenly_spaced() -> None:
    sc = single_queue(rate=1.0, mean=0.001, duration=100)
    sc["clients"]["web"]["arrival"] = {"kind": "constant", "rate": 4}
    r = run(sc)
    gaps = np.diff(np.sort(r.requests.start.to_numpy()))
    np.testing.assert_allclose(gaps, 0.25, atol=1e-9)


def test_downstream_optional_failure_degrades() -> None:
    sc = {
        "duration": 200, "drain": 5,
        "services": {
            "api": {"workers": 8, "service_time": 0.001,
                    "handler": {"calls": [{"to": "db"}, {"to": "recs", "critical": False}]}},
            "db": {"workers": 8, "service_time": 0.002},
            "recs": {"workers": 8, "service_time": 0.002, "error_rate": 0.3},
        },
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 50}}},
    }
    r = run(sc)
    share = (r.requests.outcome == "degraded").mean()
    assert share == pytest.approx(0.3, abs=0.05)
    assert (r.requests.outcome.isin(["ok", "degraded"])).all()
    sc["services"]["recs"]["error_rate"] = 0
    sc["services"]["db"]["error_rate"] = 0.2
    r2 = run(sc)
    assert (r2.requests.outcome == "error").mean() == pytest.approx(0.2, abs=0.05)
    # a failed critical call stops the sequence: recs is not called for those
    assert (r2.attempts.service == "recs").sum() == (r2.requests.outcome == "ok").sum()


def test_parallel_fanout_waits_for_the_slowest() -> None:
    base = {
        "duration": 300, "drain": 5,
        "services": {
            "api": {"workers": 50, "service_time": 0.0, "handler": {"mode": "parallel", "calls": [
                {"to": "a"}, {"to": "b"}]}},
            "a": {"workers": 50, "service_time": 0.1},
            "b": {"workers": 50, "service_time": 0.2},
        },
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 5}}},
    }
    r = run(base)
    np.testing.assert_allclose(r.requests.latency, 0.2, atol=1e-9)
    base["services"]["api"]["handler"]["mode"] = "sequential"
    r = run(base)
    np.testing.assert_allclose(r.requests.latency, 0.3, atol=1e-9)


def test_timeout_and_cancel_modes() -> None:
    # overloaded queue with short client timeout: with cancel, the server drops dead work
    sc = single_queue(rate=1.5, mean=1.0, duration=500)
    sc["clients"]["web"]["timeout"] = 2.0
    keep = run(sc)
    sc["services"]["api"]["on_caller_gone"] = "cancel"
    cancel = run(sc)
    assert keep.timeline["cancelled"].sum() == 0
    assert cancel.timeline["cancelled"].sum() > 0
    assert cancel.summary["success_rate"] > keep.summary["success_rate"]
    assert (keep.requests.outcome == "timeout").any()
    assert keep.requests.latency.max() <= 2.0 + 1e-9


def test_network_latency_adds_to_response_time() -> None:
    sc = single_queue(rate=1.0, mean=0.01, workers=10, duration=100, dist="constant")
    sc["network"] = {"default": {"latency": 0.005}}
    r = run(sc)
    np.testing.assert_allclose(r.requests.latency, 0.02, atol=1e-9)


def test_network_loss_becomes_timeouts() -> None:
    sc = single_queue(rate=20.0, mean=0.001, workers=10, duration=200)
    sc["network"] = {"default": {"latency": 0.001, "loss": 0.1}}
    sc["clients"]["web"]["timeout"] = 0.5
    r = run(sc)
    # a try is lost if the request or the reply is lost: 1 - 0.9^2
    share = (r.requests.outcome == "timeout").mean()
    assert share == pytest.approx(0.19, abs=0.03)
    assert not (r.requests.outcome == "error").any()


def test_unfinished_requests_are_reported() -> None:
    sc = single_queue(rate=2.0, mean=1.0, duration=50)
    r = run(sc)
    unfinished = r.requests[r.requests.outcome == "unfinished"]
    assert len(unfinished) > 0
    assert unfinished.end.isna().all()


def test_write_frames(tmp_path) -> None:
    r = run(single_queue(rate=1.0, mean=0.5, duration=50))
    paths = r.write(tmp_path, "parquet")
    assert {p.name for p in paths} == {"requests.parquet", "attempts.parquet", "timeline.parquet",
                                       "events.parquet", "summary.parquet"}
    back = pd.read_parquet(tmp_path / "requests.parquet")
    assert len(back) == len(r.requests)
    r.write(tmp_path / "csv", "csv")
    assert (tmp_path / "csv" / "summary.csv").exists()


def test_occ_row_conflicts_and_versions() -> None:
    # two contenders, no backoff: exactly one write per round succeeds, so the
    # successful writes equal the number of contenders and conflicts are errors
    sc = {
        "duration": 50, "drain": 0,
        "network": {"default": {"latency": 0.01}},
        "services": {"row": {"resource": "occ_row", "workers": 100, "service_time": 0}},
        "clients": {"c": {"target": "row", "count": 5, "workflow": "read_then_write",
                          "arrival": {"kind": "closed", "users": 1}, "requests_per_member": 1,
                          "retry": {"max_attempts": 100, "retry_on": ["error"], "backoff": {"kind": "none"},
                                    "jitter": "none"}}},
    }
    r = run(sc)
    assert len(r.requests) == 5
    assert (r.requests.outcome == "ok").all()
    ok_writes = (r.attempts.outcome == "ok").sum()
    assert ok_writes == 5
    # with constant latency and no backoff everyone collides: round k has 5-k+1 writers, one wins
    assert sorted(r.requests.tries.tolist()) == [1, 2, 3, 4, 5]
    # each round is a read then a write: 4 messages of 10 ms
    np.testing.assert_allclose(np.sort(r.requests.latency.to_numpy()), [0.04, 0.08, 0.12, 0.16, 0.2], atol=1e-9)


def test_read_then_write_requires_occ_row() -> None:
    from simres.errors import ScenarioError
    from simres.scenario.loading import load_scenario

    sc = {"services": {"row": {}}, "clients": {"c": {"target": "row", "workflow": "read_then_write",
                                                     "arrival": {"kind": "closed", "users": 1}}}}
    with pytest.raises(ScenarioError, match=r"clients\.c\.workflow: read_then_write needs a target with resource"):
        load_scenario(sc)
