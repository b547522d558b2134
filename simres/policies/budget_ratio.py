"""Ratio budgets: retries as a share of requests (Finagle, Linkerd, SRE) and Brooker's failure-ratio breaker.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from simres.outcomes import RETRYABLE_KINDS
from simres.policies._base import PolicyModel, SlidingCounts
from simres.policies._budget_base import _PRESET_DOC, _SCOPE_DOC, RetryBudget, Scope, _check_failure_outcomes

# ---------------------------------------------------------------------------- ratio


class RatioBudgetConfig(PolicyModel):
    """Finagle RetryBudget: retries <= percent*requests + min_per_second*ttl over ``ttl``."""

    preset_group = "budget"
    kind: Literal["ratio"] = Field(
        default="ratio", description="Budget kind: retries as a share of requests (Finagle, SRE).")
    percent: float = Field(default=0.2, ge=0,
                           description="Retries allowed per request in the window (Finagle 0.2).")
    min_per_second: float = Field(default=10.0, ge=0,
                                  description="Retries per second always allowed (Finagle 10).")
    ttl: float = Field(default=10.0, gt=0,
                       description="Seconds: the sliding window (Finagle 10).")
    buckets: int = Field(default=10, ge=1,
                         description="Time slices the window is kept in (Finagle's "
                                     "WindowedAdder uses 10).")
    slices: Literal["grid", "finagle"] = Field(
        default="grid",
        description="grid: slices aligned to multiples of ttl/buckets, the real inequality; "
                    "finagle: Finagle's TokenRetryBudget exactly (integer milli-tokens, "
                    "withdrawals that expire too, and WindowedAdder slices that start when an "
                    "access finds the current one expired; ttl in whole seconds, buckets > 1).")
    scope: Scope = Field(default="per_client", description=_SCOPE_DOC)
    preset: str | None = Field(default=None, description=_PRESET_DOC)

    @model_validator(mode="after")
    def _finagle_limits(self) -> RatioBudgetConfig:
        if self.slices == "finagle" and (self.buckets < 2 or float(self.ttl) != int(self.ttl)
                                         or float(self.min_per_second) != int(self.min_per_second)):
            raise ValueError("slices: 'finagle' needs buckets > 1 and a whole ttl and "
                             f"min_per_second, got {self.buckets}, {self.ttl}, {self.min_per_second}")
        return self

    def build(self) -> RatioBudget | FinagleRetryBudget:
        """Fresh budget state."""
        if self.slices == "finagle":
            return FinagleRetryBudget(self)
        return RatioBudget(self)


class RatioBudget(RetryBudget):
    """Requests and retries counted over a sliding window of time slices."""

    __slots__ = ("_counts", "_percent", "_reserve", "config", "retries_denied",
                 "retries_granted")

    _REQ = 0
    _RETRY = 1

    def __init__(self, config: RatioBudgetConfig) -> None:
        self.config = config
        self._percent = config.percent
        self._reserve = config.min_per_second * config.ttl
        self._counts = SlidingCounts(config.ttl, config.buckets, 2)
        self.retries_granted = 0
        self.retries_denied = 0

    def on_request(self, now: float) -> None:
        self._counts.add(now, 0)

    def try_acquire_retry(self, now: float, outcome: str) -> bool:
        counts = self._counts
        retries = counts.total(now, 1)
        allowance = self._percent * counts.last_total(0) + self._reserve
        if retries + 1 <= allowance + 1e-9:
            counts.add(now, 1)
            self.retries_granted += 1
            return True
        self.retries_denied += 1
        return False

    @property
    def tokens(self) -> float:
        """Retries still allowed in the window as of the last update (never below zero)."""
        c = self._counts
        return max(0.0, self._percent * c.last_total(0) + self._reserve - c.last_total(1))

    @property
    def available(self) -> float:
        return float(int(self.tokens + 1e-9))

    def __repr__(self) -> str:
        return f"RatioBudget(tokens={self.tokens!r}, config={self.config!r})"


class _WindowedAdder:
    """Finagle's ``WindowedAdder`` (finagle-core util/WindowedAdder.scala): ``slices - 1``
    kept slices plus the one being written; a slice ends when an access finds it older
    than ``range / slices`` (integer milliseconds), and skipped slices are cleared."""

    __slots__ = ("_buf", "_i", "_n", "_old", "_window", "_writer")

    def __init__(self, range_ms: int, slices: int) -> None:
        self._window = range_ms // slices
        self._n = slices - 1
        self._buf = [0] * self._n
        self._i = 0
        self._old = 0  # Finagle reads the clock when the adder is built: the simulation start
        self._writer = 0

    def _expire_if_due(self, now_ms: int) -> None:
        if now_ms - self._old < self._window:
            return
        n = self._n
        self._buf[self._i] = self._writer
        self._writer = 0
        self._i = (self._i + 1) % n
        nskip = min((now_ms - self._old) // self._window - 1, n)
        if nskip > 0:
            r = min(nskip, n - self._i)
            for k in range(self._i, self._i + r):
                self._buf[k] = 0
            for k in range(nskip - r):
                self._buf[k] = 0
            self._i = (self._i + nskip) % n
        self._old = now_ms

    def add(self, now_ms: int, x: int) -> None:
        self._expire_if_due(now_ms)
        self._writer += x

    def sum(self, now_ms: int) -> int:
        self._expire_if_due(now_ms)
        return self._writer + sum(self._buf)


class FinagleRetryBudget(RetryBudget):
    """Finagle's ``RetryBudget(ttl, minRetriesPerSec, percentCanRetry)`` exactly
    (finagle-core service/RetryBudget.scala, util/TokenBucket.scala ``newLeakyBucket``):
    a request deposits 1000; a retry withdraws ``int(1000 / percent)`` if the windowed sum
    plus the reserve ``min_per_second * ttl * withdrawal`` covers it. Time is read in
    whole milliseconds; the budget counts as built at time 0."""

    __slots__ = ("_adder", "_deposit", "_reserve", "_withdraw", "config", "retries_denied",
                 "retries_granted")

    def __init__(self, config: RatioBudgetConfig) -> None:
        self.config = config
        pct = config.percent
        self._deposit = 0 if pct == 0 else 1000
        self._withdraw = 1 if pct == 0 else int(1000.0 / pct)
        self._reserve = int(config.min_per_second) * int(config.ttl) * self._withdraw
        self._adder = _WindowedAdder(int(config.ttl) * 1000, config.buckets)
        self.retries_granted = 0
        self.retries_denied = 0

    @staticmethod
    def _ms(now: float) -> int:
        return round(now * 1000)

    def on_request(self, now: float) -> None:
        self._adder.add(self._ms(now), self._deposit)

    def try_acquire_retry(self, now: float, outcome: str) -> bool:
        ms = self._ms(now)
        if self._adder.sum(ms) + self._reserve >= self._withdraw:
            self._adder.add(ms, -self._withdraw)
            self.retries_granted += 1
            return True
        self.retries_denied += 1
        return False

    @property
    def tokens(self) -> float:
        """Finagle's ``balance``: retries the bucket would allow, as of the last access."""
        a = self._adder
        return float((a._writer + sum(a._buf) + self._reserve) // self._withdraw)

    def __repr__(self) -> str:
        return f"FinagleRetryBudget(balance={self.tokens!r}, config={self.config!r})"




# ---------------------------------------------------------------------------- failure ratio


class FailureRatioBudgetConfig(PolicyModel):
    """Brooker's retry breaker: no retries while the failure ratio > ``threshold``.

    The ratio is failed tries over tries (``denominator: tries``, the default) or over
    unique logical calls (``denominator: calls``, as the client in Brooker's 2022 retry
    simulations counts it: retries do not dilute the ratio, so it can exceed 1).
    """

    preset_group = "budget"
    kind: Literal["failure_ratio"] = Field(
        default="failure_ratio", description="Budget kind: Brooker's failure-ratio retry breaker.")
    threshold: float = Field(default=0.1, ge=0, le=1,
                             description="Retrying stops while the failure ratio exceeds this.")
    window: float | None = Field(
        default=None, gt=0,
        description="Seconds of sliding window for the ratio; None = since the start.")
    buckets: int = Field(default=10, ge=1,
                         description="Time slices of the sliding window (if any).")
    failure_outcomes: tuple[str, ...] = Field(
        default=RETRYABLE_KINDS, description="Outcomes of a try that count as failures.")
    denominator: Literal["tries", "calls"] = Field(
        default="tries",
        description="What the failed tries are divided by: every try, or unique logical calls (Brooker 2022).")
    scope: Scope = Field(default="per_client", description=_SCOPE_DOC)
    preset: str | None = Field(default=None, description=_PRESET_DOC)

    @field_validator("failure_outcomes")
    @classmethod
    def _known_outcomes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_failure_outcomes(value)

    def build(self) -> FailureRatioBudget:
        """Fresh budget state."""
        return FailureRatioBudget(self)


class FailureRatioBudget(RetryBudget):
    """Counts tries (or calls) and failed tries, cumulatively or over a sliding window."""

    __slots__ = ("_by_call", "_calls", "_counts", "_fail", "_failures", "_threshold", "config",
                 "retries_denied", "retries_granted")

    def __init__(self, config: FailureRatioBudgetConfig) -> None:
        self.config = config
        self._threshold = config.threshold
        self._fail = frozenset(config.failure_outcomes)
        self._counts = (None if config.window is None
                        else SlidingCounts(config.window, config.buckets, 2))
        self._calls = 0
        self._failures = 0
        self._by_call = config.denominator == "calls"
        self.retries_granted = 0
        self.retries_denied = 0

    def on_request(self, now: float) -> None:
        if self._by_call:
            self._count(now, 0)

    def _count(self, now: float, slot: int) -> None:
        if self._counts is None:
            if slot == 0:
                self._calls += 1
            else:
                self._failures += 1
        else:
            self._counts.add(now, slot)

    def on_try_end(self, now: float, outcome: str, is_retry: bool,
                   retry_cost: float | None = None, *, sent: bool = True) -> None:
        if not self._by_call:
            self._count(now, 0)
        if outcome in self._fail:
            self._count(now, 1)

    def ratio(self, now: float) -> float:
        """Failed tries / tries, or / calls with ``denominator: calls`` (0 before any)."""
        if self._counts is None:
            calls, failures = self._calls, self._failures
        else:
            calls, failures = self._counts.total(now, 0), self._counts.last_total(1)
        return failures / calls if calls else 0.0

    def try_acquire_retry(self, now: float, outcome: str) -> bool:
        if self.ratio(now) > self._threshold:
            self.retries_denied += 1
            return False
        self.retries_granted += 1
        return True

    @property
    def tokens(self) -> float:
        """Headroom: threshold minus the failure ratio as of the last update (may be < 0)."""
        if self._counts is None:
            calls, failures = self._calls, self._failures
        else:
            calls, failures = self._counts.last_total(0), self._counts.last_total(1)
        return self._threshold - (failures / calls if calls else 0.0)

    @property
    def available(self) -> float:
        """1 while retries are allowed, else 0."""
        return 1.0 if self.tokens >= 0 else 0.0

    def __repr__(self) -> str:
        return f"FailureRatioBudget(headroom={self.tokens!r}, config={self.config!r})"
