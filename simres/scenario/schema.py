"""The top-level :class:`Scenario` and the checks that span sections (references, cycles).

A scenario describes the world (network, services, clients), the failures to inject and
named policy variants. Every model is frozen and rejects unknown keys, so a typo is an
error naming the field, never a silently ignored setting.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from simres.errors import ScenarioWarning
from simres.outcomes import PRIORITIES
from simres.scenario import limits
from simres.scenario._base import PositiveFloat, _Model
from simres.scenario.clients import ClientConfig, ClosedArrivals, ProfileArrivals
from simres.scenario.faults import FaultConfig, LoadFault, check_nodes
from simres.scenario.network import NetworkConfig
from simres.scenario.objectives import Objective
from simres.scenario.services import ServiceConfig

# ---------------------------------------------------------------------------- scenario


class Scenario(_Model):
    """A complete simulation scenario."""

    name: str = Field(default="scenario", description="Short name.")
    description: str = Field(default="", description="What the scenario shows.")
    duration: PositiveFloat = Field(default=60.0, description="Simulated seconds of arrivals.")
    warmup: float = Field(default=0.0, ge=0, description="Initial seconds excluded from steady-state metrics.")
    drain: float = Field(
        default=10.0, ge=0,
        description="Extra seconds after duration for in-flight requests to finish.",
    )
    seed: int = Field(default=1, ge=0, description="Root seed of every random stream.")
    timeline_step: PositiveFloat = Field(default=1.0, description="Width of timeline buckets (seconds).")
    slo: PositiveFloat | None = Field(default=None, description="Latency objective (seconds) for SLO attainment.")
    record: Literal["full", "summary"] = Field(
        default="full",
        description="What a run keeps: `full` = every request and try as frames; `summary` = only mergeable "
                    "counts and latency sketches (flat memory for long runs; some metrics unavailable, see "
                    "docs/metrics.md).",
    )
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="Links and their latency.")
    services: dict[str, ServiceConfig] = Field(min_length=1, max_length=limits.MAX_SERVICES,
                                               description="Services by name.")
    clients: dict[str, ClientConfig] = Field(min_length=1, max_length=limits.MAX_CLIENTS,
                                             description="Client populations by name.")
    faults: list[FaultConfig] = Field(default_factory=list, max_length=limits.MAX_FAULTS,
                                      description="Failures injected at scheduled times.")
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Named sets of dotted-path overrides compared on the same world.",
    )
    objective: Objective = Field(default_factory=Objective,
                                 description="What 'better' means in comparisons, verdicts and `simres best`.")
    reference: str | None = Field(default=None,
                                  description="The variant every comparison is made against (default: the "
                                              "first variant).")
    controls: list[str] = Field(default_factory=list,
                                description="Variants that change the workload rather than the policy (e.g. "
                                            "lower load): shown in comparisons, never ranked or winning.")

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        if self.warmup >= self.duration:
            raise ValueError(f"warmup: must be < duration ({self.duration}), got {self.warmup}")
        services = set(self.services)
        for name in self.clients:
            if name in services:
                raise ValueError(f"clients.{name}: a client may not share a service's name")
        for name, c in self.clients.items():
            if c.target not in services:
                raise ValueError(_unknown(f"clients.{name}.target", c.target, services, "service"))
            if c.workflow == "read_then_write" and self.services[c.target].resource != "occ_row":
                raise ValueError(f"clients.{name}.workflow: read_then_write needs a target with resource: occ_row, "
                                 f"but '{c.target}' has resource: {self.services[c.target].resource}")
            if c.saga is not None:
                for i, step in enumerate(c.saga.steps):
                    if step.to not in services:
                        raise ValueError(_unknown(f"clients.{name}.saga.steps.{i}.to", step.to, services, "service"))
                    comp = step.compensate
                    if comp is not None and comp.to not in services:
                        raise ValueError(_unknown(f"clients.{name}.saga.steps.{i}.compensate.to", comp.to, services,
                                                  "service"))
            if c.requests_per_member is not None and not isinstance(c.arrival, ClosedArrivals):
                raise ValueError(f"clients.{name}.requests_per_member: only valid with closed-loop arrivals")
            if c.stop is not None and c.stop <= c.start:
                raise ValueError(f"clients.{name}.stop: must be > start ({c.start}), got {c.stop}")
            if c.stop is not None and c.stop > self.duration:
                _warn(f"clients.{name}.stop: {c.stop} is after duration ({self.duration}); arrivals end at "
                      "duration anyway")
        late = [n for n, c in self.clients.items() if c.start >= self.duration]
        for name in late:
            msg = (f"clients.{name}.start: must be < duration ({self.duration}), got {self.clients[name].start}; "
                   "arrivals end at duration")
            if len(late) == len(self.clients):
                raise ValueError(f"{msg}, so no client would send")
            _warn(f"{msg}, so this client never sends")
        self._check_size()
        for name, s in self.services.items():
            for i, call in enumerate(s.handler.calls):
                if call.to not in services:
                    raise ValueError(_unknown(f"services.{name}.handler.calls.{i}.to", call.to, services, "service"))
            s.handler.check(f"services.{name}.handler")
        _check_acyclic(self.services)
        _check_replicas(self.services)
        self._check_closed_loops()
        nodes = services | set(self.clients)
        for i, link in enumerate(self.network.links):
            for end, v in (("from", link.from_), ("to", link.to)):
                if v.split("/")[0] not in nodes:
                    raise ValueError(_unknown(f"network.links.{i}.{end}", v, nodes, "node"))
                check_nodes(f"network.links.{i}.{end}", [v], self.services, set(self.clients))
        for i, f in enumerate(self.faults):
            f.check_references(f"faults.{i}", services=self.services, clients=set(self.clients))
            self._check_fault_time(f"faults.{i}", f)
        for vname, ov in self.variants.items():
            if not isinstance(ov, dict):
                raise ValueError(f"variants.{vname}: must be a mapping of dotted paths to values")
        for path, name in [("reference", self.reference), *((f"controls.{i}", c) for i, c in enumerate(self.controls))]:
            if name is not None and name not in self.variants:
                raise ValueError(_unknown(path, name, self.variants, "variant"))
        if self.reference is not None and self.reference in self.controls:
            raise ValueError(f"reference: '{self.reference}' is a control; the reference must be a ranked variant")
        return self

    def _check_closed_loops(self) -> None:
        """A closed loop in which nothing takes time would spin at one instant forever (no progress)."""
        latency = min([self.network.default.latency.mean, *(link.latency.mean for link in self.network.links)])
        for name, c in self.clients.items():
            if not isinstance(c.arrival, ClosedArrivals) or c.requests_per_member is not None:
                continue
            target = self.services[c.target]
            if (c.arrival.think_time.mean == 0 and latency == 0 and target.service_time.mean == 0
                    and not target.handler.calls):
                raise ValueError(f"clients.{name}.arrival.think_time: must be > 0 when the network latency and "
                                 f"'{c.target}'s service time are 0: the closed loop would never advance "
                                 "simulated time, got 0")

    def _check_size(self) -> None:
        """Refuse runs whose size alone is absurd (docs/errors.md): too many buckets or arrivals."""
        buckets = self.end_time / self.timeline_step
        if buckets > limits.MAX_TIMELINE_BUCKETS:
            raise ValueError(f"timeline_step: (duration + drain) / timeline_step is {buckets:.3g} buckets, at most "
                             f"{limits.MAX_TIMELINE_BUCKETS:,}; raise timeline_step, got {self.timeline_step}")
        for name, c in self.clients.items():
            if isinstance(c.arrival, ClosedArrivals):
                continue
            rate = c.arrival.max_rate if isinstance(c.arrival, ProfileArrivals) else c.arrival.rate
            for f in self.faults:
                if isinstance(f, LoadFault) and f.client == name and f.factor > 1:
                    rate *= f.factor
            sending = max(0.0, min(c.stop if c.stop is not None else self.duration, self.duration) - c.start)
            expected = rate * c.count * sending
            if expected > limits.MAX_ARRIVALS:
                raise ValueError(f"clients.{name}: about {expected:.3g} arrivals expected (rate x count x sending "
                                 f"time, load faults included), at most {limits.MAX_ARRIVALS:.0e}; "
                                 "see the limits in docs/errors.md")

    def _check_fault_time(self, path: str, f: Any) -> None:
        """Warn about a fault that never happens or misses the measured part of the run."""
        if f.at >= self.end_time:
            # A warning, not an error: shortening a run (a smoke test, a sweep over duration)
            # legitimately leaves later faults out.
            _warn(f"{path}.at: {f.at} is after the run ends (duration + drain = {self.end_time}); "
                  "the fault never happens")
        elif f.at >= self.duration:
            _warn(f"{path}: starts at {f.at}, after arrivals end (duration {self.duration}); "
                  "it affects only the drain")
        elif f.end is not None and f.end <= self.warmup:
            _warn(f"{path}: ends at {f.end}, within the warmup ({self.warmup}); steady-state metrics exclude it")

    @property
    def end_time(self) -> float:
        """When the simulation stops: duration plus drain."""
        return self.duration + self.drain


def _warn(message: str) -> None:
    warnings.warn(ScenarioWarning(message), stacklevel=2)


def _unknown(path: str, got: str, options: Iterable[str], what: str) -> str:
    opts = sorted(options)
    hint = difflib.get_close_matches(got, opts, n=1)
    tail = f" (did you mean '{hint[0]}'?)" if hint else ""
    return f"{path}: unknown {what} '{got}', expected one of: {', '.join(opts)}{tail}"


def _check_acyclic(services: Mapping[str, ServiceConfig]) -> None:
    """Raise ValueError naming a cycle of downstream calls (iterative: any chain length)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for root in services:
        if state.get(root):
            continue
        path: list[str] = [root]
        pending = [iter(c.to for c in services[root].handler.calls)]
        state[root] = 1
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                pending.pop()
                continue
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt]
                if len(cycle) > 12:
                    cycle = [*cycle[:5], f"... ({len(cycle) - 8} more)", *cycle[-3:]]
                raise ValueError(f"services: downstream calls form a cycle: {' -> '.join(cycle)}")
            if state.get(nxt) == 2:
                continue
            state[nxt] = 1
            path.append(nxt)
            pending.append(iter(c.to for c in services[nxt].handler.calls))


PRIORITY_ORDER = {p: i for i, p in enumerate(PRIORITIES)}


def _check_replicas(services: dict[str, ServiceConfig]) -> None:
    """A replica names an existing primary that is not itself a replica, and makes no calls."""
    names = set(services)
    for name, s in services.items():
        r = s.replica
        if r is None:
            continue
        path = f"services.{name}.replica.of"
        if r.of not in names:
            raise ValueError(_unknown(path, r.of, names, "service"))
        if r.of == name:
            raise ValueError(f"{path}: a service cannot be a replica of itself")
        if services[r.of].replica is not None:
            raise ValueError(f"{path}: '{r.of}' is itself a replica (of '{services[r.of].replica.of}'); "  # type: ignore[union-attr]
                             "name the primary")
        if s.handler.calls:
            raise ValueError(f"services.{name}.handler.calls: a replica serves reads from its own state and makes "
                             "no downstream calls")
