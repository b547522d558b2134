"""Each policy does its job when driven by the simulation (issue 3, simulation tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simres.experiments.runs import run
from simres.metrics.stats import mean_ci


def _client(**policy) -> dict:
    return {"target": "api", "arrival": {"kind": "poisson", "rate": 100}, **policy}


def test_breaker_stops_load_on_a_failing_dependency() -> None:
    sc = {
        "duration": 60, "drain": 2,
        "services": {"api": {"workers": 50, "service_time": 0.005}},
        "clients": {"web": _client(timeout=0.5)},
        "faults": [{"kind": "crash", "service": "api", "at": 20, "duration": 20, "mode": "refuse"}],
    }
    plain = run(sc)
    sc["clients"]["web"]["breaker"] = {"trip": "consecutive", "failure_threshold": 5, "open_for": 2.0,
                                       "half_open": "single_probe"}
    guarded = run(sc)

    def sent_during_outage(r) -> int:
        a = r.attempts
        return int((a.sent & (a.start >= 21) & (a.start < 40)).sum())

    assert sent_during_outage(plain) > 1500
    assert sent_during_outage(guarded) < 0.02 * sent_during_outage(plain)
    # ... and after the outage the half-open probe closes it again: traffic flows
    after = guarded.requests[guarded.requests.start >= 45]
    assert (after.outcome == "ok").mean() > 0.99
    kinds = guarded.events[guarded.events.kind == "breaker"].detail
    assert kinds.str.startswith("closed->open").any() and kinds.str.startswith("half_open->closed").any()


def test_retry_budget_caps_amplification() -> None:
    sc = {
        "duration": 60, "drain": 5,
        "services": {"api": {"workers": 100, "service_time": 0.001, "error_rate": 0.9}},
        "clients": {"web": _client(count=10, timeout=1.0, retry={
            "max_attempts": 5, "backoff": {"kind": "constant", "base": 0.01}, "jitter": "none"})},
    }
    naive = run(sc)
    sc["clients"]["web"]["retry"]["budget"] = {"preset": "brooker"}
    capped = run(sc)
    expected_naive = sum(0.9**k for k in range(5))  # 4.10
    assert naive.summary["amplification:api"] == pytest.approx(expected_naive, rel=0.03)
    assert capped.summary["amplification:api"] < 1.2  # ~1 + 0.1 token per request


def test_bulkhead_keeps_the_critical_path_alive_when_an_optional_dependency_is_slow() -> None:
    sc = {
        "duration": 60, "drain": 5, "warmup": 5,
        "services": {
            "api": {"workers": 20, "service_time": 0.001, "handler": {"calls": [
                {"to": "db", "timeout": 0.5},
                {"to": "recs", "critical": False, "timeout": 2.0},
            ]}},
            "db": {"workers": 20, "service_time": 0.005},
            "recs": {"workers": 100, "service_time": 0.01},
        },
        "clients": {"web": _client(timeout=1.0)},
        "faults": [{"kind": "slowdown", "service": "recs", "at": 10, "duration": 40, "factor": 150}],
    }
    exposed = run(sc)
    sc["services"]["api"]["handler"]["calls"][1]["bulkhead"] = {"max_concurrent": 4, "max_wait": 0}
    isolated = run(sc)

    def during(r):
        q = r.requests[(r.requests.start >= 15) & (r.requests.start < 45)]
        return q.outcome.isin(["ok", "degraded"]).mean()

    assert during(exposed) < 0.3  # api workers are all stuck waiting on recs
    assert during(isolated) > 0.97  # answers degrade instead of failing
    assert isolated.summary["degraded_rate"] > 0.3


def test_shedding_protects_the_critical_class() -> None:
    # capacity 100/s; offered 150/s: 50 critical + 100 low
    sc = {
        "duration": 60, "drain": 5, "warmup": 10,
        "services": {"api": {"workers": 10, "service_time": {"kind": "exponential", "mean": 0.1},
                             "queue": {"capacity": 200}}},
        "clients": {
            "vip": {"target": "api", "priority": "critical", "arrival": {"kind": "poisson", "rate": 50}, "timeout": 5},
            "bulk": {"target": "api", "priority": "low", "arrival": {"kind": "poisson", "rate": 100}, "timeout": 5},
        },
    }
    unprotected = run(sc)
    sc["services"]["api"]["shedding"] = {"signal": "utilization", "thresholds": {"low": 0.8}}
    protected = run(sc)
    assert unprotected.summary["latency_p99:priority=critical"] > 1.0
    assert protected.summary["latency_p99:priority=critical"] < 0.6
    assert protected.summary["success_rate:priority=critical"] > 0.99
    assert protected.summary["shed_rate:priority=low"] > 0.3
    assert protected.summary["shed_rate:priority=critical"] == 0.0


@pytest.mark.slow
def test_retries_under_independent_failures_match_the_closed_form() -> None:
    p, attempts = 0.5, 4
    sc = {
        "duration": 40, "drain": 2,
        "services": {"api": {"workers": 200, "service_time": 0.001, "error_rate": p}},
        "clients": {"web": _client(timeout=1.0, retry={
            "max_attempts": attempts, "backoff": {"kind": "constant", "base": 0.001}, "jitter": "none"})},
    }
    sc["clients"]["web"]["arrival"]["rate"] = 200
    rs = [run(sc, seed=s) for s in range(8)]
    success = mean_ci([r.summary["success_rate"] for r in rs], confidence=0.99)
    load = mean_ci([r.summary["tries_per_request"] for r in rs], confidence=0.99)
    assert success.lo <= 1 - p**attempts <= success.hi
    assert load.lo <= sum(p**k for k in range(attempts)) <= load.hi
    # tight enough that an off-by-one in max_attempts (3 or 5 tries) falls outside
    for wrong in (attempts - 1, attempts + 1):
        assert not load.lo <= sum(p**k for k in range(wrong)) <= load.hi
        assert not success.lo <= 1 - p**wrong <= success.hi


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    deadline=st.floats(0.05, 2.0),
    timeout=st.floats(0.01, 1.0),
    base=st.floats(0.001, 0.5),
    jitter=st.sampled_from(["none", "full", "equal", "decorrelated"]),
    slow=st.floats(0.001, 0.5),
)
def test_no_try_starts_after_the_deadline(deadline: float, timeout: float, base: float, jitter: str,
                                          slow: float) -> None:
    sc = {
        "duration": 5, "drain": 3,
        "services": {"api": {"workers": 2, "service_time": {"kind": "exponential", "mean": slow}, "error_rate": 0.3}},
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 20}, "timeout": timeout,
                            "deadline": deadline, "retry": {"max_attempts": 6, "backoff": {"kind": "exponential",
                                                            "base": base, "cap": 1.0}, "jitter": jitter}}},
    }
    r = run(sc)
    a = r.attempts.merge(r.requests[["request_id", "start"]], on="request_id", suffixes=("", "_req"))
    assert (a.start < a.start_req + deadline + 1e-9).all()
    done = r.requests.dropna(subset=["end"])
    assert (done.latency <= deadline + 1e-9).all()
    assert np.all(r.requests.tries <= 6)


def test_breaker_of_a_multi_instance_service_is_summarised_per_link() -> None:
    sc = {
        "duration": 40, "drain": 2,
        "services": {
            "api": {"instances": 2, "workers": 10, "service_time": 0.001, "handler": {"calls": [
                {"to": "db", "timeout": 0.2, "breaker": {"trip": "consecutive", "failure_threshold": 3, "open_for": 1}},
            ]}},
            "db": {"workers": 10, "service_time": 0.001},
        },
        "clients": {"web": _client(timeout=1.0)},
        "faults": [{"kind": "crash", "service": "db", "at": 10, "duration": 20}],
    }
    r = run(sc)
    comps = set(r.events[r.events.kind == "breaker"].component)
    assert comps == {"api->db#0", "api->db#1"}
    # open (or probing) for most of the 20 s outage out of 40 s, closed otherwise
    share = r.summary["breaker_open_share:api->db"] + r.summary["breaker_half_open_share:api->db"]
    assert 0.4 < share < 0.55
