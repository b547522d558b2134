"""The hedging policy on its own: delays, decisions and each library preset's rules."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from simres.policies.budget import GrpcBudgetConfig
from simres.policies.hedging import FAIL, FATAL, HEDGE, WAIT, WIN, HedgeConfig, parse_delay

INF = math.inf


def test_parse_delay() -> None:
    assert parse_delay(0.5) == (0.5, None)
    assert parse_delay(0) == (0.0, None)
    assert parse_delay(-1) == (INF, None)  # Polly InfiniteTimeSpan: never by timer
    assert parse_delay("p95") == (None, 95.0)
    assert parse_delay("p99.9") == (None, 99.9)
    for bad in (-0.5, "p0", "p100", "95", "fast", True):
        with pytest.raises(ValueError):
            parse_delay(bad)  # type: ignore[arg-type]


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValidationError, match="delay"):
        HedgeConfig(delay="p200")
    with pytest.raises(ValidationError, match="non_fatal"):
        HedgeConfig(non_fatal=("ok",))
    with pytest.raises(ValidationError, match="unknown hedge preset"):
        HedgeConfig(preset="istio")


def test_grpc_preset_caps_max_attempts_at_5() -> None:
    cfg = HedgeConfig(preset="grpc")
    assert (cfg.max_attempts, cfg.delay, cfg.cancel_losers) == (4, 0.5, True)
    assert cfg.attempts == 4
    assert HedgeConfig(preset="grpc", max_attempts=9).attempts == 5  # A6: higher values act as 5
    assert set(cfg.non_fatal) == {"connection", "error", "rejected", "shed"}  # DEADLINE_EXCEEDED fatal
    assert isinstance(cfg.budget, GrpcBudgetConfig)
    assert (cfg.budget.max_tokens, cfg.budget.token_ratio) == (10.0, 0.1)


def test_polly_preset_defaults() -> None:
    cfg = HedgeConfig(preset="polly")
    assert cfg.attempts == 2  # MaxHedgedAttempts 1, plus the original
    assert cfg.delay == 2.0 and cfg.budget is None and cfg.hedge_on_failure
    assert HedgeConfig(preset="polly", max_attempts=20).attempts == 11  # MaxHedgedAttempts <= 10


def test_finagle_preset_defaults() -> None:
    cfg = HedgeConfig(preset="finagle")
    assert cfg.attempts == 2 and cfg.delay == "p99"  # 1 - maxExtraLoad 1 %
    assert (cfg.refresh, cfg.min_delay, cfg.hedge_on_failure) == (3.0, 0.001, False)
    assert cfg.budget is not None and cfg.budget.percent == 0.01 and cfg.budget.min_per_second == 10.0


def test_fixed_delay() -> None:
    assert HedgeConfig(delay=0.05).build().delay(0.0) == 0.05
    assert HedgeConfig(delay=-1).build().delay(0.0) == INF


def test_percentile_is_nearest_rank_over_a_bounded_ring() -> None:
    pol = HedgeConfig(delay="p90", window=10, refresh=0).build()
    assert pol.delay(0.0) == INF  # no sample yet: no hedge by timer
    for x in range(1, 11):
        pol.record(x / 100)
    assert pol.delay(0.0) == pytest.approx(0.09)  # 9 of 10 values <= 0.09
    for _ in range(10):  # the ring forgets the oldest values
        pol.record(1.0)
    assert pol.delay(0.0) == 1.0


def test_percentile_refreshes_on_its_interval_only() -> None:
    pol = HedgeConfig(delay="p50", refresh=3.0).build()
    pol.record(0.2)
    assert pol.delay(0.0) == INF  # Finagle: no backup before the first refresh
    assert pol.delay(2.9) == INF
    assert pol.delay(3.0) == 0.2
    pol.record(0.01)
    pol.record(0.01)
    assert pol.delay(5.0) == 0.2  # still the value computed at 3 s
    assert pol.delay(6.0) == 0.01


def test_min_delay_floors_the_percentile() -> None:
    pol = HedgeConfig(delay="p99", refresh=0, min_delay=0.001).build()
    pol.record(0.0)
    assert pol.delay(0.0) == 0.001  # Finagle MinSendBackupAfterMs


def test_observe_records_successes_timeouts_and_cancelled_only() -> None:
    pol = HedgeConfig(delay="p50", refresh=0).build()
    for outcome in ("error", "connection", "rejected", "shed"):
        pol.observe(outcome, 0.001)  # fast failures would pull the delay down
    assert pol.delay(0.0) == INF
    pol.observe("ok", 0.1)
    pol.observe("timeout", 0.1)
    pol.observe("cancelled", 0.1)
    assert pol.delay(0.0) == 0.1


def test_decisions_grpc() -> None:
    call = HedgeConfig(preset="grpc").build().new_call()
    call.on_send()
    call.on_send()
    assert call.on_result("error") == HEDGE  # non-fatal: next hedge at once
    call.on_send()
    assert call.on_result("timeout") == FATAL  # DEADLINE_EXCEEDED is fatal
    call = HedgeConfig(preset="grpc").build().new_call()
    call.on_send()
    assert call.on_result("ok") == WIN


def test_non_fatal_with_nothing_left_waits_then_fails() -> None:
    call = HedgeConfig(max_attempts=2, delay=0.1).build().new_call()
    call.on_send()
    call.on_send()
    assert not call.may_send()
    assert call.on_result("error") == WAIT  # the other try is still in flight
    assert call.on_result("error") == FAIL


def test_finagle_returns_the_original_failure_before_the_backup() -> None:
    call = HedgeConfig(preset="finagle").build().new_call()
    call.on_send()
    assert call.on_result("error") == FAIL
    call = HedgeConfig(preset="finagle").build().new_call()
    call.on_send()
    call.on_send()
    assert call.on_result("error") == WAIT  # after the backup: wait for the other


def test_pushback() -> None:
    call = HedgeConfig(preset="grpc").build().new_call()
    call.on_send()
    call.on_send()
    assert call.on_result("error", retry_after=0.3) == HEDGE and call.hedge_after == 0.3
    call.on_send()
    assert call.on_result("error", retry_after=-1) == WAIT  # do not retry: no more hedges
    assert call.stopped and not call.may_send()


def test_stop_and_cancel_bookkeeping() -> None:
    call = HedgeConfig(max_attempts=3).build().new_call()
    call.on_send()
    call.on_send()
    call.on_gone()
    assert call.in_flight == 1 and call.sent == 2 and call.may_send()
    call.stop()
    assert not call.may_send()


def test_envoy_backoff_before_each_hedge_is_its_jittered_exponential_strategy() -> None:
    """JitteredExponentialBackOffStrategy with base 25 ms and max 250 ms: the n-th hedge of a
    call waits U[0, min(25 ms * 2^(n-1), 250 ms)); a failure's hedge waits it too; a hedge
    without a backoff never waits (and the resolved config keeps no backoff key)."""
    half = lambda: 0.5  # noqa: E731 - a uniform draw that is always 0.5
    hc = HedgeConfig(preset="envoy", max_attempts=8).build().new_call()
    assert hc.backs_off
    assert [hc.backoff(half) for _ in range(6)] == pytest.approx([0.0125, 0.025, 0.05, 0.1, 0.125, 0.125])
    hc = HedgeConfig(preset="envoy", max_attempts=3).build().new_call()
    hc.on_send()
    assert hc.on_result("error", None, half) == "hedge" and hc.hedge_after == pytest.approx(0.0125)
    plain = HedgeConfig(preset="polly").build().new_call()
    assert not plain.backs_off and plain.backoff(half) == 0.0
    assert "backoff" not in HedgeConfig(preset="polly").model_dump()
    assert HedgeConfig(preset="envoy").model_dump()["backoff"]["base"] == 0.025
