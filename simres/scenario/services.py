"""Services and their handlers: instances, workers, queues, and the downstream calls with their policy stacks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from simres.dists import Dist, Exponential
from simres.policies import (
    BreakerConfig,
    BulkheadConfig,
    RetryConfig,
    SheddingConfig,
)
from simres.policies.limits import LimitConfig
from simres.policies.queueing import CodelConfig
from simres.scenario import limits
from simres.scenario._base import PositiveFloat, _Model

# ---------------------------------------------------------------------------- calls


class CallPolicy(_Model):
    """The policy stack of one logical call, applied outermost first.

    Order: deadline, retry loop, retry budget (inside ``retry``), circuit breaker,
    concurrency limit, bulkhead, per-try timeout, then the network, the remote queue and
    the work.
    """

    timeout: PositiveFloat | None = Field(default=None, description="Per-try timeout (seconds); none = wait forever.")
    deadline: PositiveFloat | None = Field(
        default=None,
        description="Overall deadline over all tries and backoff waits (seconds).",
    )
    retry: RetryConfig | None = Field(default=None, description="Retry policy; none = a single try.")
    breaker: BreakerConfig | None = Field(default=None, description="Circuit breaker on this call.")
    bulkhead: BulkheadConfig | None = Field(default=None, description="Bulkhead limiting concurrent calls.")
    limit: LimitConfig | None = Field(
        default=None,
        description="Adaptive concurrency limit on this caller's tries (Netflix concurrency-limits, client side): "
        "an adaptive bulkhead; a try over the limit is refused locally as bulkhead_full.",
    )


class FallbackConfig(_Model):
    """What an optional downstream call does when it fails: answer from a fallback."""

    latency: Dist = Field(default=0.0, description="Time to produce the fallback answer (seconds).")


class DownstreamCall(CallPolicy):
    """One downstream call made by a service's handler."""

    to: str = Field(description="Name of the service called.")
    critical: bool = Field(
        default=True,
        description="A failure fails the request; if false the response is degraded instead.",
    )
    fallback: FallbackConfig = Field(
        default_factory=FallbackConfig,
        description="Fallback used when a non-critical call fails.",
    )


class HandlerConfig(_Model):
    """What a service does for a request after its own work: downstream calls."""

    mode: Literal["sequential", "parallel"] = Field(
        default="sequential",
        description="Call downstreams one after another, or all at once (fan-out).",
    )
    calls: list[DownstreamCall] = Field(default_factory=list, description="Downstream calls.")


# ---------------------------------------------------------------------------- services


class QueueConfig(_Model):
    """The request queue in front of an instance's workers, and how it sheds under overload."""

    discipline: Literal["fifo", "lifo", "adaptive_lifo"] = Field(
        default="fifo",
        description="Which waiting request a free worker takes: the oldest (fifo), the newest (lifo), or the "
        "oldest until a queue forms, then the newest (adaptive_lifo, HHVM's JobQueue: LIFO while at least "
        "lifo_threshold requests remain queued).",
    )
    lifo_threshold: int | None = Field(
        default=None, ge=0,
        description="adaptive_lifo: serve the newest request while at least this many others wait (HHVM "
        "Server.ThreadJobLIFOSwitchThreshold; 0 = always LIFO). Required for adaptive_lifo.",
    )
    max_wait: PositiveFloat | None = Field(
        default=None,
        description="Queue-time limit (seconds): when a worker frees up and the oldest waiting request has "
        "waited longer, it is shed instead of served (HHVM Server.ThreadJobMaxQueuingMilliSeconds). None = no "
        "limit.",
    )
    codel: CodelConfig | None = Field(
        default=None,
        description="CoDel as Facebook runs it for request queues (folly::Codel): when no request taken in the "
        "last interval waited less than target, requests that waited over 2 x target are shed at dequeue.",
    )
    capacity: int | None = Field(
        default=None, ge=0,
        description="Waiting places, not counting the requests in service: the system holds at most "
        "workers + capacity requests, and an arrival that finds the queue full is rejected at once. "
        "M/M/1/K is workers: 1, capacity: K - 1. None = unbounded.",
    )

    @model_validator(mode="after")
    def _threshold_for_adaptive(self) -> QueueConfig:
        if self.discipline == "adaptive_lifo" and self.lifo_threshold is None:
            raise ValueError("lifo_threshold: adaptive_lifo needs the queue length at which it switches to LIFO")
        if self.discipline != "adaptive_lifo" and self.lifo_threshold is not None:
            raise ValueError(f"lifo_threshold: only used with discipline: adaptive_lifo, got {self.discipline}")
        return self


class ServiceConfig(_Model):
    """A service: instances behind a load balancer, each with workers and a queue."""

    instances: int = Field(default=1, ge=1, le=limits.MAX_INSTANCES, description="Number of instances.")
    workers: int = Field(default=1, ge=1, le=limits.MAX_WORKERS,
                         description="Workers (concurrent requests) per instance, c.")
    queue: QueueConfig = Field(default_factory=QueueConfig, description="Queue per instance.")
    service_time: Dist = Field(
        default_factory=lambda: Exponential(mean=0.01),
        description="Own work per request (seconds), before downstream calls.",
    )
    error_rate: float = Field(default=0.0, ge=0, le=1, description="Probability a request ends in an error reply.")
    slowdown_per_inflight: float = Field(
        default=0.0, ge=0,
        description="Service time is multiplied by 1 + k x in-flight requests at the instance.",
    )
    on_caller_gone: Literal["continue", "cancel"] = Field(
        default="continue",
        description="Work whose caller gave up: done anyway (continue), or dropped at the head of the queue and "
        "not passed downstream (cancel, deadline propagation).",
    )
    load_balancer: Literal["round_robin", "random", "least_outstanding", "power_of_two"] = Field(
        default="round_robin",
        description="How callers pick an instance.",
    )
    handler: HandlerConfig = Field(default_factory=HandlerConfig, description="Downstream calls made for each request.")
    shedding: SheddingConfig | None = Field(default=None, description="Priority load shedding at admission.")
    limit: LimitConfig | None = Field(
        default=None,
        description="Adaptive concurrency limit at admission, one per instance (Netflix concurrency-limits, "
        "server side): over the limit a request is rejected at once; the limit follows the RTT from arrival to "
        "reply (queueing included) and drops (requests whose caller gave up).",
    )

    @field_validator("limit")
    @classmethod
    def _limit_per_instance(cls, v: LimitConfig | None) -> LimitConfig | None:
        if v is not None and v.scope != "per_client":
            raise ValueError("scope: a service's limit is one per instance (scope applies to a caller's limit)")
        return v
    resource: Literal["none", "occ_row"] = Field(
        default="none",
        description="occ_row: the service guards one row under optimistic concurrency. A read returns the "
        "version; a conditional write succeeds only if the version is unchanged (then increments it), "
        "otherwise it is answered with an error (a conflict).",
    )
