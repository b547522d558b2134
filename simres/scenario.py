"""The scenario schema: validated, typed, loaded from YAML, overridable by dotted paths.

A scenario describes the world (network, services, clients), the failures to inject and
named policy variants. Every model is frozen and rejects unknown keys, so a typo is an
error naming the field, never a silently ignored setting. ``simres show`` prints the
fully resolved scenario with every default filled in.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simres.dists import Dist, Exponential
from simres.errors import ScenarioError
from simres.faultspec import FaultConfig
from simres.outcomes import PRIORITIES
from simres.policies import (
    BreakerConfig,
    BulkheadConfig,
    RetryConfig,
    SheddingConfig,
    ThrottleConfig,
)

Priority = Literal["critical", "high", "medium", "low"]
PositiveFloat = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, validate_default=True)


# ---------------------------------------------------------------------------- network


class LinkDefaults(_Model):
    """Latency and loss of every pair of nodes not listed in ``network.links``."""

    latency: Dist = Field(default=0.0, description="One-way message latency (seconds).")
    loss: float = Field(default=0.0, ge=0, le=1, description="Probability a message is lost.")


class LinkConfig(_Model):
    """A network link between two named nodes (a client, a service, or ``service/i``)."""

    from_: str = Field(alias="from", description="Sending node: client or service name.")
    to: str = Field(description="Receiving node: service name (or client name for replies).")
    latency: Dist = Field(default=0.0, description="One-way message latency (seconds).")
    loss: float = Field(default=0.0, ge=0, le=1, description="Probability a message is lost.")
    symmetric: bool = Field(default=True, description="Also use this link for the reverse direction.")


class NetworkConfig(_Model):
    """The network: a default link and named overrides."""

    default: LinkDefaults = Field(default_factory=LinkDefaults, description="Link for unlisted pairs.")
    links: list[LinkConfig] = Field(default_factory=list, description="Links that differ from the default.")


# ---------------------------------------------------------------------------- calls


class CallPolicy(_Model):
    """The policy stack of one logical call, applied outermost first.

    Order: deadline, retry loop, retry budget (inside ``retry``), circuit breaker,
    bulkhead, per-try timeout, then the network, the remote queue and the work.
    """

    timeout: PositiveFloat | None = Field(default=None, description="Per-try timeout (seconds); none = wait forever.")
    deadline: PositiveFloat | None = Field(
        default=None,
        description="Overall deadline over all tries and backoff waits (seconds).",
    )
    retry: RetryConfig | None = Field(default=None, description="Retry policy; none = a single try.")
    breaker: BreakerConfig | None = Field(default=None, description="Circuit breaker on this call.")
    bulkhead: BulkheadConfig | None = Field(default=None, description="Bulkhead limiting concurrent calls.")


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
    """The request queue in front of an instance's workers."""

    discipline: Literal["fifo", "lifo"] = Field(
        default="fifo",
        description="Which waiting request a free worker takes.",
    )
    capacity: int | None = Field(
        default=None, ge=0,
        description="Maximum waiting requests; a full queue rejects at once. None = unbounded.",
    )


class ServiceConfig(_Model):
    """A service: instances behind a load balancer, each with workers and a queue."""

    instances: int = Field(default=1, ge=1, description="Number of instances.")
    workers: int = Field(default=1, ge=1, description="Workers (concurrent requests) per instance, c.")
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
    resource: Literal["none", "occ_row"] = Field(
        default="none",
        description="occ_row: the service guards one row under optimistic concurrency. A read returns the "
        "version; a conditional write succeeds only if the version is unchanged (then increments it), "
        "otherwise it is answered with an error (a conflict).",
    )


# ---------------------------------------------------------------------------- clients


class RatePoint(_Model):
    """A point of a rate profile: from ``at`` the rate is ``rate`` (or ramps to it)."""

    at: float = Field(ge=0, description="Time (seconds).")
    rate: float = Field(ge=0, description="Requests per second per client member.")


class PoissonArrivals(_Model):
    """Open loop: a Poisson process."""

    kind: Literal["poisson"] = "poisson"
    rate: PositiveFloat = Field(description="Requests per second per client member.")


class ConstantArrivals(_Model):
    """Open loop: evenly spaced arrivals."""

    kind: Literal["constant"] = "constant"
    rate: PositiveFloat = Field(description="Requests per second per client member.")


class ProfileArrivals(_Model):
    """Open loop: a Poisson process whose rate follows a piecewise profile (steps, spikes, ramps)."""

    kind: Literal["profile"] = "profile"
    points: list[RatePoint] = Field(min_length=1, description="Rate points sorted by time; the first applies from t=0.")
    shape: Literal["step", "linear"] = Field(
        default="step",
        description="Hold each rate until the next point (step), or interpolate (linear ramps).",
    )

    @model_validator(mode="after")
    def _sorted(self) -> ProfileArrivals:
        ats = [p.at for p in self.points]
        if ats != sorted(ats):
            raise ValueError("points: must be sorted by 'at'")
        if max(p.rate for p in self.points) <= 0:
            raise ValueError("points: at least one rate must be > 0")
        return self

    def rate_at(self, t: float) -> float:
        """The profile's rate at time ``t``."""
        pts = self.points
        if t < pts[0].at:
            return pts[0].rate
        for a, b in itertools.pairwise(pts):
            if a.at <= t < b.at:
                if self.shape == "linear" and b.at > a.at:
                    return a.rate + (b.rate - a.rate) * (t - a.at) / (b.at - a.at)
                return a.rate
        return pts[-1].rate

    @property
    def max_rate(self) -> float:
        """The highest rate in the profile (the thinning bound)."""
        return max(p.rate for p in self.points)


class ClosedArrivals(_Model):
    """Closed loop: ``users`` per client member, each waiting for its answer, then thinking."""

    kind: Literal["closed"] = "closed"
    users: int = Field(ge=1, description="Concurrent users per client member.")
    think_time: Dist = Field(default=0.0, description="Pause between a response and the next request (seconds).")


Arrivals = Annotated[
    PoissonArrivals | ConstantArrivals | ProfileArrivals | ClosedArrivals,
    Field(discriminator="kind"),
]


class ClientConfig(CallPolicy):
    """A client population: ``count`` independent members with the same policy stack."""

    target: str = Field(description="Service the clients call.")
    count: int = Field(
        default=1, ge=1,
        description="Independent client members (each with its own arrivals and, with per_client scope, its own "
        "policy state).",
    )
    arrival: Arrivals = Field(description="Arrival process of each member.")
    priority: Priority = Field(
        default="high",
        description="Priority class of its requests: critical, high, medium, low.",
    )
    throttle: ThrottleConfig | None = Field(default=None, description="Client-side adaptive throttling.")
    workflow: Literal["call", "read_then_write"] = Field(
        default="call",
        description="call: one logical call per request. read_then_write: against an occ_row service, read the "
        "version then write conditionally; a conflict backs off (retry policy) and starts over with a read.",
    )
    requests_per_member: int | None = Field(
        default=None, ge=1,
        description="Closed loop only: each user stops after this many requests (e.g. 1 for 'N clients each want "
        "one successful write').",
    )
    start: float = Field(default=0.0, ge=0, description="When the clients start sending (seconds).")
    stop: float | None = Field(default=None, gt=0, description="When they stop sending; none = at the end of the run.")


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


# ---------------------------------------------------------------------------- loading


def scenarios_dir() -> Path:
    """Where bundled scenarios live (``SIMRES_SCENARIOS`` overrides)."""
    env = os.environ.get("SIMRES_SCENARIOS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "scenarios"


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario names and their files."""
    d = scenarios_dir()
    if not d.is_dir():
        return {}
    return {p.stem: p for p in sorted(d.glob("*.yaml"))}


def resolve_path(path_or_name: str | os.PathLike[str]) -> Path:
    """A scenario file path from a path or a bundled scenario name."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    bundled = bundled_scenarios()
    if str(path_or_name) in bundled:
        return bundled[str(path_or_name)]
    hint = difflib.get_close_matches(str(path_or_name), list(bundled), n=1)
    tail = f"; did you mean '{hint[0]}'?" if hint else ""
    raise ScenarioError(
        f"no such file or bundled scenario (bundled: {', '.join(bundled) or 'none'}){tail}",
        source=str(path_or_name),
    )


def read_raw(path_or_name: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """Read a scenario file as a plain mapping (safe YAML loader); returns (data, source)."""
    path = resolve_path(path_or_name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ScenarioError(f"{where}invalid YAML: {problem}", source=str(path)) from None
    except OSError as e:
        raise ScenarioError(f"cannot read: {e.strerror}", source=str(path)) from None
    if not isinstance(data, dict):
        raise ScenarioError("must be a mapping of scenario fields at the top level", source=str(path))
    return data, str(path)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` strings (VALUE is YAML) into a dotted-path mapping."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ScenarioError(f"override '{item}': expected KEY=VALUE, e.g. services.db.workers=4",
                                source="--set")
        key, _, raw = item.partition("=")
        key = key.strip()
        if not key:
            raise ScenarioError(f"override '{item}': the key before '=' is empty", source="--set")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ScenarioError(f"override '{item}': the value is not valid YAML", source="--set") from None
    return out


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any], *, source: str = "--set") -> dict[str, Any]:
    """Return a copy of ``data`` with dotted-path overrides applied.

    Paths are checked against the fully resolved scenario: every step but the last must
    exist (so ``services.dbb.workers`` with no service ``dbb`` is an error, not a new
    service); an unset optional section (``retry: null``) is created on demand; list items
    are addressed by index (``faults.0.duration``). The result is validated by the caller.
    """
    out = copy.deepcopy(data)
    for path, value in overrides.items():
        keys = path.split(".")
        node: Any = out
        for depth, k in enumerate(keys[:-1]):
            where = ".".join(keys[: depth + 1])
            node = _step(node, k, where, source, create=True)
        last = keys[-1]
        if isinstance(node, list):
            idx = _index(node, last, path, source)
            node[idx] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ScenarioError(f"cannot set a field inside a {type(node).__name__}", source=source, path=path)
    return out


def _index(node: list[Any], k: str, where: str, source: str) -> int:
    try:
        idx = int(k)
    except ValueError:
        raise ScenarioError(f"expected a list index, got '{k}'", source=source, path=where) from None
    if not -len(node) <= idx < len(node):
        raise ScenarioError(f"index {idx} out of range (list has {len(node)} items)", source=source, path=where)
    return idx


def _step(node: Any, k: str, where: str, source: str, *, create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(node, k, where, source)]
    if not isinstance(node, dict):
        raise ScenarioError(f"cannot descend into a {type(node).__name__}", source=source, path=where)
    if k not in node:
        hint = difflib.get_close_matches(k, [str(x) for x in node], n=1)
        tail = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ScenarioError(f"unknown key '{k}'{tail}", source=source, path=where)
    if node[k] is None and create:
        node[k] = {}
    return node[k]


def validate(data: Mapping[str, Any], *, source: str = "<scenario>") -> Scenario:
    """Validate a mapping into a :class:`Scenario`, turning pydantic errors into one line."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(_format_error(e), source=source) from None


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain data with every default filled in (round-trips through validate)."""
    return scenario.model_dump(mode="json", by_alias=True)


def load_scenario(
    path_or_name: str | os.PathLike[str] | Mapping[str, Any] | Scenario,
    *,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    variant: str | None = None,
) -> Scenario:
    """Load a scenario from a path, a bundled name, a mapping or a Scenario.

    ``overrides`` are dotted paths (a mapping, or ``KEY=VALUE`` strings as on the CLI);
    ``variant`` applies one of the scenario's named variants first.
    """
    if isinstance(path_or_name, Scenario):
        base, source = resolved_dict(path_or_name), f"<scenario {path_or_name.name}>"
    elif isinstance(path_or_name, Mapping):
        base, source = copy.deepcopy(dict(path_or_name)), "<mapping>"
    else:
        base, source = read_raw(path_or_name)
    scenario = validate(base, source=source)
    if variant is None and not overrides:
        return scenario
    data = resolved_dict(scenario)
    if variant is not None:
        if variant not in scenario.variants:
            opts = ", ".join(scenario.variants) or "none defined"
            raise ScenarioError(f"unknown variant '{variant}' (variants: {opts})", source=source, path="variant")
        data = apply_overrides(data, scenario.variants[variant], source=f"{source} variant {variant}")
    if overrides:
        ov = overrides if isinstance(overrides, Mapping) else parse_overrides(overrides)
        data = apply_overrides(data, ov)
    return validate(data, source=source)


# ---------------------------------------------------------------------------- errors


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "required field is missing",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_type": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "too_short": "must have at least {min_length} item(s)",
}


def _format_error(e: ValidationError) -> str:
    err = e.errors(include_url=False)[0]
    loc = _clean_loc(err["loc"])
    typ = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if typ == "extra_forbidden":
        field = loc[-1] if loc else "?"
        known = _known_fields(loc[:-1])
        hint = difflib.get_close_matches(str(field), known, n=1)
        tail = f" (did you mean '{hint[0]}'?)" if hint else (f"; expected one of: {', '.join(known)}" if known else "")
        return f"{'.'.join(loc)}: unknown field{tail}"
    if typ == "union_tag_invalid":
        return f"{'.'.join(loc)}.kind: unknown kind {ctx.get('tag')!r}, expected one of: {ctx.get('expected_tags')}"
    if typ == "union_tag_not_found":
        return f"{'.'.join(loc)}: needs a 'kind' field ({ctx.get('discriminator', 'kind')})"
    if typ == "literal_error":
        return f"{'.'.join(loc)}: must be one of {ctx.get('expected')}, got {value!r}"
    if typ in ("value_error", "assertion_error"):
        msg = str(ctx.get("error", err["msg"]))
        # Our validators already name their field relative to the model; join with the loc.
        return f"{'.'.join(loc)}: {msg}" if loc else msg
    template = _MESSAGES.get(typ)
    nice = {k: _num(v) for k, v in ctx.items()}
    msg = template.format(**nice) if template else err["msg"][0].lower() + err["msg"][1:]
    shown = "" if typ == "missing" else f", got {value!r}"
    return f"{'.'.join(loc)}: {msg}{shown}"


def _num(v: Any) -> Any:
    """Render 0.0 as 0 in messages (bounds come from Field(gt=0) as floats)."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _clean_loc(loc: tuple[Any, ...]) -> list[str]:
    out: list[str] = []
    for part in loc:
        s = str(part)
        if s.startswith(("function-", "tagged-union[", "union[")) or ("[" in s and s.endswith("]")):
            continue
        if out and s in _DIST_TAGS and out[-1] != "kind":
            # discriminator tag inserted by pydantic (e.g. 'exponential'); not a user key
            continue
        out.append(s)
    return out


_DIST_TAGS = {
    "exponential", "constant", "uniform", "normal", "lognormal", "gamma", "erlang", "empirical",
    "mixture", "poisson", "profile", "closed", "count", "time", "rolling", "token_bucket", "grpc",
    "ratio", "concurrency", "failure_ratio", "partition", "latency", "slowdown", "capacity",
    "crash", "errors", "load", "chaos", "semaphore", "pool",
}


def _known_fields(loc: list[str]) -> list[str]:
    """Field names valid at ``loc`` in the schema (best effort, for typo hints)."""
    model: Any = Scenario
    for part in loc:
        if isinstance(model, _Container):
            model = model.value
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return []
        info = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if info is None:
            return []
        model = _unwrap(info.annotation)
    fields = getattr(model, "model_fields", None)
    if not fields:
        return []
    return [f.alias or n for n, f in fields.items()]


class _Container:
    """A dict or list level of the schema: the next loc part is a key or an index."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _unwrap(tp: Any) -> Any:
    import typing

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is dict:
        return _Container(_unwrap(args[1]))
    if origin is list:
        return _Container(_unwrap(args[0]))
    for a in args:
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    for a in args:
        inner = _unwrap(a)
        if isinstance(inner, _Container) or hasattr(inner, "model_fields"):
            return inner
    return tp


PRIORITY_ORDER = {p: i for i, p in enumerate(PRIORITIES)}
