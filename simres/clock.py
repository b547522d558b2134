"""Clocks for the policy drivers.

Policies never read a clock: they are handed ``now``. These clocks are what the drivers
read: the SimPy environment's time in simulation, the wall clock around real calls, and a
manual clock in tests (no sleeping).
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the time in seconds."""

    def now(self) -> float:
        """Current time in seconds (monotonic)."""
        ...


class WallClock:
    """Monotonic wall-clock time, for the real-time wrappers."""

    def now(self) -> float:
        """Seconds from :func:`time.monotonic`."""
        return time.monotonic()

    def __repr__(self) -> str:
        return "WallClock()"


class ManualClock:
    """A clock that only moves when told to; used by tests to drive policies without sleeping."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        """The current manual time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (must be >= 0) and return the new time."""
        if seconds < 0:
            raise ValueError(f"seconds: must be >= 0, got {seconds}")
        self._now += seconds
        return self._now

    def set(self, t: float) -> None:
        """Jump to absolute time ``t`` (must not go backwards)."""
        if t < self._now:
            raise ValueError(f"t: must be >= current time {self._now}, got {t}")
        self._now = float(t)

    def __repr__(self) -> str:
        return f"ManualClock(start={self._now!r})"
