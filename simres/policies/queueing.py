"""Queue management for overload: CoDel as Facebook runs it for request queues.

``Codel`` is folly's ``folly::Codel`` (``folly/executors/Codel.{h,cpp}``), the variant of
CoDel (Nichols and Jacobson, "Controlling Queue Delay", ACM Queue 2012) that Facebook's
"Fail at Scale" (Maurer, ACM Queue 2015) describes for services: a worker that takes a
request off the queue feeds its queueing delay to :meth:`Codel.overloaded`.

- Each ``interval`` (100 ms) the lowest delay seen in the interval is compared with the
  ``target`` (5 ms): above it, the queue is *overloaded* until the next check. The check is
  made by the first request after the interval ends; that same request then starts the new
  interval's minimum with its own delay and is never dropped.
- While overloaded, a request whose delay exceeds the slough timeout, 2 x ``target``, is
  dropped (answered at once instead of served). Unlike CoDel for packets there is no
  control law of drops at interval / sqrt(n).

The state is pure: the caller passes the time in (seconds).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from simres.policies._base import PolicyModel


class CodelConfig(PolicyModel):
    """Options of folly's Codel (``FLAGS_codel_target_delay`` 5 ms, ``FLAGS_codel_interval`` 100 ms)."""

    target: float = Field(default=0.005, gt=0, description="Target queueing delay, seconds (folly: 5 ms).")
    interval: float = Field(default=0.1, gt=0, description="Interval over which the minimum delay is judged, "
                                                           "seconds (folly: 100 ms).")

    @model_validator(mode="after")
    def _target_below_interval(self) -> CodelConfig:
        # Codel::setOptions: "interval <= delay" is invalid.
        if self.interval <= self.target:
            raise ValueError(f"interval: must be > target ({self.target:g}), got {self.interval:g}")
        return self

    def build(self, now: float = 0.0) -> Codel:
        """Fresh state; folly starts the first interval at construction (``steady_clock::now()``)."""
        return Codel(self, now)


class Codel:
    """``folly::Codel::overloaded_explicit_now``, single-threaded."""

    __slots__ = ("_interval", "_interval_end", "_min_delay", "_reset", "_slough", "_target", "dropped", "overloaded_")

    def __init__(self, cfg: CodelConfig, now: float) -> None:
        self._target = cfg.target
        self._interval = cfg.interval
        self._slough = 2 * cfg.target  # getSloughTimeout
        self._min_delay = 0.0
        self._interval_end = now
        self._reset = True
        self.overloaded_ = False
        self.dropped = 0

    def overloaded(self, delay: float, now: float) -> bool:
        """Whether a request that waited ``delay`` seconds, dequeued at ``now``, should be dropped."""
        if now > self._interval_end and not self._reset:
            self._reset = True
            self._interval_end = now + self._interval
            self.overloaded_ = self._min_delay > self._target
        if self._reset:
            self._reset = False
            self._min_delay = delay
            return False  # more than one request must come in during an interval before dropping
        if delay < self._min_delay:
            self._min_delay = delay
        if self.overloaded_ and delay > self._slough:
            self.dropped += 1
            return True
        return False

    def load(self) -> int:
        """``getLoad``: min(100, 100 x min delay / slough timeout), the queue's load in percent."""
        return min(100, int(100 * self._min_delay / self._slough))
