"""The top-level :class:`Scenario` and the checks that span sections (references, cycles).

A scenario describes the world (network, services, clients), the failures to inject and
named policy variants. Every model is frozen and rejects unknown keys, so a typo is an
error naming the field, never a silently ignored setting.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field, model_validator

from simres.outcomes import PRIORITIES
from simres.scenario._base import PositiveFloat, _Model
from simres.scenario.clients import ClientConfig, ClosedArrivals
from simres.scenario.faults import FaultConfig
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
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="Links and their latency.")
    services: dict[str, ServiceConfig] = Field(min_length=1, description="Services by name.")
    clients: dict[str, ClientConfig] = Field(min_length=1, description="Client populations by name.")
    faults: list[FaultConfig] = Field(default_factory=list, description="Failures injected at scheduled times.")
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
            if c.requests_per_member is not None and not isinstance(c.arrival, ClosedArrivals):
                raise ValueError(f"clients.{name}.requests_per_member: only valid with closed-loop arrivals")
            if c.stop is not None and c.stop <= c.start:
                raise ValueError(f"clients.{name}.stop: must be > start ({c.start}), got {c.stop}")
        for name, s in self.services.items():
            for i, call in enumerate(s.handler.calls):
                if call.to not in services:
                    raise ValueError(_unknown(f"services.{name}.handler.calls.{i}.to", call.to, services, "service"))
        _check_acyclic(self.services)
        nodes = services | set(self.clients)
        for i, link in enumerate(self.network.links):
            for end, v in (("from", link.from_), ("to", link.to)):
                if v.split("/")[0] not in nodes:
                    raise ValueError(_unknown(f"network.links.{i}.{end}", v, nodes, "node"))
        for i, f in enumerate(self.faults):
            f.check_references(f"faults.{i}", services=self.services, clients=set(self.clients))
        for vname, ov in self.variants.items():
            if not isinstance(ov, dict):
                raise ValueError(f"variants.{vname}: must be a mapping of dotted paths to values")
        for path, name in [("reference", self.reference), *((f"controls.{i}", c) for i, c in enumerate(self.controls))]:
            if name is not None and name not in self.variants:
                raise ValueError(_unknown(path, name, self.variants, "variant"))
        if self.reference is not None and self.reference in self.controls:
            raise ValueError(f"reference: '{self.reference}' is a control; the reference must be a ranked variant")
        return self

    @property
    def end_time(self) -> float:
        """When the simulation stops: duration plus drain."""
        return self.duration + self.drain


def _unknown(path: str, got: str, options: Iterable[str], what: str) -> str:
    opts = sorted(options)
    hint = difflib.get_close_matches(got, opts, n=1)
    tail = f" (did you mean '{hint[0]}'?)" if hint else ""
    return f"{path}: unknown {what} '{got}', expected one of: {', '.join(opts)}{tail}"


def _check_acyclic(services: Mapping[str, ServiceConfig]) -> None:
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            raise ValueError(f"services: downstream calls form a cycle: {' -> '.join([*stack, n])}")
        state[n] = 1
        for call in services[n].handler.calls:
            visit(call.to, [*stack, n])
        state[n] = 2

    for n in services:
        visit(n, [])




PRIORITY_ORDER = {p: i for i, p in enumerate(PRIORITIES)}
