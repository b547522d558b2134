"""A call's ``order``: the breaker, limit or bulkhead outside the retry loop (issue 17, item 6).

Resilience4j and Polly users choose the order of their decorators; the order changes what
each layer sees. A breaker inside the retry loop (simres's default, Resilience4j's
``Retry(CircuitBreaker(call))``) counts every try; outside it (``CircuitBreaker(Retry(call))``)
it counts one verdict per logical call, so retries that eventually succeed hide the
failures from it. A bulkhead outside the retry loop holds its slot through the backoff.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from simres.errors import ScenarioError
from simres.experiments.runs import run
from simres.metrics.stats import mean_ci
from simres.scenario.loading import load_scenario

BREAKER = {"trip": "failure_rate", "threshold": 0.5, "minimum_calls": 10, "open_for": 2.0}
RETRY = {"max_attempts": 4, "backoff": {"kind": "exponential", "base": 0.02, "cap": 0.5}}


def _scenario(**policy: Any) -> dict[str, Any]:
    """100 req/s on a healthy service that fails 60 % of tries from 20 s to 40 s."""
    return {
        "name": "order", "duration": 60, "warmup": 0, "drain": 5,
        "services": {"api": {"workers": 8, "service_time": {"kind": "exponential", "mean": 0.01}}},
        "faults": [{"kind": "errors", "service": "api", "at": 20, "duration": 20, "probability": 0.6}],
        "clients": {"web": {"target": "api", "timeout": 0.5, "arrival": {"kind": "poisson", "rate": 100},
                            "retry": RETRY, "breaker": BREAKER, **policy}},
    }


def _amplification(r: Any) -> float:
    """Tries sent per request during the error burst."""
    a, q = r.attempts, r.requests
    during = (q.start >= 21) & (q.start < 39)
    sent = a[a.sent & a.request_id.isin(set(q.request_id[during]))]
    return len(sent) / int(during.sum())


def test_the_default_order_spelled_out_is_the_default_bit_for_bit() -> None:
    plain = run(load_scenario(_scenario()), seed=5)
    spelled = run(load_scenario(_scenario(order=["retry", "breaker"])), seed=5)
    for frame in ("requests", "attempts", "events"):
        a, b = getattr(plain, frame), getattr(spelled, frame)
        assert a.equals(b), frame
    # and an unset order stays out of the resolved scenario (fingerprints unchanged)
    assert "order" not in load_scenario(_scenario()).model_dump()["clients"]["web"]


def test_a_breaker_outside_the_retry_loop_sees_calls_not_tries_and_amplification_differs() -> None:
    """60 % of tries fail: inside, the breaker sees a 60 % failure rate and opens (tries are
    refused, amplification < 1); outside, it sees calls, of which 0.6^4 = 13 % fail, stays
    closed, and the retries amplify the load ~1.4x. Five seeds, 95 % intervals apart."""
    inside, outside = [], []
    for seed in range(1, 6):
        r_in = run(load_scenario(_scenario()), seed=seed)
        r_out = run(load_scenario(_scenario(order=["breaker", "retry"])), seed=seed)
        inside.append(_amplification(r_in))
        outside.append(_amplification(r_out))
        opened_out = r_out.events[(r_out.events.kind == "breaker")
                                  & r_out.events.detail.str.startswith("closed->open")]
        assert len(opened_out) == 0, seed  # 13 % of calls fail: under the 50 % threshold
    ci_in, ci_out = mean_ci(np.array(inside)), mean_ci(np.array(outside))
    assert ci_in.hi < 1.0 < ci_out.lo, (inside, outside)
    # outside, every failed try is retried: (1 - 0.6^4) / (1 - 0.6) = 2.176 tries per call
    assert ci_out.lo < 2.176 * 1.02 and ci_out.hi > 2.176 * 0.98, (ci_out, outside)


def test_a_bulkhead_outside_the_retry_loop_holds_its_slot_through_the_backoff() -> None:
    """One slot, calls that fail their first try and wait 0.2 s before the second: inside the
    loop the slot is free during the wait and a second call gets in; outside it is not."""
    sc = {
        "name": "bh", "duration": 20, "warmup": 0, "drain": 2,
        "services": {"api": {"workers": 4, "service_time": 0.01, "error_rate": 0.5}},
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 4},
                            "retry": {"max_attempts": 2, "backoff": {"kind": "constant", "base": 0.2}},
                            "bulkhead": {"max_concurrent": 1}}},
    }
    inside = run(load_scenario(sc), seed=2)
    outer = copy.deepcopy(sc)
    outer["clients"]["web"]["order"] = ["bulkhead", "retry"]
    outside = run(load_scenario(outer), seed=2)

    def refused(r: Any) -> int:
        return int((r.requests.outcome == "bulkhead_full").sum())

    assert refused(outside) > 1.5 * refused(inside) > 0, (refused(inside), refused(outside))
    # a call refused outside the loop is one unsent try, and nothing was retried for it
    ids = outside.requests.request_id[outside.requests.outcome == "bulkhead_full"]
    rows = outside.attempts[outside.attempts.request_id.isin(ids)]
    assert len(rows) == len(ids) and not rows.sent.any() and (rows.attempt == 1).all()
    # the slot is held from the call's start to its end: no two admitted calls overlap
    admitted = outside.requests[outside.requests.outcome != "bulkhead_full"].sort_values("start")
    assert (admitted.start.to_numpy()[1:] >= admitted.end.to_numpy()[:-1] - 1e-12).all()


def test_a_limit_outside_the_retry_loop_holds_a_slot_for_the_whole_call() -> None:
    """Two slots at 100 req/s: while calls are single tries the two orders refuse the same
    share; in the error burst a call outside holds its slot through its retries and backoff,
    so the limit refuses most calls, where inside (with the breaker open) it refuses few."""
    def shares(order: list[str] | None) -> tuple[float, float]:
        extra: dict[str, Any] = {"order": order} if order else {}
        q = run(load_scenario(_scenario(limit={"kind": "fixed", "initial_limit": 2}, **extra)), seed=1).requests
        full = q.outcome == "bulkhead_full"
        return float(full[q.start < 20].mean()), float(full[(q.start >= 21) & (q.start < 39)].mean())

    calm_in, burst_in = shares(None)
    calm_out, burst_out = shares(["breaker", "limit", "retry"])
    assert calm_out == pytest.approx(calm_in, abs=0.03) and calm_in > 0.1
    assert burst_out > 0.4 and burst_out > 10 * burst_in, (burst_in, burst_out)


@pytest.mark.parametrize(("order", "policy", "message"), [
    (["breaker", "retry"], {"retry": None}, "order: needs retry"),
    (["retry"], {}, "breaker missing"),
    (["retry", "breaker", "bulkhead"], {}, "bulkhead not set on this call"),
    (["breaker", "retry", "breaker"], {}, "lists a layer twice"),
    (["bulkhead", "retry", "breaker"], {"bulkhead": {"max_concurrent": 4}}, "keep their relative order"),
    (["retry", "timeout"], {}, "clients.web.order.1"),
])
def test_a_bad_order_is_one_line_naming_the_field(order: list[str], policy: dict[str, Any], message: str) -> None:
    sc = _scenario(order=order, **policy)
    if policy.get("retry", 0) is None:
        del sc["clients"]["web"]["retry"]
    with pytest.raises(ScenarioError) as e:
        load_scenario(sc)
    text = str(e.value)
    assert message in text and "order" in text and "\n" not in text.strip(), text
