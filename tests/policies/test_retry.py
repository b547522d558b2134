"""Retry policy: attempt counting, retryable outcomes, server hints, presets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from simres.outcomes import CONNECTION, ERROR, OK, REJECTED, RETRYABLE_KINDS, SHED, TIMEOUT
from simres.policies import (
    BackoffConfig,
    ConcurrencyBudgetConfig,
    JitterConfig,
    RatioBudgetConfig,
    RetryConfig,
    TokenBucketBudgetConfig,
)
from simres.policies.budget import BudgetConfig

NO_JITTER = JitterConfig(kind="none")


def run_call(config: RetryConfig, outcomes: list[str], rng: np.random.Generator) -> list[float]:
    """Drive one call the way the driver does; return the waits it asked for."""
    call = config.new_call()
    delays = []
    for outcome in outcomes:
        call.on_try()
        if outcome == OK:
            break
        delay = call.next_delay(outcome, rng)
        if delay is None:
            break
        delays.append(delay)
    return delays


def test_max_attempts_counts_the_first_try(rng: np.random.Generator) -> None:
    config = RetryConfig(max_attempts=3, jitter=NO_JITTER)
    call = config.new_call()
    tries = 0
    while True:
        call.on_try()
        tries += 1
        if call.next_delay(ERROR, rng) is None:
            break
    assert tries == 3
    assert call.attempts == 3 and call.retries == 2


def test_single_attempt_never_retries(rng: np.random.Generator) -> None:
    assert run_call(RetryConfig(max_attempts=1), [ERROR, ERROR], rng) == []


def test_waits_follow_backoff(rng: np.random.Generator) -> None:
    config = RetryConfig(max_attempts=4, backoff=BackoffConfig(base=0.1), jitter=NO_JITTER)
    assert run_call(config, [TIMEOUT] * 4, rng) == pytest.approx([0.1, 0.2, 0.4])


def test_success_stops(rng: np.random.Generator) -> None:
    config = RetryConfig(max_attempts=5, jitter=NO_JITTER)
    assert len(run_call(config, [ERROR, OK, ERROR], rng)) == 1


@pytest.mark.parametrize("outcome", [REJECTED, SHED])
def test_outcomes_outside_retry_on_are_not_retried(outcome: str,
                                                   rng: np.random.Generator) -> None:
    call = RetryConfig().new_call()
    call.on_try()
    assert call.next_delay(outcome, rng) is None


def test_retry_on_can_include_shed(rng: np.random.Generator) -> None:
    call = RetryConfig(retry_on=("shed",)).new_call()
    call.on_try()
    assert call.next_delay(SHED, rng) is not None
    assert call.next_delay(ERROR, rng) is None


@pytest.mark.parametrize("bad", [("ok",), ("timeout", "bogus"), ("breaker_open",)])
def test_retry_on_is_validated(bad: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError, match="retry_on"):
        RetryConfig(retry_on=bad)


def test_retry_on_deduplicated() -> None:
    assert RetryConfig(retry_on=("error", "error")).retry_on == ("error",)


def test_retry_after_replaces_the_wait(rng: np.random.Generator) -> None:
    call = RetryConfig(max_attempts=3, jitter=NO_JITTER).new_call()
    call.on_try()
    assert call.next_delay(ERROR, rng, retry_after=7.5) == 7.5
    call.on_try()
    assert call.next_delay(ERROR, rng) == pytest.approx(0.2)  # the hint still counted a retry


def test_retry_after_ignored_when_not_honoured(rng: np.random.Generator) -> None:
    call = RetryConfig(honor_retry_after=False, jitter=NO_JITTER).new_call()
    call.on_try()
    assert call.next_delay(ERROR, rng, retry_after=7.5) == pytest.approx(0.1)


def test_negative_pushback_means_do_not_retry(rng: np.random.Generator) -> None:
    call = RetryConfig().new_call()
    call.on_try()
    assert call.next_delay(ERROR, rng, retry_after=-1) is None


def test_retry_after_does_not_extend_max_attempts(rng: np.random.Generator) -> None:
    call = RetryConfig(max_attempts=2).new_call()
    call.on_try()
    call.on_try()
    assert call.next_delay(ERROR, rng, retry_after=1.0) is None


@settings(max_examples=100, deadline=None)
@given(max_attempts=st.integers(1, 8),
       outcomes=st.lists(st.sampled_from(RETRYABLE_KINDS), min_size=1, max_size=20),
       retry_after=st.one_of(st.none(), st.floats(0, 5)),
       seed=st.integers(0, 1000))
def test_never_a_delay_after_max_attempts(max_attempts: int, outcomes: list[str],
                                          retry_after: float | None, seed: int) -> None:
    config = RetryConfig(max_attempts=max_attempts, retry_on=RETRYABLE_KINDS)
    call = config.new_call()
    rng = np.random.default_rng(seed)
    for outcome in outcomes:
        call.on_try()
        delay = call.next_delay(outcome, rng, retry_after)
        if call.attempts >= max_attempts:
            assert delay is None
        else:
            assert delay is not None and delay >= 0
    assert call.attempts <= len(outcomes)


# ---------------------------------------------------------------- presets


def test_preset_polly_counts_retries_not_attempts() -> None:
    config = RetryConfig(preset="polly")
    assert config.max_attempts == 4
    assert config.backoff.kind == "constant" and config.backoff.base == 2.0
    assert config.jitter.kind == "none"
    # no MaxDelay, TimeSpan ticks, and no DelayGenerator: a server hint is not honoured
    assert config.backoff.timespan and config.backoff.cap >= 922337203685
    assert not config.honor_retry_after


def test_preset_polly_jitter_is_decorrelated_v2() -> None:
    config = RetryConfig(preset="polly_jitter")
    assert (config.max_attempts, config.backoff.kind, config.backoff.base) == (4, "exponential", 2.0)
    assert config.jitter.kind == "polly"


def test_polly_replaced_wait_still_draws_like_a_delay_generator() -> None:
    """Polly computes its delay before a DelayGenerator replaces it: the state and the draws advance."""
    config = RetryConfig(preset="polly_jitter", honor_retry_after=True)
    draws: list[float] = []

    def rng() -> float:
        draws.append(0.5)
        return 0.5

    call = config.new_call()
    call.on_try()
    assert call.next_delay(ERROR, rng, retry_after=1.25) == 1.25
    call.on_try()
    second = call.next_delay(ERROR, rng)
    assert len(draws) == 2
    fresh = config.new_call()
    fresh.on_try()
    fresh.next_delay(ERROR, lambda: 0.5)
    fresh.on_try()
    assert fresh.next_delay(ERROR, lambda: 0.5) == second


def test_preset_resilience4j() -> None:
    config = RetryConfig(preset="resilience4j")
    assert (config.max_attempts, config.backoff.kind, config.backoff.base) == (3, "constant", 0.5)


def test_preset_envoy() -> None:
    config = RetryConfig(preset="envoy")
    assert config.max_attempts == 2
    assert (config.backoff.base, config.backoff.cap) == (0.025, 0.25)
    assert config.jitter.kind == "full"
    assert isinstance(config.budget, ConcurrencyBudgetConfig)
    assert (config.budget.budget_percent, config.budget.min_retry_concurrency) == (0.2, 3)


def test_preset_aws_standard_waits() -> None:
    config = RetryConfig(preset="aws_standard")
    assert isinstance(config.budget, TokenBucketBudgetConfig)
    assert (config.budget.capacity, config.budget.cost, config.budget.throttling_cost) == (500, 14, 5)
    # botocore 1.44 (mode 2.1): rand(0,1) * min(base * 2 ** (attempt - 1), 20), base 50 ms
    # for errors and 1 s for throttling errors
    u = np.random.default_rng(1).random(6)
    gen = np.random.default_rng(1)
    waiter = config.waiter()
    assert [waiter.next(gen, "error") for _ in range(6)] == pytest.approx(
        [u[i] * min(0.05 * 2**i, 20) for i in range(6)])
    gen = np.random.default_rng(1)
    waiter = config.waiter()
    assert [waiter.next(gen, "rejected") for _ in range(6)] == pytest.approx(
        [u[i] * min(2**i, 20) for i in range(6)])


def test_preset_aws_standard_2_0_waits() -> None:
    config = RetryConfig(preset="aws_standard_2_0")
    assert isinstance(config.budget, TokenBucketBudgetConfig)
    assert (config.budget.capacity, config.budget.cost, config.budget.timeout_cost) == (500, 5, 10)
    # botocore: rand(0,1) * min(2 ** (attempt - 1), 20) with attempt = 1 for the first retry
    u = np.random.default_rng(1).random(6)
    waiter = config.waiter()
    gen = np.random.default_rng(1)
    got = [waiter.next(gen) for _ in range(6)]
    assert got == pytest.approx([u[i] * min(2**i, 20) for i in range(6)])


def test_preset_grpc_uses_full_jitter_and_throttling() -> None:
    config = RetryConfig(preset="grpc")
    assert config.max_attempts == 4 and config.jitter.kind == "full"
    assert (config.backoff.base, config.backoff.cap, config.backoff.multiplier) == (0.1, 1.0, 2.0)
    assert config.budget is not None and config.budget.kind == "grpc"


def test_preset_finagle() -> None:
    config = RetryConfig(preset="finagle")
    assert config.jitter.kind == "decorrelated_finagle"
    assert isinstance(config.budget, RatioBudgetConfig)
    assert (config.budget.percent, config.budget.min_per_second, config.budget.ttl) == (
        0.2, 10, 10)


def test_preset_override_merges_nested_fields() -> None:
    config = RetryConfig.model_validate(
        {"preset": "aws_standard", "max_attempts": 5, "backoff": {"base": 0.05},
         "budget": {"capacity": 100}})
    assert config.max_attempts == 5
    assert config.backoff.base == 0.05 and config.backoff.cap == 20.0
    assert config.budget.capacity == 100 and config.budget.cost == 14  # type: ignore[union-attr]
    assert config.preset == "aws_standard"


def test_preset_override_with_another_budget_kind_replaces_it() -> None:
    config = RetryConfig.model_validate({"preset": "aws_standard", "budget": {"kind": "ratio"}})
    assert isinstance(config.budget, RatioBudgetConfig)


def test_preset_budget_can_be_removed() -> None:
    assert RetryConfig.model_validate({"preset": "aws_standard", "budget": None}).budget is None


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(ValidationError, match="aws_standard, aws_standard_2_0, aws_standard_dynamodb, envoy, "
                                                "finagle, grpc, polly, polly_jitter"):
        RetryConfig(preset="hystrix")


def test_resolved_preset_round_trips() -> None:
    config = RetryConfig(preset="grpc", max_attempts=5)
    assert RetryConfig.model_validate(config.model_dump()) == config


def test_budget_union_from_mapping() -> None:
    adapter = TypeAdapter(BudgetConfig)
    assert adapter.validate_python({"kind": "grpc"}).max_tokens == 10
    assert adapter.validate_python({"preset": "brooker"}).capacity == 5
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "leaky"})


def test_unknown_field_rejected() -> None:
    with pytest.raises(ValidationError, match="max_retries"):
        RetryConfig.model_validate({"max_retries": 3})


def test_connection_is_retried_by_default(rng: np.random.Generator) -> None:
    call = RetryConfig().new_call()
    call.on_try()
    assert call.next_delay(CONNECTION, rng) is not None
