"""Queue disciplines for overload: adaptive LIFO, a queue-time limit and CoDel (Fail at Scale).

The dequeue rules are HHVM's ``JobQueue`` and folly's ``Codel`` (pinned against a
transcription in ``tests/policies/test_queueing.py``); here: the order requests are served
in, that nothing served waited past its limit, and what the combination Facebook runs
buys under overload.
"""

from __future__ import annotations

from typing import Any

import pytest

from simres.errors import ScenarioError
from simres.experiments.runs import run
from simres.scenario.loading import load_scenario


def ten_in_a_row(queue: dict[str, Any]) -> dict[str, Any]:
    """One worker busy 1 s per request; ten requests arrive 0.1 s apart, so nine queue."""
    return {"name": "order", "duration": 1.05, "warmup": 0, "drain": 20, "seed": 1,
            "network": {"default": {"latency": 0.0}},
            "services": {"api": {"workers": 1, "queue": queue, "service_time": 1.0}},
            "clients": {"web": {"target": "api", "arrival": {"kind": "constant", "rate": 10}}}}


def served_order(queue: dict[str, Any]) -> list[int]:
    att = run(load_scenario(ten_in_a_row(queue))).attempts
    return [int(r) for r in att.sort_values("service_start")["request_id"]]


def test_adaptive_lifo_serves_the_newest_while_a_queue_stands_then_the_oldest() -> None:
    """HHVM: LIFO while at least lifo_threshold others remain queued, FIFO below."""
    ids = served_order({})
    first = ids[0]
    order = [i - first + 1 for i in served_order({"discipline": "adaptive_lifo", "lifo_threshold": 3})]
    assert order == [1, 10, 9, 8, 7, 6, 5, 2, 3, 4]
    assert [i - first + 1 for i in ids] == list(range(1, 11))  # plain FIFO
    always = [i - first + 1 for i in served_order({"discipline": "adaptive_lifo", "lifo_threshold": 0})]
    assert always == [1, 10, 9, 8, 7, 6, 5, 4, 3, 2]


def test_a_queue_time_limit_sheds_what_waited_too_long_and_serves_nothing_older() -> None:
    res = run(load_scenario(ten_in_a_row({"max_wait": 2.55})))
    att = res.attempts
    served = att[att["service_start"].notna()]
    assert ((served["service_start"] - served["start"]) <= 2.55 + 1e-9).all()
    # Request k (from 0) arrives at 0.1 (k + 1); a worker frees up at 1.1, 2.1, 3.1, ... Requests
    # 1 and 2 waited 0.9 and 1.8 s; at 3.1 the oldest, 3 and 4, waited 2.7 and 2.6 s > 2.55: shed,
    # then 5 (2.5 s) is served; at 4.1 the rest have waited over 3 s: shed. HHVM checks only the
    # oldest request, once per free worker, so the queue is never scanned ahead of time.
    first = int(att["request_id"].min())
    assert sorted(int(r) - first for r in served["request_id"]) == [0, 1, 2, 5]
    assert (res.requests["outcome"] == "shed").sum() == 6


def overload(queue: dict[str, Any]) -> dict[str, Any]:
    """8 workers (800 req/s) offered 1,000 req/s for 20 s; clients give up after 0.3 s."""
    return {"name": "fail-at-scale", "duration": 30, "warmup": 2, "drain": 2, "seed": 4,
            "services": {"api": {"workers": 8, "queue": queue,
                                 "service_time": {"kind": "exponential", "mean": 0.01}}},
            "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 500}, "timeout": 0.3}},
            "faults": [{"kind": "load", "client": "web", "factor": 2.0, "at": 5, "duration": 20}]}


def test_codel_and_adaptive_lifo_keep_a_standing_queue_from_timing_everything_out() -> None:
    """Fail at Scale: a FIFO queue under overload serves only requests whose callers are gone;
    CoDel sheds the backlog fast and adaptive LIFO serves the newest, so most callers get answers."""
    fifo = run(load_scenario(overload({}))).summary
    managed = run(load_scenario(overload({"discipline": "adaptive_lifo", "lifo_threshold": 16,
                                          "codel": {}}))).summary
    codel_only = run(load_scenario(overload({"codel": {}}))).summary
    assert fifo["goodput"] < 350            # the standing queue outlives every caller's timeout
    assert managed["goodput"] > 700         # near the 800 req/s capacity
    assert codel_only["goodput"] > 650
    assert managed["latency_p99"] < 0.15    # what is served is served fresh
    assert fifo["stable_at_end"] == 0 and fifo["success_rate"] < 0.2  # and FIFO never gets out of it
    assert managed["stable_at_end"] == 1 and codel_only["stable_at_end"] == 1


def test_queue_options_are_checked() -> None:
    with pytest.raises(ScenarioError, match=r"services\.api\.queue.*lifo_threshold: adaptive_lifo needs"):
        load_scenario(overload({"discipline": "adaptive_lifo"}))
    with pytest.raises(ScenarioError, match=r"services\.api\.queue.*lifo_threshold: only used with"):
        load_scenario(overload({"lifo_threshold": 3}))
    with pytest.raises(ScenarioError, match=r"services\.api\.queue\.codel.*interval: must be > target"):
        load_scenario(overload({"codel": {"target": 0.2, "interval": 0.1}}))
