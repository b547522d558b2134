"""Retry budgets: AWS quota arithmetic, Brooker's bucket, gRPC throttling, Finagle ratio,
Envoy concurrency, Brooker's failure-ratio breaker; and that no budget goes negative."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from simres.outcomes import (
    BREAKER_OPEN,
    CANCELLED,
    CONNECTION,
    DEGRADED,
    ERROR,
    OK,
    REJECTED,
    SHED,
    TIMEOUT,
)
from simres.policies import (
    ConcurrencyBudgetConfig,
    FailureRatioBudgetConfig,
    GrpcBudgetConfig,
    RatioBudgetConfig,
    TokenBucketBudgetConfig,
)
from simres.policies.budget import BudgetConfig

budget_adapter = TypeAdapter(BudgetConfig)


# ---------------------------------------------------------------- AWS standard quota


def test_aws_hundred_error_retries_drain_the_legacy_quota() -> None:
    bucket = TokenBucketBudgetConfig(preset="aws_standard_2_0").build()
    assert bucket.tokens == 500
    granted = sum(bucket.try_acquire_retry(0.0, ERROR) for _ in range(101))
    assert granted == 100
    assert bucket.tokens == 0
    assert bucket.retries_denied == 1


def test_aws_mode_2_1_costs_14_and_5_for_throttling() -> None:
    bucket = TokenBucketBudgetConfig(preset="aws_standard").build()
    assert sum(bucket.try_acquire_retry(0.0, ERROR) for _ in range(36)) == 35  # 35 * 14 = 490
    assert bucket.tokens == 10
    assert bucket.try_acquire_retry(0.0, "timeout") is False  # no separate timeout cost
    assert bucket.try_acquire_retry(0.0, "rejected") is True and bucket.tokens == 5


def test_aws_timeout_retries_cost_ten() -> None:
    bucket = TokenBucketBudgetConfig().build()
    granted = sum(bucket.try_acquire_retry(0.0, TIMEOUT) for _ in range(60))
    assert granted == 50
    assert bucket.last_cost == 10


def test_aws_connection_errors_cost_five() -> None:
    bucket = TokenBucketBudgetConfig().build()
    bucket.try_acquire_retry(0.0, CONNECTION)
    assert bucket.tokens == 495


def test_aws_success_without_retry_refunds_one_up_to_capacity() -> None:
    bucket = TokenBucketBudgetConfig().build()
    bucket.on_try_end(0.0, OK, is_retry=False)
    assert bucket.tokens == 500  # already full
    bucket.try_acquire_retry(0.0, ERROR)
    bucket.on_try_end(0.0, OK, is_retry=False)
    assert bucket.tokens == 496
    bucket.on_try_end(0.0, DEGRADED, is_retry=False)
    assert bucket.tokens == 497


def test_aws_failures_refund_nothing() -> None:
    bucket = TokenBucketBudgetConfig(initial=100).build()
    for outcome in (ERROR, TIMEOUT, CONNECTION, REJECTED, SHED, BREAKER_OPEN):
        bucket.on_try_end(0.0, outcome, is_retry=False)
    assert bucket.tokens == 100


def test_aws_successful_retry_gives_back_what_it_acquired() -> None:
    bucket = TokenBucketBudgetConfig().build()
    assert bucket.try_acquire_retry(0.0, TIMEOUT)
    assert bucket.tokens == 490
    bucket.on_try_end(1.0, OK, is_retry=True, retry_cost=bucket.last_cost)
    assert bucket.tokens == 500
    assert bucket.try_acquire_retry(0.0, ERROR)
    bucket.on_try_end(1.0, OK, is_retry=True)  # no cost passed: the plain retry cost
    assert bucket.tokens == 500


def test_retry_refund_can_be_disabled() -> None:
    bucket = TokenBucketBudgetConfig(refund_retry_cost=False).build()
    bucket.try_acquire_retry(0.0, ERROR)
    bucket.on_try_end(1.0, OK, is_retry=True)
    assert bucket.tokens == 495


def test_token_bucket_initial_must_fit() -> None:
    with pytest.raises(ValidationError, match="initial"):
        TokenBucketBudgetConfig(capacity=5, initial=6)


# ---------------------------------------------------------------- Brooker's bucket


def test_brooker_bucket() -> None:
    bucket = TokenBucketBudgetConfig(preset="brooker").build()
    assert bucket.tokens == 5
    # a retry needs more than 1 token and costs 1: from 5, four retries then stop at 1
    assert [bucket.try_acquire_retry(0.0, ERROR) for _ in range(5)] == [True] * 4 + [False]
    assert bucket.tokens == 1
    bucket.on_request(0.0)  # +0.1 per new call
    assert bucket.tokens == pytest.approx(1.1)
    assert bucket.try_acquire_retry(0.0, TIMEOUT)  # timeouts cost 1 too
    assert bucket.tokens == pytest.approx(0.1)
    bucket.on_try_end(0.0, OK, is_retry=False)  # no refund on success
    assert bucket.tokens == pytest.approx(0.1)


def test_brooker_bucket_refill_is_capped() -> None:
    bucket = TokenBucketBudgetConfig(preset="brooker").build()
    for _ in range(100):
        bucket.on_request(0.0)
    assert bucket.tokens == 5


def test_brooker_bucket_caps_load_near_one_point_one() -> None:
    """Every try fails: in the long run a call makes about 1 + 0.1 tries."""
    bucket = TokenBucketBudgetConfig(preset="brooker").build()
    tries = 0
    calls = 10_000
    for _ in range(calls):
        bucket.on_request(0.0)
        tries += 1
        for _ in range(3):
            bucket.on_try_end(0.0, ERROR, is_retry=False)
            if not bucket.try_acquire_retry(0.0, ERROR):
                break
            tries += 1
    assert tries / calls == pytest.approx(1.1, abs=0.01)


# ---------------------------------------------------------------- gRPC throttling


def test_grpc_threshold_is_half_of_max_tokens() -> None:
    budget = GrpcBudgetConfig().build()
    for _ in range(4):
        budget.on_try_end(0.0, ERROR, is_retry=False)
    assert budget.tokens == 6 and budget.try_acquire_retry(0.0, ERROR)
    budget.on_try_end(0.0, ERROR, is_retry=False)
    assert budget.tokens == 5
    assert not budget.try_acquire_retry(0.0, ERROR)  # not above max_tokens / 2
    budget.on_try_end(0.0, OK, is_retry=False)
    assert budget.tokens == pytest.approx(5.1)
    assert budget.try_acquire_retry(0.0, ERROR)


def test_grpc_tokens_are_exact_thousandths() -> None:
    budget = GrpcBudgetConfig(max_tokens=10).build()
    for _ in range(10):
        budget.on_try_end(0.0, ERROR, is_retry=False)
    assert budget.tokens == 0
    for _ in range(51):
        budget.on_try_end(0.0, OK, is_retry=False)
    assert budget.tokens == 5.1  # exact, no float drift


def test_grpc_tokens_bounded() -> None:
    budget = GrpcBudgetConfig().build()
    for _ in range(50):
        budget.on_try_end(0.0, TIMEOUT, is_retry=True)
    assert budget.tokens == 0
    for _ in range(500):
        budget.on_try_end(0.0, OK, is_retry=False)
    assert budget.tokens == 10


def test_grpc_local_outcomes_do_not_count() -> None:
    budget = GrpcBudgetConfig().build()
    budget.on_try_end(0.0, BREAKER_OPEN, is_retry=False)
    budget.on_try_end(0.0, CANCELLED, is_retry=False)
    assert budget.tokens == 10


def test_grpc_failure_outcomes_validated() -> None:
    with pytest.raises(ValidationError, match="failure_outcomes"):
        GrpcBudgetConfig(failure_outcomes=("ok",))


# ---------------------------------------------------------------- ratio (Finagle)


def test_ratio_allows_percent_of_requests() -> None:
    budget = RatioBudgetConfig(percent=0.2, min_per_second=0, ttl=10).build()
    for i in range(10):
        budget.on_request(i * 0.1)
    assert [budget.try_acquire_retry(1.0, ERROR) for _ in range(3)] == [True, True, False]


def test_ratio_reserve_allows_min_per_second_times_ttl() -> None:
    budget = RatioBudgetConfig(preset="finagle").build()
    granted = sum(budget.try_acquire_retry(0.0, ERROR) for _ in range(150))
    assert granted == 100


def test_ratio_window_slides() -> None:
    budget = RatioBudgetConfig(percent=0.5, min_per_second=0, ttl=10, buckets=10).build()
    for _ in range(4):
        budget.on_request(0.5)
    assert budget.try_acquire_retry(0.5, ERROR) and budget.try_acquire_retry(0.5, ERROR)
    assert not budget.try_acquire_retry(9.9, ERROR)
    assert not budget.try_acquire_retry(10.5, ERROR)  # requests expired with the retries
    for _ in range(2):
        budget.on_request(10.5)
    assert budget.try_acquire_retry(10.6, ERROR)
    assert not budget.try_acquire_retry(10.6, ERROR)


def test_ratio_available() -> None:
    budget = RatioBudgetConfig(percent=0.1, min_per_second=0, ttl=60).build()
    for _ in range(35):
        budget.on_request(0.0)
    assert budget.available == 3


# ---------------------------------------------------------------- concurrency (Envoy)


def test_concurrency_min_retry_concurrency() -> None:
    budget = ConcurrencyBudgetConfig(preset="envoy").build()
    for _ in range(5):
        budget.on_request(0.0)
    for _ in range(5):
        budget.on_try_end(0.0, ERROR, is_retry=False)
    granted = [budget.try_acquire_retry(0.0, ERROR) for _ in range(4)]
    assert granted == [True, True, True, False]
    budget.on_try_end(0.1, ERROR, is_retry=True)
    assert budget.active_retries == 2
    assert budget.try_acquire_retry(0.1, ERROR)


def test_concurrency_percent_of_active() -> None:
    budget = ConcurrencyBudgetConfig(budget_percent=0.2, min_retry_concurrency=0).build()
    for _ in range(50):
        budget.on_request(0.0)
    granted = sum(budget.try_acquire_retry(0.0, ERROR) for _ in range(20))
    # each granted retry is itself active; Envoy truncates the limit:
    # r < int(0.2 * (50 + r)) allows r up to 11
    assert granted == 12
    assert budget.active_retries == 12 and budget.active == 62


def test_concurrency_counts_never_negative() -> None:
    budget = ConcurrencyBudgetConfig().build()
    budget.on_try_end(0.0, OK, is_retry=True)
    assert budget.active == 0 and budget.active_retries == 0


# ---------------------------------------------------------------- failure ratio (Brooker)


def test_failure_ratio_stops_retrying_above_threshold() -> None:
    budget = FailureRatioBudgetConfig(preset="brooker_breaker").build()
    for _ in range(9):
        budget.on_try_end(0.0, OK, is_retry=False)
    budget.on_try_end(0.0, ERROR, is_retry=False)
    assert budget.ratio(0.0) == pytest.approx(0.1)
    assert budget.try_acquire_retry(0.0, ERROR)  # exactly 10 % is not above 10 %
    budget.on_try_end(0.0, ERROR, is_retry=True)
    assert not budget.try_acquire_retry(0.0, ERROR)
    assert budget.available == 0


def test_failure_ratio_window_forgets() -> None:
    budget = FailureRatioBudgetConfig(threshold=0.1, window=10, buckets=10).build()
    for _ in range(5):
        budget.on_try_end(1.0, ERROR, is_retry=False)
    assert not budget.try_acquire_retry(1.0, ERROR)
    budget.on_try_end(12.0, OK, is_retry=False)
    assert budget.try_acquire_retry(12.0, ERROR)


# ---------------------------------------------------------------- generic


@pytest.mark.parametrize("kind", ["token_bucket", "grpc", "ratio", "concurrency",
                                  "failure_ratio"])
def test_every_kind_builds_from_a_mapping(kind: str) -> None:
    config = budget_adapter.validate_python({"kind": kind, "scope": "shared"})
    assert config.scope == "shared"
    budget = config.build()
    budget.on_request(0.0)
    budget.on_try_end(0.0, ERROR, is_retry=False)
    assert isinstance(budget.try_acquire_retry(0.0, ERROR), bool)
    assert repr(budget).startswith(type(budget).__name__)


@pytest.mark.parametrize("preset", ["aws_standard", "brooker", "brooker_breaker", "grpc",
                                    "finagle", "sre", "envoy"])
def test_every_budget_preset_validates(preset: str) -> None:
    assert budget_adapter.validate_python({"preset": preset}).preset == preset


OPS = st.lists(st.tuples(st.sampled_from(["request", "acquire", "end", "end_retry"]),
                         st.sampled_from([OK, ERROR, TIMEOUT, CONNECTION, SHED, CANCELLED]),
                         st.floats(0, 0.5)), max_size=120)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["token_bucket", "grpc", "ratio", "concurrency", "failure_ratio"]),
       preset=st.booleans(), ops=OPS)
def test_budgets_never_go_negative(kind: str, preset: bool, ops: list) -> None:
    presets = {"token_bucket": "brooker", "grpc": "grpc", "ratio": "sre",
               "concurrency": "envoy", "failure_ratio": "brooker_breaker"}
    data = {"preset": presets[kind]} if preset else {"kind": kind}
    budget = budget_adapter.validate_python(data).build()
    now = 0.0
    for op, outcome, dt in ops:
        now += dt
        if op == "request":
            budget.on_request(now)
        elif op == "acquire":
            budget.try_acquire_retry(now, outcome)
        else:
            budget.on_try_end(now, outcome, is_retry=op == "end_retry")
        if kind != "failure_ratio":
            assert budget.tokens >= 0
        assert budget.available >= 0
        if kind == "concurrency":
            assert budget.active >= 0 and budget.active_retries >= 0
        if kind == "token_bucket":
            assert budget.tokens <= budget.config.capacity


def test_failure_ratio_over_unique_calls_is_not_diluted_by_retries() -> None:
    from simres.policies.budget import FailureRatioBudgetConfig

    by_try = FailureRatioBudgetConfig(threshold=0.5).build()
    by_call = FailureRatioBudgetConfig(threshold=0.5, denominator="calls").build()
    # 4 calls; call 0 fails twice then succeeds, the others succeed at once: 2 failed tries
    for b in (by_try, by_call):
        b.on_request(0.0)
        for outcome, retry in (("error", False), ("error", True), ("ok", True)):
            b.on_try_end(0.0, outcome, retry)
        for _ in range(3):
            b.on_request(0.0)
            b.on_try_end(0.0, "ok", False)
    assert by_try.ratio(1.0) == 2 / 6
    assert by_call.ratio(1.0) == 2 / 4
    assert by_try.try_acquire_retry(1.0, "error") and by_call.try_acquire_retry(1.0, "error")  # 0.5 is not > 0.5
    by_call.on_request(1.0)
    by_call.on_try_end(1.0, "error", False)
    assert by_call.ratio(2.0) == 3 / 5 and not by_call.try_acquire_retry(2.0, "error")
