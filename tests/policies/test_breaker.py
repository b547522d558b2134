"""Circuit breaker: Resilience4j, Polly, pybreaker and Finagle behaviour, driven by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from simres.errors import PolicyConfigError
from simres.outcomes import BULKHEAD_FULL, CANCELLED, ERROR, OK, SHED, TIMEOUT
from simres.policies import CLOSED, HALF_OPEN, OPEN, BreakerConfig, CircuitBreaker


def feed(breaker: CircuitBreaker, outcomes: list[str], now: float = 0.0,
         duration: float = 0.01) -> None:
    """Admit and complete one call per outcome, all at ``now``."""
    for outcome in outcomes:
        permit = breaker.allow(now)
        assert permit is not None, f"rejected while feeding {outcome}"
        breaker.on_result(now, permit, outcome, duration)


def r4j(**kw: object) -> CircuitBreaker:
    return BreakerConfig.model_validate({"preset": "resilience4j", **kw}).build()


# ---------------------------------------------------------------- Resilience4j count window


def test_count_window_waits_for_minimum_calls() -> None:
    breaker = r4j(window={"kind": "count", "size": 10}, minimum_calls=10)
    feed(breaker, [ERROR] * 9)
    assert breaker.state == CLOSED  # 100 % failures, but only 9 calls
    feed(breaker, [ERROR])
    assert breaker.state == OPEN


def test_count_window_trips_exactly_at_threshold() -> None:
    breaker = r4j(window={"kind": "count", "size": 10}, minimum_calls=10)
    feed(breaker, [OK] * 5 + [ERROR] * 4)
    feed(breaker, [OK])
    assert breaker.state == CLOSED  # 4/10 < 0.5
    breaker = r4j(window={"kind": "count", "size": 10}, minimum_calls=10)
    feed(breaker, [OK] * 5 + [ERROR] * 4)
    feed(breaker, [ERROR])
    assert breaker.state == OPEN  # 5/10 >= 0.5


def test_threshold_exactly_for_decimal_ratios() -> None:
    breaker = r4j(window={"kind": "count", "size": 10}, minimum_calls=10, threshold=0.3)
    feed(breaker, [OK] * 7 + [ERROR] * 3)
    assert breaker.state == OPEN


def test_count_window_minimum_capped_by_size() -> None:
    breaker = r4j(window={"kind": "count", "size": 4}, minimum_calls=100)
    feed(breaker, [ERROR] * 4)
    assert breaker.state == OPEN


def test_count_window_evicts_oldest() -> None:
    breaker = r4j(window={"kind": "count", "size": 4}, minimum_calls=4)
    feed(breaker, [ERROR, OK, OK, OK])  # 1/4
    feed(breaker, [OK])  # the error leaves the window
    assert breaker.counts(0.0) == (4, 0, 0)
    feed(breaker, [ERROR])
    assert breaker.state == CLOSED
    feed(breaker, [ERROR])
    assert breaker.state == OPEN  # 2/4


def test_resilience4j_preset_defaults() -> None:
    config = BreakerConfig(preset="resilience4j")
    assert (config.window.kind, config.window.size, config.threshold, config.minimum_calls,
            config.open_for, config.half_open, config.half_open_permits) == (
        "count", 100, 0.5, 100, 60.0, "permits", 10)
    breaker = config.build()
    feed(breaker, [ERROR] * 99)
    assert breaker.state == CLOSED
    feed(breaker, [ERROR])
    assert breaker.state == OPEN


# ---------------------------------------------------------------- open and half-open


def test_open_rejects_until_open_for_then_half_opens_lazily() -> None:
    breaker = r4j(window={"kind": "count", "size": 2}, minimum_calls=2, open_for=5.0)
    feed(breaker, [ERROR, ERROR], now=10.0)
    assert breaker.state == OPEN and breaker.open_until == 15.0
    assert breaker.allow(14.999) is None
    assert breaker.state == OPEN  # no timer: still open at the deadline until asked
    assert breaker.allow(15.0) is None  # Resilience4j half-opens strictly after (isAfter)
    assert breaker.allow(15.001) is not None
    assert breaker.state == HALF_OPEN
    assert breaker.rejected_count == 2 and breaker.opened_count == 1


def test_half_open_at_the_deadline_when_asked() -> None:
    breaker = r4j(window={"kind": "count", "size": 2}, minimum_calls=2, open_for=5.0,
                  half_open_at="deadline")
    feed(breaker, [ERROR, ERROR], now=10.0)
    assert breaker.allow(15.0) is not None and breaker.state == HALF_OPEN


def test_half_open_admits_exactly_the_permits() -> None:
    breaker = r4j(window={"kind": "count", "size": 2}, minimum_calls=2, open_for=1.0,
                  half_open_permits=3)
    feed(breaker, [ERROR, ERROR])
    permits = [breaker.allow(1.5) for _ in range(4)]
    assert [p is not None for p in permits] == [True, True, True, False]


def test_half_open_decides_after_min_of_minimum_calls_and_permits() -> None:
    breaker = r4j(window={"kind": "count", "size": 4}, minimum_calls=4, open_for=1.0,
                  half_open_permits=10)
    feed(breaker, [ERROR] * 4)
    permits = [breaker.allow(1.5) for _ in range(10)]
    for p in permits[:3]:
        breaker.on_result(1.1, p, OK, 0.01)  # type: ignore[arg-type]
    assert breaker.state == HALF_OPEN
    breaker.on_result(1.1, permits[3], OK, 0.01)  # type: ignore[arg-type]
    assert breaker.state == CLOSED  # min(4, 10) results, 0 % failures


def test_half_open_reopens_when_rate_reaches_threshold() -> None:
    breaker = r4j(window={"kind": "count", "size": 2}, minimum_calls=2, open_for=1.0,
                  half_open_permits=10)
    feed(breaker, [ERROR, ERROR])
    permits = [breaker.allow(1.5) for _ in range(10)]
    outcomes = [ERROR] * 5 + [OK] * 4
    # minimum_calls 2 < permits 10: the verdict comes after 2 results
    breaker.on_result(1.1, permits[0], outcomes[0], 0.01)  # type: ignore[arg-type]
    breaker.on_result(1.1, permits[5], OK, 0.01)  # type: ignore[arg-type]
    assert breaker.state == OPEN  # 1/2 >= 0.5
    assert breaker.open_until == pytest.approx(2.1)


def test_half_open_with_ten_permits_and_default_minimum() -> None:
    breaker = BreakerConfig(preset="resilience4j", window={"kind": "count", "size": 10},
                            minimum_calls=10, open_for=1.0).build()
    feed(breaker, [ERROR] * 10)
    permits = [breaker.allow(2.0) for _ in range(10)]
    assert breaker.allow(2.0) is None
    for i, p in enumerate(permits):
        assert breaker.state == HALF_OPEN
        breaker.on_result(2.5, p, ERROR if i < 4 else OK, 0.01)  # type: ignore[arg-type]
    assert breaker.state == CLOSED  # 4/10 < 0.5, decided after all ten


def test_release_returns_a_half_open_permit() -> None:
    breaker = r4j(window={"kind": "count", "size": 2}, minimum_calls=2, open_for=1.0,
                  half_open_permits=1)
    feed(breaker, [ERROR, ERROR])
    p = breaker.allow(1.5)
    assert breaker.allow(1.5) is None
    breaker.release(p)  # type: ignore[arg-type]
    assert breaker.allow(1.5) is not None


def test_local_outcomes_release_instead_of_counting() -> None:
    breaker = r4j(window={"kind": "count", "size": 2}, minimum_calls=2, open_for=1.0,
                  half_open_permits=1)
    feed(breaker, [ERROR, ERROR])
    p = breaker.allow(1.5)
    breaker.on_result(1.0, p, BULKHEAD_FULL, 0.0)  # type: ignore[arg-type]
    assert breaker.state == HALF_OPEN
    assert breaker.allow(1.5) is not None


def test_half_open_max_wait_reopens() -> None:
    breaker = r4j(window={"kind": "count", "size": 2}, minimum_calls=2, open_for=1.0,
                  half_open_permits=1, half_open_max_wait=3.0)
    feed(breaker, [ERROR, ERROR])
    assert breaker.allow(1.5) is not None  # a probe that never reports
    assert breaker.allow(4.4) is None and breaker.state == HALF_OPEN
    assert breaker.allow(4.5) is None and breaker.state == OPEN
    assert breaker.open_until == 5.5


# ---------------------------------------------------------------- Polly


def polly(**kw: object) -> CircuitBreaker:
    return BreakerConfig.model_validate({"preset": "polly", **kw}).build()


def test_polly_preset_defaults() -> None:
    config = BreakerConfig(preset="polly")
    assert (config.threshold, config.minimum_calls, config.open_for, config.window.kind,
            config.window.size, config.window.buckets, config.half_open) == (
        0.1, 100, 5.0, "rolling", 30.0, 10, "single_probe")


def test_polly_single_probe() -> None:
    breaker = polly(minimum_calls=2)
    feed(breaker, [ERROR, ERROR])
    assert breaker.state == OPEN
    probe = breaker.allow(5.0)
    assert probe is not None and breaker.state == HALF_OPEN
    assert breaker.allow(5.0) is None and breaker.allow(100.0) is None
    breaker.on_result(100.5, probe, OK, 95.5)
    assert breaker.state == CLOSED


def test_polly_probe_failure_reopens() -> None:
    breaker = polly(minimum_calls=2)
    feed(breaker, [ERROR, ERROR])
    probe = breaker.allow(5.0)
    breaker.on_result(5.2, probe, TIMEOUT, 0.2)  # type: ignore[arg-type]
    assert breaker.state == OPEN and breaker.open_until == pytest.approx(10.2)


def test_polly_probe_that_never_finishes_blocks() -> None:
    breaker = polly(minimum_calls=2)
    feed(breaker, [ERROR, ERROR])
    assert breaker.allow(5.0) is not None
    assert all(breaker.allow(5.0 + t) is None for t in (1, 60, 3600, 1e6))


def test_polly_evaluates_only_when_a_failure_arrives() -> None:
    breaker = polly(minimum_calls=4, threshold=0.5)
    feed(breaker, [ERROR, ERROR, OK, OK])
    assert breaker.state == CLOSED  # 2/4 = 0.5, but the last result was a success
    feed(breaker, [ERROR])
    assert breaker.state == OPEN
    counting = r4j(window={"kind": "count", "size": 10}, minimum_calls=4)
    feed(counting, [ERROR, ERROR, OK, OK][:3])
    feed(counting, [OK])
    assert counting.state == OPEN  # the count window evaluates on every result


def test_polly_rolling_window_forgets_old_failures() -> None:
    breaker = polly(minimum_calls=3, threshold=0.5)
    feed(breaker, [ERROR, ERROR], now=0.0)
    feed(breaker, [OK, OK], now=29.0)
    feed(breaker, [ERROR], now=30.5)  # the t=0 failures left the 30 s window
    assert breaker.counts(30.5) == (3, 1, 0)
    assert breaker.state == CLOSED


# ---------------------------------------------------------------- pybreaker


def test_pybreaker_fifth_consecutive_failure_opens() -> None:
    breaker = BreakerConfig(preset="pybreaker").build()
    feed(breaker, [ERROR] * 4 + [OK] + [ERROR] * 4)
    assert breaker.state == CLOSED and breaker.consecutive_failures == 4
    feed(breaker, [ERROR])
    assert breaker.state == OPEN and breaker.open_until == 60.0


def test_pybreaker_half_open_admits_everyone_first_result_decides() -> None:
    breaker = BreakerConfig(preset="pybreaker").build()
    feed(breaker, [ERROR] * 5)
    permits = [breaker.allow(60.0) for _ in range(50)]
    assert all(p is not None for p in permits)
    breaker.on_result(60.1, permits[7], OK, 0.1)  # type: ignore[arg-type]
    assert breaker.state == CLOSED
    breaker2 = BreakerConfig(preset="pybreaker").build()
    feed(breaker2, [ERROR] * 5)
    p = breaker2.allow(60.0)
    breaker2.on_result(60.1, p, ERROR, 0.1)  # type: ignore[arg-type]
    assert breaker2.state == OPEN


def test_non_failure_outcomes_reset_the_streak() -> None:
    breaker = BreakerConfig(trip="consecutive", failure_threshold=2).build()
    feed(breaker, [ERROR, SHED, ERROR])
    assert breaker.state == CLOSED  # shed is not in failure_outcomes by default
    breaker = BreakerConfig(trip="consecutive", failure_threshold=2,
                            failure_outcomes=("error", "shed")).build()
    feed(breaker, [ERROR, SHED])
    assert breaker.state == OPEN


# ---------------------------------------------------------------- time window (Resilience4j)


def test_time_window_buckets_align_to_whole_seconds() -> None:
    breaker = BreakerConfig(window={"kind": "time", "size": 10}, minimum_calls=3,
                            threshold=0.5).build()
    feed(breaker, [ERROR], now=0.5)
    feed(breaker, [OK], now=9.9)
    assert breaker.counts(9.99) == (2, 1, 0)
    assert breaker.counts(10.0) == (1, 0, 0)  # second 0 left the window at t = 10
    feed(breaker, [ERROR], now=10.2)
    assert breaker.state == CLOSED  # 2 calls < minimum 3 (min is not capped by size here)
    feed(breaker, [ERROR], now=10.3)
    assert breaker.state == OPEN


def test_time_window_size_must_be_whole() -> None:
    with pytest.raises(ValidationError, match="whole number"):
        BreakerConfig(window={"kind": "time", "size": 2.5})


# ---------------------------------------------------------------- slow calls


def test_slow_rate_trips() -> None:
    breaker = BreakerConfig(trip="slow_rate", slow_call_duration=1.0, slow_threshold=0.5,
                            window={"kind": "count", "size": 4}, minimum_calls=4).build()
    feed(breaker, [OK, OK], duration=1.0)  # exactly the limit is not slow
    feed(breaker, [OK], duration=1.5)
    feed(breaker, [ERROR], duration=0.1)
    assert breaker.state == CLOSED  # 1/4 slow; failures do not matter for slow_rate
    feed(breaker, [OK], duration=2.0)
    assert breaker.state == OPEN


def test_failure_rate_mode_also_trips_on_slow_calls() -> None:
    breaker = BreakerConfig(slow_call_duration=1.0, slow_threshold=1.0,
                            window={"kind": "count", "size": 3}, minimum_calls=3).build()
    feed(breaker, [OK] * 3, duration=5.0)
    assert breaker.state == OPEN


def test_slow_threshold_none_disables_slow_tripping() -> None:
    breaker = BreakerConfig(slow_call_duration=1.0, slow_threshold=None,
                            window={"kind": "count", "size": 3}, minimum_calls=3).build()
    feed(breaker, [OK] * 3, duration=5.0)
    assert breaker.state == CLOSED


# ---------------------------------------------------------------- open duration


def open_durations(breaker: CircuitBreaker, times: int) -> list[float]:
    """Trip, wait for half-open, fail the probe, repeatedly; return each open duration."""
    now = 0.0
    if breaker.state == CLOSED:
        feed(breaker, [ERROR], now=now)
    got = []
    for _ in range(times):
        got.append(breaker.open_until - now)
        now = breaker.open_until
        probe = breaker.allow(now)
        breaker.on_result(now, probe, ERROR, 0.0)  # type: ignore[arg-type]
    return got


def test_open_duration_grows_and_is_capped() -> None:
    breaker = BreakerConfig(trip="consecutive", failure_threshold=1, open_for=1.0,
                            open_for_multiplier=2.0, open_for_max=5.0,
                            half_open="single_probe").build()
    assert open_durations(breaker, 6) == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert breaker.consecutive_opens == 7  # six probes failed after the first open


def test_open_duration_resets_after_closing() -> None:
    breaker = BreakerConfig(trip="consecutive", failure_threshold=1, open_for=1.0,
                            open_for_multiplier=3.0, half_open="single_probe").build()
    open_durations(breaker, 3)
    now = breaker.open_until
    breaker.on_result(now, breaker.allow(now), OK, 0.0)  # type: ignore[arg-type]
    assert breaker.state == CLOSED and breaker.consecutive_opens == 0
    feed(breaker, [ERROR], now=now)
    assert breaker.open_until - now == 1.0


def test_finagle_equal_jitter_open_durations() -> None:
    config = BreakerConfig(preset="finagle")
    with pytest.raises(PolicyConfigError, match="rng"):
        config.build()
    breaker = config.build(rng=np.random.default_rng(5))
    feed(breaker, [ERROR] * 5)
    assert breaker.open_until == 5.0  # the first open lasts exactly open_for
    got = open_durations(breaker, 12)
    assert got[0] == 5.0
    got = got[1:]
    u = np.random.default_rng(5).random(12)
    expected = []
    for k in range(2, 13):  # the k-th consecutive open
        half = 5.0 * 2 ** (k - 2)
        expected.append(300.0 if half >= 300 else min(300.0, half + u[k - 2] * half))
    assert got == pytest.approx(expected)
    assert 5.0 <= got[0] < 10.0 and got[-1] == 300.0


def test_open_for_huge_growth_does_not_overflow() -> None:
    breaker = BreakerConfig(trip="consecutive", failure_threshold=1, open_for=1.0,
                            open_for_multiplier=1e10, half_open="single_probe").build()
    breaker._opens_in_row = 10_000
    assert breaker._open_duration() == float("inf")


# ---------------------------------------------------------------- late results


def late_setup(count_late: bool) -> tuple[CircuitBreaker, int]:
    breaker = BreakerConfig(trip="consecutive", failure_threshold=1, open_for=1.0,
                            half_open="single_probe", count_late_results=count_late).build()
    early = breaker.allow(0.0)  # admitted while closed, result arrives much later
    feed(breaker, [ERROR], now=0.1)
    return breaker, early  # type: ignore[return-value]


def test_late_results_ignored_by_default() -> None:
    breaker, early = late_setup(count_late=False)
    breaker.on_result(0.5, early, ERROR, 0.5)  # while open: never matters
    assert breaker.open_until == 1.1
    probe = breaker.allow(1.1)
    breaker.on_result(1.2, early, ERROR, 1.2)  # late failure in half-open: ignored
    assert breaker.state == HALF_OPEN
    breaker.on_result(1.3, probe, OK, 0.2)  # type: ignore[arg-type]
    assert breaker.state == CLOSED


def test_late_results_counted_when_asked() -> None:
    breaker, early = late_setup(count_late=True)
    breaker.on_result(0.5, early, ERROR, 0.5)
    assert breaker.state == OPEN and breaker.open_until == 1.1  # open is never extended
    breaker.allow(1.1)
    breaker.on_result(1.2, early, ERROR, 1.2)
    assert breaker.state == OPEN  # a late failure reopens, as in Polly and pybreaker


def test_late_results_do_not_pollute_a_new_closed_window() -> None:
    breaker = BreakerConfig(trip="consecutive", failure_threshold=2, open_for=1.0,
                            half_open="all").build()
    stale = breaker.allow(0.0)
    feed(breaker, [ERROR, ERROR])
    feed(breaker, [OK], now=1.0)  # half-open -> closed
    breaker.on_result(1.5, stale, ERROR, 1.5)  # type: ignore[arg-type]
    assert breaker.consecutive_failures == 0


# ---------------------------------------------------------------- listener, config


def test_listener_sees_every_transition() -> None:
    events: list[tuple[float, str, str, str]] = []
    breaker = BreakerConfig(trip="consecutive", failure_threshold=1, open_for=2.0,
                            half_open="single_probe").build(
        listener=lambda *e: events.append(e))
    feed(breaker, [ERROR], now=1.0)
    probe = breaker.allow(3.0)
    breaker.on_result(3.5, probe, OK, 0.5)  # type: ignore[arg-type]
    assert events == [(1.0, CLOSED, OPEN, "consecutive_failures"),
                      (3.0, OPEN, HALF_OPEN, "open_elapsed"),
                      (3.5, HALF_OPEN, CLOSED, "probe_succeeded")]
    assert breaker.transitions == 3 and breaker.epoch == 3


@pytest.mark.parametrize("bad", [
    {"open_for": 10, "open_for_max": 5},
    {"trip": "slow_rate", "slow_threshold": None},
    {"failure_outcomes": ["ok"]},
    {"threshold": 0},
    {"threshold": 1.5},
    {"half_open": "some"},
    {"half_open_permits": 0},
    {"window": {"kind": "count", "size": 10.5}},
    {"window": {"kind": "sliding"}},
    {"preset": "hystrix"},
])
def test_bad_breaker_configs(bad: dict) -> None:
    with pytest.raises(ValidationError):
        BreakerConfig.model_validate(bad)


@pytest.mark.parametrize("preset", ["resilience4j", "polly", "pybreaker", "finagle"])
def test_every_breaker_preset_builds(preset: str) -> None:
    breaker = BreakerConfig(preset=preset).build(rng=np.random.default_rng(0))
    assert breaker.state == CLOSED and "CircuitBreaker" in repr(breaker)


# ---------------------------------------------------------------- properties


OPS = st.lists(st.tuples(st.sampled_from(["allow", "ok", "fail", "release", "wait"]),
                         st.integers(0, 30)), max_size=200)


@settings(max_examples=80, deadline=None)
@given(permits=st.integers(1, 5), minimum=st.integers(1, 8), ops=OPS,
       mode=st.sampled_from(["permits", "single_probe"]), late=st.booleans())
def test_half_open_admission_is_bounded(permits: int, minimum: int, ops: list,
                                        mode: str, late: bool) -> None:
    breaker = BreakerConfig(window={"kind": "count", "size": 4}, minimum_calls=minimum,
                            open_for=1.0, half_open=mode, half_open_permits=permits,
                            count_late_results=late).build()
    limit = permits if mode == "permits" else 1
    now = 0.0
    outstanding: list[int] = []
    for op, pick in ops:
        if op == "wait":
            now += 0.5
        elif op == "allow":
            p = breaker.allow(now)
            if p is not None:
                outstanding.append(p)
        elif outstanding:
            p = outstanding.pop(pick % len(outstanding))
            if op == "release":
                breaker.release(p)
            else:
                breaker.on_result(now, p, OK if op == "ok" else ERROR, 0.01)
        if breaker.state == HALF_OPEN:
            in_epoch = sum(1 for p in outstanding if p == breaker.epoch)
            assert in_epoch <= limit
        assert breaker.state in (CLOSED, OPEN, HALF_OPEN)


def test_cancelled_results_are_ignored() -> None:
    breaker = BreakerConfig(trip="consecutive", failure_threshold=1).build()
    feed(breaker, [CANCELLED] * 3)
    assert breaker.state == CLOSED
