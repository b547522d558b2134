"""Connect and read timeouts apart (issue 17, item 5): requests' ``timeout=(3, 10)``.

The connect timeout bounds the time for a try to reach its instance (the network out, the
instance up to take it); the read timeout the time from there to the reply. A connect
timeout ends the try as ``connect_timeout`` (the instance never sees it) and the policies
judge it as a connection failure; a read timeout ends it as ``timeout``. The per-try
``timeout`` and the call's ``deadline`` still bound the whole try and the whole call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from simres.experiments.runs import run
from simres.scenario.loading import load_scenario

LINK = 0.01  # one-way network latency, seconds


def _scenario(*, faults: list[dict[str, Any]], service_time: Any = 0.005, **policy: Any) -> dict[str, Any]:
    return {
        "name": "phases", "duration": 30, "warmup": 0, "drain": 5,
        "network": {"default": {"latency": LINK}},
        "services": {"api": {"workers": 16, "service_time": service_time}},
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 50}, **policy}},
        "faults": faults,
    }


def _during(frame: Any, lo: float, hi: float) -> Any:
    return frame[(frame.start >= lo) & (frame.start < hi)]


def test_a_partition_ends_tries_at_the_connect_timeout_unseen_by_the_instance() -> None:
    sc = _scenario(faults=[{"kind": "partition", "from": ["web"], "to": ["api"], "at": 10, "duration": 10}],
                   connect_timeout=0.1, read_timeout=1.0, timeout=2.0)
    r = run(load_scenario(sc), seed=1)
    cut = _during(r.attempts, 10.5, 19.5)
    assert len(cut) > 300 and (cut.outcome == "connect_timeout").all()
    np.testing.assert_allclose((cut.end - cut.start).to_numpy(), 0.1, atol=1e-9)
    share = float((r.requests.outcome == "connect_timeout").mean())
    assert r.summary["connect_timeout_rate"] == pytest.approx(share) and share == pytest.approx(10 / 30, rel=0.15)
    # a try that connected just before the cut lost its reply: the read timeout, 1 s after arriving
    late = r.attempts[r.attempts.outcome == "timeout"]
    assert ((late.start > 10 - 0.05) & (late.start <= 10)).all()
    np.testing.assert_allclose((late.end - late.start).to_numpy(), LINK + 1.0, atol=1e-9)
    # the instance never saw them: it served only the tries sent outside the partition
    served = r.attempts.service_start.notna()
    assert not served[(r.attempts.start >= 10.5) & (r.attempts.start < 19.5)].any()
    healthy = _during(r.attempts, 0, 9.5)
    assert (healthy.outcome == "ok").all()


def test_a_slow_server_ends_tries_at_the_read_timeout_counted_from_the_instance() -> None:
    """A 20x slowdown: 0.1 s of work against a 0.05 s read timeout. Each try reaches the
    instance after one network delay, so it ends at LINK + read_timeout as ``timeout``."""
    sc = _scenario(faults=[{"kind": "slowdown", "service": "api", "at": 10, "duration": 10, "factor": 20}],
                   connect_timeout=0.05, read_timeout=0.05)
    r = run(load_scenario(sc), seed=2)
    slow = _during(r.attempts, 10.5, 19.5)
    timed_out = slow[slow.outcome == "timeout"]
    assert len(timed_out) > 0.9 * len(slow) and not (slow.outcome == "connect_timeout").any()
    np.testing.assert_allclose((timed_out.end - timed_out.start).to_numpy(), LINK + 0.05, atol=1e-9)


def test_requests_3_10_waits_out_a_slow_reply_that_a_total_timeout_would_cut() -> None:
    """requests' timeout=(3, 10) has no bound on the whole try: a 5 s reply is fine; the same
    try with timeout: 4 (a total bound) times out. The connect timeout never fires."""
    base = _scenario(faults=[], service_time=5.0)
    base["clients"]["web"]["arrival"] = {"kind": "poisson", "rate": 1}
    base["duration"], base["drain"] = 20, 10
    ok = run(load_scenario({**base, "clients": {"web": {**base["clients"]["web"],
                                                        "connect_timeout": 3, "read_timeout": 10}}}), seed=3)
    cut = run(load_scenario({**base, "clients": {"web": {**base["clients"]["web"],
                                                         "connect_timeout": 3, "timeout": 4}}}), seed=3)
    assert len(ok.requests) > 10 and (ok.requests.outcome == "ok").all()
    assert (cut.requests.outcome == "timeout").all()


def test_policies_judge_a_connect_timeout_as_a_connection_failure() -> None:
    """retry_on [connection] retries a connect timeout, [timeout] does not; a breaker counts it."""
    faults = [{"kind": "partition", "from": ["web"], "to": ["api"], "at": 10, "duration": 10}]
    retry = {"max_attempts": 3, "backoff": {"kind": "constant", "base": 0.01}}
    on_conn = run(load_scenario(_scenario(faults=faults, connect_timeout=0.1,
                                          retry={**retry, "retry_on": ["connection"]})), seed=4)
    on_to = run(load_scenario(_scenario(faults=faults, connect_timeout=0.1,
                                        retry={**retry, "retry_on": ["timeout"]})), seed=4)
    cut_conn = _during(on_conn.requests, 10.5, 19)
    cut_to = _during(on_to.requests, 10.5, 19)
    assert (cut_conn.tries == 3).all() and (cut_conn.outcome == "connect_timeout").all()
    assert (cut_to.tries == 1).all() and (cut_to.outcome == "connect_timeout").all()
    guarded = run(load_scenario(_scenario(faults=faults, connect_timeout=0.1, breaker={
        "trip": "consecutive", "failure_threshold": 5, "open_for": 1.0})), seed=4)
    opened = guarded.events[(guarded.events.kind == "breaker") & guarded.events.detail.str.startswith("closed->open")]
    assert len(opened) and 10 < opened.time.min() < 11
    assert (_during(guarded.requests, 11, 19).outcome == "breaker_open").mean() > 0.5


def test_a_latency_fault_beyond_the_connect_timeout_is_a_connect_timeout() -> None:
    sc = _scenario(faults=[{"kind": "latency", "from": ["web"], "to": ["api"], "at": 10, "duration": 10,
                            "add": 0.2, "one_way": True}], connect_timeout=0.1, read_timeout=0.5)
    r = run(load_scenario(sc), seed=5)
    late = _during(r.attempts, 10.5, 19.5)
    assert (late.outcome == "connect_timeout").all() and len(late) > 300
    # the one-way fault leaves replies alone: before and after it every try succeeds in 2 LINK + work
    assert (_during(r.attempts, 0, 9.5).outcome == "ok").all()
    assert (_during(r.attempts, 21, 30).outcome == "ok").all()


def test_unset_connect_and_read_timeouts_stay_out_of_the_resolved_scenario() -> None:
    dumped = load_scenario(_scenario(faults=[], timeout=1.0)).model_dump()["clients"]["web"]
    assert "connect_timeout" not in dumped and "read_timeout" not in dumped
    dumped = load_scenario(_scenario(faults=[], connect_timeout=0.5)).model_dump()["clients"]["web"]
    assert dumped["connect_timeout"] == 0.5


@pytest.mark.parametrize(("preset", "granted"), [("aws_standard_2_0", 50), ("aws_standard", 35)])
def test_a_connect_timeout_is_priced_as_a_timeout_by_the_aws_quota(preset: str, granted: int) -> None:
    """botocore's mode 2.0 quota charges a ConnectTimeoutError its timeout cost (10 of 500
    tokens), mode 2.1 its one cost for every non-throttling error (14): with nothing ever
    succeeding, the quota grants exactly 500 // cost retries, then refuses them all."""
    sc = _scenario(faults=[{"kind": "partition", "from": ["web"], "to": ["api"], "at": 0}],
                   connect_timeout=0.1, timeout=2.0, retry={"preset": preset})
    r = run(load_scenario(sc), seed=1)
    assert (r.attempts.outcome == "connect_timeout").all()
    retries = int((r.attempts.sent & (r.attempts.attempt > 1)).sum())
    assert retries == granted
    assert (r.events.kind == "budget_denied").sum() > 100  # every later request's first retry is refused
