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

The kinds live in :mod:`.budget_tokens`, :mod:`.budget_ratio` and
:mod:`.budget_concurrency`, the protocol the drivers call in :mod:`._budget_base`; this
module is the union a scenario's ``budget:`` field validates against, and the public
import path of every budget class.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from simres.policies._base import apply_preset
from simres.policies._budget_base import RetryBudget, Scope
from simres.policies.budget_concurrency import ConcurrencyBudget, ConcurrencyBudgetConfig
from simres.policies.budget_ratio import (
    FailureRatioBudget,
    FailureRatioBudgetConfig,
    FinagleRetryBudget,
    RatioBudget,
    RatioBudgetConfig,
)
from simres.policies.budget_tokens import GrpcBudget, GrpcBudgetConfig, TokenBucketBudget, TokenBucketBudgetConfig
from simres.policies.presets import BUDGET_PRESETS

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

__all__ = [
    "BudgetConfig",
    "BudgetPresetRef",
    "ConcurrencyBudget",
    "ConcurrencyBudgetConfig",
    "FailureRatioBudget",
    "FailureRatioBudgetConfig",
    "FinagleRetryBudget",
    "GrpcBudget",
    "GrpcBudgetConfig",
    "RatioBudget",
    "RatioBudgetConfig",
    "RetryBudget",
    "Scope",
    "TokenBucketBudget",
    "TokenBucketBudgetConfig",
]
