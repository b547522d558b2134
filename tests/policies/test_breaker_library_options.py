"""The breaker options added for cockatiel and opossum, driven by hand, and the
simulated driver's half-open waiting (cockatiel's halfOpen callers await the probe)."""

from __future__ import annotations

from typing import Any

import pytest

from simres.errors import PolicyConfigError
from simres.outcomes import ERROR, OK, REJECTED
from simres.policies import BreakerConfig
from simres.policies.breaker import WAIT


def _fail(breaker: Any, now: float, n: int = 1) -> None:
    for _ in range(n):
        breaker.on_result(now, breaker.allow(now), ERROR, 0.0)


def test_cockatiel_half_open_callers_wait_for_the_probe_and_then_run() -> None:
    b = BreakerConfig(preset="cockatiel", failure_threshold=2, open_for=1.0).build()
    _fail(b, 0.0, 2)
    assert b.state == "open" and b.allow(0.5, True) is None
    probe = b.allow(1.0, True)  # at the deadline: half-open, the probe
    assert probe is not None and b.state == "half_open"
    woken: list[str] = []
    assert b.allow(1.1, True) == WAIT and b.allow(1.2, True) == WAIT
    b.wait(lambda: woken.append("first"))
    b.wait(lambda: woken.append("second"))
    assert b.allow(1.3) is None  # without can_wait (the real-time wrappers) it is a rejection
    b.on_result(1.5, probe, OK, 0.5)
    assert b.state == "closed" and woken == ["first", "second"]
    assert b.allow(1.5, True) is not None


def test_cockatiel_late_closed_failure_reopens_a_half_open_breaker_but_not_an_open_one() -> None:
    b = BreakerConfig(preset="cockatiel", failure_threshold=2, open_for=1.0).build()
    early = [b.allow(0.0) for _ in range(3)]
    b.on_result(0.1, early[0], ERROR, 0.1)
    b.on_result(0.1, early[1], ERROR, 0.1)
    assert b.state == "open" and b.open_until == 1.1
    b.on_result(0.5, early[2], ERROR, 0.5)  # counted (3 in a row), but open stays as it is
    assert b.consecutive_failures == 3 and b.open_until == 1.1
    late = b.allow(0.0 + 0.0)  # rejected while open
    assert late is None
    b2 = BreakerConfig(preset="cockatiel", failure_threshold=1, open_for=1.0).build()
    a, c = b2.allow(0.0), b2.allow(0.0)
    b2.on_result(0.1, a, ERROR, 0.1)
    probe = b2.allow(1.1)
    assert b2.state == "half_open" and probe is not None
    b2.on_result(1.2, c, ERROR, 1.2)  # a closed-state call's failure: reopens
    assert b2.state == "open" and b2.open_until == pytest.approx(2.2)
    b2.on_result(1.3, probe, OK, 0.2)  # the old probe's result is ignored
    assert b2.state == "open"


def test_cockatiel_unhandled_errors_neither_count_nor_reset_when_closed() -> None:
    b = BreakerConfig(preset="cockatiel", failure_threshold=2, failure_outcomes=["error"]).build()
    _fail(b, 0.0)
    b.on_result(0.0, b.allow(0.0), REJECTED, 0.0)  # unhandled: no reset
    assert b.consecutive_failures == 1
    _fail(b, 0.0)
    assert b.state == "open"
    plain = BreakerConfig(trip="consecutive", failure_threshold=2).build()
    _fail(plain, 0.0)
    plain.on_result(0.0, plain.allow(0.0), REJECTED, 0.0)  # today's default: a success
    assert plain.consecutive_failures == 0


def test_sampling_ring_keeps_failures_from_before_an_idle_gap() -> None:
    """cockatiel moves on one slot per result: after a gap the old slots still count."""
    b = BreakerConfig(preset="cockatiel_sampling", threshold=0.5, minimum_rps=1.0,
                      window={"kind": "sampling", "size": 5.0}).build()  # 5 slots of 1 s, >= 5
    for t in (0.0, 1.0, 2.0):
        _fail(b, t)
    assert b.counts(100.0)[:2] == (3, 3)  # reading never moves the ring
    b.on_result(100.0, b.allow(100.0), OK, 0.0)  # one slot moves on: the oldest is still there
    assert b.counts(100.0)[:2] == (4, 3)
    plain = BreakerConfig(window={"kind": "rolling", "size": 5.0, "buckets": 5}).build()
    for t in (0.0, 1.0, 2.0):
        plain.on_result(t, plain.allow(t), ERROR, 0.0)
    assert plain.counts(100.0)[:2] == (0, 0)


def test_sampling_opens_only_above_the_threshold_and_counts_the_probe_after_closing() -> None:
    b = BreakerConfig(preset="cockatiel_sampling", threshold=0.5, minimum_rps=0.8, open_for=1.0,
                      window={"kind": "sampling", "size": 5.0}).build()  # >= 4 results
    for outcome in (OK, ERROR, OK, ERROR):  # 2 of 4 = the threshold: not above it
        b.on_result(0.0, b.allow(0.0), outcome, 0.0)
    assert b.state == "closed"
    _fail(b, 0.0)  # 3 of 5 > 2.5
    assert b.state == "open"
    probe = b.allow(1.0)
    b.on_result(1.0, probe, OK, 0.0)
    assert b.state == "closed" and b.counts(1.0)[:2] == (1, 0)  # the probe, in a fresh ring
    at_or_above = BreakerConfig(preset="cockatiel_sampling", threshold=0.5, minimum_rps=0.8,
                                rate_rule="at_or_above", window={"kind": "sampling", "size": 5.0}).build()
    for outcome in (OK, ERROR, OK, ERROR):
        at_or_above.on_result(0.0, at_or_above.allow(0.0), outcome, 0.0)
    assert at_or_above.state == "open"


def test_opossum_counts_every_call_started_and_keeps_its_statistics_on_close() -> None:
    b = BreakerConfig(preset="opossum", open_for=1.0).build()
    assert set(b.config.failure_outcomes) == {"error", "timeout", "connection", "rejected", "shed"}
    ok = b.allow(0.0)
    b.on_result(0.1, b.allow(0.0), ERROR, 0.1)  # 1 failure / 2 fires = 50 %: not above 50
    assert b.state == "closed"
    b.on_result(0.2, b.allow(0.2), ERROR, 0.0)  # 2 / 3 > 50 %
    assert b.state == "open"
    assert b.allow(0.5) is None and b.counts(0.5)[:2] == (4, 2)  # the rejected call counts
    b.on_result(1.2, ok, OK, 1.2)  # at the deadline the reset timer has half-opened it:
    assert b.state == "closed"  # any success then closes
    assert b.counts(1.2)[:2] == (4, 2)  # ... and nothing is cleared


def test_opossum_buckets_of_any_width() -> None:
    cfg = BreakerConfig(preset="opossum", window={"kind": "time", "size": 0.999, "bucket_width": 0.333})
    b = cfg.build()
    b.allow(0.0)
    b.allow(0.4)
    assert b.counts(0.998)[0] == 2 and b.counts(0.999)[0] == 1 and b.counts(1.4)[0] == 0


@pytest.mark.parametrize(("fields", "message"), [
    ({"rate_denominator": "calls_started"}, "rate_denominator"),
    ({"minimum_rps": 5.0}, "minimum_rps"),
    ({"half_open_waits": True}, "half_open_waits"),
    ({"window": {"kind": "time", "size": 10, "bucket_width": 3.0}}, "size"),
    ({"window": {"kind": "count", "size": 10, "bucket_width": 3.0}}, "bucket_width"),
    ({"trip": "slow_rate", "window": {"kind": "sampling", "size": 10}}, "trip"),
])
def test_inconsistent_library_options_are_refused_naming_the_field(fields: dict[str, Any],
                                                                   message: str) -> None:
    with pytest.raises((ValueError, PolicyConfigError)) as err:
        BreakerConfig(**fields)
    assert message in str(err.value)


def test_the_simulation_lets_half_open_callers_wait_for_the_probe() -> None:
    """The driver, given cockatiel's preset: callers arriving while the probe is out wait
    for it instead of being refused, on the callback path and the process path (bulkhead)."""
    from simres.experiments.runs import run

    for extra in ({}, {"bulkhead": {"max_concurrent": 1000}}):
        sc: dict[str, Any] = {
            "duration": 30, "drain": 2,
            "services": {"api": {"workers": 50, "service_time": 0.2}},
            "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 50},
                                "timeout": 1.0, **extra}},
            "faults": [{"kind": "crash", "service": "api", "at": 5, "duration": 5, "mode": "refuse"}],
        }
        sc["clients"]["web"]["breaker"] = {"preset": "cockatiel", "open_for": 1.0}
        waiting = run(sc)
        sc["clients"]["web"]["breaker"]["half_open_waits"] = False
        rejecting = run(sc)
        ev = waiting.events[waiting.events.kind == "breaker"]
        half_at = ev[ev.detail.str.startswith("open->half_open")].time.max()
        closed_at = ev[ev.detail.str.startswith("half_open->closed")].time.max()
        assert 10 < half_at < closed_at < 11  # the last probe, after the fault

        def refused_while_probing(r: Any, half_at: float = half_at, closed_at: float = closed_at) -> int:
            a = r.attempts
            return int(((a.outcome == "breaker_open") & (a.start > half_at) & (a.start < closed_at)).sum())

        assert refused_while_probing(rejecting) > 5  # the 0.2 s probe refuses the others
        assert refused_while_probing(waiting) == 0  # ... who wait for it instead
        req = waiting.requests
        during = req[(req.start > half_at) & (req.start < closed_at)]
        assert len(during) > 5 and (during.outcome == "ok").all()


def test_minimum_window_calls_is_what_each_window_waits_for() -> None:
    """One rule for the breaker and the pre-flight check: Resilience4j's min(minimum, size),
    cockatiel's duration_ms * minimumRpms (30 s at 5 / 0.2 per second: 750), else minimum_calls."""
    assert BreakerConfig(preset="resilience4j", window={"kind": "count", "size": 20}).minimum_window_calls() == 20
    assert BreakerConfig(preset="cockatiel_sampling").minimum_window_calls() == 750
    assert BreakerConfig(preset="cockatiel_sampling", minimum_rps=2.0,
                         window={"kind": "sampling", "size": 1.234}).minimum_window_calls() == 1235 * 2 / 1000
    assert BreakerConfig(preset="opossum").minimum_window_calls() == 0
