"""``AdaptiveRateLimiter`` against botocore's adaptive retry mode (installed from PyPI).

botocore's own objects decide: ``adaptive.ClientRateLimiter`` over a ``bucket.TokenBucket``,
an ``adaptive.RateClocker`` and a ``throttling.CubicCalculator``, with a
``standard.ThrottlingErrorDetector``, wired as ``adaptive.register_retry_handler`` wires
them but on a fake clock: the bucket's condition variable is replaced by one whose
``wait(t)`` advances the clock by ``t`` (one thread, as a single caller is), so a blocked
``acquire`` returns at the time a token is due. A randomised sequence of sends and
responses (throttling errors ``ThrottlingException``/429, other errors, successes) at random
gaps goes to both; every send's grant time, and after every response the fill rate,
capacity, tokens, measured rate and CUBIC parameters, are compared.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, ClassVar

import numpy as np
from botocore.retries import adaptive, bucket, standard, throttling

from simres.policies.aws_adaptive import MIN_WAIT, AdaptiveRateConfig, AdaptiveRateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0  # an epoch time, as time.time() gives

    def current_time(self) -> float:
        return self.t

    def sleep(self, amount: float) -> None:
        self.t += amount


class FakeCondition:
    """``threading.Condition`` for one thread on the fake clock: ``wait(t)`` lets t pass."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __enter__(self) -> FakeCondition:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def wait(self, timeout: float) -> bool:
        self.clock.t += max(timeout, MIN_WAIT)  # a real wait takes at least ~1 us (see MIN_WAIT)
        return False

    def notify(self) -> None:
        return None


class Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


class Operation:
    name = "GetItem"
    error_shapes: ClassVar[list[Any]] = []
    service_model = type("ServiceModel", (), {"service_name": "dynamodb"})()


def botocore_limiter(clock: Clock) -> tuple[adaptive.ClientRateLimiter, bucket.TokenBucket, Any, Any]:
    cubic = throttling.CubicCalculator(starting_max_rate=0, start_time=clock.current_time())
    tb = bucket.TokenBucket(max_rate=1, clock=clock)
    tb._new_fill_rate_condition = FakeCondition(clock)  # type: ignore[assignment]
    clocker = adaptive.RateClocker(clock)
    detector = standard.ThrottlingErrorDetector(retry_event_adapter=standard.RetryEventAdapter())
    lim = adaptive.ClientRateLimiter(rate_adjustor=cubic, rate_clocker=clocker, token_bucket=tb,
                                     throttling_detector=detector, clock=clock)
    return lim, tb, cubic, clocker


_REPLIES = {"ok": (200, None), "throttling": (400, "ThrottlingException"), "429": (429, "TooManyRequests"),
            "error": (500, "InternalError"), "slowdown": (503, "SlowDown")}
_THROTTLING = {"throttling", "429", "slowdown"}  # SlowDown is in botocore's throttled error codes


def run_one(seed: int, check: Any, cfg: AdaptiveRateConfig | None = None) -> None:
    gen = np.random.default_rng(seed)
    clock = Clock()
    lim, tb, cubic, clocker = botocore_limiter(clock)
    ours = AdaptiveRateLimiter(cfg or AdaptiveRateConfig(), start_time=clock.t)
    p_throttle = float(gen.choice([0.02, 0.1, 0.3]))
    gap = float(gen.choice([0.005, 0.05, 0.3]))
    for _ in range(300):
        clock.t += float(gen.exponential(gap))
        if gen.random() < 0.5:
            # a send: botocore blocks until its token; ours says how long to wait, then re-checks
            t0 = clock.t
            lim.on_sending_request(request=None)
            lib_at = clock.t
            at, wait = t0, ours.send(t0, waiter="me")
            while wait > 0:
                at += wait
                wait = ours.retry_send(at, waiter="me")
            check(at == lib_at and ours.capacity == tb.available_capacity,
                  ("send", t0, at, lib_at, ours.capacity, tb.available_capacity))
            clock.t = lib_at
        else:
            kind = "ok" if gen.random() > p_throttle else str(gen.choice(sorted(_THROTTLING | {"error"})))
            status, code = _REPLIES[kind]
            parsed = {} if code is None else {"Error": {"Code": code}}
            lim.on_receiving_response(response=(Response(status), parsed), attempts=1, operation=Operation(),
                                      caught_exception=None, request_dict={"context": {}})
            ours.response(clock.t, throttled=kind in _THROTTLING)
            params = cubic.get_params_snapshot()
            same = (ours.fill_rate == tb.max_rate and ours.max_capacity == tb.max_capacity
                    and ours.capacity == tb.available_capacity and ours.measured_rate == clocker.measured_rate
                    and ours.w_max == params.w_max and ours.k == params.k and ours.last_fail == params.last_fail
                    and ours.enabled == lim._enabled)
            check(same, ("response", kind, clock.t, ours.fill_rate, tb.max_rate, ours.capacity,
                         tb.available_capacity, ours.w_max, params.w_max))


def test_aws_adaptive_matches_botocore_decision_by_decision(tally: Any) -> None:
    t = tally("botocore adaptive ClientRateLimiter + TokenBucket + CUBIC vs AdaptiveRateLimiter",
              f"botocore {version('botocore')}")
    for seed in range(40):
        run_one(seed, t.check)
    t.assert_clean()


def test_the_comparison_is_sharp() -> None:
    """A limiter that caps the fill rate at 3x (not 2x) the measured rate must diverge."""
    bad: list[bool] = []
    for seed in range(10):
        run_one(seed, lambda same, what: bad.append(not same), AdaptiveRateConfig(max_rate_adjust_scale=3.0))
    assert any(bad)


def test_throttling_enables_the_bucket_and_a_send_then_waits() -> None:
    """Before any throttling, sends never wait; after one, the fill rate is 0.7 x the measured
    rate and a burst of sends is spaced at the fill rate."""
    ours = AdaptiveRateLimiter(AdaptiveRateConfig(), start_time=0.0)
    t = 0.0
    for _ in range(200):  # 20 responses/s for 10 s
        t += 0.05
        assert ours.send(t) == 0.0
        ours.response(t, throttled=False)
    ours.response(t, throttled=True)
    assert ours.enabled and ours.fill_rate == ours.measured_rate * 0.7
    waits = [ours.send(t + 1e-6 * i, waiter=i) for i in range(30)]
    assert sum(w == 0.0 for w in waits) <= ours.max_capacity + 1
    assert max(waits) > 0
