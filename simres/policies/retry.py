"""Retry policy: which failures to retry, how many times, and how long to wait between tries.

``max_attempts`` counts every try, the first included (Resilience4j, AWS SDK and gRPC
count the same way; Polly's ``MaxRetryAttempts`` and Envoy's ``num_retries`` count
retries only, so ``max_attempts = retries + 1``). The retry budget, if any, is a separate
state object the driver builds from ``budget`` (its lifetime is the client's, or shared),
while :class:`RetryCall` lives for one logical call.
"""

from __future__ import annotations

import weakref
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, field_validator, model_serializer, model_validator

from simres.outcomes import RETRYABLE_KINDS
from simres.policies._base import PolicyModel
from simres.policies.aws_adaptive import AdaptiveRateConfig
from simres.policies.backoff import (
    BackoffConfig,
    Jitter,
    JitterConfig,
    Uniform,
    Waiter,
    timespan_problem,
    waiter_params,
)
from simres.policies.budget import BudgetConfig

_PLANS: dict[int, tuple[weakref.ref[Any], tuple[Any, ...]]] = {}


def _plan(config: RetryConfig) -> tuple[Any, ...]:
    """What every RetryCall of ``config`` copies, computed once per config object.

    ``new_call`` runs once per simulated request, so re-reading and re-checking the options
    each time would cost more than the call itself. The cache is keyed by identity (a
    frozen config never changes; ``model_copy`` makes a new object) and entries leave with
    their config.
    """
    key = id(config)
    entry = _PLANS.get(key)
    if entry is not None and entry[0]() is config:
        return entry[1]
    alt = (None if config.throttling_backoff is None
           else waiter_params(config.throttling_backoff, config.jitter))
    limits = tuple((frozenset(outs), n) for outs, n in (
        (("connection",), config.connect_retries), (("timeout",), config.read_retries),
        (("error", "rejected", "shed"), config.status_retries)) if n is not None)
    plan = (config.max_attempts, frozenset(config.retry_on), config.honor_retry_after,
            waiter_params(config.backoff, config.jitter), config.first_retry_index,
            alt, frozenset(config.throttling_outcomes), config.retry_after_mode,
            config.retry_after_max, frozenset(config.retry_on_hint) if config.honor_retry_after
            else frozenset(), limits)

    def forget(ref: weakref.ref[Any], key: int = key) -> None:
        current = _PLANS.get(key)
        if current is not None and current[0] is ref:
            del _PLANS[key]

    _PLANS[key] = (weakref.ref(config, forget), plan)
    return plan


class RetryConfig(PolicyModel):
    """Options of the retry loop (the budget's options ride along in ``budget``)."""

    preset_group = "retry"
    max_attempts: int = Field(default=3, ge=1,
                              description="Total tries per logical call, the first included.")
    retry_on: tuple[str, ...] = Field(
        default=("timeout", "connection", "error"),
        description="Failure outcomes that are retried; a subset of timeout, connection, "
                    "error, rejected, shed.")
    backoff: BackoffConfig = Field(default_factory=BackoffConfig,
                                   description="The un-randomised wait per retry index.")
    jitter: Jitter = Field(default_factory=JitterConfig,
                           description="How the wait is randomised (a mapping or a kind name).")
    first_retry_index: int = Field(
        default=0, ge=0,
        description="Retry index n of the first retry; 1 reproduces the AWS blog simulator "
                    "(first wait uses base*2).")
    honor_retry_after: bool = Field(
        default=True,
        description="A server hint (Retry-After, gRPC pushback) replaces the computed wait; a "
                    "negative hint means do not retry (gRPC pushback).")
    retry_after_mode: Literal["replace", "aws", "urllib3"] = Field(
        default="replace",
        description="How an honoured hint sets the wait: replace (the hint is the wait; a "
                    "negative hint means do not retry); aws (botocore x-amz-retry-after: "
                    "max(t, min(hint, t + 5)) with t the computed wait; a negative hint is "
                    "ignored); urllib3 (Retry-After: whole seconds, a hint of 0 or less uses the "
                    "backoff).")
    retry_after_max: float | None = Field(
        default=None, gt=0,
        description="Seconds: longest honoured hint (urllib3 retry_after_max 21600); None = no cap.")
    retry_on_hint: tuple[str, ...] = Field(
        default=(),
        description="Outcomes retried only when the server sent a hint, even outside retry_on "
                    "(urllib3 retries 413/429/503 with a Retry-After header); needs "
                    "honor_retry_after.")
    throttling_outcomes: tuple[str, ...] = Field(
        default=(),
        description="Outcomes that are throttling errors, which use throttling_backoff "
                    "(AWS standard mode 2.1).")
    throttling_backoff: BackoffConfig | None = Field(
        default=None,
        description="The backoff after a throttling outcome (AWS: base 1 s); None = backoff.")
    connect_retries: int | None = Field(
        default=None, ge=0,
        description="Most retries after connection failures (urllib3 Retry connect=); None = "
                    "only max_attempts applies.")
    read_retries: int | None = Field(
        default=None, ge=0,
        description="Most retries after timeouts (urllib3 Retry read=); None = no own limit.")
    status_retries: int | None = Field(
        default=None, ge=0,
        description="Most retries after error, rejected and shed replies (urllib3 Retry "
                    "status=); None = no own limit.")
    budget: BudgetConfig | None = Field(
        default=None, description="Retry budget that must grant each retry; None = unlimited.")
    rate_limiter: AdaptiveRateConfig | None = Field(
        default=None,
        description="botocore adaptive mode's client-side rate limiter: once a throttling_outcomes reply was "
                    "seen, every try (the first included) waits for a token of a CUBIC-driven token bucket "
                    "before it is sent; None = no limiter (standard mode).")
    preset: str | None = Field(
        default=None, description="Name of a library preset whose values fill every field "
                                  "not given here.")

    @field_validator("retry_on", "retry_on_hint", "throttling_outcomes")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [o for o in value if o not in RETRYABLE_KINDS]
        if bad:
            raise ValueError(f"must be among {list(RETRYABLE_KINDS)}, got {bad}")
        return tuple(dict.fromkeys(value))

    @model_serializer(mode="wrap")
    def _drop_unset_rate_limiter(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # No `rate_limiter: null` in resolved scenarios: `show`, reports and sweep fingerprints of
        # retries without a limiter are unchanged.
        out: dict[str, Any] = handler(self)
        if out.get("rate_limiter", 0) is None:
            del out["rate_limiter"]
        return out

    @model_validator(mode="after")
    def _limiter_needs_throttling(self) -> RetryConfig:
        if self.rate_limiter is not None and not self.throttling_outcomes:
            raise ValueError("rate_limiter: needs throttling_outcomes (the replies that slow the limiter "
                             "down, e.g. [rejected, shed]); got none")
        return self

    @model_validator(mode="after")
    def _decorrelated_needs_base(self) -> RetryConfig:
        if self.jitter.kind in ("decorrelated", "decorrelated_finagle") and self.backoff.base <= 0:
            raise ValueError(
                f"backoff.base: must be > 0 for {self.jitter.kind} jitter, got {self.backoff.base}")
        problem = timespan_problem(self.backoff, self.jitter)
        if problem:
            raise ValueError(problem)
        if self.throttling_backoff is not None and (self.backoff.timespan
                                                    or self.jitter.kind == "polly"):
            raise ValueError("throttling_backoff: not with Polly's TimeSpan waits (Polly has "
                             "one backoff for every outcome)")
        return self

    def new_call(self) -> RetryCall:
        """Fresh per-call state."""
        return RetryCall(self)

    def waiter(self) -> Waiter:
        """A fresh per-call :class:`Waiter` for this config's backoff and jitter."""
        return Waiter(self.backoff, self.jitter, self.first_retry_index,
                      alt_backoff=self.throttling_backoff,
                      alt_outcomes=frozenset(self.throttling_outcomes))


class RetryCall:
    """The retry state of one logical call: tries made so far and the backoff position."""

    __slots__ = ("_hint_max", "_hint_mode", "_hint_on", "_honor", "_limits", "_max",
                 "_retry_on", "_used", "_waiter", "attempts")

    def __init__(self, config: RetryConfig) -> None:
        (self._max, self._retry_on, self._honor, params, first, alt, alt_on, self._hint_mode,
         self._hint_max, self._hint_on, self._limits) = _plan(config)
        self._waiter = Waiter.from_params(params, first, alt, alt_on)
        self._used = [0] * len(self._limits) if self._limits else None
        self.attempts = 0
        """Tries made so far (the driver calls :meth:`on_try` before each)."""

    def on_try(self) -> None:
        """Count a try that is about to start."""
        self.attempts += 1

    @property
    def retries(self) -> int:
        """Retries made so far (tries after the first)."""
        return self.attempts - 1 if self.attempts > 0 else 0

    def next_delay(self, outcome: str, rng: Uniform,
                   retry_after: float | None = None) -> float | None:
        """After the latest try failed with ``outcome``: the wait before the next try, or None.

        None means stop: the outcome is not retried, ``max_attempts`` tries were made, or
        an honoured server hint is negative (gRPC pushback "do not retry"). An honoured
        ``retry_after`` replaces the computed wait (and draws nothing from ``rng``).
        """
        if self.attempts >= self._max:
            return None
        if outcome not in self._retry_on and not (retry_after is not None
                                                  and outcome in self._hint_on):
            return None
        if self._used is not None:
            over = False
            for i, (outs, most) in enumerate(self._limits):
                if outcome in outs:
                    self._used[i] += 1
                    over = over or self._used[i] > most
            if over:
                return None
        if retry_after is None or not self._honor:
            return self._waiter.next(rng, outcome)
        mode = self._hint_mode
        cap = self._hint_max
        if mode == "replace":
            if retry_after < 0:
                return None
            self._waiter.skip(rng)
            return float(retry_after) if cap is None else min(cap, float(retry_after))
        if mode == "aws":
            t = self._waiter.next(rng, outcome)
            if retry_after < 0:
                return t
            hint = retry_after if cap is None else min(cap, retry_after)
            return max(t, min(hint, 5 + t))
        # urllib3: a whole number of seconds, capped; 0 (or less) falls back to the backoff
        seconds = max(int(retry_after), 0)
        if cap is not None and seconds > cap:
            seconds = cap
        if seconds:
            self._waiter.skip(rng)
            return float(seconds)
        return self._waiter.next(rng, outcome)

    def __repr__(self) -> str:
        return f"RetryCall(attempts={self.attempts}, max_attempts={self._max})"
