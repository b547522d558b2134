"""Line-by-line Python transcriptions of library code that needs another runtime.

Each class follows one library's source (file and version cited in its docstring), with
Java ``float`` arithmetic done in ``numpy.float32`` where the library uses it. They are
the reference side of ``test_transcriptions.py``; they are not used by simres itself.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

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


# ---------------------------------------------------------------------------- cockatiel

COCKATIEL_COMMIT = "f475a690eedbb9dc7e495b6e4b0f42105c195ec3"
"""connor4312/cockatiel at version 4.0.0 (the commit read)."""

CLOSED, OPEN, HALF_OPEN = 0, 1, 2  # CircuitState (Isolated is not driven)


class CockatielConsecutiveBreaker:
    """cockatiel ``src/breaker/ConsecutiveBreaker.ts``: ``success()`` sets ``state = 0``,
    ``failure()`` returns ``++this.state >= this.threshold``."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.state = 0

    def success(self, state: int) -> None:
        self.state = 0

    def failure(self, state: int) -> bool:
        self.state += 1
        return self.state >= self.threshold


class CockatielSamplingBreaker:
    """cockatiel ``src/breaker/SamplingBreaker.ts`` (constructor, ``success``, ``failure``,
    ``resetWindows``, ``rotateWindow``, ``push``), on a clock in ms (``Date.now()``)."""

    def __init__(self, threshold: float, duration: float, minimum_rps: float | None,
                 clock: list[float]) -> None:
        assert 0 < threshold < 1
        self.clock = clock
        self.threshold = threshold
        window_count = max(5, math.ceil(duration / 1000))
        self.windows = [{"startedAt": 0.0, "failures": 0, "successes": 0} for _ in range(window_count)]
        self.window_size = math.floor(duration / window_count + 0.5)  # Math.round
        self.duration = self.window_size * window_count
        if minimum_rps:
            self.minimum_rpms = minimum_rps / 1000
        else:
            self.minimum_rpms = 5 / (threshold * 1000)
        self.current_window = 0
        self.current_failures = 0
        self.current_successes = 0

    def success(self, state: int) -> None:
        if state == HALF_OPEN:
            self.reset_windows()
        self.push(True)

    def failure(self, state: int) -> bool:
        self.push(False)
        if state != CLOSED:
            return True
        total = self.current_successes + self.current_failures
        if total < self.duration * self.minimum_rpms:
            return False
        if self.current_failures > self.threshold * total:  # noqa: SIM103 (as the source)
            return True
        return False

    def reset_windows(self) -> None:
        self.current_failures = 0
        self.current_successes = 0
        for window in self.windows:
            window["failures"] = 0
            window["successes"] = 0
            window["startedAt"] = 0.0

    def rotate_window(self, now: float) -> dict[str, float]:
        nxt = (self.current_window + 1) % len(self.windows)
        self.current_failures -= self.windows[nxt]["failures"]
        self.current_successes -= self.windows[nxt]["successes"]
        window = self.windows[nxt] = {"failures": 0, "successes": 0, "startedAt": now}
        self.current_window = nxt
        return window

    def push(self, success: bool) -> None:
        now = self.clock[0]
        window = self.windows[self.current_window]
        if now - window["startedAt"] >= self.window_size:
            window = self.rotate_window(now)
        if success:
            window["successes"] += 1
            self.current_successes += 1
        else:
            window["failures"] += 1
            self.current_failures += 1


class _CockatielState:
    """One ``InnerState`` object (compared by identity, as ``this.innerState !== state``)."""

    def __init__(self, value: int, **fields: float) -> None:
        self.value = value
        self.opened_at = fields.get("opened_at", 0.0)
        self.attempt_no = int(fields.get("attempt_no", 0))
        self.in_flight = 0
        self.successes = 0
        self.failures = 0
        self.decision: list[Any] = []  # callers awaiting `state.decision.promise`


class CockatielCircuitBreakerPolicy:
    """cockatiel ``src/CircuitBreakerPolicy.ts`` (``execute``, ``executeHalfOpen``,
    ``recordHalfOpenSuccess``/``Failure``, ``maybeCompleteHalfOpen``, ``open``, ``close``)
    with ``halfOpenAfter`` a number (``ConstantBackoff``) and the default
    ``halfOpenSampling`` ``{calls: 1, threshold: 0}``.

    The ``async`` flow is cut at its ``await`` points: :meth:`execute` returns
    ``("reject",)``, ``("run", token)`` (``executor.invoke`` started) or ``("wait", caller)``
    (``await state.decision.promise``); :meth:`finish` is the continuation after
    ``invoke`` with ``success``, ``failure`` (a handled error) or ``unhandled`` (``invoke``
    rethrows: in closed the breaker never hears of it, in half-open it is a success).
    Resolving a decision appends its awaiting callers to :attr:`woken` in order; the
    harness runs their ``this.execute(fn)`` next, as the microtask queue would.
    """

    def __init__(self, breaker: Any, half_open_after_ms: float, clock: list[float]) -> None:
        self.breaker = breaker
        self.duration = half_open_after_ms
        self.clock = clock
        self.inner = _CockatielState(CLOSED)
        self.calls, self.sampling_threshold = 1, 0.0
        self.woken: list[Any] = []

    def execute(self, caller: Any) -> tuple[Any, ...]:
        state = self.inner
        if state.value == CLOSED:
            return ("run", ("closed", state))
        if state.value == HALF_OPEN:
            return self.execute_half_open(caller, state)
        if self.clock[0] - state.opened_at < self.duration:
            return ("reject",)
        half = _CockatielState(HALF_OPEN, attempt_no=state.attempt_no + 1)
        self.inner = half
        return self.execute_half_open(caller, half)

    def execute_half_open(self, caller: Any, state: _CockatielState) -> tuple[Any, ...]:
        if self.inner is not state:
            return self.execute(caller)
        if state.successes + state.failures + state.in_flight >= self.calls:
            state.decision.append(caller)
            return ("wait", caller)
        state.in_flight += 1
        return ("run", ("half", state))

    def finish(self, token: tuple[str, _CockatielState], result: str) -> None:
        branch, state = token
        if branch == "closed":
            if result == "unhandled":
                return  # invoke() rethrows before the breaker is told
            if result == "success":
                self.breaker.success(state.value)
            elif self.breaker.failure(state.value):
                self.open()
            return
        if result == "failure":
            self.record_half_open_failure(state)
        else:  # success, or "Task failed successfully!" (an unhandled error)
            self.record_half_open_success(state)

    def record_half_open_success(self, state: _CockatielState) -> None:
        if self.inner is not state:
            return
        state.in_flight -= 1
        state.successes += 1
        self.maybe_complete_half_open(state)

    def record_half_open_failure(self, state: _CockatielState) -> None:
        if self.inner is not state:
            return
        state.in_flight -= 1
        state.failures += 1
        if state.failures > self.sampling_threshold * self.calls:
            self.breaker.failure(HALF_OPEN)
            self.open()
            return
        self.maybe_complete_half_open(state)

    def maybe_complete_half_open(self, state: _CockatielState) -> None:
        if state.successes + state.failures < self.calls or state.in_flight:
            return
        self.close()

    def open(self) -> None:
        if self.inner.value == OPEN:
            return
        previous = self.inner
        attempt_no = previous.attempt_no if previous.value == HALF_OPEN else 1
        self.inner = _CockatielState(OPEN, opened_at=self.clock[0], attempt_no=attempt_no)
        if previous.value == HALF_OPEN:
            self.woken.extend(previous.decision)  # previousState.decision.resolve()

    def close(self) -> None:
        if self.inner.value == HALF_OPEN:
            state = self.inner
            self.breaker.success(HALF_OPEN)
            self.inner = _CockatielState(CLOSED)
            self.woken.extend(state.decision)


# ---------------------------------------------------------------------------- opossum

OPOSSUM_COMMIT = "59421c572adf568c9f7dab823801e6618a0759c3"
"""nodeshift/opossum at version 10.0.0 (the commit read)."""


class OpossumCircuitBreaker:
    """opossum ``lib/circuit.js`` (``call``, ``handleError``, ``fail``, ``open``, ``close``,
    ``_halfOpen``, the ``success`` listeners) and ``lib/status.js`` (the bucket window,
    ``increment``, ``stats``), with the timers on a fake clock in ms.

    ``setInterval(rotateBucket, floor(rollingCountTimeout / rollingCountBuckets))`` from
    construction (time 0) and ``setTimeout(_halfOpen, resetTimeout)`` on ``open`` are
    fired by :meth:`advance` for every due time ``<= now`` before the event at ``now``.
    ``errorFilter`` matches are reported as ``filtered`` (they emit ``success``).
    """

    def __init__(self, error_threshold_percentage: float, reset_timeout: float,
                 rolling_count_timeout: int, rolling_count_buckets: int, volume_threshold: int) -> None:
        self.pct = error_threshold_percentage
        self.reset_timeout = reset_timeout
        self.volume_threshold = volume_threshold
        self.buckets = rolling_count_buckets
        self.interval = math.floor(rolling_count_timeout / rolling_count_buckets)
        self.window = [self.bucket() for _ in range(rolling_count_buckets)]
        self.next_rotation = float(self.interval)
        self.reset_at: float | None = None
        self.state = "closed"
        self.pending_close = False
        self.now = 0.0

    @staticmethod
    def bucket() -> dict[str, int]:
        return {"failures": 0, "successes": 0, "rejects": 0, "fires": 0}

    def advance(self, now_ms: float) -> None:
        """Fire the timers due at or before ``now_ms`` (rotations and the reset timer are
        independent, so their order among themselves does not matter)."""
        while self.next_rotation <= now_ms:
            self.window.pop()  # nextBucket
            self.window.insert(0, self.bucket())
            self.next_rotation += self.interval
        if self.reset_at is not None and self.reset_at <= now_ms:
            self.reset_at = None
            self.state = "half_open"  # _halfOpen
            self.pending_close = True
        self.now = now_ms

    def stats(self) -> dict[str, int]:
        totals = self.bucket()
        for b in self.window:
            for k in totals:
                totals[k] += b[k]
        return totals

    def call(self) -> bool:
        """``call()`` up to starting the action: True if it runs, False if rejected."""
        self.window[0]["fires"] += 1  # emit('fire')
        if self.state != "closed" and not self.pending_close:
            self.window[0]["rejects"] += 1  # emit('reject')
            return False
        self.pending_close = False
        return True

    def on_success(self) -> None:
        self.window[0]["successes"] += 1  # the 'success' listeners, in registration order
        if self.state == "half_open":
            self.close()

    def on_error(self, filtered: bool) -> None:
        """``handleError``: a filtered error emits ``success``, any other ``fail``."""
        if filtered:
            self.on_success()
        else:
            self.fail()

    def fail(self) -> None:
        self.window[0]["failures"] += 1  # emit('failure')
        stats = self.stats()
        half_open = self.state == "half_open"
        if stats["fires"] < self.volume_threshold and not half_open:
            return
        fires = stats["fires"]
        error_rate = (stats["failures"] / fires * 100 if fires
                      else math.inf)  # JavaScript: n / 0 is Infinity
        if error_rate > self.pct or half_open:
            self.open()

    def open(self) -> None:
        if self.state != "open":
            self.state = "open"
            self.pending_close = False
            self.reset_at = self.now + self.reset_timeout  # _startTimer's setTimeout

    def close(self) -> None:
        if self.state != "closed":
            self.reset_at = None  # clearTimeout(RESET_TIMEOUT)
            self.state = "closed"
            self.pending_close = False


# ---------------------------------------------------------------------------- Polly v8

POLLY_COMMIT = "173d6d1d2e28a4697f1ac1d22da68f77ff19a0c9"
"""App-vNext/Polly main (Polly.Core 8.x) at the commit read."""


class PollyRollingHealthMetrics:
    """``src/Polly.Core/CircuitBreaker/Health/RollingHealthMetrics.cs`` on a clock in ticks
    (100 ns, ``DateTimeOffset``): ``_windowDuration = samplingDuration.Ticks /
    numberOfWindows`` (integer division); ``UpdateCurrentWindow`` starts a window when
    ``now - current.StartedAt >= _windowDuration`` and drops the oldest while ``now -
    Peek().StartedAt >= _samplingDuration``. ``HealthInfo.Create``: throughput
    ``s + f``, failure rate ``f / (double)total`` (0 when empty)."""

    def __init__(self, sampling_ticks: int, windows: int, clock: list[int]) -> None:
        self.sampling = sampling_ticks
        self.window = sampling_ticks // windows
        self.windows: deque[list[int]] = deque()  # [StartedAt, Successes, Failures]
        self.current: list[int] | None = None
        self.clock = clock

    def update_current_window(self) -> list[int]:
        now = self.clock[0]
        if self.current is None or now - self.current[0] >= self.window:
            self.current = [now, 0, 0]
            self.windows.append(self.current)
        while now - self.windows[0][0] >= self.sampling:
            self.windows.popleft()
        return self.current

    def increment_success(self) -> None:
        self.update_current_window()[1] += 1

    def increment_failure(self) -> None:
        self.update_current_window()[2] += 1

    def reset(self) -> None:
        self.current = None
        self.windows.clear()

    def get_health_info(self) -> tuple[int, float, int]:
        self.update_current_window()
        successes = sum(w[1] for w in self.windows)
        failures = sum(w[2] for w in self.windows)
        total = successes + failures
        return (0, 0.0, failures) if total == 0 else (total, failures / total, failures)


class PollyCircuitBreaker:
    """``Controller/CircuitStateController.cs`` (``OnActionPreExecuteAsync``,
    ``PermitHalfOpenCircuitTest_NeedsLock``, ``OnUnhandledOutcomeAsync``,
    ``OnHandledOutcomeAsync``, ``CloseCircuit_NeedsLock``, ``OpenCircuitFor_NeedsLock``)
    with ``Controller/AdvancedCircuitBehavior.cs`` over rolling health metrics. A success
    is an unhandled outcome (the default ``ShouldHandle`` handles exceptions only), as is
    an exception the predicate does not handle."""

    def __init__(self, failure_ratio: float, minimum_throughput: int, sampling_ticks: int,
                 break_ticks: int, clock: list[int]) -> None:
        self.ratio = failure_ratio
        self.minimum = minimum_throughput
        self.break_ticks = break_ticks
        self.metrics = PollyRollingHealthMetrics(sampling_ticks, 10, clock)
        self.clock = clock
        self.state = "closed"
        self.blocked_until = -math.inf  # DateTimeOffset.MinValue

    def pre_execute(self) -> bool:
        """True: the call runs; False: ``BrokenCircuitException``."""
        is_half_open = False
        if self.state == "open" and self.permit_half_open_circuit_test():
            self.state = "half_open"
            is_half_open = True
        return not (self.state == "open" or (self.state == "half_open" and not is_half_open))

    def permit_half_open_circuit_test(self) -> bool:
        now = self.clock[0]
        if now >= self.blocked_until:
            self.blocked_until = now + self.break_ticks
            return True
        return False

    def on_unhandled_outcome(self) -> None:
        self.metrics.increment_success()  # AdvancedCircuitBehavior.OnActionSuccess, any state
        if self.state == "half_open":
            self.close_circuit()

    def on_handled_outcome(self) -> None:
        should_break = False
        if self.state == "closed":
            self.metrics.increment_failure()
            throughput, rate, _ = self.metrics.get_health_info()
            should_break = throughput >= self.minimum and rate >= self.ratio
        elif self.state == "open":
            self.metrics.increment_failure()  # tracked, no action
        if self.state == "half_open" or (self.state == "closed" and should_break):
            self.open_circuit_for()

    def close_circuit(self) -> None:
        self.blocked_until = -math.inf
        self.state = "closed"
        self.metrics.reset()  # OnCircuitClosed

    def open_circuit_for(self) -> None:
        self.blocked_until = self.clock[0] + self.break_ticks
        self.state = "open"
