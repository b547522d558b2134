"""Sliding windows of call results for circuit breakers.

Four shapes, one per library semantics:

- :class:`CountWindow`: the last N results (Resilience4j ``COUNT_BASED``);
- :class:`TimeWindow`: buckets of ``bucket_width`` seconds (1 s by default) aligned to
  multiples of the width, covering the current partial bucket and the ones before it
  (Resilience4j ``TIME_BASED`` with 1 s; opossum's ``rollingCountTimeout /
  rollingCountBuckets`` buckets, rotated on a fixed timer, with any width);
- :class:`RollingWindow`: ``size`` seconds cut into ``buckets`` sub-windows, each started
  by the first result after the previous one ended (Polly v8 ``RollingHealthMetrics``);
- :class:`SamplingWindow`: cockatiel's ``SamplingBreaker`` ring: a fixed ring of slots,
  advanced by one slot when a result arrives after the current slot's width, so after an
  idle gap old results stay until their slot is reused.

Each keeps running totals, so recording and reading are O(1) amortised.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

from pydantic import Field, model_validator

from simres.policies._base import PolicyModel, SlidingCounts


class WindowConfig(PolicyModel):
    """Which results a rate-based breaker looks at."""

    kind: Literal["count", "time", "rolling", "sampling"] = Field(
        default="count",
        description="count: the last `size` calls (Resilience4j COUNT_BASED); time: `size` "
                    "seconds in buckets of `bucket_width` seconds aligned to multiples of the "
                    "width (Resilience4j TIME_BASED with 1 s; opossum any width); rolling: "
                    "`size` seconds in `buckets` sub-windows, evaluated only when a failure "
                    "arrives (Polly); sampling: cockatiel SamplingBreaker's ring of "
                    "max(5, ceil(size)) slots of round(size/slots) ms.")
    size: float = Field(default=100, gt=0,
                        description="Calls (count) or seconds (time, rolling, sampling).")
    buckets: int = Field(default=10, ge=1,
                         description="Sub-windows of the rolling window (Polly 10).")
    bucket_width: float = Field(
        default=1.0, gt=0,
        description="Seconds per bucket of a time window (Resilience4j 1 s; opossum "
                    "rollingCountTimeout / rollingCountBuckets, floored to whole ms); `size` "
                    "must be a whole number of buckets.")

    @model_validator(mode="after")
    def _check(self) -> WindowConfig:
        if self.kind == "count" and float(self.size) != int(self.size):
            raise ValueError(f"size: a count window needs a whole number, got {self.size}")
        if self.kind == "time":
            n = self.size / self.bucket_width
            if abs(n - round(n)) > 1e-9 * max(1.0, n) or round(n) < 1:
                raise ValueError(f"size: a time window needs a whole number of buckets of "
                                 f"bucket_width {self.bucket_width}, got {self.size}")
        elif self.bucket_width != 1.0:
            raise ValueError(f"bucket_width: only a time window has buckets of a set width, "
                             f"got kind {self.kind!r}")
        return self

    def build(self) -> CountWindow | TimeWindow | RollingWindow | SamplingWindow:
        """Fresh, empty window state."""
        if self.kind == "count":
            return CountWindow(int(self.size))
        if self.kind == "time":
            return TimeWindow(round(self.size / self.bucket_width), self.bucket_width)
        if self.kind == "sampling":
            return SamplingWindow(float(self.size))
        return RollingWindow(float(self.size), self.buckets)


class CountWindow:
    """A ring of the last ``size`` results."""

    __slots__ = ("_i", "_ring", "_size", "failures", "slow", "total")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = bytearray(size)  # bit 0: failed, bit 1: slow, bit 2: occupied
        self._i = 0
        self.total = 0
        self.failures = 0
        self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add one result, evicting the oldest once full."""
        i = self._i
        old = self._ring[i]
        if old:
            self.total -= 1
            self.failures -= old & 1
            self.slow -= (old >> 1) & 1
        self._ring[i] = 4 | failed | (slow << 1)
        self.total += 1
        self.failures += failed
        self.slow += slow
        self._i = i + 1 if i + 1 < self._size else 0

    def counts(self, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) in the window."""
        return self.total, self.failures, self.slow

    def reset(self) -> None:
        """Forget every result."""
        self._ring = bytearray(self._size)
        self._i = 0
        self.total = self.failures = self.slow = 0


class TimeWindow:
    """``buckets`` buckets of ``width`` seconds aligned to multiples of the width."""

    __slots__ = ("_counts", "_size")

    def __init__(self, buckets: int, width: float = 1.0) -> None:
        self._size = buckets
        self._counts = SlidingCounts(buckets * width if width != 1.0 else float(buckets), buckets, 3)
        if width != 1.0:
            self._counts._width = width  # exactly the configured width, not span / buckets

    def record_call(self, now: float) -> None:
        """Count one call started at ``now`` (opossum's ``fires``: the rate's denominator)."""
        self._counts.add(now, 0)

    def record_failure(self, now: float, failed: bool, slow: bool) -> None:
        """Count a result at ``now`` without counting a call (the denominator is calls started)."""
        c = self._counts
        if failed:
            c.add(now, 1)
        if slow:
            c.add(now, 2)

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add one result at ``now``."""
        c = self._counts
        c.add(now, 0)
        if failed:
            c.add(now, 1)
        if slow:
            c.add(now, 2)

    def counts(self, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) in the window ending at ``now``."""
        c = self._counts
        return int(c.total(now, 0)), int(c.last_total(1)), int(c.last_total(2))

    def reset(self) -> None:
        """Forget every result."""
        self._counts.clear()


class RollingWindow:
    """Polly's rolling health metrics: sub-windows started on demand, dropped after ``size``."""

    __slots__ = ("_q", "_size", "_width", "failures", "slow", "total")

    def __init__(self, size: float, buckets: int) -> None:
        self._size = size
        self._width = size / buckets
        self._q: deque[list[float]] = deque()  # [started_at, calls, failures, slow]
        self.total = 0
        self.failures = 0
        self.slow = 0

    def _roll(self, now: float) -> list[float]:
        q = self._q
        if not q or now - q[-1][0] >= self._width:
            q.append([now, 0, 0, 0])
        while now - q[0][0] >= self._size:
            _, calls, fails, slow = q.popleft()
            self.total -= calls
            self.failures -= fails
            self.slow -= slow
        return q[-1]

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add one result at ``now``."""
        w = self._roll(now)
        w[1] += 1
        w[2] += failed
        w[3] += slow
        self.total += 1
        self.failures += failed
        self.slow += slow

    def counts(self, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) in the window ending at ``now``."""
        self._roll(now)
        return int(self.total), int(self.failures), int(self.slow)

    def reset(self) -> None:
        """Forget every result."""
        self._q.clear()
        self.total = self.failures = self.slow = 0


class SamplingWindow:
    """cockatiel 4.0 ``SamplingBreaker``'s ring (``src/breaker/SamplingBreaker.ts``).

    ``max(5, ceil(duration_ms / 1000))`` slots of ``round(duration_ms / slots)`` ms each; a
    result goes into the current slot unless that slot started at least one slot width
    ago, in which case the ring moves on by **one** slot (whatever the gap), dropping that
    slot's old counts. Every slot starts at time 0, as the library's do. ``reset`` clears
    the counts and start times but not the position, as ``resetWindows`` does.
    """

    __slots__ = ("_cur", "_fail", "_n", "_ok", "_started", "duration_ms", "failures", "total",
                 "width")

    def __init__(self, size: float) -> None:
        duration_ms = round(size * 1000.0, 6)
        n = max(5, math.ceil(duration_ms / 1000))
        width_ms = math.floor(duration_ms / n + 0.5)  # JavaScript Math.round
        self._n = n
        self.width = width_ms / 1000.0
        """Seconds per slot."""
        self.duration_ms = width_ms * n
        """The sampled duration in whole ms (the library's ``this.duration``)."""
        self._started = [0.0] * n
        self._ok = [0] * n
        self._fail = [0] * n
        self._cur = 0
        self.total = 0
        self.failures = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """``push(success)``: add one result at ``now``, moving on one slot if the current
        one is at least a slot width old."""
        i = self._cur
        if now - self._started[i] >= self.width:
            i = (i + 1) % self._n
            self.total -= self._ok[i] + self._fail[i]
            self.failures -= self._fail[i]
            self._ok[i] = self._fail[i] = 0
            self._started[i] = now
            self._cur = i
        if failed:
            self._fail[i] += 1
            self.failures += 1
        else:
            self._ok[i] += 1
        self.total += 1

    def counts(self, now: float) -> tuple[int, int, int]:
        """(calls, failures, 0) in the ring; reading never moves it (the library reads its
        running totals)."""
        return self.total, self.failures, 0

    def reset(self) -> None:
        """``resetWindows``: zero every slot and its start time, keep the position."""
        n = self._n
        self._started = [0.0] * n
        self._ok = [0] * n
        self._fail = [0] * n
        self.total = self.failures = 0
