"""Presets: each library's defaults and semantics, as plain option values.

A config names one with ``preset:``; the preset's values are merged under the fields the
user wrote (see :func:`simres.policies._base.apply_preset`). Every value here was read
from the library's source or reference documentation; ``docs/policies.md`` cites each.
Values marked *simres choice* have no library default and are documented as such.

This module holds data only and imports nothing from the other policy modules, so every
config module can use it without import cycles.
"""

from __future__ import annotations

from typing import Any

_REMOTE_FAILURES = ("timeout", "connection", "error", "rejected", "shed")

_TIMESPAN_MAX = 922337203685.4775
"""TimeSpan.MaxValue in seconds: with ``timespan`` backoffs, a cap this large is Polly's
``MaxDelay`` null (no cap; an overflow gives TimeSpan.MaxValue)."""

_AWS_THROTTLING = ("rejected", "shed")
"""simres outcomes that stand for AWS throttling errors (Throttling* codes, SlowDown, 429)."""

BUDGET_PRESETS: dict[str, dict[str, Any]] = {
    # botocore 1.44 retries/standard.py RetryQuotaChecker (retry mode 2.1, the default):
    # quota 500, _RETRY_COST 14, _THROTTLING_RETRY_COST 5, no timeout cost,
    # _NO_RETRY_INCREMENT 1; a successful retried call gives back what it last acquired.
    "aws_standard": {
        "kind": "token_bucket", "capacity": 500.0, "cost": 14.0, "timeout_cost": 14.0,
        "throttling_cost": 5.0, "throttling_outcomes": _AWS_THROTTLING,
        "refund": 1.0, "refund_retry_cost": True, "refill_per_request": 0.0,
        "min_tokens_to_retry": None,
    },
    # botocore <= 1.43 RetryQuotaChecker (retry mode 2.0; 1.43.127 in the conformance suite):
    # RETRY_COST 5, _TIMEOUT_RETRY_REQUEST 10 (ConnectTimeoutError, ReadTimeoutError).
    "aws_standard_2_0": {
        "kind": "token_bucket", "capacity": 500.0, "cost": 5.0, "timeout_cost": 10.0,
        "throttling_cost": None, "refund": 1.0, "refund_retry_cost": True,
        "refill_per_request": 0.0, "min_tokens_to_retry": None,
    },
    # Brooker 2022, "Fixing retries with token buckets and circuit breakers": capacity 5,
    # starts full, +0.1 per new call, a retry needs more than 1 token and costs 1.
    "brooker": {
        "kind": "token_bucket", "capacity": 5.0, "cost": 1.0, "timeout_cost": 1.0,
        "refund": 0.0, "refund_retry_cost": False, "refill_per_request": 0.1,
        "min_tokens_to_retry": 1.0,
    },
    # Brooker's retry "circuit breaker": stop retrying while failures/calls > 10 %.
    "brooker_breaker": {"kind": "failure_ratio", "threshold": 0.1, "window": None},
    # gRFC A6 retryThrottling example: maxTokens 10, tokenRatio 0.1; only the retry policy's
    # retryable codes cost a token (grpc-java RetriableStream.makeRetryDecision), here the
    # grpc retry preset's retry_on (a per-try timeout is not one of them).
    "grpc": {"kind": "grpc", "max_tokens": 10.0, "token_ratio": 0.1,
             "failure_outcomes": ("connection", "error", "rejected", "shed")},
    # Finagle RetryBudget defaults: ttl 10 s, minRetriesPerSec 10, percentCanRetry 20 %.
    # (finagle-core service/RetryBudget.scala: integer milli-tokens in a WindowedAdder of
    # 10 slices started on demand.)
    "finagle": {"kind": "ratio", "percent": 0.2, "min_per_second": 10.0, "ttl": 10.0,
                "buckets": 10, "slices": "finagle"},
    # Google SRE book: per-client retries at most 10 % of requests (window: simres choice).
    "sre": {"kind": "ratio", "percent": 0.1, "min_per_second": 0.0, "ttl": 60.0,
            "slices": "grid"},
    # Envoy retry_budget defaults: budget_percent 20 %, min_retry_concurrency 3. Envoy does
    # not count a retry waiting out its backoff as active: the drivers report when a try is
    # sent (on_try_start) and when a granted retry ends unsent (on_try_end sent=False).
    "envoy": {"kind": "concurrency", "budget_percent": 0.2, "min_retry_concurrency": 3,
              "waiting_retries_active": False},
}


def _budget(name: str) -> dict[str, Any]:
    """A budget preset spelled out in full (so a user's other ``kind`` replaces it whole)."""
    return {**BUDGET_PRESETS[name], "preset": name}


_AWS_STANDARD: dict[str, Any] = {
    "max_attempts": 3,
    "retry_on": _REMOTE_FAILURES,
    "backoff": {"kind": "exponential", "base": 0.05, "cap": 20.0, "multiplier": 2.0},
    "throttling_outcomes": _AWS_THROTTLING,
    "throttling_backoff": {"kind": "exponential", "base": 1.0, "cap": 20.0, "multiplier": 2.0},
    "jitter": {"kind": "full"},
    "retry_after_mode": "aws",
    "budget": _budget("aws_standard"),
}
"""botocore 1.44 standard mode (retry mode 2.1): the base of the ``aws_*`` retry presets below."""

RETRY_PRESETS: dict[str, dict[str, Any]] = {
    # Resilience4j RetryConfig defaults: maxAttempts 3 (total), waitDuration 500 ms fixed,
    # every exception retried.
    "resilience4j": {
        "max_attempts": 3,
        "retry_on": _REMOTE_FAILURES,
        "backoff": {"kind": "constant", "base": 0.5},
        "jitter": {"kind": "none"},
    },
    # Polly v8 RetryStrategyOptions: MaxRetryAttempts 3 (retries, so 4 tries), Delay 2 s,
    # BackoffType Constant, UseJitter false, MaxDelay null, every exception handled, no
    # DelayGenerator (so no Retry-After). Waits in TimeSpan ticks (RetryHelper.GetRetryDelay).
    "polly": {
        "max_attempts": 4,
        "retry_on": _REMOTE_FAILURES,
        "backoff": {"kind": "constant", "base": 2.0, "cap": _TIMESPAN_MAX, "timespan": True},
        "jitter": {"kind": "none"},
        "honor_retry_after": False,
    },
    # The same with BackoffType Exponential and UseJitter true: Polly's
    # DecorrelatedJitterBackoffV2 (median waits near 2, 4, 8 s).
    "polly_jitter": {
        "max_attempts": 4,
        "retry_on": _REMOTE_FAILURES,
        "backoff": {"kind": "exponential", "base": 2.0, "cap": _TIMESPAN_MAX, "timespan": True},
        "jitter": {"kind": "polly"},
        "honor_retry_after": False,
    },
    # Envoy route retry policy: num_retries 1 (2 tries); back-off U[0, min(25 ms * 2^(k-1),
    # 250 ms)); "5xx" covers 5xx replies, resets, connect failures and per-try timeouts;
    # retry budget 20 % / min 3 concurrent retries.
    "envoy": {
        "max_attempts": 2,
        "retry_on": _REMOTE_FAILURES,
        "backoff": {"kind": "exponential", "base": 0.025, "cap": 0.25, "multiplier": 2.0},
        "jitter": {"kind": "full"},
        "budget": _budget("envoy"),
    },
    # AWS SDK standard mode as botocore 1.44 (retries/standard.py, retry mode 2.1, the
    # default): 3 tries; wait rand() * min(base * 2^(attempt-1), 20 s) with base 1 s after a
    # throttling error and 50 ms otherwise; x-amz-retry-after raises the wait to
    # max(t, min(hint, t + 5)); quota 500 / 14 / throttling 5 / refund 1.
    "aws_standard": _AWS_STANDARD,
    # AWS SDK adaptive mode (botocore 1.44 retries/adaptive.py): standard mode 2.1 as above,
    # plus a client-side rate limiter per client: after the first throttling error every try
    # waits for a token of a token bucket whose rate CUBIC sets from the measured send rate.
    "aws_adaptive": {**_AWS_STANDARD, "rate_limiter": {}},
    # The same for DynamoDB and DynamoDB Streams: 4 tries, 25 ms base for other errors.
    "aws_standard_dynamodb": {**_AWS_STANDARD, "max_attempts": 4,
                              "backoff": {"kind": "exponential", "base": 0.025, "cap": 20.0, "multiplier": 2.0}},
    # AWS SDK standard mode 2.0 (botocore <= 1.43; 1.43.3 to 1.43.127 have 2.1 behind the
    # AWS_NEW_RETRIES_2026 switch, off by default): rand() * min(2^(attempt-1), 20 s) for every
    # error, no x-amz-retry-after, quota 500 / 5 / timeout 10 / refund 1.
    "aws_standard_2_0": {
        "max_attempts": 3,
        "retry_on": _REMOTE_FAILURES,
        "backoff": {"kind": "exponential", "base": 1.0, "cap": 20.0, "multiplier": 2.0},
        "jitter": {"kind": "full"},
        "honor_retry_after": False,
        "budget": _budget("aws_standard_2_0"),
    },
    # urllib3 2.x Retry(total=3, backoff_factor=1, status_forcelist=[429, 500, 502, 503, 504])
    # for a method in allowed_methods (GET...): 3 retries; no wait before the first retry,
    # then backoff_factor * 2^(retries-1) capped at backoff_max 120 s; Retry-After honoured
    # (whole seconds, capped at 6 h, 0 = use the backoff); 413/429/503 with Retry-After are
    # retried even outside the forcelist. For POST use retry_on: [connection].
    "urllib3": {
        "max_attempts": 4,
        "retry_on": _REMOTE_FAILURES,
        "backoff": {"kind": "exponential", "base": 1.0, "cap": 120.0, "multiplier": 2.0,
                    "zero_first": True},
        "jitter": {"kind": "none"},
        "honor_retry_after": True,
        "retry_after_mode": "urllib3",
        "retry_after_max": 21600.0,
        "retry_on_hint": ("rejected", "shed"),
    },
    # tenacity 9: @retry(stop=stop_after_attempt(3), wait=wait_exponential(multiplier=1,
    # max=10)) retrying every exception; wait 2^(attempt-1) s capped at 10 s, no jitter.
    # (tenacity's own default is to retry forever without waiting; this is its documented
    # recipe.) wait_random_exponential is jitter full; wait_exponential_jitter is additive.
    "tenacity": {
        "max_attempts": 3,
        "retry_on": _REMOTE_FAILURES,
        "backoff": {"kind": "exponential", "base": 1.0, "cap": 10.0, "multiplier": 2.0,
                    "floor": 0.0},
        "jitter": {"kind": "none"},
        "honor_retry_after": False,
    },
    # gRPC (gRFC A6): the example policy maxAttempts 4, initialBackoff 0.1 s, maxBackoff
    # 1 s, multiplier 2, retryable UNAVAILABLE; the n-th retry waits
    # random(0, min(initial * mult^(n-1), max)) (full jitter); retryThrottling 10 / 0.1.
    "grpc": {
        "max_attempts": 4,
        "retry_on": ("connection", "error", "rejected", "shed"),
        "backoff": {"kind": "exponential", "base": 0.1, "cap": 1.0, "multiplier": 2.0},
        "jitter": {"kind": "full"},
        "budget": _budget("grpc"),
    },
    # Finagle: requeues restartable failures (connection failures and server nacks) under
    # a RetryBudget (20 %, 10/s, 10 s) with Backoff.decorrelatedJittered. max_attempts,
    # base and cap are simres choices (Finagle's defaults depend on the client stack).
    "finagle": {
        "max_attempts": 3,
        "retry_on": ("connection", "rejected", "shed"),
        "backoff": {"kind": "exponential", "base": 0.05, "cap": 2.0, "multiplier": 2.0},
        "jitter": {"kind": "decorrelated_finagle"},
        "budget": _budget("finagle"),
    },
}

BREAKER_PRESETS: dict[str, dict[str, Any]] = {
    # Resilience4j CircuitBreakerConfig defaults. Results of calls admitted earlier are
    # recorded in whatever state the breaker is in (CircuitBreakerStateMachine).
    "resilience4j": {
        "trip": "failure_rate", "threshold": 0.5, "window": {"kind": "count", "size": 100},
        "minimum_calls": 100, "slow_call_duration": 60.0, "slow_threshold": 1.0,
        "open_for": 60.0, "open_for_multiplier": 1.0, "open_for_max": None,
        "open_for_jitter": "none", "half_open": "permits", "half_open_permits": 10,
        "half_open_max_wait": None, "half_open_at": "after_deadline",
        "count_late_results": True, "late_result_state": "current",
    },
    # Polly v8 CircuitBreakerStrategyOptions: FailureRatio 0.1, SamplingDuration 30 s
    # (10 rolling sub-windows), MinimumThroughput 100, BreakDuration 5 s, one probe.
    "polly": {
        "trip": "failure_rate", "threshold": 0.1,
        "window": {"kind": "rolling", "size": 30.0, "buckets": 10},
        "minimum_calls": 100, "slow_threshold": None, "open_for": 5.0,
        "open_for_multiplier": 1.0, "open_for_max": None, "open_for_jitter": "none",
        "half_open": "single_probe", "half_open_max_wait": None, "count_late_results": True,
    },
    # pybreaker 1.4: fail_max 5 consecutive, reset_timeout 60 s (half-open at or after it),
    # success_threshold 1; half-open admits every call (through calling(); call() and the
    # decorator serialise calls under a lock); a result is handled by the state object that
    # admitted the call.
    "pybreaker": {
        "trip": "consecutive", "failure_threshold": 5, "slow_threshold": None,
        "open_for": 60.0, "open_for_multiplier": 1.0, "open_for_max": None,
        "open_for_jitter": "none", "half_open": "all", "half_open_max_wait": None,
        "close_after_successes": 1, "half_open_at": "deadline",
        "count_late_results": True, "late_result_state": "admitting",
    },
    # Finagle FailureAccrualFactory: 5 consecutive failures, dead for
    # Backoff.equalJittered(5 s, 300 s), then one probe request.
    "finagle": {
        "trip": "consecutive", "failure_threshold": 5, "slow_threshold": None,
        "open_for": 5.0, "open_for_multiplier": 2.0, "open_for_max": 300.0,
        "open_for_jitter": "equal", "half_open": "single_probe", "half_open_max_wait": None,
        "count_late_results": True,
    },
    # cockatiel 4.0 (src/CircuitBreakerPolicy.ts, src/breaker/ConsecutiveBreaker.ts):
    # circuitBreaker(handleAll, {halfOpenAfter: 10 * 1000, breaker: new ConsecutiveBreaker(5)})
    # (the README's example: cockatiel has no defaults). `++count >= 5` opens; half-open at
    # or after openedAt + halfOpenAfter; one probe, other callers await its verdict and try
    # again; a closed-state call's result always reaches the breaker as Closed (an open
    # breaker stays as it is, a half-open one reopens on a trip); a half-open call's late
    # result is ignored; a failed probe counts (failure(HalfOpen)); unhandled errors are
    # rethrown before the breaker hears of them in closed, and are a success in half-open.
    # handleAll: every remote failure is handled (narrow failure_outcomes for handleType).
    "cockatiel": {
        "trip": "consecutive", "failure_threshold": 5, "slow_threshold": None,
        "open_for": 10.0, "open_for_multiplier": 1.0, "open_for_max": None,
        "open_for_jitter": "none", "half_open": "single_probe", "half_open_waits": True,
        "half_open_max_wait": None, "close_after_successes": 1, "half_open_at": "deadline",
        "half_open_trigger": "call", "count_late_results": True,
        "late_result_state": "admitting_closed", "half_open_failure_counts": True,
        "close_window": "reset", "unhandled": "skip_when_closed",
        "failure_outcomes": _REMOTE_FAILURES,
    },
    # cockatiel 4.0 SamplingBreaker({threshold: 0.2, duration: 30 * 1000}) (the README's
    # example), halfOpenAfter 10 s: a ring of max(5, ceil(30)) = 30 slots of 1 s, moved on
    # one slot per result; checked after a failure once `total >= duration * minimumRpms`
    # (minimumRps unset: 5 / threshold per second, here 25/s, 750 results) and opened when
    # `failures > threshold * total`; closing resets the ring and counts the probe in it.
    "cockatiel_sampling": {
        "trip": "failure_rate", "threshold": 0.2,
        "window": {"kind": "sampling", "size": 30.0, "buckets": 10, "bucket_width": 1.0},
        "minimum_rps": None, "rate_rule": "count_above", "check_rate_on": "failure",
        "rate_denominator": "results", "slow_threshold": None,
        "open_for": 10.0, "open_for_multiplier": 1.0, "open_for_max": None,
        "open_for_jitter": "none", "half_open": "single_probe", "half_open_waits": True,
        "half_open_max_wait": None, "close_after_successes": 1, "half_open_at": "deadline",
        "half_open_trigger": "call", "count_late_results": True,
        "late_result_state": "admitting_closed", "half_open_failure_counts": True,
        "close_window": "reset_then_probe", "unhandled": "skip_when_closed",
        "failure_outcomes": _REMOTE_FAILURES,
    },
    # opossum 10.0 (lib/circuit.js, lib/status.js) defaults: errorThresholdPercentage 50,
    # resetTimeout 30 s, rollingCountTimeout 10 s in rollingCountBuckets 10 (1 s buckets
    # rotated by a timer from creation), volumeThreshold 0. Every call() counts in `fires`
    # (rejected ones too) and every failure in `failures`, in any state; the rate
    # `failures / fires * 100 > 50` is checked only after a failure; the reset timer
    # half-opens the breaker at the deadline itself; one call passes in half-open, and any
    # success then closes, any failure reopens; closing clears nothing. No errorFilter: every
    # remote failure counts (an errorFilter match is an outcome outside failure_outcomes).
    "opossum": {
        "trip": "failure_rate", "threshold": 0.5, "rate_rule": "percent_above",
        "window": {"kind": "time", "size": 10.0, "buckets": 10, "bucket_width": 1.0},
        "minimum_calls": 0, "rate_denominator": "calls_started", "check_rate_on": "failure",
        "slow_threshold": None, "open_for": 30.0, "open_for_multiplier": 1.0,
        "open_for_max": None, "open_for_jitter": "none", "half_open": "single_probe",
        "half_open_waits": False, "half_open_max_wait": None, "close_after_successes": 1,
        "half_open_at": "deadline", "half_open_trigger": "timer", "count_late_results": True,
        "late_result_state": "current", "close_window": "keep", "unhandled": "success",
        "half_open_failure_counts": False, "failure_outcomes": _REMOTE_FAILURES,
    },
}

BULKHEAD_PRESETS: dict[str, dict[str, Any]] = {
    # Resilience4j Bulkhead (semaphore): maxConcurrentCalls 25, maxWaitDuration 0.
    "resilience4j": {"kind": "semaphore", "max_concurrent": 25, "max_wait": 0.0},
    # Resilience4j ThreadPoolBulkhead: queueCapacity 100 (pool size = CPU count there;
    # max_concurrent keeps simres' default of 25 unless given).
    "resilience4j_pool": {"kind": "pool", "queue_size": 100},
    # Polly v8 concurrency limiter: PermitLimit 1000, QueueLimit 0.
    "polly": {"kind": "pool", "max_concurrent": 1000, "queue_size": 0},
    # Envoy cluster circuit breakers: max_requests 1024, max_pending_requests 1024.
    "envoy": {"kind": "pool", "max_concurrent": 1024, "queue_size": 1024},
}

THROTTLE_PRESETS: dict[str, dict[str, Any]] = {
    # Google SRE book, "Handling Overload": K = 2 over the last 2 minutes.
    "sre": {"mode": "sre", "k": 2.0, "window": 120.0, "buckets": 120},
    # Envoy admission control defaults: sr_threshold 95 %, aggression 1, max rejection
    # probability 80 %, rps_threshold 0, sampling window 30 s.
    "envoy": {
        "mode": "envoy", "sr_threshold": 0.95, "aggression": 1.0, "max_rejection": 0.8,
        "rps_threshold": 0.0, "window": 30.0, "buckets": 30,
    },
}

LIMIT_PRESETS: dict[str, dict[str, Any]] = {
    # Netflix concurrency-limits at 78a74b98: each algorithm with its Builder defaults (the
    # numbers are resolved per kind in simres.policies.limits); unwindowed, as newBuilder().
    "netflix_aimd": {"kind": "aimd"},
    "netflix_vegas": {"kind": "vegas"},
    "netflix_gradient2": {"kind": "gradient2"},
    # Envoy's adaptive concurrency filter at c35f67fb, GradientControllerConfig defaults (p50,
    # max 1000, minRTT from 50 requests, jitter 15 %, buffer 25 %, min 3); the two intervals
    # Envoy requires are the docs' example values, 100 ms and 60 s.
    "envoy": {"kind": "envoy_gradient"},
}

HEDGE_PRESETS: dict[str, dict[str, Any]] = {
    # gRFC A6 (grpc/proposal A6-client-retries.md, "Hedging Policy"): maxAttempts counts the
    # original and is capped at 5 by the client; hedgingDelay; nonFatalStatusCodes (the
    # example's UNAVAILABLE, INTERNAL, ABORTED: here connection, rejected, shed and error);
    # DEADLINE_EXCEEDED (timeout) is fatal. Throttling (retryThrottling) gates every hedge
    # after the first RPC. maxAttempts 4 and 0.5 s are the proposal's example (the field is
    # required there, so the number is a simres choice).
    "grpc": {
        "max_attempts": 4, "max_attempts_cap": 5, "delay": 0.5,
        "non_fatal": ("connection", "error", "rejected", "shed"), "hedge_on_failure": True,
        "cancel_losers": True, "budget": _budget("grpc"),
    },
    # Polly v8 HedgingStrategyOptions<T> (src/Polly.Core/Hedging/HedgingStrategyOptions.TResult.cs,
    # HedgingConstants.cs): MaxHedgedAttempts 1 (range 1..10) on top of the original, Delay
    # 2 s (TimeSpan.Zero: all at once; InfiniteTimeSpan: only after a handled outcome); a
    # handled outcome loads the next action at once; the first unhandled outcome wins and the
    # others are cancelled. ShouldHandle: every failure, as the polly retry preset.
    "polly": {
        "max_attempts": 2, "max_attempts_cap": 11, "delay": 2.0,
        "non_fatal": _REMOTE_FAILURES, "hedge_on_failure": True, "cancel_losers": True,
        "budget": None,
    },
    # Envoy route hedge_policy {hedge_on_per_try_timeout: true} with the envoy retry preset's
    # retry_policy (source/common/router/router.cc onSoftPerTryTimeout, retry_state_impl.cc
    # shouldHedgeRetryPerTryTimeout): the per-try timeout is soft (the try stays outstanding),
    # and the hedge takes the ordinary retry path, shouldRetry(RetryWithBackoff): within
    # num_retries (default 1: 2 tries) and the retry budget, after a jittered backoff
    # (JitteredExponentialBackOffStrategy: U[0, base * 2^(n-1)), base 25 ms, max 10 x base). A
    # retriable reply retries the same way; with no retry left the others are awaited; the
    # first good reply wins and the others are reset. per_try_timeout (the delay) has no
    # default: 0.5 s here, a simres choice.
    "envoy": {
        "max_attempts": 2, "delay": 0.5, "non_fatal": _REMOTE_FAILURES, "hedge_on_failure": True,
        "cancel_losers": True, "budget": _budget("envoy"),
        "backoff": {"kind": "exponential", "base": 0.025, "cap": 0.25, "multiplier": 2.0},
        "jitter": {"kind": "full"},
    },
    # Finagle BackupRequestFilter (finagle-core client/BackupRequestFilter.scala) as
    # MethodBuilder.idempotent(maxExtraLoad = 0.01) sets it up: one backup at the
    # (1 - maxExtraLoad) percentile of recent latencies (successes, timeouts, superseded
    # tries), refreshed every 3 s, at least 1 ms, none before the first refresh; a backup
    # only if a RetryBudget(ttl 10 s, minRetriesPerSec 10, percentCanRetry maxExtraLoad)
    # allows; the original's result is returned when it completes before the backup is sent;
    # sendInterrupts true cancels the loser. Window: the last 1000 latencies (simres choice;
    # Finagle keeps a 30 s histogram).
    "finagle": {
        "max_attempts": 2, "max_attempts_cap": 2, "delay": "p99", "window": 1000,
        "refresh": 3.0, "min_delay": 0.001, "non_fatal": _REMOTE_FAILURES,
        "hedge_on_failure": False, "cancel_losers": True,
        "budget": {"kind": "ratio", "percent": 0.01, "min_per_second": 10.0, "ttl": 10.0,
                   "buckets": 10, "slices": "finagle"},
    },
}

OUTLIER_PRESETS: dict[str, dict[str, Any]] = {
    # Envoy OutlierDetection defaults (source/common/upstream/outlier_detection_impl.h at
    # 00c7146d, DEFAULT_*): interval 10 s, base ejection 30 s, max ejection 300 s, no jitter,
    # max_ejection_percent 10, consecutive_5xx 5 (enforced 100 %), gateway failure 5
    # (enforced 0 %), success rate 5 hosts / 100 requests / stdev factor 1900 (enforced
    # 100 %), failure percentage 85 % / 5 hosts / 50 requests (enforced 0 %); the
    # balancer's healthy_panic_threshold 50 %.
    "envoy": {"kind": "envoy"},
    # Linkerd2 consecutive-failures failure accrual: the policy controller's defaults
    # (parse_accrual_config: max failures 7, min penalty 1 s, max penalty 60 s); the proxy
    # has no panic mode (simres picks among all endpoints only when none is available).
    "linkerd": {"kind": "linkerd", "consecutive_failures": 7, "min_penalty": 1.0, "max_penalty": 60.0,
                "healthy_panic_threshold": 0.0},
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "retry": RETRY_PRESETS,
    "budget": BUDGET_PRESETS,
    "breaker": BREAKER_PRESETS,
    "bulkhead": BULKHEAD_PRESETS,
    "throttle": THROTTLE_PRESETS,
    "limit": LIMIT_PRESETS,
    "hedge": HEDGE_PRESETS,
    "outlier": OUTLIER_PRESETS,
}
"""Every preset, by policy kind and then by name."""


def preset_names(group: str) -> tuple[str, ...]:
    """The preset names valid for one policy kind (``retry``, ``budget``, ...), sorted."""
    return tuple(sorted(PRESETS[group]))
