"""Resilience policies as pure decision logic: no SimPy, no clock, no global RNG.

Each policy has a frozen pydantic config (validated when built, with an optional library
``preset``) and a separate mutable state object built from it, which the simulation
driver and the real-time wrappers (:mod:`simres.realtime`) ask and inform alike. The caller
passes the time in, so the same object decides on simulated and wall-clock time. May import
only the foundations (``errors``, ``outcomes``) and pydantic/numpy; never SimPy, the
scenario, the model or anything above them.
"""

from simres.policies.autoscale import AutoscaleConfig, Autoscaler
from simres.policies.backoff import BackoffConfig, JitterConfig, Waiter
from simres.policies.breaker import (
    BREAKER_STATES,
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerConfig,
    CircuitBreaker,
)
from simres.policies.budget import (
    BUDGET_KINDS,
    BudgetConfig,
    ConcurrencyBudget,
    ConcurrencyBudgetConfig,
    FailureRatioBudget,
    FailureRatioBudgetConfig,
    GrpcBudget,
    GrpcBudgetConfig,
    RatioBudget,
    RatioBudgetConfig,
    RetryBudget,
    TokenBucketBudget,
    TokenBucketBudgetConfig,
)
from simres.policies.bulkhead import ADMIT, REJECT, WAIT, Bulkhead, BulkheadConfig
from simres.policies.hedging import HedgeCall, HedgeConfig, HedgePolicy
from simres.policies.limits import ConcurrencyLimiter, LimitConfig, LimitWindowConfig
from simres.policies.outlier import OutlierConfig, OutlierDetector
from simres.policies.presets import PRESETS, preset_names
from simres.policies.queueing import Codel, CodelConfig
from simres.policies.retry import RetryCall, RetryConfig
from simres.policies.shedding import SRE_ALIASES, Shedder, SheddingConfig
from simres.policies.throttle import AdaptiveThrottle, ThrottleConfig
from simres.policies.windows import WindowConfig

__all__ = [
    "ADMIT",
    "BREAKER_STATES",
    "BUDGET_KINDS",
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "PRESETS",
    "REJECT",
    "SRE_ALIASES",
    "WAIT",
    "AdaptiveThrottle",
    "AutoscaleConfig",
    "Autoscaler",
    "BackoffConfig",
    "BreakerConfig",
    "BudgetConfig",
    "Bulkhead",
    "BulkheadConfig",
    "CircuitBreaker",
    "Codel",
    "CodelConfig",
    "ConcurrencyBudget",
    "ConcurrencyBudgetConfig",
    "ConcurrencyLimiter",
    "FailureRatioBudget",
    "FailureRatioBudgetConfig",
    "GrpcBudget",
    "GrpcBudgetConfig",
    "HedgeCall",
    "HedgeConfig",
    "HedgePolicy",
    "JitterConfig",
    "LimitConfig",
    "LimitWindowConfig",
    "OutlierConfig",
    "OutlierDetector",
    "RatioBudget",
    "RatioBudgetConfig",
    "RetryBudget",
    "RetryCall",
    "RetryConfig",
    "Shedder",
    "SheddingConfig",
    "ThrottleConfig",
    "TokenBucketBudget",
    "TokenBucketBudgetConfig",
    "Waiter",
    "WindowConfig",
    "preset_names",
]
