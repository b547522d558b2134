"""Line-by-line Python transcriptions of library code that needs another runtime.

Each class follows one library's source (file and version cited in its docstring), with
Java ``float`` arithmetic done in ``numpy.float32`` where the library uses it. They are
the reference side of ``test_transcriptions.py``; they are not used by simres itself.
"""

from __future__ import annotations

from collections import deque

import numpy as np

F100 = np.float32(100.0)


class Resilience4jCountBreaker:
    """Resilience4j 2.x ``CircuitBreakerStateMachine`` with a COUNT_BASED window.

    Sources (resilience4j main, resilience4j-circuitbreaker/.../internal/):
    ``CircuitBreakerStateMachine.java``: ``ClosedState``/``HalfOpenState``
    ``onError``/``onSuccess`` record into the *current* state's metrics and call
    ``checkIfThresholdsExceeded``; ``OpenState.tryAcquirePermission`` half-opens only when
    ``clock.instant().isAfter(retryAfterWaitDuration)``; ``HalfOpenState`` hands out
    ``permittedNumberOfCalls`` via ``getAndUpdate(current == 0 ? current : --current) > 0``,
    closes on ``BELOW_THRESHOLDS`` and opens when a threshold is exceeded.
    ``CircuitBreakerMetrics.java``: ``minimumNumberOfCalls = min(config, windowSize)`` for
    count windows (``forHalfOpen`` uses the permitted calls as the window); rates are
    ``float`` percentages compared with ``>=``; ``-1`` below the minimum. A call is slow
    when ``duration > slowCallDurationThreshold``. ``FixedSizeSlidingWindowMetrics``: the
    last N outcomes.
    """

    def __init__(self, size: int, minimum_calls: int, failure_pct: float, slow_pct: float,
                 slow_duration: float, wait: float, permits: int) -> None:
        self.size, self.minimum, self.permits = size, minimum_calls, permits
        self.failure_pct, self.slow_pct = np.float32(failure_pct), np.float32(slow_pct)
        self.slow_duration, self.wait = slow_duration, wait
        self._closed()

    def _metrics(self, size: int) -> tuple[deque[tuple[bool, bool]], int]:
        return deque(maxlen=size), min(self.minimum, size)

    def _closed(self) -> None:
        self.state = "closed"
        self.window, self.window_min = self._metrics(self.size)

    def _open(self, now: float) -> None:
        self.state = "open"
        self.retry_after = now + self.wait

    def _half_open(self) -> None:
        self.state = "half_open"
        self.left = self.permits
        self.window, self.window_min = self._metrics(self.permits)

    def try_acquire(self, now: float) -> bool:
        if self.state == "open":
            if not now > self.retry_after:  # Instant.isAfter
                return False
            self._half_open()
        if self.state == "half_open":
            ok = self.left > 0
            if ok:
                self.left -= 1
            return ok
        return True

    def _check(self) -> str:
        total = len(self.window)
        if total == 0 or total < self.window_min:
            return "below_minimum"
        failed = sum(f for f, _ in self.window)
        slow = sum(s for _, s in self.window)
        failure_rate = np.float32(failed) * F100 / np.float32(total)
        slow_rate = np.float32(slow) * F100 / np.float32(total)
        if failure_rate >= self.failure_pct or slow_rate >= self.slow_pct:
            return "exceeded"
        return "below"

    def on_result(self, now: float, failed: bool, duration: float) -> None:
        self.window.append((failed, duration > self.slow_duration))
        if self.state == "open":
            return  # recorded in the open state's metrics, which nothing reads
        verdict = self._check()
        if verdict == "exceeded":
            self._open(now)
        elif verdict == "below" and self.state == "half_open":
            self._closed()


class GrpcThrottle:
    """grpc-java ``RetriableStream.Throttle`` (core/src/main/java/io/grpc/internal/
    RetriableStream.java, commit 003b8789): milli-tokens truncated from ``float``
    products, threshold ``maxTokens / 2``; ``onQualifiedFailureThenCheckIsAboveThreshold``
    and ``onSuccess`` as written there."""

    def __init__(self, max_tokens: float, token_ratio: float) -> None:
        self.token_ratio = int(np.float32(token_ratio) * np.float32(1000))
        self.max_tokens = int(np.float32(max_tokens) * np.float32(1000))
        self.threshold = self.max_tokens // 2
        self.token_count = self.max_tokens

    def on_qualified_failure_then_check_is_above_threshold(self) -> bool:
        current = self.token_count
        if current == 0:
            return False
        decremented = current - 1000
        self.token_count = max(decremented, 0)
        return decremented > self.threshold

    def on_success(self) -> None:
        if self.token_count == self.max_tokens:
            return
        self.token_count = min(self.token_count + self.token_ratio, self.max_tokens)


def grpc_should_retry(throttle: GrpcThrottle, retryable: bool, max_attempts: int,
                      previous_attempts: int) -> bool:
    """``RetriableStream.Sublistener.makeRetryDecision`` without pushback: a retryable code
    is a qualified failure (tokens are taken even at maxAttempts); retry if attempts remain
    and the throttle is not below its threshold."""
    throttled = False
    if retryable:
        throttled = not throttle.on_qualified_failure_then_check_is_above_threshold()
    return max_attempts > previous_attempts + 1 and not throttled and retryable


class EnvoyRetryBudget:
    """Envoy ``ResourceManagerImpl::RetryBudgetImpl`` (source/common/upstream/
    resource_manager_impl.h, commit 01c2c1fa) and the retry resource handling of
    ``RetryStateImpl`` (source/common/router/retry_state_impl.cc): ``canCreate`` is
    ``count() < max()`` with ``max() = uint64(budget_percent / 100.0 * (requests + pending))``
    floored at ``min_retry_concurrency``; a retry holds the resource from ``shouldRetry``
    (``inc``) until the request's next ``shouldRetry`` or its end (``resetRetry`` ``dec``).
    ``requests`` counts upstream requests sent and not finished; retries in their back-off
    are not upstream requests."""

    def __init__(self, budget_percent: float, min_retry_concurrency: int) -> None:
        self.budget_percent = budget_percent
        self.min = min_retry_concurrency
        self.requests = 0
        self.retries = 0

    def max(self) -> int:
        return max(int(self.budget_percent / 100.0 * (self.requests + 0)), self.min)

    def can_create(self) -> bool:
        return self.retries < self.max()


class FinagleWindowedAdder:
    """finagle-core ``com.twitter.finagle.util.WindowedAdder`` (commit 0e26b576):
    ``apply(range, slices, now)`` builds ``new WindowedAdder(range/slices, slices-1, now)``;
    ``add``/``sum`` call ``expired()`` when ``now() - old >= window``."""

    def __init__(self, range_ms: int, slices: int, now: list[int]) -> None:
        self.window, self.N, self.now = range_ms // slices, slices - 1, now
        self.writer, self.buf, self.i, self.old = 0, [0] * (slices - 1), 0, now[0]

    def expired(self) -> None:
        self.buf[self.i] = self.writer  # writer.sumThenReset()
        self.writer = 0
        self.i = (self.i + 1) % self.N
        nskip = min((self.now[0] - self.old) // self.window - 1, self.N)
        if nskip > 0:
            r = min(nskip, self.N - self.i)
            self.buf[self.i:self.i + r] = [0] * r  # Arrays.fill(buf, i, i+r, 0L)
            self.buf[0:nskip - r] = [0] * (nskip - r)  # Arrays.fill(buf, 0, nskip - r, 0L)
            self.i = (self.i + nskip) % self.N
        self.old = self.now[0]

    def add(self, x: int) -> None:
        if self.now[0] - self.old >= self.window:
            self.expired()
        self.writer += x

    def sum(self) -> int:
        if self.now[0] - self.old >= self.window:
            self.expired()
        return self.writer + sum(self.buf)


class FinagleRetryBudget:
    """finagle-core ``service/RetryBudget.scala`` ``RetryBudget.apply(ttl, minRetriesPerSec,
    percentCanRetry)`` (commit 0e26b576) over ``TokenBucket.newLeakyBucket(ttl, reserve)``
    (``util/TokenBucket.scala``: ``tryGet(n)`` is ``count >= n`` then ``add(-n)``,
    ``count = w.sum() + reserve``, ``WindowedAdder(ttl.inMilliseconds, 10, nowMs)``)."""

    def __init__(self, ttl_s: int, min_retries_per_sec: int, percent: float, now: list[int]) -> None:
        self.deposit_amount = 0 if percent == 0.0 else int(1000.0)
        self.withdrawal_amount = 1 if percent == 0.0 else int(1000.0 / percent)
        self.reserve = min_retries_per_sec * ttl_s * self.withdrawal_amount
        self.w = FinagleWindowedAdder(ttl_s * 1000, 10, now)

    def deposit(self) -> None:
        self.w.add(self.deposit_amount)

    def try_withdraw(self) -> bool:
        ok = self.w.sum() + self.reserve >= self.withdrawal_amount
        if ok:
            self.w.add(-self.withdrawal_amount)
        return ok
