"""Sliding windows of call results for circuit breakers.

Three shapes, one per library semantics:

- :class:`CountWindow`: the last N results (Resilience4j ``COUNT_BASED``);
- :class:`TimeWindow`: N one-second buckets aligned to whole seconds, covering the
  current partial second and the N-1 before it (Resilience4j ``TIME_BASED``);
- :class:`RollingWindow`: ``size`` seconds cut into ``buckets`` sub-windows, each started
  by the first result after the previous one ended (Polly v8 ``RollingHealthMetrics``).

Each keeps running totals, so recording and reading are O(1) amortised.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from pydantic import Field, model_validator

from simres.policies._base import PolicyModel, SlidingCounts


class WindowConfig(PolicyModel):
    """Which results a rate-based breaker looks at."""

    kind: Literal["count", "time", "rolling"] = Field(
        default="count",
        description="count: the last `size` calls (Resilience4j COUNT_BASED); time: `size` "
                    "one-second buckets aligned to whole seconds (Resilience4j TIME_BASED); "
                    "rolling: `size` seconds in `buckets` sub-windows, evaluated only when a "
                    "failure arrives (Polly).")
    size: float = Field(default=100, gt=0,
                        description="Calls (count) or seconds (time, rolling).")
    buckets: int = Field(default=10, ge=1,
                         description="Sub-windows of the rolling window (Polly 10).")

    @model_validator(mode="after")
    def _check(self) -> WindowConfig:
        if self.kind in ("count", "time") and float(self.size) != int(self.size):
            raise ValueError(f"size: a {self.kind} window needs a whole number, got {self.size}")
        return self

    def build(self) -> CountWindow | TimeWindow | RollingWindow:
        """Fresh, empty window state."""
        if self.kind == "count":
            return CountWindow(int(self.size))
        if self.kind == "time":
            return TimeWindow(int(self.size))
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
    """``size`` one-second buckets aligned to whole seconds."""

    __slots__ = ("_counts", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._counts = SlidingCounts(float(size), size, 3)

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
