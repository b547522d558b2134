"""Metrics: pure functions from a run's DataFrames to numbers and small frames.

Nothing here simulates or imports SimPy. ``summarize`` gives the one-row summary of a
run; the other functions are its building blocks, usable on their own in a notebook;
``stats`` aggregates replications; ``recorder`` is the columnar store the model writes
into while it runs. docs/metrics.md defines every metric. May import only the foundations
(``errors``, ``outcomes``) and numpy/pandas/scipy; never SimPy, the model or anything above.
"""

from simres.metrics._common import MetricsError
from simres.metrics.amplification import (
    attempts_of,
    retry_amplification,
    tries_per_request,
    tries_per_success,
    useful_tries,
    work_per_success,
)
from simres.metrics.breaker import (
    breaker_link_shares,
    breaker_time_shares,
    breaker_transitions,
)
from simres.metrics.ejection import ejected_hosts, ejection_spans
from simres.metrics.faults import fault_intervals
from simres.metrics.hedging import HEDGE_KEYS, hedge_summary
from simres.metrics.herd import arrival_counts, arrival_rate, herd_after_faults, herd_stats
from simres.metrics.latency import (
    latency_by,
    latency_over_time,
    latency_percentiles,
    latency_values,
)
from simres.metrics.rates import (
    goodput,
    measured_requests,
    outcome_shares,
    outcome_shares_by,
    slo_attainment,
    success_rate,
    throughput,
    tries_per_second,
)
from simres.metrics.recovery import recovery
from simres.metrics.stats import (
    BinomialCI,
    MeanCI,
    PairedDifference,
    aggregate_recovery,
    aggregate_replications,
    binomial_ci,
    mean_ci,
    paired_difference,
)
from simres.metrics.summary import summarize
from simres.metrics.utilization import mean_queue_length, service_load, utilization

# The lead adds the run-time recorder here: ``from simres.metrics.recorder import Recorder``
# and "Recorder" in __all__.

__all__ = [
    "HEDGE_KEYS",
    "BinomialCI",
    "MeanCI",
    "MetricsError",
    "PairedDifference",
    "aggregate_recovery",
    "aggregate_replications",
    "arrival_counts",
    "arrival_rate",
    "attempts_of",
    "binomial_ci",
    "breaker_link_shares",
    "breaker_time_shares",
    "breaker_transitions",
    "ejected_hosts",
    "ejection_spans",
    "fault_intervals",
    "goodput",
    "hedge_summary",
    "herd_after_faults",
    "herd_stats",
    "latency_by",
    "latency_over_time",
    "latency_percentiles",
    "latency_values",
    "mean_ci",
    "mean_queue_length",
    "measured_requests",
    "outcome_shares",
    "outcome_shares_by",
    "paired_difference",
    "recovery",
    "retry_amplification",
    "service_load",
    "slo_attainment",
    "success_rate",
    "summarize",
    "throughput",
    "tries_per_request",
    "tries_per_second",
    "tries_per_success",
    "useful_tries",
    "utilization",
    "work_per_success",
]
