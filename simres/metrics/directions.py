"""Which way is better, per metric: the one registry that marks, verdicts, ``best`` and plots use.

A metric is ``"higher"`` (more is better: success rate, goodput), ``"lower"`` (less is
better: latencies, failure shares, amplification, recovery time) or ``None``: descriptive,
with no better direction. Utilisation, request counts, throughput, queue lengths and
tries per second describe the load a variant carried; more of them is neither good nor
bad (a stuck service is 100 % utilised), so they are never marked best and never win.
"""

from __future__ import annotations

from typing import Literal

Direction = Literal["higher", "lower"] | None

HIGHER = ("success_rate", "goodput", "slo_attainment", "recovered", "stable_at_end")
"""Base names (before any ``:``) where more is better."""

LOWER = (
    "latency", "error_rate", "timeout_rate", "connect_timeout_rate", "connection_rate", "rejected_rate", "shed_rate",
    "throttled_rate", "breaker_open_rate", "bulkhead_full_rate", "unfinished_rate", "degraded_rate",
    "budget_denied_rate", "tries_per_request", "work_per_success", "amplification", "recovery_time",
    "herd_peak_to_mean", "herd_synchrony", "peak_to_mean",
    "read_staleness", "stale_read_rate", "read_refused_rate", "ryw_violation_rate", "replication_lag",
)
"""Prefixes of base names where less is better."""

DESCRIPTIVE = (
    "count", "ok", "throughput", "utilization", "queue_len", "inflight", "tries_per_s",
    "breaker_open_share", "breaker_transitions", "wall_time",
)
"""Base names that describe load or state and have no better direction."""


def direction(metric: str) -> Direction:
    """``"higher"``, ``"lower"`` or ``None`` (descriptive, or a metric this registry does not know)."""
    base = metric.split(":", 1)[0]
    if base in DESCRIPTIVE:
        return None
    if base in HIGHER:
        return "higher"
    if base.startswith(LOWER):
        return "lower"
    return None


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (False for descriptive metrics too)."""
    return direction(metric) == "lower"


def is_directional(metric: str) -> bool:
    """Whether ``metric`` has a better direction, so it can be marked best or chosen by."""
    return direction(metric) is not None
