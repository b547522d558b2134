"""Bulkheads, the priority shedder and the adaptive throttles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from simres.errors import PolicyConfigError
from simres.outcomes import ERROR, OK, REJECTED, SHED, TIMEOUT
from simres.policies import (
    ADMIT,
    REJECT,
    WAIT,
    BulkheadConfig,
    SheddingConfig,
    ThrottleConfig,
)

# ---------------------------------------------------------------- bulkhead


def test_semaphore_without_wait_rejects_at_once() -> None:
    bulkhead = BulkheadConfig(max_concurrent=2).build()
    assert [bulkhead.try_enter(0.0) for _ in range(3)] == [ADMIT, ADMIT, REJECT]
    assert bulkhead.active == 2 and bulkhead.max_wait == 0.0
    assert bulkhead.leave(1.0) is None
    assert bulkhead.try_enter(1.0) == ADMIT


def test_semaphore_waiters_are_served_fifo() -> None:
    bulkhead = BulkheadConfig(max_concurrent=1, max_wait=0.5).build()
    assert bulkhead.try_enter(0.0) == ADMIT
    for name in ("a", "b", "c"):
        assert bulkhead.try_enter(0.0) == WAIT
        bulkhead.enqueue(0.0, name)
    assert bulkhead.waiting == 3
    assert bulkhead.leave(0.1) == "a"
    assert bulkhead.active == 1  # the slot passed to "a"
    assert bulkhead.try_enter(0.1) == WAIT  # a newcomer cannot overtake "b"


def test_abandoned_waiters_are_skipped() -> None:
    bulkhead = BulkheadConfig(max_concurrent=1, max_wait=0.5).build()
    bulkhead.try_enter(0.0)
    for name in ("a", "b"):
        bulkhead.try_enter(0.0)
        bulkhead.enqueue(0.0, name)
    assert bulkhead.abandon("a") is True
    assert bulkhead.waiting == 1
    assert bulkhead.leave(0.6) == "b"
    assert bulkhead.abandon("b") is False  # already handed a slot: the caller holds it
    assert bulkhead.leave(0.7) is None
    assert bulkhead.active == 0 and bulkhead.waiting == 0


def test_token_queued_twice_is_an_error() -> None:
    bulkhead = BulkheadConfig(max_concurrent=1, max_wait=1.0).build()
    bulkhead.try_enter(0.0)
    bulkhead.enqueue(0.0, "a")
    with pytest.raises(PolicyConfigError, match="token"):
        bulkhead.enqueue(0.0, "a")


def test_pool_has_a_bounded_queue_and_no_wait_limit() -> None:
    bulkhead = BulkheadConfig(kind="pool", max_concurrent=1, queue_size=2).build()
    assert bulkhead.max_wait is None
    assert bulkhead.try_enter(0.0) == ADMIT
    for token in (1, 2):
        assert bulkhead.try_enter(0.0) == WAIT
        bulkhead.enqueue(0.0, token)
    assert bulkhead.try_enter(0.0) == REJECT
    assert bulkhead.rejected_count == 1


@pytest.mark.parametrize(("preset", "kind", "limit"), [
    ("resilience4j", "semaphore", 25), ("resilience4j_pool", "pool", 25),
    ("polly", "pool", 1000), ("envoy", "pool", 1024)])
def test_bulkhead_presets(preset: str, kind: str, limit: int) -> None:
    config = BulkheadConfig(preset=preset)
    assert (config.kind, config.max_concurrent) == (kind, limit)


@settings(max_examples=80, deadline=None)
@given(limit=st.integers(1, 4), kind=st.sampled_from(["semaphore", "pool"]),
       ops=st.lists(st.sampled_from(["enter", "leave", "abandon"]), max_size=150))
def test_bulkhead_accounting_is_consistent(limit: int, kind: str, ops: list[str]) -> None:
    bulkhead = BulkheadConfig(kind=kind, max_concurrent=limit, max_wait=1.0,
                              queue_size=3).build()
    holders = 0
    waiters: list[object] = []
    for op in ops:
        if op == "enter":
            verdict = bulkhead.try_enter(0.0)
            if verdict == ADMIT:
                holders += 1
            elif verdict == WAIT:
                token = object()
                bulkhead.enqueue(0.0, token)
                waiters.append(token)
        elif op == "leave" and holders:
            woken = bulkhead.leave(0.0)
            holders -= 1
            if woken is not None:
                waiters.remove(woken)
                holders += 1
        elif op == "abandon" and waiters:
            assert bulkhead.abandon(waiters.pop(0))
        assert bulkhead.active == holders <= limit
        assert bulkhead.waiting == len(waiters) >= 0


# ---------------------------------------------------------------- shedding


def test_default_thresholds_shed_lowest_first() -> None:
    shedder = SheddingConfig(signal="utilization").build()
    load = 0.85
    assert [shedder.should_shed(p, load, 0) for p in ("critical", "high", "medium", "low")] == [
        False, False, False, True]
    assert [shedder.should_shed(p, 0.92, 0) for p in ("high", "medium")] == [False, True]
    assert shedder.should_shed("high", 0.96, 0)
    assert not shedder.should_shed("critical", 10.0, 10_000)


def test_threshold_is_strictly_above() -> None:
    shedder = SheddingConfig(signal="utilization").build()
    assert not shedder.should_shed("low", 0.8, 0)


@pytest.mark.parametrize(("signal", "util", "queue", "load"), [
    ("utilization", 0.5, 90, 0.5), ("queue", 0.5, 90, 0.9), ("both", 0.5, 90, 0.9),
    ("both", 0.95, 10, 0.95)])
def test_load_signals(signal: str, util: float, queue: int, load: float) -> None:
    shedder = SheddingConfig(signal=signal, queue_limit=100).build()
    assert shedder.load(util, queue) == pytest.approx(load)


def test_sre_criticality_aliases() -> None:
    shedder = SheddingConfig(signal="utilization", thresholds={"sheddable": 0.5,
                                                               "sheddable_plus": 0.7}).build()
    assert shedder.config.thresholds == {"critical": None, "high": 0.95, "medium": 0.7,
                                         "low": 0.5}
    assert shedder.should_shed("sheddable", 0.6, 0) and shedder.should_shed("low", 0.6, 0)
    assert not shedder.should_shed("critical_plus", 5.0, 0)


def test_unknown_priority() -> None:
    with pytest.raises(ValidationError, match="unknown priority"):
        SheddingConfig(thresholds={"urgent": 0.5})
    with pytest.raises(PolicyConfigError, match="urgent"):
        SheddingConfig().build().should_shed("urgent", 0.5, 0)


def test_negative_threshold_rejected() -> None:
    with pytest.raises(ValidationError, match=r"thresholds\.low"):
        SheddingConfig(thresholds={"low": -0.1})


# ---------------------------------------------------------------- throttle


def test_sre_rejection_probability() -> None:
    throttle = ThrottleConfig().build()
    for i in range(100):
        throttle.record(0.0, accepted=i < 40)
    assert throttle.reject_probability(0.0) == pytest.approx((100 - 2 * 40) / 101)


def test_sre_no_rejection_while_accepts_keep_up() -> None:
    throttle = ThrottleConfig(preset="sre").build()
    for i in range(100):
        throttle.record(0.0, accepted=i % 2 == 0)  # 50 % accepted, K = 2
    assert throttle.reject_probability(0.0) == 0.0
    assert not throttle.should_reject(0.0, 0.0)


def test_sre_counts_local_rejections_as_requests() -> None:
    throttle = ThrottleConfig().build()
    for _ in range(10):
        throttle.record(0.0, accepted=False)
    p = throttle.reject_probability(0.0)
    assert throttle.should_reject(0.0, p / 2)
    assert throttle.requests == 10  # should_reject records nothing by itself
    throttle.record_rejection(0.0)
    assert (throttle.requests, throttle.accepts) == (11, 0)
    assert not throttle.should_reject(0.0, 0.999)
    assert throttle.rejected_count == 1


def test_sre_window_slides() -> None:
    throttle = ThrottleConfig(window=10, buckets=10).build()
    for _ in range(10):
        throttle.record(0.0, accepted=False)
    assert throttle.reject_probability(9.9) > 0.9
    assert throttle.reject_probability(10.0) == 0.0


def test_envoy_admission_control_formula() -> None:
    throttle = ThrottleConfig(preset="envoy", aggression=2.0).build()
    for i in range(100):
        throttle.record(0.0, accepted=i < 50)
    raw = (100 - 50 / 0.95) / 101
    assert throttle.reject_probability(0.0) == pytest.approx(raw ** 0.5)


def test_envoy_rejection_capped_and_not_counted() -> None:
    throttle = ThrottleConfig(preset="envoy").build()
    for _ in range(100):
        throttle.record(0.0, accepted=False)
    assert throttle.reject_probability(0.0) == 0.8
    assert throttle.should_reject(0.0, 0.5)
    throttle.record_rejection(0.0)
    assert throttle.requests == 100  # Envoy counts only requests sent upstream


def test_envoy_rps_threshold() -> None:
    throttle = ThrottleConfig(preset="envoy", rps_threshold=5.0).build()  # 150 per 30 s
    for _ in range(100):
        throttle.record(0.0, accepted=False)
    assert throttle.reject_probability(0.0) == 0.0
    for _ in range(50):
        throttle.record(0.0, accepted=False)
    assert throttle.reject_probability(0.0) > 0


def test_record_outcome() -> None:
    throttle = ThrottleConfig().build()
    for outcome in (OK, ERROR, SHED, REJECTED, TIMEOUT):
        throttle.record_outcome(0.0, outcome)
    assert (throttle.requests, throttle.accepts) == (5, 1)


def test_throttle_config_validation() -> None:
    with pytest.raises(ValidationError):
        ThrottleConfig(mode="aimd")
    with pytest.raises(ValidationError):
        ThrottleConfig(max_rejection=1.5)
    with pytest.raises(ValidationError, match="not_accepted"):
        ThrottleConfig(not_accepted=("ok",))
