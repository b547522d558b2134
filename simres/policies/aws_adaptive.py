"""botocore's adaptive retry mode: a client-side rate limiter driven by CUBIC.

In ``retries={'mode': 'adaptive'}`` botocore keeps, per client, a token bucket that every
attempt must take a token from before it is sent (``before-send``), once the first
throttling response has been seen; every response (``needs-retry``: successes, errors,
timeouts alike) updates the bucket's fill rate:

- ``RateClocker.record``: the measured response rate, an exponential average (smoothing
  0.8) of the count per half-second bucket, updated when a response lands in a later bucket;
- a non-throttling response: ``CubicCalculator.success_received`` gives
  ``0.4 (t - last_fail - K)^3 + W_max``;
- a throttling response: ``W_max`` = the measured rate (or min(measured, fill rate) once
  enabled), ``K = cbrt(W_max (1 - 0.7) / 0.4)``, the new rate 0.7 x that, and the limiter is
  enabled;
- then the bucket's fill rate = min(new rate, 2 x measured rate), floored at 0.5 tokens/s;
  its capacity is the rate (at least 1), and tokens accrue continuously up to it.

A send that finds less than one token waits ``(1 - tokens) / fill_rate`` and checks again
(``TokenBucket._acquire``); a change of rate wakes one waiter at once
(``Condition.notify``), which re-checks. Waiters are woken in arrival order, as
``threading.Condition`` does; a send that arrives while others wait takes a free token
first (the lock is free while they wait), as a thread would.

Source: botocore 1.44.8 ``botocore/retries/adaptive.py`` (``ClientRateLimiter``,
``RateClocker``), ``bucket.py`` (``TokenBucket``), ``throttling.py`` (``CubicCalculator``).
Times are float seconds as ``time.time()`` gives there. Pure: the driver passes the
simulated time and serves the waits (``tests/policies/conformance/test_botocore_adaptive.py``
compares it with botocore's own objects on a fake clock).
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from typing import Any

from pydantic import Field

from simres.policies._base import PolicyModel

MIN_WAIT = 1e-6
"""The shortest wait, seconds. botocore's loop waits ``(1 - tokens) / rate`` again while that is
positive; after a float-rounded refill it can be a few ulps, and on a simulated clock a wait
shorter than the clock's resolution would never advance it. A real ``Condition.wait`` takes at
least a microsecond or so, and so does this one."""


class AdaptiveRateConfig(PolicyModel):
    """botocore's adaptive mode constants (its class attributes); the defaults are botocore's."""

    smoothing: float = Field(default=0.8, gt=0, le=1, description="RateClocker smoothing (0.8).")
    bucket_range: float = Field(default=0.5, gt=0, description="RateClocker time bucket, seconds (0.5).")
    scale_constant: float = Field(default=0.4, gt=0, description="CUBIC C (0.4).")
    beta: float = Field(default=0.7, gt=0, lt=1, description="CUBIC beta, the rate's factor on throttling (0.7).")
    min_rate: float = Field(default=0.5, gt=0, description="TokenBucket minimum fill rate, tokens/s (0.5).")
    max_rate_adjust_scale: float = Field(
        default=2.0, gt=0, description="The fill rate is at most this x the measured rate (2.0).")
    scope: str = Field(default="per_client", pattern="^(per_client|shared)$",
                       description="per_client: one limiter per calling instance or client member (a botocore "
                                   "client each); shared: one for every caller with this config.")


class AdaptiveRateLimiter:
    """``ClientRateLimiter`` with its ``TokenBucket``, ``RateClocker`` and ``CubicCalculator``.

    :meth:`send` asks for a token at ``now``: ``0.0`` means send now; a positive number is
    how long to wait before asking again with :meth:`retry_send` (the caller is queued as a
    waiter). :meth:`response` reports every attempt's response and returns the waiter to
    wake now, if any (the bucket's ``notify()``).
    """

    def __init__(self, cfg: AdaptiveRateConfig, start_time: float = 0.0) -> None:
        self.cfg = cfg
        self.enabled = False
        # CubicCalculator(starting_max_rate=0, start_time=clock.current_time())
        self.w_max = 0.0
        self.k = self._zero_point()
        self.last_fail = start_time
        # RateClocker(clock)
        self.measured_rate = 0.0
        self._last_bucket: float = math.floor(start_time)
        self._scale = 1 / cfg.bucket_range
        self._count = 0
        # TokenBucket(max_rate=1, clock=clock)
        self.capacity = 0.0
        self._last_timestamp: float | None = None
        self.fill_rate = 0.0
        self.max_capacity = 0.0
        self.waiters: deque[Any] = deque()
        self._set_max_rate(1.0, start_time)

    # -- TokenBucket -----------------------------------------------------------------

    def _refill(self, now: float) -> None:
        if self._last_timestamp is None:
            self._last_timestamp = now
            return
        fill = (now - self._last_timestamp) * self.fill_rate
        self.capacity = min(self.max_capacity, self.capacity + fill)
        self._last_timestamp = now

    def _set_max_rate(self, value: float, now: float) -> None:
        self._refill(now)
        self.fill_rate = max(value, self.cfg.min_rate)
        self.max_capacity = value if value >= 1 else 1
        self.capacity = min(self.capacity, self.max_capacity)

    def _take(self, now: float) -> float:
        self._refill(now)
        if self.capacity >= 1:
            self.capacity -= 1
            return 0.0
        return (1 - self.capacity) / self.fill_rate

    def send(self, now: float, waiter: Any = None) -> float:
        """``on_sending_request``: 0.0 to send now, else seconds until ``waiter`` asks again."""
        wait = self.acquire(now)
        if wait > 0:
            self.waiters.append(waiter)
        return wait

    def acquire(self, now: float) -> float:
        """A send's ask for a token without the waiter queue, for a driver that keeps its own
        (first come, first served): 0.0 took one (or the limiter is off); else the seconds
        until one is due, at least :data:`MIN_WAIT`. The token arithmetic is :meth:`send`'s."""
        if not self.enabled:
            return 0.0
        wait = self._take(now)
        return max(wait, MIN_WAIT) if wait > 0 else 0.0

    def retry_send(self, now: float, waiter: Any = None) -> float:
        """A waiter woken (its wait over, or notified) checks again: 0.0 sends, else wait more.

        As ``TokenBucket._acquire``'s loop: refill, and if the sleep amount is still positive
        wait again; otherwise take the token (the amount may leave the bucket below zero
        only by float rounding, as there).
        """
        self._refill(now)
        wait = (1 - self.capacity) / self.fill_rate
        if wait > 0:
            # wait() again: a thread re-enters the condition's queue at its end
            self.forget(waiter)
            self.waiters.append(waiter)
            return max(wait, MIN_WAIT)
        self.capacity -= 1
        with contextlib.suppress(ValueError):
            self.waiters.remove(waiter)
        return 0.0

    def forget(self, waiter: Any) -> None:
        """A waiter that gave up (its deadline passed) leaves the queue."""
        with contextlib.suppress(ValueError):
            self.waiters.remove(waiter)

    # -- RateClocker, CubicCalculator, ClientRateLimiter.on_receiving_response --------

    def _record(self, now: float) -> float:
        bucket = math.floor(now * self._scale) / self._scale
        self._count += 1
        if bucket > self._last_bucket:
            current = self._count / float(bucket - self._last_bucket)
            self.measured_rate = current * self.cfg.smoothing + self.measured_rate * (1 - self.cfg.smoothing)
            self._count = 0
            self._last_bucket = bucket
        return self.measured_rate

    def _zero_point(self) -> float:
        scaled = (self.w_max * (1 - self.cfg.beta)) / self.cfg.scale_constant
        return float(scaled ** (1 / 3.0))

    def response(self, now: float, throttled: bool) -> Any:
        """``on_receiving_response`` for one attempt's response; returns a waiter to wake now, or None."""
        measured = self._record(now)
        if not throttled:
            dt = now - self.last_fail
            new_rate = self.cfg.scale_constant * (dt - self.k) ** 3 + self.w_max
        else:
            rate = measured if not self.enabled else min(measured, self.fill_rate)
            self.w_max = rate
            self.k = self._zero_point()
            self.last_fail = now
            new_rate = rate * self.cfg.beta
            self.enabled = True
        self._set_max_rate(min(new_rate, self.cfg.max_rate_adjust_scale * measured), now)
        return self.waiters[0] if self.waiters else None  # Condition.notify(): the first waiter
