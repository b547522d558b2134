"""Line-by-line Python transcriptions of retry code that needs another runtime (Polly, .NET).

The reference side of ``test_polly.py``; not used by simres itself. .NET ``TimeSpan`` is
kept as its whole tick count (100 ns), with the conversions of .NET 8's
``System.Private.CoreLib/src/System/TimeSpan.cs`` (dotnet/runtime main):
``IntervalFromDoubleTicks`` (throws ``OverflowException`` above ``long.MaxValue`` as a
double, returns ``MaxValue`` at it, else truncates), ``operator *(TimeSpan, double)``
(``Math.Round``, ties to even, then ``IntervalFromDoubleTicks``), ``FromMilliseconds``
(``value * 10000.0``, then the same), ``TotalMilliseconds`` (``ticks / 10000.0``, clamped
to ``MaxMilliSeconds``). Python's ``round`` also rounds ties to even, ``int()`` truncates
as C#'s ``(long)`` cast does, and ``math.pow``/``tanh``/``sqrt`` are the platform libm, as
.NET's ``Math`` is on Linux.
"""

from __future__ import annotations

import math
from collections.abc import Callable

LONG_MAX = 2**63 - 1
TICKS_PER_MS = 10_000


class Overflow(Exception):
    """.NET ``OverflowException``."""


def interval_from_double_ticks(ticks: float) -> int:
    """``TimeSpan.IntervalFromDoubleTicks``."""
    if ticks > float(LONG_MAX) or ticks < float(-LONG_MAX - 1) or math.isnan(ticks):
        raise Overflow
    if ticks == float(LONG_MAX):
        return LONG_MAX
    return int(ticks)


def multiply(ticks: int, factor: float) -> int:
    """``TimeSpan operator *(TimeSpan timeSpan, double factor)``."""
    product = float(ticks) * factor
    if math.isinf(product):
        raise Overflow
    return interval_from_double_ticks(float(round(product)))


def from_milliseconds(value: float) -> int:
    """``TimeSpan.FromMilliseconds(double)``."""
    return interval_from_double_ticks(value * float(TICKS_PER_MS))


def total_milliseconds(ticks: int) -> float:
    """``TimeSpan.TotalMilliseconds``."""
    temp = float(ticks) / TICKS_PER_MS
    max_ms = LONG_MAX // TICKS_PER_MS
    if temp > max_ms:
        return float(max_ms)
    return temp


def c_pow(x: float, y: float) -> float:
    """``Math.Pow``: +inf where Python raises."""
    try:
        return math.pow(x, y)
    except OverflowError:
        return math.inf


class PollyRetryHelper:
    """Polly v8 ``src/Polly.Core/Retry/RetryHelper.cs`` (App-vNext/Polly at 173d6d1d).

    ``GetRetryDelay``, ``ApplyJitter``, ``DecorrelatedJitterBackoffV2`` and
    ``GetRetryDelayCore`` on the ``NETCOREAPP`` branch (``(attempt + 1) * baseDelay`` and
    ``Math.Pow(2, attempt) * baseDelay`` are ``TimeSpan * double``). Delays are ticks.
    """

    JitterFactor = 0.5
    ExponentialFactor = 2.0
    MaxTimeSpanTicks = float(LONG_MAX) - 1_000

    @classmethod
    def get_retry_delay(cls, type_: str, jitter: bool, attempt: int, base_delay: int,
                        max_delay: int | None, state: list[float],
                        randomizer: Callable[[], float]) -> int:
        try:
            delay = cls.get_retry_delay_core(type_, jitter, attempt, base_delay, state, randomizer)
            if max_delay is not None and delay > max_delay:
                return max_delay
            return delay
        except Overflow:
            if max_delay is not None:
                return max_delay
            return LONG_MAX

    @classmethod
    def apply_jitter(cls, delay: int, randomizer: Callable[[], float]) -> int:
        offset = (total_milliseconds(delay) * cls.JitterFactor) / 2
        random_delay = (total_milliseconds(delay) * cls.JitterFactor * randomizer()) - offset
        new_delay = total_milliseconds(delay) + random_delay
        return from_milliseconds(new_delay)

    @classmethod
    def decorrelated_jitter_backoff_v2(cls, attempt: int, base_delay: int, prev: list[float],
                                       randomizer: Callable[[], float]) -> int:
        p_factor = 4.0
        rp_scaling_factor = 1 / 1.4
        target_ticks_first_delay = base_delay
        t = attempt + randomizer()
        nxt = c_pow(cls.ExponentialFactor, t) * math.tanh(math.sqrt(p_factor * t))
        if math.isinf(nxt):
            prev[0] = nxt
            return int(cls.MaxTimeSpanTicks)
        formula_intrinsic_value = nxt - prev[0]
        prev[0] = nxt
        ticks = int(min(formula_intrinsic_value * rp_scaling_factor * float(target_ticks_first_delay),
                        cls.MaxTimeSpanTicks))
        assert ticks >= 0, "ticks cannot be negative"
        return ticks

    @classmethod
    def get_retry_delay_core(cls, type_: str, jitter: bool, attempt: int, base_delay: int,
                             state: list[float], randomizer: Callable[[], float]) -> int:
        if base_delay == 0:
            return base_delay
        if jitter:
            if type_ == "Constant":
                return cls.apply_jitter(base_delay, randomizer)
            if type_ == "Linear":
                return cls.apply_jitter(
                    from_milliseconds((attempt + 1) * total_milliseconds(base_delay)), randomizer)
            if type_ == "Exponential":
                return cls.decorrelated_jitter_backoff_v2(attempt, base_delay, state, randomizer)
            raise ValueError(type_)
        if type_ == "Constant":
            return base_delay
        if type_ == "Linear":
            return multiply(base_delay, float(attempt + 1))
        if type_ == "Exponential":
            return multiply(base_delay, c_pow(cls.ExponentialFactor, attempt))
        raise ValueError(type_)


class PollyRetryExecution:
    """One execution of Polly v8 ``RetryResilienceStrategy<T>.ExecuteCore`` (same commit).

    ``retryState`` starts at 0 and ``attempt`` at 0 per execution; after each handled
    outcome ``IsLastAttempt`` (``attempt >= RetryCount``) ends it, else the delay is
    ``GetRetryDelay(...)`` and ``attempt`` is incremented. No ``DelayGenerator``.
    """

    def __init__(self, backoff_type: str, use_jitter: bool, retry_count: int, base_delay: int,
                 max_delay: int | None, randomizer: Callable[[], float]) -> None:
        self.backoff_type, self.use_jitter = backoff_type, use_jitter
        self.retry_count, self.base_delay, self.max_delay = retry_count, base_delay, max_delay
        self.randomizer = randomizer
        self.retry_state = [0.0]
        self.attempt = 0

    def after_outcome(self, handle: bool) -> int | None:
        """The delay in ticks before the next try, or None when the execution returns."""
        is_last_attempt = self.attempt >= self.retry_count
        if is_last_attempt or not handle:
            return None
        delay = PollyRetryHelper.get_retry_delay(self.backoff_type, self.use_jitter, self.attempt,
                                                 self.base_delay, self.max_delay,
                                                 self.retry_state, self.randomizer)
        self.attempt += 1
        return delay
