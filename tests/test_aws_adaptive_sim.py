"""botocore's adaptive retry mode (retry preset ``aws_adaptive``) driven by the simulation.

The limiter's arithmetic is pinned against botocore itself in
``tests/policies/conformance/test_botocore_adaptive.py``; here the driver's wait-before-send
gate is checked: inert until the first throttling reply, then no try is sent without a
token, the sending rate settles near the server's capacity, tries past their deadline leave
unsent, one limiter per client member unless shared, and the same frames on both engines.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from simres.experiments.runs import run
from simres.policies.aws_adaptive import AdaptiveRateConfig, AdaptiveRateLimiter

CAPACITY = 200.0  # 2 workers x 1 / 10 ms


def overload(preset: str = "aws_adaptive", *, rate: float = 300.0, count: int = 1,
             scope: str | None = None) -> dict:
    retry: dict = {"preset": preset}
    if scope is not None:
        retry["rate_limiter"] = {"scope": scope}
    return {
        "duration": 40, "drain": 5,
        "services": {"api": {"workers": 2, "service_time": {"kind": "exponential", "mean": 0.01},
                             "queue": {"capacity": 10}}},
        "clients": {"sdk": {"target": "api", "count": count, "arrival": {"kind": "poisson", "rate": rate},
                            "timeout": 1.0, "deadline": 5.0, "retry": retry}},
    }


def test_until_the_first_throttling_reply_the_limiter_changes_nothing() -> None:
    """Below capacity nothing is throttled: adaptive mode's frames are standard mode's, value for value."""
    calm = overload(rate=100.0)
    std = run(overload("aws_standard", rate=100.0), seed=5)
    ada = run(calm, seed=5)
    assert (std.attempts.outcome == "rejected").sum() == 0
    for name in ("requests", "attempts"):
        a, b = getattr(std, name), getattr(ada, name)
        assert a.equals(b), name
    assert not (ada.events.kind == "rate_limit").any()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_under_overload_it_sends_near_capacity_and_is_hardly_throttled(seed: int) -> None:
    std, ada = run(overload("aws_standard"), seed=seed), run(overload(), seed=seed)

    def steady(r):  # sent tries from 10 s on, once CUBIC has found the capacity
        a = r.attempts
        return a[a.sent & (a.start >= 10) & (a.start < 40)]

    s, a = steady(std), steady(ada)
    assert (s.outcome == "rejected").mean() > 0.3  # standard mode: ~47 % of sends rejected
    assert (a.outcome == "rejected").mean() < 0.01  # adaptive: the client holds them back
    rate = len(a) / 30.0
    assert 0.6 * CAPACITY < rate < CAPACITY  # CUBIC saws between 0.7 W_max and W_max
    assert len(s) / 30.0 > 1.5 * CAPACITY
    # tries that waited for a token say so in `wait` (there is no backoff before a first try)
    first = ada.attempts[(ada.attempts.attempt == 1) & ada.attempts.sent]
    assert (first.wait > 0).mean() > 0.5
    ev = ada.events[ada.events.kind == "rate_limit"]
    assert len(ev) >= 3 and (ev.value >= 0.5).all()


def test_no_try_is_sent_without_a_token() -> None:
    """Replay the run's sends and responses through a fresh limiter: every send finds a
    token (up to float rounding of the refills), and the rate after each throttling reply
    is the one the run recorded."""
    res = run(overload(), seed=4)
    a = res.attempts
    sent = a[a.sent]
    throttling = {"rejected", "shed"}
    ev = [(t, 0, True, False) for t in sent.start] + [
        (t, 1, False, o in throttling) for t, o in zip(sent.end, sent.outcome, strict=True)]
    ev.sort(key=lambda e: (e[0], e[1]))  # a try refused at once is sent before its response
    lim = AdaptiveRateLimiter(AdaptiveRateConfig(), 0.0)
    rates = []
    short = 0
    for t, _, is_send, throttled in ev:
        if is_send:
            if lim.enabled:
                lim._refill(t)
                short += lim.capacity < 1 - 1e-6
                lim.capacity -= 1
        else:
            lim.response(t, throttled)
            if throttled:
                rates.append(lim.fill_rate)
    assert short == 0
    recorded = res.events[res.events.kind == "rate_limit"].value.to_numpy()
    np.testing.assert_allclose(recorded, rates, rtol=1e-9)


def test_a_try_whose_deadline_passes_while_waiting_is_never_sent() -> None:
    res = run(overload(), seed=2)
    a = res.attempts
    expired = res.events[res.events.kind == "rate_limit_expired"]
    unsent = a[~a.sent & (a.outcome == "throttled")]
    assert len(expired) > 100 and len(unsent) == len(expired)
    assert (unsent.instance == -1).all()
    # they waited to the call's deadline (5 s after the request started)
    req = res.requests.set_index("request_id").loc[unsent.request_id]
    np.testing.assert_allclose(unsent.end.to_numpy(), req.start.to_numpy() + 5.0, atol=1e-9)


def test_one_limiter_per_client_member_unless_shared() -> None:
    own = run(overload(count=3, rate=100.0), seed=1)
    comps = set(own.events[own.events.kind == "rate_limit"].component)
    assert comps <= {"sdk->api#0", "sdk->api#1", "sdk->api#2"} and len(comps) >= 2
    shared = run(overload(count=3, rate=100.0, scope="shared"), seed=1)
    assert set(shared.events[shared.events.kind == "rate_limit"].component) == {"sdk->api"}


def test_the_limiter_needs_throttling_outcomes() -> None:
    sc = copy.deepcopy(overload())
    sc["clients"]["sdk"]["retry"] = {"rate_limiter": {}}
    with pytest.raises(Exception, match="rate_limiter: needs throttling_outcomes"):
        run(sc)
