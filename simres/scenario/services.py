"""Services and their handlers: instances, workers, queues, and the downstream calls with their policy stacks.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from simres.dists import Dist, Exponential
from simres.policies import (
    BreakerConfig,
    BulkheadConfig,
    RetryConfig,
    SheddingConfig,
)
from simres.policies.autoscale import AutoscaleConfig
from simres.policies.hedging import HedgeConfig, check_hedge_stack
from simres.policies.limits import LimitConfig
from simres.policies.outlier import OutlierConfig
from simres.policies.queueing import CodelConfig
from simres.scenario import limits
from simres.scenario._base import PositiveFloat, _Model

# ---------------------------------------------------------------------------- calls

LAYERS = ("breaker", "limit", "bulkhead")
"""The layers ``order`` can move around the retry loop, in their fixed relative order."""


class CallPolicy(_Model):
    """The policy stack of one logical call, applied outermost first.

    Order: deadline, retry loop, retry budget (inside ``retry``), circuit breaker,
    concurrency limit, bulkhead, per-try timeout, then the network, the remote queue and
    the work. ``order`` moves the breaker, the limit or the bulkhead outside the retry loop.
    """

    timeout: PositiveFloat | None = Field(default=None, description="Per-try timeout (seconds); none = wait forever.")
    connect_timeout: PositiveFloat | None = Field(
        default=None,
        description="Connect timeout (seconds): the try must reach its instance (the network out, the instance up "
        "to take it) within this, or it ends as connect_timeout and the instance never sees it; policies judge it "
        "as a connection failure. requests' timeout=(3, 10) is connect_timeout 3, read_timeout 10.",
    )
    read_timeout: PositiveFloat | None = Field(
        default=None,
        description="Read timeout (seconds): from reaching the instance to the reply; the try ends as timeout. "
        "Both bound the try beside timeout (the whole try) and deadline (the whole call).",
    )
    deadline: PositiveFloat | None = Field(
        default=None,
        description="Overall deadline over all tries and backoff waits (seconds).",
    )
    retry: RetryConfig | None = Field(default=None, description="Retry policy; none = a single try.")
    breaker: BreakerConfig | None = Field(
        default=None,
        description="Circuit breaker on this call: one per calling instance (or client member) unless its "
        "scope is shared (one per caller and target).")
    bulkhead: BulkheadConfig | None = Field(
        default=None,
        description="Bulkhead limiting concurrent calls: its limit holds per calling instance (or client "
        "member) unless its scope is shared (one per caller and target).")
    limit: LimitConfig | None = Field(
        default=None,
        description="Adaptive concurrency limit on this caller's tries (Netflix concurrency-limits, client side): "
        "an adaptive bulkhead; a try over the limit is refused locally as bulkhead_full.",
    )
    outlier_detection: OutlierConfig | None = Field(
        default=None,
        description="Outlier ejection by this caller (Envoy outlier detection, Linkerd failure accrual): one "
        "detector per calling instance (or client member); its balancer skips the instances it ejected.",
    )

    hedge: HedgeConfig | None = Field(
        default=None,
        description="Hedged requests (gRPC hedgingPolicy, Polly hedging, Finagle backup requests): a backup try "
        "after a delay, the first success wins; not with retry (gRPC allows one of the two).",
    )

    order: list[Literal["retry", "breaker", "limit", "bulkhead"]] | None = Field(
        default=None,
        description="The stack's order, outermost first, when it is not the default [retry, breaker, limit, "
        "bulkhead]: a layer listed before retry wraps the whole logical call (one admission, one verdict for all "
        "its tries: Resilience4j's CircuitBreaker(Retry(...)), Polly's AddCircuitBreaker before AddRetry), one "
        "after it wraps each try. Lists retry and every one of the three this call has; breaker, limit and "
        "bulkhead keep their relative order. The deadline is always outermost and the per-try timeout innermost.",
    )

    @model_serializer(mode="wrap")
    def _drop_unset_new_policies(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # No `hedge: null`, `outlier_detection: null`, `order: null` (or unset connect/read timeouts) in resolved
        # scenarios: `show`, reports and
        # sweep fingerprints of scenarios that do not use them are unchanged.
        out: dict[str, Any] = handler(self)
        for key in ("hedge", "outlier_detection", "order", "connect_timeout", "read_timeout", "saga", "compensate"):
            if out.get(key, 0) is None:
                del out[key]
        return out

    @model_validator(mode="after")
    def _hedge_alone(self) -> CallPolicy:
        problem = check_hedge_stack(self.hedge, retry=self.retry, bulkhead=self.bulkhead, limit=self.limit)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _order(self) -> CallPolicy:
        if self.order is None:
            return self
        order = self.order
        have = [name for name in LAYERS if getattr(self, name) is not None]
        if self.retry is None:
            raise ValueError("order: needs retry (without retries every layer sees each call once, in any order)")
        if len(set(order)) != len(order):
            raise ValueError(f"order: lists a layer twice: {order}")
        missing = [name for name in have if name not in order]
        extra = [name for name in order if name != "retry" and name not in have]
        if missing or extra:
            raise ValueError(f"order: must list retry and this call's {', '.join(have) or 'layers'}"
                             + (f"; {', '.join(missing)} missing" if missing else "")
                             + (f"; {', '.join(extra)} not set on this call" if extra else ""))
        gates = [name for name in order if name != "retry"]
        if gates != have:
            raise ValueError(f"order: breaker, limit and bulkhead keep their relative order ({', '.join(have)}); "
                             f"got {', '.join(gates)}; move retry between them instead")
        return self

    @property
    def outside_retry(self) -> frozenset[str]:
        """The layers that ``order`` puts outside the retry loop (none by default)."""
        if self.order is None:
            return frozenset()
        return frozenset(self.order[: self.order.index("retry")])

    @model_validator(mode="after")
    def _client_limit(self) -> CallPolicy:
        if self.limit is not None and self.limit.kind == "envoy_gradient":
            raise ValueError("limit.kind: envoy_gradient is Envoy's inbound filter, set on a service "
                             "(services.NAME.limit), not on a call; expected aimd, vegas, gradient2 or fixed here")
        return self


class FallbackConfig(_Model):
    """What an optional downstream call does when it fails: answer from a fallback."""

    latency: Dist = Field(default=0.0, description="Time to produce the fallback answer (seconds).")


class ZipfKeys(_Model):
    """Key popularity for a cache: key k (1..n) is requested with probability proportional to 1/k^s."""

    kind: Literal["zipf"] = Field(default="zipf", description="The popularity model: zipf.")
    n: int = Field(default=100_000, ge=1, le=10_000_000, description="Number of distinct keys.")
    s: float = Field(default=1.0, ge=0, description="Zipf exponent (0 = uniform; 1 = classic web popularity).")


class CacheConfig(_Model):
    """A look-aside cache in front of one downstream call (memcached or Redis in front of a database).

    The handler looks its request's key up before making the call: a hit answers after
    ``hit_latency`` and makes no call; a miss makes the call and, when it succeeds, stores
    the key. One cache per calling service and call, shared by the caller's instances (a
    cache cluster). Either a key popularity model (``keys``, with ``ttl`` and an LRU
    ``capacity``) or a fixed ``hit_ratio``.
    """

    keys: ZipfKeys | None = Field(
        default=None, description="Key popularity: each request draws a key from its own stream; hits follow "
        "from what is stored (TTL, LRU capacity, flushes).",
    )
    hit_ratio: float | None = Field(
        default=None, ge=0, le=1,
        description="A fixed hit probability instead of keys (a Bernoulli draw per request); a flush has no "
        "lasting effect on it, a cache_crash makes every lookup miss while it lasts.",
    )
    ttl: PositiveFloat | None = Field(default=None, description="Seconds an entry stays fresh; none = forever.")
    capacity: int | None = Field(default=None, ge=1, description="Entries kept (LRU eviction); none = unbounded.")
    hit_latency: Dist = Field(default=0.0005, description="Time to answer a hit (seconds).")
    coalesce: bool = Field(
        default=False,
        description="Request coalescing (Go's singleflight): concurrent misses of one key wait for the one "
        "backend call in flight and share its outcome.",
    )
    stale_while_revalidate: PositiveFloat | None = Field(
        default=None,
        description="An entry expired less than this many seconds ago is served stale (as a hit) while one "
        "background refresh goes to the backend (RFC 5861).",
    )
    prefill: bool = Field(
        default=False,
        description="Start warm: the most popular keys (all n, or the top capacity) are stored at time 0, so "
        "with a ttl they all expire together (a TTL expiry wave).",
    )

    @model_validator(mode="after")
    def _one_model(self) -> CacheConfig:
        if (self.keys is None) == (self.hit_ratio is None):
            raise ValueError("cache: give either keys (a popularity model) or hit_ratio (fixed), not both or none")
        if self.hit_ratio is not None:
            extra = [k for k in ("ttl", "capacity", "stale_while_revalidate") if getattr(self, k) is not None]
            extra += [k for k in ("coalesce", "prefill") if getattr(self, k)]
            if extra:
                raise ValueError(f"cache: {', '.join(extra)} need keys (a fixed hit_ratio stores nothing)")
        if self.stale_while_revalidate is not None and self.ttl is None:
            raise ValueError("stale_while_revalidate: needs a ttl (entries never expire without one)")
        return self


class DownstreamCall(CallPolicy):
    """One downstream call made by a service's handler.

    A call is addressed by its name (``name:``, default: its target) in overrides, variants,
    ``--set``, sweep axes and ``steps``, or by its index in ``calls``.
    """

    to: str = Field(description="Name of the service called.")
    name: str | None = Field(
        default=None,
        description="The call's name in paths (`services.api.handler.calls.NAME.timeout`) and in `steps`; "
        "default: the target. Give one when a handler calls the same target twice. Not a whole number "
        "(that is an index), no dots.",
    )
    critical: bool = Field(
        default=True,
        description="A failure fails the request; if false the response is degraded instead.",
    )
    fallback: FallbackConfig = Field(
        default_factory=FallbackConfig,
        description="Fallback used when a non-critical call fails.",
    )
    cache: CacheConfig | None = Field(
        default=None,
        description="A cache consulted before this call: a hit answers without calling (see CacheConfig).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and (not v or "." in v or v.strip().lstrip("+-").isdigit()):
            raise ValueError(f"must be a name with no dots that is not a whole number (an index), got {v!r}")
        return v

    @model_serializer(mode="wrap")
    def _drop_default_name(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An unnamed call dumps as before (no `name: null`): resolved scenarios, `show` and
        # sweep fingerprints of existing scenarios are unchanged.
        out: dict[str, Any] = handler(self)
        # and, as CallPolicy's serializer (which this one replaces), no null for the fields added since
        # (`outlier_detection: null` and `limit: null` were in dumps before, and stay for the fingerprints)
        for key in ("name", "hedge", "order", "connect_timeout", "read_timeout", "cache"):
            if out.get(key, 0) is None:
                del out[key]
        return out

    @property
    def key(self) -> str:
        """The call's name: ``name``, or the target when unnamed."""
        return self.name if self.name is not None else self.to


def _step_shape(v: Any) -> Any:
    if not isinstance(v, str | list):
        raise PydanticCustomError("step_type", "must be a call name or a list of call names (run in parallel)")
    return v


Step = Annotated[list[str] | str, BeforeValidator(_step_shape)]
"""One step of a handler: a call's name, or a list of names made in parallel (the list is first so
that a bad item inside a group is reported at its own index)."""


class HandlerConfig(_Model):
    """What a service does for a request after its own work: downstream calls.

    ``mode`` makes every call one after another (``sequential``) or all at once
    (``parallel``). ``steps`` mixes the two: each step is a call's name, or a list of names
    called in parallel, and the steps run one after another, e.g. ``steps: [auth,
    [payments, inventory], recommendations]``.
    """

    mode: Literal["sequential", "parallel"] = Field(
        default="sequential",
        description="Call downstreams one after another, or all at once (fan-out). With `steps`, leave it "
        "sequential: the steps say what runs in parallel.",
    )
    calls: list[DownstreamCall] = Field(default_factory=list, description="Downstream calls.")
    steps: list[Step] | None = Field(
        default=None,
        description="Order of the calls, by name: a name is one step, a list of names is a step whose calls "
        "run in parallel (it ends when the last of them ends); steps run one after another. Every call "
        "appears exactly once. A failed critical call fails the request: the calls of its step still "
        "finish, later steps are not made. Default: `mode` decides.",
    )

    @model_serializer(mode="wrap")
    def _drop_default_steps(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)  # no `steps: null` in resolved scenarios (see DownstreamCall)
        if out.get("steps", 0) is None:
            del out["steps"]
        return out

    def check(self, path: str) -> None:
        """Raise ValueError (naming ``path``, e.g. ``services.api.handler``) if names or steps do not fit."""
        first: dict[str, int] = {}
        for i, call in enumerate(self.calls):
            if call.name is not None and call.name in first:
                raise ValueError(f"{path}.calls.{i}.name: '{call.name}' already names calls.{first[call.name]}; "
                                 "each name: must be unique in its handler")
            first.setdefault(call.key, i)
        if self.steps is None:
            return
        if self.mode == "parallel":
            raise ValueError(f"{path}.steps: give either mode: parallel or steps, not both (steps says what runs "
                             "in parallel)")
        names = [c.key for c in self.calls]
        for name in dict.fromkeys(names):
            hits = [i for i, n in enumerate(names) if n == name]
            if len(hits) > 1:
                raise ValueError(f"{path}.calls: calls {hits[0]} and {hits[1]} are both named '{name}'; steps "
                                 f"names calls, so give one of them a unique name:")
        seen: dict[str, str] = {}
        for s, step in enumerate(self.steps):
            group = [step] if isinstance(step, str) else step
            if not group:
                raise ValueError(f"{path}.steps.{s}: a parallel group needs at least one call, got []")
            for g, name in enumerate(group):
                where = f"{path}.steps.{s}" + ("" if isinstance(step, str) else f".{g}")
                if name not in first:
                    hint = difflib.get_close_matches(name, names, n=1)
                    tail = f" (did you mean '{hint[0]}'?)" if hint else ""
                    raise ValueError(f"{where}: unknown call '{name}', expected one of: {', '.join(names)}{tail}")
                if name in seen:
                    raise ValueError(f"{where}: '{name}' is already in {seen[name]}; each call runs once")
                seen[name] = where.removeprefix(f"{path}.")
        missing = [n for n in names if n not in seen]
        if missing:
            raise ValueError(f"{path}.steps: call '{missing[0]}' is in calls but in no step; list every call once")

    def ref(self, i: int) -> str:
        """How paths name call ``i``: its name when that is unique in the handler, else its index."""
        key = self.calls[i].key
        unique = sum(c.key == key for c in self.calls) == 1
        return key if unique and "." not in key and not key.lstrip("+-").isdigit() else str(i)

    def plan(self) -> list[list[int]]:
        """The steps as lists of call indexes, in order: what runs, one step after another."""
        if self.steps is None:
            n = len(self.calls)
            return [list(range(n))] if self.mode == "parallel" and n else [[i] for i in range(n)]
        index = {c.key: i for i, c in enumerate(self.calls)}
        return [[index[step]] if isinstance(step, str) else [index[n] for n in step] for step in self.steps]


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


class ReplicaConfig(_Model):
    """A read replica of another service: reads are served from state rebuilt from that service's write log.

    Event sourcing, log shipping and CQRS read models all work this way.

    Every request the primary (``of``) completes successfully is a write appended to its log
    at that instant. The primary streams each write, in order, to each replica instance over
    the network link ``<of>/0 -> <this>/i`` (its latency, loss and faults: a ``partition``
    between the two cuts the stream) plus ``delay``; the replica's consumer applies the
    writes one at a time, ``apply_time`` each, so it falls behind when writes come faster
    than it applies them. A stream that loses a message (a partition, a lost packet) stalls
    and reconnects every ``reconnect`` seconds; then the backlog flows. Every ``heartbeat``
    seconds the primary sends its log position, so an idle replica learns it is current.

    A read is a request this service completes: its staleness is how long ago the oldest
    write the replica has not applied was committed (0 when it has them all). With ``mode:
    consistent`` a replica refuses (``rejected``) a read when it cannot vouch for data newer
    than ``max_staleness`` seconds (the newest commit or heartbeat it has applied is older),
    as a lease-based or ``maxStalenessSeconds`` read does; ``available`` always serves.
    """

    of: str = Field(description="The primary service whose successful requests are the writes.")
    delay: Dist = Field(
        default=0.0,
        description="Propagation delay of each write beyond the link's latency (publish and consume: a "
        "change-data-capture poll, a broker hop); writes still arrive in order.",
    )
    apply_time: Dist = Field(
        default=0.0,
        description="The consumer's time to apply one write (one at a time): above 1/mean writes per second "
        "the replica falls behind.",
    )
    heartbeat: PositiveFloat = Field(
        default=0.5,
        description="Seconds between the primary's heartbeats (its log position) on each stream.",
    )
    reconnect: PositiveFloat = Field(
        default=1.0,
        description="A stalled stream (a message lost to a partition or to loss) retries every this many seconds.",
    )
    mode: Literal["available", "consistent"] = Field(
        default="available",
        description="During a partition (or any lag): available serves stale reads; consistent refuses reads "
        "the replica cannot vouch for within max_staleness (the CAP choice).",
    )
    max_staleness: PositiveFloat | None = Field(
        default=None,
        description="mode: consistent: refuse a read when the newest commit or heartbeat the replica has "
        "applied is older than this (seconds). Must exceed heartbeat.",
    )
    sessions: Literal["request"] | Annotated[int, Field(ge=1)] = Field(
        default="request",
        description="Read-your-writes sessions: 'request' (a request that wrote, then reads, e.g. handler steps "
        "[primary, replica]) or N (request ids hashed into N user sessions).",
    )

    @model_validator(mode="after")
    def _staleness_bound(self) -> ReplicaConfig:
        if self.mode == "consistent" and self.max_staleness is None:
            raise ValueError("max_staleness: mode: consistent needs the staleness (seconds) above which reads are "
                             "refused")
        if self.mode == "available" and self.max_staleness is not None:
            raise ValueError("max_staleness: only used with mode: consistent (an available replica serves every read)")
        if self.max_staleness is not None and self.max_staleness <= self.heartbeat:
            raise ValueError(f"max_staleness: must exceed heartbeat ({self.heartbeat}): an idle replica's staleness "
                             "estimate reaches the heartbeat interval, so it would refuse reads while healthy")
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
        "server side, or Envoy's adaptive concurrency filter with kind envoy_gradient): over the limit a request "
        "is rejected at once; the limit follows the RTT from arrival to reply (queueing included) and drops "
        "(requests whose caller gave up; Envoy takes no sample from those).",
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
    replica: ReplicaConfig | None = Field(
        default=None,
        description="This service is a read replica of another service's write log (see ReplicaConfig); it "
        "makes no downstream calls.",
    )
    autoscale: AutoscaleConfig | None = Field(
        default=None,
        description="Autoscaling (Kubernetes HPA target tracking, or step scaling on queue length): a pool of "
        "max instances, min of them ready at the start; only ready instances get traffic. instances is then max.",
    )

    @model_serializer(mode="wrap")
    def _drop_unset_autoscale(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # No `autoscale: null` in resolved scenarios: `show`, reports and sweep fingerprints of
        # services that do not autoscale are unchanged.
        out: dict[str, Any] = handler(self)
        for key in ("autoscale", "replica"):
            if out.get(key, 0) is None:
                del out[key]
        return out

    @model_validator(mode="before")
    @classmethod
    def _autoscale_pool(cls, data: Any) -> Any:
        """With autoscale, the instances are the pool of ``max`` (``instances``, if given, must agree)."""
        if not isinstance(data, dict) or data.get("autoscale") is None:
            return data
        auto = data["autoscale"]
        if isinstance(auto, AutoscaleConfig):
            top: Any = auto.max
        else:
            top = auto.get("max", 10) if isinstance(auto, dict) else None
        if top is None:
            return data
        if "instances" in data and data["instances"] != top:
            raise ValueError(f"instances: with autoscale the pool is autoscale.max ({top}) instances, "
                             f"got instances: {data['instances']}")
        return {**data, "instances": top}
