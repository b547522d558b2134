"""Every fault kind, alone and combined: each has its measurable effect while active and
leaves no trace once it ends.

The scenarios are tiny and nearly deterministic (constant service times and link
latencies, no retries), so the expected effects are exact or close to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult, run
from simres.model.world import build
from simres.outcomes import SUCCESS_OUTCOMES
from simres.scenario.loading import load_scenario

HOP = 0.005    # one-way link latency (s)
WORK = 0.01    # service time (s)
BASE_LATENCY = 2 * HOP + WORK


def world(*faults: dict[str, Any], instances: int = 1, workers: int = 4, rate: float = 50.0,
          duration: float = 20.0, timeout: float = 0.2, **service: Any) -> dict[str, Any]:
    """web -> api, constant 5 ms links and 10 ms of work, Poisson arrivals, the given faults."""
    return {
        "name": "faults", "duration": duration, "warmup": 0.0, "drain": 2.0, "seed": 5,
        "network": {"default": {"latency": HOP}},
        "services": {"api": {"instances": instances, "workers": workers, "service_time": WORK,
                             "load_balancer": "round_robin", **service}},
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": rate},
                            "timeout": timeout}},
        "faults": list(faults),
    }


def window(res: RunResult, t0: float, t1: float) -> pd.DataFrame:
    q = res.requests
    return q[(q["start"] >= t0) & (q["start"] < t1)]


def success(res: RunResult, t0: float, t1: float) -> float:
    return float(window(res, t0, t1)["outcome"].isin(SUCCESS_OUTCOMES).mean())


def share(res: RunResult, outcome: str, t0: float, t1: float) -> float:
    return float((window(res, t0, t1)["outcome"].astype(str) == outcome).mean())


def latency(res: RunResult, t0: float, t1: float, stat: str = "median") -> float:
    w = window(res, t0, t1)
    return float(getattr(w.loc[w["outcome"].isin(SUCCESS_OUTCOMES), "latency"], stat)())


def timeline_sum(res: RunResult, column: str, t0: float, t1: float) -> float:
    tl = res.timeline
    return float(tl[(tl["time"] >= t0) & (tl["time"] < t1)][column].sum())


def sampled(res: RunResult, column: str) -> pd.Series:
    """A timeline column indexed by the time it was sampled (the end of its bucket)."""
    tl = res.timeline
    return pd.Series(tl[column].to_numpy(), index=tl["time"].to_numpy() + res.scenario.timeline_step)


def attempts_to(res: RunResult, instance: int, t0: float, t1: float) -> pd.DataFrame:
    a = res.attempts
    return a[(a["instance"] == instance) & (a["start"] >= t0) & (a["start"] < t1)]


def fault_events(res: RunResult) -> pd.DataFrame:
    ev = res.events
    return ev[ev["kind"].isin(["fault_start", "fault_end"])]


# ---------------------------------------------------------------------------- partition


def test_partition_both_ways() -> None:
    res = run(world({"kind": "partition", "from": ["web"], "to": ["api"], "at": 5, "duration": 5}))
    assert success(res, 0, 5 - BASE_LATENCY) == 1.0
    assert share(res, "timeout", 5, 10) == 1.0           # vanished, never an error reply
    assert timeline_sum(res, "arrivals", 6, 9) == 0        # nothing reached the api
    assert success(res, 10, 20) == 1.0
    assert list(fault_events(res)["kind"]) == ["fault_start", "fault_end"]


def test_partition_one_way_requests_lost() -> None:
    res = run(world({"kind": "partition", "from": ["web"], "to": ["api"], "one_way": True,
                     "at": 5, "duration": 5}))
    assert share(res, "timeout", 5, 10) == 1.0
    assert timeline_sum(res, "arrivals", 6, 9) == 0


def test_partition_one_way_replies_lost() -> None:
    # api -> web is cut: requests arrive and the api does the work, but no reply gets back.
    res = run(world({"kind": "partition", "from": ["api"], "to": ["web"], "one_way": True,
                     "at": 5, "duration": 5}))
    assert share(res, "timeout", 5.1, 9.9) == 1.0
    assert timeline_sum(res, "completions", 6, 9) > 0.8 * 50 * 3
    assert success(res, 10, 20) == 1.0


def test_partition_of_one_instance() -> None:
    res = run(world({"kind": "partition", "from": ["web"], "to": ["api/1"], "at": 5, "duration": 10},
                    instances=2))
    assert attempts_to(res, 1, 5, 15)["outcome"].astype(str).eq("timeout").all()
    assert attempts_to(res, 0, 5, 15)["outcome"].astype(str).eq("ok").all()
    assert abs(success(res, 5, 15) - 0.5) <= 0.02         # round robin: every other request
    assert success(res, 15, 20) == 1.0


# ---------------------------------------------------------------------------- latency


@pytest.mark.parametrize(("spec", "extra"), [
    ({"add": 0.05}, 2 * 0.05),                             # both directions
    ({"add": 0.05, "one_way": True}, 0.05),                # requests only
    ({"multiply": 5.0}, 2 * 4 * HOP),                      # 5 ms -> 25 ms each way
    ({"add": 0.01, "multiply": 3.0}, 2 * (2 * HOP + 0.01)),
])
def test_latency_fault(spec: dict[str, Any], extra: float) -> None:
    res = run(world({"kind": "latency", "from": ["web"], "to": ["api"], "at": 5, "duration": 5, **spec}))
    assert latency(res, 0, 5 - 0.2) == pytest.approx(BASE_LATENCY, abs=1e-9)
    assert latency(res, 5, 10 - 0.2) == pytest.approx(BASE_LATENCY + extra, abs=1e-9)
    assert latency(res, 10, 20) == pytest.approx(BASE_LATENCY, abs=1e-9)


# ---------------------------------------------------------------------------- slowdown


def test_slowdown_of_a_service() -> None:
    res = run(world({"kind": "slowdown", "service": "api", "factor": 4.0, "at": 5, "duration": 5}))
    assert latency(res, 5, 9.9) == pytest.approx(2 * HOP + 4 * WORK, abs=1e-9)
    assert latency(res, 10.1, 20) == pytest.approx(BASE_LATENCY, abs=1e-9)


def test_slowdown_of_one_instance() -> None:
    res = run(world({"kind": "slowdown", "service": "api", "instance": 0, "factor": 4.0,
                     "at": 5, "duration": 5}, instances=2))
    a0, a1 = attempts_to(res, 0, 5, 9.9), attempts_to(res, 1, 5, 9.9)
    assert np.allclose(a0["end"] - a0["start"], 2 * HOP + 4 * WORK)
    assert np.allclose(a1["end"] - a1["start"], BASE_LATENCY)


# ---------------------------------------------------------------------------- capacity


def test_capacity_drop_removes_workers_and_queues() -> None:
    # 4 workers -> 1: 50 req/s of 10 ms work is 50 % utilisation of one worker, so requests
    # start to queue behind each other; the timeline shows the worker count.
    res = run(world({"kind": "capacity", "service": "api", "remove": 3, "at": 5, "duration": 5}))
    tl = sampled(res, "workers")
    assert (tl.loc[1:4] == 4).all() and (tl.loc[6:9] == 1).all() and (tl.loc[11:19] == 4).all()
    assert latency(res, 5.1, 9.9, "mean") > BASE_LATENCY + 0.002   # M/D/1 wait at rho 0.5
    assert latency(res, 11, 20, "max") < BASE_LATENCY + 0.01


def test_capacity_drop_always_leaves_one_worker() -> None:
    res = run(world({"kind": "capacity", "service": "api", "remove": 10, "at": 5, "duration": 5}))
    tl = sampled(res, "workers")
    assert (tl.loc[6:9] == 1).all() and (tl.loc[11:19] == 4).all()
    assert success(res, 5, 10) == 1.0


# ---------------------------------------------------------------------------- crash


def test_crash_refuse_fails_fast() -> None:
    res = run(world({"kind": "crash", "service": "api", "mode": "refuse", "at": 5, "duration": 5}))
    w = window(res, 5, 10)
    assert (w["outcome"].astype(str) == "connection").all()
    assert np.allclose(w["latency"], 2 * HOP)              # refused at once, one round trip
    assert success(res, 10, 20) == 1.0


def test_crash_blackhole_times_out() -> None:
    res = run(world({"kind": "crash", "service": "api", "mode": "blackhole", "at": 5, "duration": 5}))
    w = window(res, 5, 10)
    assert (w["outcome"].astype(str) == "timeout").all()
    assert np.allclose(w["latency"], 0.2)
    assert success(res, 10, 20) == 1.0


def test_crash_of_one_instance() -> None:
    res = run(world({"kind": "crash", "service": "api", "instance": 1, "at": 5, "duration": 5},
                    instances=2))
    assert attempts_to(res, 1, 5, 10)["outcome"].astype(str).eq("connection").all()
    assert attempts_to(res, 0, 5, 10)["outcome"].astype(str).eq("ok").all()


def test_crash_loses_work_in_progress() -> None:
    # 1 s of work per request: whatever is in service at the crash is answered 'connection'.
    res = run(world({"kind": "crash", "service": "api", "at": 5.5, "duration": 1}, workers=100,
                    timeout=5.0, service_time=1.0))
    w = window(res, 4.6, 5.5)
    assert (w["outcome"].astype(str) == "connection").all()
    assert np.allclose(w["end"], 5.5 + HOP)


def test_cold_start_after_restart() -> None:
    res = run(world({"kind": "crash", "service": "api", "at": 5, "duration": 2,
                     "cold_start": {"factor": 3.0, "duration": 4.0}}))
    assert latency(res, 7.01, 10.9) == pytest.approx(2 * HOP + 3 * WORK, abs=1e-9)
    assert latency(res, 11.1, 20) == pytest.approx(BASE_LATENCY, abs=1e-9)


# ---------------------------------------------------------------------------- errors, load, chaos


def test_error_burst() -> None:
    res = run(world({"kind": "errors", "service": "api", "probability": 0.3, "at": 5, "duration": 10},
                    rate=100.0))
    n = len(window(res, 5, 15))
    assert abs(share(res, "error", 5, 15) - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    assert share(res, "error", 0, 5 - BASE_LATENCY) == 0.0   # drawn when the work ends
    assert share(res, "error", 15, 20) == 0.0


def test_overlapping_error_bursts_use_the_highest_probability() -> None:
    res = run(world({"kind": "errors", "service": "api", "probability": 0.2, "at": 2, "duration": 16},
                    {"kind": "errors", "service": "api", "probability": 0.6, "at": 6, "duration": 6},
                    rate=200.0))
    assert abs(share(res, "error", 6, 12) - 0.6) < 0.04
    assert abs(share(res, "error", 12, 18) - 0.2) < 0.04
    assert share(res, "error", 18.1, 20) == 0.0


def test_load_spike_multiplies_the_arrival_rate() -> None:
    res = run(world({"kind": "load", "client": "web", "factor": 3.0, "at": 5, "duration": 10},
                    rate=40.0, duration=25.0))
    before, during, after = len(window(res, 0, 5)), len(window(res, 5, 15)), len(window(res, 15, 25))
    assert abs(during / 10 - 120) < 4 * np.sqrt(120 / 10)
    assert abs(before / 5 - 40) < 4 * np.sqrt(40 / 5)
    assert abs(after / 10 - 40) < 4 * np.sqrt(40 / 10)


def test_chaos_mix() -> None:
    res = run(world({"kind": "chaos", "service": "api", "rate": 0.3,
                     "mix": {"timeout": 1, "error": 0, "connection": 2}, "at": 5, "duration": 10},
                    rate=200.0))
    n = len(window(res, 5, 15))
    tol = 4 * np.sqrt(0.2 * 0.8 / n)
    assert abs(share(res, "timeout", 5, 15 - 0.2) - 0.1) < tol
    assert abs(share(res, "connection", 5, 15) - 0.2) < tol
    assert share(res, "error", 5, 15) == 0.0
    assert success(res, 15, 20) == 1.0
    w = window(res, 5, 15)
    fast = w[w["outcome"].astype(str) == "connection"]["latency"]
    assert np.allclose(fast, 2 * HOP)                      # injected before any work


# ---------------------------------------------------------------------------- combined


COMBINED = [
    {"name": "slow", "kind": "slowdown", "service": "api", "factor": 2.0, "at": 4, "duration": 14},
    {"name": "slower", "kind": "slowdown", "service": "api", "instance": 0, "factor": 3.0, "at": 6, "duration": 4},
    {"name": "cpu", "kind": "capacity", "service": "api", "remove": 2, "at": 5, "duration": 10},
    {"name": "cpu2", "kind": "capacity", "service": "api", "instance": 1, "remove": 1, "at": 7, "duration": 10},
    {"name": "err", "kind": "errors", "service": "api", "probability": 0.1, "at": 8, "duration": 10},
    {"name": "net", "kind": "latency", "from": ["web"], "to": ["api"], "add": 0.02, "multiply": 2.0,
     "at": 6, "duration": 9},
    {"name": "net2", "kind": "latency", "from": ["web"], "to": ["api/1"], "multiply": 3.0, "at": 9, "duration": 6},
    {"name": "cut", "kind": "partition", "from": ["web"], "to": ["api/1"], "at": 10, "duration": 3},
    {"name": "cut2", "kind": "partition", "from": ["web"], "to": ["api"], "at": 12, "duration": 2},
    {"name": "surge", "kind": "load", "client": "web", "factor": 1.5, "at": 5, "duration": 12},
    {"name": "surge2", "kind": "load", "client": "web", "factor": 2.0, "at": 9, "duration": 3},
    {"name": "crash", "kind": "crash", "service": "api", "instance": 0, "at": 11, "duration": 2,
     "cold_start": {"factor": 2.0, "duration": 3.0}},
    {"name": "chaos", "kind": "chaos", "service": "api", "rate": 0.2, "at": 14, "duration": 5},
]
"""Thirteen overlapping faults of every kind, all over by t = 19 s."""


def _combined(duration: float = 40.0) -> dict[str, Any]:
    return world(*COMBINED, instances=2, rate=60.0, duration=duration)


def test_combined_faults_unwind_to_the_initial_state() -> None:
    sc = load_scenario(_combined())
    w = build(sc, 5)
    w.run()
    for inst in w.services["api"].instances:
        assert inst.slow == pytest.approx(1.0) and inst.cold_factor == pytest.approx(1.0)
        assert inst.workers == inst.base_workers == 4
        assert inst.err == inst.base_err == 0.0 and inst.err_overrides == []
        assert inst.chaos is None and inst.down == 0
    for link in w.network.links:
        assert link.blocked == 0 and link.add == pytest.approx(0.0, abs=1e-12)
        assert link.mult == pytest.approx(1.0)
    assert w.clients["web"].load_factor == pytest.approx(1.0)


def test_combined_faults_return_to_baseline_behaviour() -> None:
    res = run(_combined())
    events = fault_events(res)
    assert (events["kind"] == "fault_start").sum() == len(COMBINED)
    assert (events["kind"] == "fault_end").sum() == len(COMBINED)
    assert events["time"].max() == pytest.approx(19.0)
    # While they overlap the system is clearly hurt ...
    assert success(res, 10, 14) < 0.9
    # ... and once they are over it behaves exactly as before they started: every request
    # succeeds in exactly 2 hops + 10 ms of work, at the original arrival rate.
    before, after = window(res, 0, 4 - BASE_LATENCY), window(res, 20, 40)
    for w in (before, after):
        assert w["outcome"].isin(SUCCESS_OUTCOMES).all()
        assert np.allclose(w["latency"], BASE_LATENCY)
    assert abs(len(after) / 20 - 60) < 4 * np.sqrt(60 / 20)
    assert (sampled(res, "workers").loc[20:40] == 8).all()


def test_combined_faults_after_effects_match_a_fault_free_run() -> None:
    # The same world without faults: after t = 20 s both have the same latencies and outcomes
    # (arrival times differ only through the thinning the load faults needed).
    res, ref = run(_combined(duration=30.0)), run({**_combined(duration=30.0), "faults": []})
    for r in (res, ref):
        w = window(r, 20, 30)
        assert w["outcome"].isin(SUCCESS_OUTCOMES).all()
        assert np.allclose(w["latency"], BASE_LATENCY)


def test_overlapping_chaos_faults_unwind() -> None:
    sc = load_scenario(world(
        {"kind": "chaos", "service": "api", "rate": 0.5, "at": 4, "duration": 6},
        {"kind": "chaos", "service": "api", "rate": 0.2, "at": 7, "duration": 6}, duration=20.0))
    w = build(sc, 5)
    w.run()
    assert w.services["api"].instances[0].chaos is None
