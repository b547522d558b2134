"""Envoy's retry budget: a limit on concurrent retries, a share of the active requests.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simres.policies._base import PolicyModel
from simres.policies._budget_base import _PRESET_DOC, _SCOPE_DOC, RetryBudget, Scope

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
