"""Retry policy: which failures to retry, how many times, and how long to wait between tries.

``max_attempts`` counts every try, the first included (Resilience4j, AWS SDK and gRPC
count the same way; Polly's ``MaxRetryAttempts`` and Envoy's ``num_retries`` count
retries only, so ``max_attempts = retries + 1``). The retry budget, if any, is a separate
state object the driver builds from ``budget`` (its lifetime is the client's, or shared),
while :class:`RetryCall` lives for one logical call.
"""

from __future__ import annotations

import weakref
from typing import Any

from pydantic import Field, field_validator, model_validator

from simres.outcomes import RETRYABLE_KINDS
from simres.policies._base import PolicyModel
from simres.policies.backoff import (
    BackoffConfig,
    Jitter,
    JitterConfig,
    Uniform,
    Waiter,
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
    plan = (config.max_attempts, frozenset(config.retry_on), config.honor_retry_after,
            waiter_params(config.backoff, config.jitter), config.first_retry_index)

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
    budget: BudgetConfig | None = Field(
        default=None, description="Retry budget that must grant each retry; None = unlimited.")
    preset: str | None = Field(
        default=None, description="Name of a library preset whose values fill every field "
                                  "not given here.")

    @field_validator("retry_on")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [o for o in value if o not in RETRYABLE_KINDS]
        if bad:
            raise ValueError(f"retry_on: must be among {list(RETRYABLE_KINDS)}, got {bad}")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _decorrelated_needs_base(self) -> RetryConfig:
        if self.jitter.kind in ("decorrelated", "decorrelated_finagle") and self.backoff.base <= 0:
            raise ValueError(
                f"backoff.base: must be > 0 for {self.jitter.kind} jitter, got {self.backoff.base}")
        return self

    def new_call(self) -> RetryCall:
        """Fresh per-call state."""
        return RetryCall(self)

    def waiter(self) -> Waiter:
        """A fresh per-call :class:`Waiter` for this config's backoff and jitter."""
        return Waiter(self.backoff, self.jitter, self.first_retry_index)


class RetryCall:
    """The retry state of one logical call: tries made so far and the backoff position."""

    __slots__ = ("_honor", "_max", "_retry_on", "_waiter", "attempts")

    def __init__(self, config: RetryConfig) -> None:
        self._max, self._retry_on, self._honor, params, first = _plan(config)
        self._waiter = Waiter.from_params(params, first)
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
        if outcome not in self._retry_on or self.attempts >= self._max:
            return None
        if retry_after is not None and self._honor:
            if retry_after < 0:
                return None
            self._waiter.skip()
            return float(retry_after)
        return self._waiter.next(rng)

    def __repr__(self) -> str:
        return f"RetryCall(attempts={self.attempts}, max_attempts={self._max})"
