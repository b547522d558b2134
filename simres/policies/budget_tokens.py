"""Token budgets: the AWS SDK retry quota (and Brooker's bucket) and gRPC retry throttling (gRFC A6).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from simres.outcomes import CONNECT_TIMEOUT, RETRYABLE_KINDS, SUCCESS_OUTCOMES, TIMEOUT
from simres.policies._base import PolicyModel
from simres.policies._budget_base import _PRESET_DOC, _SCOPE_DOC, RetryBudget, Scope, _check_failure_outcomes

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
                                description="Tokens a retry after a timeout (a read or a connect "
                                            "timeout) takes (AWS mode 2.0: 10; mode 2.1 has no separate "
                                            "timeout cost: 14).")
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
            cost = self._tcost if outcome in (TIMEOUT, CONNECT_TIMEOUT) else self._cost
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
