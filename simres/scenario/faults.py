"""Fault specifications: the ``faults:`` section of a scenario (schema only).

Each fault starts ``at`` a time, lasts ``duration`` seconds (``null`` = until the end) and
targets named nodes, a service (optionally one instance) or a client population. The
behaviour lives in :mod:`simres.model.faults`; this module only validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Fault(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str | None = Field(default=None, description="Label in events and metrics; default '<kind>#<index>'.")
    at: float = Field(ge=0, description="Start time (seconds).")
    duration: float | None = Field(
        default=None, gt=0,
        description="How long it lasts (seconds); null = until the end of the run.",
    )

    def check_references(self, path: str, *, services: Mapping[str, Any], clients: set[str]) -> None:
        """Raise ValueError naming ``path`` if the fault names an unknown target."""

    @property
    def end(self) -> float | None:
        """End time, or None when the fault never ends."""
        return None if self.duration is None else self.at + self.duration


def _check_service(path: str, service: str, instance: int | None, services: Mapping[str, Any]) -> None:
    if service not in services:
        known = ", ".join(sorted(services))
        raise ValueError(f"{path}.service: unknown service '{service}', expected one of: {known}")
    if instance is not None and instance >= services[service].instances:
        n = services[service].instances
        raise ValueError(f"{path}.instance: service '{service}' has {n} instance(s), got {instance}")


def check_nodes(path: str, nodes: list[str], services: Mapping[str, Any], clients: set[str]) -> None:
    """Raise ValueError naming ``path`` unless every node is a client, a service or ``service/<index>``."""
    for n in nodes:
        base, sep, idx = n.partition("/")
        if base not in services and base not in clients:
            raise ValueError(f"{path}: unknown node '{n}', expected a client or service name (or service/index)")
        if not sep:
            continue
        if base not in services:
            raise ValueError(f"{path}: '{n}': only a service has instances ('{base}' is a client)")
        n_inst = services[base].instances
        if not (idx.isascii() and idx.isdigit()) or int(idx) >= n_inst:
            raise ValueError(f"{path}: unknown instance '{n}', expected {base}/0 to {base}/{n_inst - 1} "
                             f"(or '{base}' for every instance)")


class _ServiceFault(_Fault):
    service: str = Field(description="Target service.")
    instance: int | None = Field(default=None, ge=0, description="Target instance index; null = every instance.")

    def check_references(self, path: str, *, services: Mapping[str, Any], clients: set[str]) -> None:
        _check_service(path, self.service, self.instance, services)


class PartitionFault(_Fault):
    """Messages between two groups of nodes are lost (callers see timeouts, never errors)."""

    kind: Literal["partition"] = "partition"
    from_: list[str] = Field(
        alias="from", min_length=1,
        description="One side: node names (client, service or service/i).",
    )
    to: list[str] = Field(min_length=1, description="The other side.")
    one_way: bool = Field(default=False, description="Only messages from 'from' to 'to' are lost; replies still pass.")

    def check_references(self, path: str, *, services: Mapping[str, Any], clients: set[str]) -> None:
        check_nodes(f"{path}.from", self.from_, services, clients)
        check_nodes(f"{path}.to", self.to, services, clients)


class LatencyFault(_Fault):
    """A slow network: add to and/or multiply the latency of links between two groups."""

    kind: Literal["latency"] = "latency"
    from_: list[str] = Field(alias="from", min_length=1, description="One side: node names.")
    to: list[str] = Field(min_length=1, description="The other side.")
    add: float = Field(default=0.0, ge=0, description="Seconds added to each message.")
    multiply: float = Field(default=1.0, gt=0, description="Factor on each message's latency.")
    one_way: bool = Field(default=False, description="Only messages from 'from' to 'to' are affected.")

    def check_references(self, path: str, *, services: Mapping[str, Any], clients: set[str]) -> None:
        check_nodes(f"{path}.from", self.from_, services, clients)
        check_nodes(f"{path}.to", self.to, services, clients)


class SlowdownFault(_ServiceFault):
    """A slow dependency, GC pause or noisy neighbour: service time is multiplied."""

    kind: Literal["slowdown"] = "slowdown"
    factor: float = Field(gt=0, description="Multiplier on service time.")


class CapacityFault(_ServiceFault):
    """Lost CPU: workers are removed (work in progress finishes; no new work starts on them)."""

    kind: Literal["capacity"] = "capacity"
    remove: int = Field(ge=1, description="Workers removed per targeted instance (at least one always remains).")


class ColdStart(BaseModel):
    """A slowdown after restart (caches empty, JIT cold)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    factor: float = Field(default=2.0, gt=0, description="Service-time multiplier right after restart.")
    duration: float = Field(default=10.0, gt=0, description="How long the cold start lasts (seconds).")


class CrashFault(_ServiceFault):
    """Instances go down, then restart after the duration."""

    kind: Literal["crash"] = "crash"
    mode: Literal["refuse", "blackhole"] = Field(
        default="refuse",
        description="refuse: connection errors at once; blackhole: requests vanish (callers time out).",
    )
    cold_start: ColdStart | None = Field(default=None, description="Slowdown after restart.")


class ErrorsFault(_ServiceFault):
    """A burst of error replies."""

    kind: Literal["errors"] = "errors"
    probability: float = Field(ge=0, le=1, description="Probability each request ends in an error reply.")


class LoadFault(_Fault):
    """A load spike or surge: a multiplier on a client population's arrival rate."""

    kind: Literal["load"] = "load"
    client: str = Field(description="Target client population.")
    factor: float = Field(gt=0, description="Multiplier on its arrival rate (open loop only).")

    def check_references(self, path: str, *, services: Mapping[str, Any], clients: set[str]) -> None:
        if self.client not in clients:
            known = ", ".join(sorted(clients))
            raise ValueError(f"{path}.client: unknown client '{self.client}', expected one of: {known}")


class ChaosMix(BaseModel):
    """Relative weights of injected failure kinds."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    timeout: float = Field(default=1.0, ge=0, description="Request swallowed: the caller times out.")
    error: float = Field(default=1.0, ge=0, description="Immediate error reply.")
    connection: float = Field(default=1.0, ge=0, description="Immediate connection error.")

    @model_validator(mode="after")
    def _some(self) -> ChaosMix:
        if self.timeout + self.error + self.connection <= 0:
            raise ValueError("at least one weight must be > 0")
        return self


class ChaosFault(_ServiceFault):
    """Chaos middleware: each request to the service fails with probability ``rate``."""

    kind: Literal["chaos"] = "chaos"
    rate: float = Field(ge=0, le=1, description="Probability a request is failed by the middleware.")
    mix: ChaosMix = Field(default_factory=ChaosMix, description="How injected failures split by kind.")


class _CacheFault(_Fault):
    service: str = Field(description="The service whose handler has the cache.")
    call: str | None = Field(
        default=None, description="The cached call, by name (its target when unnamed); null = every cached call "
        "of the service.",
    )

    def check_references(self, path: str, *, services: Mapping[str, Any], clients: set[str]) -> None:
        _check_service(path, self.service, None, services)
        calls = [c for c in services[self.service].handler.calls if getattr(c, "cache", None) is not None]
        if not calls:
            raise ValueError(f"{path}.service: service '{self.service}' has no cached call "
                             f"(services.{self.service}.handler.calls.N.cache)")
        if self.call is not None and self.call not in [c.key for c in calls]:
            names = ", ".join(c.key for c in calls)
            raise ValueError(f"{path}.call: '{self.call}' is not a cached call of '{self.service}', expected one "
                             f"of: {names}")


class CacheFlushFault(_CacheFault):
    """The cache is emptied at ``at`` (a flush, a deploy that drops it); it refills from misses."""

    kind: Literal["cache_flush"] = "cache_flush"

    @model_validator(mode="after")
    def _instant(self) -> CacheFlushFault:
        if self.duration is not None:
            raise ValueError("duration: a cache_flush is instantaneous (use cache_crash for an outage)")
        return self


class CacheCrashFault(_CacheFault):
    """The cache node is down for ``duration``: its contents are lost and every lookup misses."""

    kind: Literal["cache_crash"] = "cache_crash"
    store: bool = Field(
        default=False,
        description="Misses still store their answers while it is down (false: nothing is stored, the cache "
        "comes back empty).",
    )


FaultConfig = Annotated[
    PartitionFault | LatencyFault | SlowdownFault | CapacityFault | CrashFault | ErrorsFault
    | LoadFault | ChaosFault | CacheFlushFault | CacheCrashFault,
    Field(discriminator="kind"),
]
"""One fault in a scenario's ``faults:`` list, selected by ``kind``."""

FAULT_KINDS = ("partition", "latency", "slowdown", "capacity", "crash", "errors", "load", "chaos", "cache_flush",
               "cache_crash")
