"""Retry budgets: limits on how many retries a client (or a group of clients) may make.

Retries multiply load exactly when a server can least afford it; a budget caps that. Five
kinds (six behaviours), each mirroring a production implementation or a published
experiment:

- ``token_bucket``: AWS SDK standard mode's retry quota; with ``refill_per_request`` and
  ``min_tokens_to_retry`` also Brooker's bucket (preset ``brooker``).
- ``grpc``: gRPC retry throttling (gRFC A6).
- ``ratio``: Finagle / Linkerd / SRE retries as a share of requests over a sliding window.
- ``concurrency``: Envoy's retry budget on concurrent retries.
- ``failure_ratio``: Brooker's retry "circuit breaker" (stop retrying while failures/calls
  exceed a threshold).

How the driver calls a budget, for every logical call:

1. ``on_request(now)`` when the call starts (before its first try);
2. ``on_try_end(now, outcome, is_retry)`` once for every try that ``on_request`` or a
   granted ``try_acquire_retry`` started, including tries rejected locally (breaker,
   bulkhead, throttle) and a granted retry abandoned before it was sent (pass the
   outcome that ended it, e.g. ``cancelled``);
3. after a failed try's ``on_try_end``, and only if the retry policy wants to retry,
   ``try_acquire_retry(now, outcome)``; ``False`` means give up.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from simres.outcomes import RETRYABLE_KINDS, SUCCESS_OUTCOMES, TIMEOUT
from simres.policies._base import PolicyModel, SlidingCounts, apply_preset
from simres.policies.presets import BUDGET_PRESETS

Scope = Literal["per_client", "shared"]

_SCOPE_DOC = ("per_client: each client instance has its own budget; shared: one budget for "
              "every client with this config (the driver decides what 'shared' spans).")
_PRESET_DOC = "Name of a library preset whose values fill every field not given here."


def _check_failure_outcomes(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [o for o in value if o not in RETRYABLE_KINDS]
    if bad:
        raise ValueError(f"failure_outcomes: must be among {list(RETRYABLE_KINDS)}, got {bad}")
    return value


class RetryBudget:
    """Base of the budget state classes (see the module docstring for the call protocol)."""

    __slots__ = ()

    def on_request(self, now: float) -> None:
        """A new logical call starts (its first try is about to be made)."""

    def try_acquire_retry(self, now: float, outcome: str) -> bool:  # pragma: no cover
        """May a retry follow a try that failed with ``outcome``? Consumes its cost if so."""
        raise NotImplementedError

    def on_try_start(self, now: float, is_retry: bool) -> None:
        """A try passed the local gates and is being sent (only the Envoy-exact concurrency
        budget needs this; the simulation and real-clock drivers call it for every try)."""

    def on_try_end(self, now: float, outcome: str, is_retry: bool,
                   retry_cost: float | None = None, *, sent: bool = True) -> None:
        """A try ended with ``outcome`` (success or not); ``is_retry``: not the first try.

        ``retry_cost`` is only used by the token bucket: what the retry acquired (the
        driver may remember ``last_cost`` right after ``try_acquire_retry``). ``sent``:
        the try reached the network (False for a local rejection or a retry abandoned in
        its backoff); only the Envoy-exact concurrency budget reads it.
        """

    @property
    def tokens(self) -> float:  # pragma: no cover
        """The budget's current balance, in the kind's own unit."""
        raise NotImplementedError

    @property
    def available(self) -> float:
        """How many more retries the budget would grant right now (ignoring time passing)."""
        return self.tokens


# ---------------------------------------------------------------------------- token bucket


class TokenBucketBudgetConfig(PolicyModel):
    """AWS SDK standard retry quota; Brooker's bucket with ``refill_per_request``."""

    preset_group = "budget"
    kind: Literal["token_bucket"] = Field(
        default="token_bucket", description="Budget kind: token bucket (AWS SDK standard quota; Brooker's bucket).")
    capacity: float = Field(default=500.0, gt=0,
                            description="Most tokens the bucket holds (AWS 500).")
    initial: float | None = Field(default=None, ge=0,
                                  description="Tokens at the start; None = full.")
    cost: float = Field(default=5.0, ge=0,
                        description="Tokens a retry takes (AWS RETRY_COST 5).")
    timeout_cost: float = Field(default=10.0, ge=0,
                                description="Tokens a retry after a timeout takes (AWS mode 2.0: "
                                            "10; mode 2.1 has no separate timeout cost: 14).")
    throttling_cost: float | None = Field(
        default=None, ge=0,
        description="Tokens a retry after a throttling outcome takes (AWS mode 2.1: 5); None = "
                    "cost / timeout_cost as for other failures.")
    throttling_outcomes: tuple[str, ...] = Field(
        default=("rejected", "shed"),
        description="Outcomes that are throttling errors for throttling_cost (AWS: Throttling "
                    "error codes and a 429; in simres a full queue or a shed).")
    refund: float = Field(default=1.0, ge=0,
                          description="Tokens a successful first try (no retry) gives back "
                                      "(AWS NO_RETRY_INCREMENT 1).")
    refund_retry_cost: bool = Field(
        default=True,
        description="A successful retry gives back what that retry acquired (botocore "
                    "release_retry_quota).")
    refill_per_request: float = Field(
        default=0.0, ge=0, description="Tokens added when a new logical call starts (Brooker 0.1).")
    min_tokens_to_retry: float | None = Field(
        default=None, ge=0,
        description="A retry needs strictly more tokens than this (Brooker 1); None = only "
                    "the cost must be available.")
    scope: Scope = Field(default="per_client", description=_SCOPE_DOC)
    preset: str | None = Field(default=None, description=_PRESET_DOC)

    @model_validator(mode="after")
    def _initial_fits(self) -> TokenBucketBudgetConfig:
        if self.initial is not None and self.initial > self.capacity:
            raise ValueError(f"initial: must be <= capacity ({self.capacity}), got {self.initial}")
        return self

    @field_validator("throttling_outcomes")
    @classmethod
    def _known_outcomes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_failure_outcomes(value)

    def build(self) -> TokenBucketBudget:
        """Fresh budget state."""
        return TokenBucketBudget(self)


class TokenBucketBudget(RetryBudget):
    """State of a token-bucket budget; tokens never go below zero or above capacity."""

    __slots__ = ("_cap", "_cost", "_min", "_refill", "_refund", "_refund_retry", "_tcost",
                 "_thr", "_thr_cost", "_tokens", "config", "last_cost", "retries_denied",
                 "retries_granted")

    def __init__(self, config: TokenBucketBudgetConfig) -> None:
        self.config = config
        self._cap = config.capacity
        self._tokens = config.capacity if config.initial is None else config.initial
        self._cost = config.cost
        self._tcost = config.timeout_cost
        self._thr_cost = config.throttling_cost
        self._thr = frozenset(config.throttling_outcomes)
        self._refund = config.refund
        self._refund_retry = config.refund_retry_cost
        self._refill = config.refill_per_request
        self._min = config.min_tokens_to_retry
        self.last_cost = 0.0
        """What the latest granted retry acquired."""
        self.retries_granted = 0
        self.retries_denied = 0

    def on_request(self, now: float) -> None:
        if self._refill:
            self._tokens = min(self._cap, self._tokens + self._refill)

    def try_acquire_retry(self, now: float, outcome: str) -> bool:
        if self._thr_cost is not None and outcome in self._thr:
            cost = self._thr_cost
        else:
            cost = self._tcost if outcome == TIMEOUT else self._cost
        tokens = self._tokens
        if cost > tokens or (self._min is not None and tokens <= self._min):
            self.retries_denied += 1
            return False
        self._tokens = tokens - cost
        self.last_cost = cost
        self.retries_granted += 1
        return True

    def on_try_end(self, now: float, outcome: str, is_retry: bool,
                   retry_cost: float | None = None, *, sent: bool = True) -> None:
        if outcome not in SUCCESS_OUTCOMES:
            return
        if not is_retry:
            amount = self._refund
        elif self._refund_retry:
            amount = self._cost if retry_cost is None else retry_cost
        else:
            return
        if amount:
            self._tokens = min(self._cap, self._tokens + amount)

    @property
    def tokens(self) -> float:
        """Tokens in the bucket."""
        return self._tokens

    @property
    def available(self) -> float:
        """Retries (at the non-timeout cost) the bucket could pay for now."""
        if self._min is not None and self._tokens <= self._min:
            return 0.0
        return self._tokens // self._cost if self._cost else float("inf")

    def __repr__(self) -> str:
        return f"TokenBucketBudget(tokens={self._tokens!r}, config={self.config!r})"


# ---------------------------------------------------------------------------- grpc


class GrpcBudgetConfig(PolicyModel):
    """gRPC retry throttling: failures cost 1 token, successes earn ``token_ratio``."""

    preset_group = "budget"
    kind: Literal["grpc"] = Field(
        default="grpc", description="Budget kind: gRPC retry throttling.")
    max_tokens: float = Field(default=10.0, gt=0, le=1000,
                              description="Starting and largest token count (gRPC maxTokens).")
    token_ratio: float = Field(default=0.1, gt=0,
                               description="Tokens a successful try adds (gRPC tokenRatio).")
    failure_outcomes: tuple[str, ...] = Field(
        default=RETRYABLE_KINDS,
        description="Outcomes that cost a token: gRPC counts only the retry policy's "
                    "retryableStatusCodes (and a do-not-retry pushback), so keep this equal to "
                    "retry_on (the grpc preset: connection, error, rejected, shed; not timeout).")
    scope: Scope = Field(default="per_client", description=_SCOPE_DOC)
    preset: str | None = Field(default=None, description=_PRESET_DOC)

    @field_validator("failure_outcomes")
    @classmethod
    def _known_outcomes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_failure_outcomes(value)

    def build(self) -> GrpcBudget:
        """Fresh budget state."""
        return GrpcBudget(self)


def _milli(value: float) -> int:
    """``(int) (value * 1000)`` with Java ``float`` arithmetic, as grpc-java's Throttle."""
    return int(np.float32(value) * np.float32(1000))


class GrpcBudget(RetryBudget):
    """gRPC throttling state, in thousandths of a token as grpc-java and grpc-core keep it.

    grpc-java's ``RetriableStream.Throttle`` truncates ``maxTokens * 1000`` and
    ``tokenRatio * 1000``, computed in single precision, to integers; the threshold is
    half of that, by integer division. Retries are allowed only while ``tokens >
    threshold``. A failed try already paid its token in :meth:`on_try_end`, so
    :meth:`try_acquire_retry` only checks.
    """

    __slots__ = ("_fail", "_max", "_milli", "_ratio", "_threshold", "config",
                 "retries_denied", "retries_granted")

    def __init__(self, config: GrpcBudgetConfig) -> None:
        self.config = config
        self._max = _milli(config.max_tokens)
        self._ratio = _milli(config.token_ratio)
        self._threshold = self._max // 2
        self._milli = self._max
        self._fail = frozenset(config.failure_outcomes)
        self.retries_granted = 0
        self.retries_denied = 0

    def on_try_end(self, now: float, outcome: str, is_retry: bool,
                   retry_cost: float | None = None, *, sent: bool = True) -> None:
        if outcome in self._fail:
            self._milli = max(0, self._milli - 1000)
        elif outcome in SUCCESS_OUTCOMES:
            self._milli = min(self._max, self._milli + self._ratio)

    def try_acquire_retry(self, now: float, outcome: str) -> bool:
        if self._milli > self._threshold:
            self.retries_granted += 1
            return True
        self.retries_denied += 1
        return False

    @property
    def tokens(self) -> float:
        """The gRPC ``token_count``."""
        return self._milli / 1000

    @property
    def available(self) -> float:
        """1 while retries are allowed, else 0 (gRPC does not count retries, it gates them)."""
        return 1.0 if self._milli > self._threshold else 0.0

    def __repr__(self) -> str:
        return f"GrpcBudget(tokens={self.tokens!r}, config={self.config!r})"


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


# ---------------------------------------------------------------------------- concurrency


class ConcurrencyBudgetConfig(PolicyModel):
    """Envoy retry budget: active retries < max(budget_percent*active, min_retry_concurrency)."""

    preset_group = "budget"
    kind: Literal["concurrency"] = Field(
        default="concurrency", description="Budget kind: concurrent retries (Envoy retry budget).")
    budget_percent: float = Field(
        default=0.2, ge=0, le=1,
        description="Share of the active and pending tries that may be retries (Envoy 20 %).")
    min_retry_concurrency: int = Field(
        default=3, ge=0, description="Concurrent retries always allowed (Envoy 3).")
    waiting_retries_active: bool = Field(
        default=True,
        description="A granted retry counts among the active tries while it waits out its "
                    "backoff; Envoy counts only requests sent or pending (False), which needs "
                    "on_try_start and on_try_end(sent=...) from the driver.")
    scope: Scope = Field(default="per_client", description=_SCOPE_DOC)
    preset: str | None = Field(default=None, description=_PRESET_DOC)

    def build(self) -> ConcurrencyBudget:
        """Fresh budget state."""
        return ConcurrencyBudget(self)


class ConcurrencyBudget(RetryBudget):
    """Counts tries in flight and retries in flight (granted, through backoff, until they end).

    The limit is ``max(trunc(budget_percent * active), min_retry_concurrency)``, truncated
    to an integer as Envoy's ``RetryBudgetImpl::max`` returns ``uint64_t``.
    """

    __slots__ = ("_min", "_pct", "_waiting_active", "active", "active_retries", "config",
                 "retries_denied", "retries_granted", "waiting")

    def __init__(self, config: ConcurrencyBudgetConfig) -> None:
        self.config = config
        self._pct = config.budget_percent
        self._min = config.min_retry_concurrency
        self._waiting_active = config.waiting_retries_active
        self.waiting = 0
        """Granted retries not yet sent (counted apart when waiting_retries_active is off)."""
        self.active = 0
        """Tries started and not yet ended (first tries and granted retries)."""
        self.active_retries = 0
        """Granted retries not yet ended."""
        self.retries_granted = 0
        self.retries_denied = 0

    def on_request(self, now: float) -> None:
        self.active += 1

    def _limit(self) -> int:
        return max(int(self._pct * self.active), self._min)

    def try_acquire_retry(self, now: float, outcome: str) -> bool:
        if self.active_retries < self._limit():
            self.active_retries += 1
            if self._waiting_active:
                self.active += 1
            else:
                self.waiting += 1
            self.retries_granted += 1
            return True
        self.retries_denied += 1
        return False

    def on_try_start(self, now: float, is_retry: bool) -> None:
        if is_retry and not self._waiting_active and self.waiting > 0:
            self.waiting -= 1
            self.active += 1

    def on_try_end(self, now: float, outcome: str, is_retry: bool,
                   retry_cost: float | None = None, *, sent: bool = True) -> None:
        if is_retry and not self._waiting_active and not sent:
            if self.waiting > 0:
                self.waiting -= 1
        elif self.active > 0:
            self.active -= 1
        if is_retry and self.active_retries > 0:
            self.active_retries -= 1

    @property
    def tokens(self) -> float:
        """Retries that could start now: the limit minus the retries in flight."""
        return float(max(0, self._limit() - self.active_retries))

    def __repr__(self) -> str:
        return (f"ConcurrencyBudget(active={self.active}, active_retries={self.active_retries}, "
                f"config={self.config!r})")


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


# ---------------------------------------------------------------------------- the union


def _expand_budget_preset(value: Any) -> Any:
    return apply_preset("budget", value)


_Budgets = Annotated[
    TokenBucketBudgetConfig | GrpcBudgetConfig | RatioBudgetConfig | ConcurrencyBudgetConfig
    | FailureRatioBudgetConfig,
    Field(discriminator="kind"),
]


class BudgetPresetRef(BaseModel):
    """``{preset: name, ...}`` without a ``kind``: the preset's kind and values, then the rest.

    Only the JSON Schema uses this model (an editor's view of the shorthand); validation
    expands the preset into one of the budget configs first.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    preset: Literal[tuple(BUDGET_PRESETS)] = Field(  # type: ignore[valid-type]
       description="A budget preset: " + ", ".join(sorted(BUDGET_PRESETS)) + ".")


BudgetConfig = Annotated[
    _Budgets,
    BeforeValidator(_expand_budget_preset, json_schema_input_type=_Budgets | BudgetPresetRef),
]
"""A retry budget in a scenario: ``{kind: ..., ...}`` or ``{preset: name, ...}``."""

BUDGET_KINDS: tuple[str, ...] = ("token_bucket", "grpc", "ratio", "concurrency",
                                 "failure_ratio")
