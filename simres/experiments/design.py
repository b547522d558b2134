"""A sweep's design and its plan: axes (grid, zip, sample), sweep files, and the points they expand to.

A point is one ``(parameter combination, variant, replicate)``. Replicate ``i`` has the same
seed for every combination and variant (common random numbers), and ``run_id`` is a stable
hash of (parameters, variant, replicate), so a resumed sweep knows what is done. Every
point is validated against the scenario before anything runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simres.errors import ScenarioError, SweepError
from simres.scenario.yamlio import load_file, loads

if TYPE_CHECKING:

    from simres.scenario.schema import Scenario




M = TypeVar("M", bound=BaseModel)
"""A pydantic model class (the spec :func:`validated` builds)."""

class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------------------- the design


class RangeSpec(_Strict):
    """Where a sampled parameter is drawn from: ``low``/``high`` (optionally log, integer) or ``choices``."""

    low: float | None = Field(default=None, description="Lower bound (inclusive).")
    high: float | None = Field(default=None, description="Upper bound.")
    log: bool = Field(default=False, description="Uniform in log space (low must be > 0).")
    integer: bool = Field(default=False, description="Round to a whole number.")
    choices: list[Any] | None = Field(default=None, min_length=1, description="Pick one of these values instead.")

    @model_validator(mode="after")
    def _bounds(self) -> RangeSpec:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log or self.integer:
                raise ValueError("give either choices or low/high (with log, integer), not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("needs low and high, or choices")
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log: needs low > 0, got {self.low}")
        return self

    def value(self, u: float) -> Any:
        """Map a uniform ``u`` in [0, 1) to a value of this range."""
        if self.choices is not None:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        x = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if self.log else lo + u * (hi - lo)
        if self.integer:
            return int(min(max(round(x), math.ceil(lo)), math.floor(hi)))
        return float(f"{x:.6g}")  # readable values; the 7th digit never matters to a sweep


class SampleSpec(_Strict):
    """``n`` random points over ``ranges`` (one axis of the design), reproducible from ``seed``."""

    n: int = Field(ge=1, description="Number of sampled points (the budget).")
    seed: int = Field(default=0, ge=0, description="Seed of the sampler.")
    method: Literal["random", "lhs"] = Field(
        default="random", description="Independent uniform draws, or a Latin hypercube (even coverage).")
    ranges: dict[str, RangeSpec] = Field(min_length=1, description="Dotted path -> range.")

    def points(self) -> list[dict[str, Any]]:
        """The ``n`` sampled combinations, in draw order."""
        import numpy as np

        d = len(self.ranges)
        rng = np.random.default_rng(self.seed)
        if self.method == "lhs":  # one point in each of n equal strata of every range
            u = (np.stack([rng.permutation(self.n) for _ in range(d)], axis=1)
                 + rng.random((self.n, d))) / self.n
        else:
            u = rng.random((self.n, d))
        return [{path: r.value(float(u[k, j])) for j, (path, r) in enumerate(self.ranges.items())}
                for k in range(self.n)]


class SweepSpec(_Strict):
    """A whole sweep: what to run, the design, and how many replications.

    The design crosses its axes: every grid value with every other (full factorial),
    times the rows of ``zip`` (parameters varied together), times the ``sample`` points.
    Precedence for a run (the one order, see :func:`plan_sweep`): scenario < variant <
    ``overrides`` < swept parameters.
    """

    scenario: str | dict[str, Any] = Field(description="A scenario file, a bundled name, or a mapping.")
    reps: int = Field(default=1, ge=1, description="Replications per combination and variant.")
    seed: int | None = Field(default=None, ge=0, description="Root seed (default: the scenario's).")
    variants: list[str | None] | Literal["all"] | None = Field(
        default=None, description="Variants to run (null = as written), or 'all'.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Fixed dotted-path overrides (like --set).")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="Dotted path -> values; every combination.")
    zip: dict[str, list[Any]] = Field(
        default_factory=dict, description="Dotted path -> values of one length, varied together.")
    sample: SampleSpec | None = Field(default=None, description="Randomly sampled parameters.")

    @model_validator(mode="after")
    def _axes(self) -> SweepSpec:
        for section in ("grid", "zip"):
            for path, values in getattr(self, section).items():
                if not values:
                    raise ValueError(f"{section}.{path}: needs at least one value")
        lengths = {path: len(v) for path, v in self.zip.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError("zip: every list must have the same length, got "
                             + ", ".join(f"{p}: {n}" for p, n in lengths.items()))
        seen: dict[str, str] = {}
        sections = [("overrides", self.overrides), ("grid", self.grid), ("zip", self.zip),
                    ("sample", self.sample.ranges if self.sample else {})]
        for section, paths in sections:
            for path in paths:
                if path in seen:
                    raise ValueError(f"{section}.{path}: already set in {seen[path]}")
                seen[path] = section
        return self

    @property
    def params(self) -> list[str]:
        """Swept dotted paths, in column order: grid, zip, sample."""
        sampled = list(self.sample.ranges) if self.sample else []
        return [*self.grid, *self.zip, *sampled]

    def combinations(self) -> list[dict[str, Any]]:
        """Every parameter combination of the design, in order (first grid path slowest)."""
        n_zip = len(next(iter(self.zip.values()))) if self.zip else 1
        zipped = [{p: v[k] for p, v in self.zip.items()} for k in range(n_zip)]
        sampled = self.sample.points() if self.sample else [{}]
        grid = [[(p, v) for v in values] for p, values in self.grid.items()]
        return [{**dict(g), **z, **s} for g in itertools.product(*grid) for z in zipped for s in sampled]


def load_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """Read a sweep file (YAML); a relative ``scenario`` path is taken from the file's folder."""
    p = Path(path)
    try:
        data = load_file(p)
    except ScenarioError as e:
        raise SweepError(str(e)) from None
    if not isinstance(data, dict):
        raise SweepError(f"{p}: must be a mapping with a 'scenario' key at the top level")
    spec = validate_spec(data, source=str(p))
    if isinstance(spec.scenario, str) and (p.parent / spec.scenario).is_file():
        spec = spec.model_copy(update={"scenario": str(p.parent / spec.scenario)})
    return spec


def yaml_has_keys(path: str | os.PathLike[str], *keys: str) -> bool:
    """Whether ``path`` is a YAML file holding a mapping with every one of ``keys`` at the top level."""
    p = Path(path)
    if not p.is_file() or p.suffix not in (".yaml", ".yml"):
        return False
    try:
        data = load_file(p)
    except ScenarioError:
        return False
    return isinstance(data, dict) and all(k in data for k in keys)


def is_sweep_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a sweep file (a YAML mapping with a top-level ``scenario`` key)."""
    return yaml_has_keys(path, "scenario")


def validate_spec(data: Mapping[str, Any], *, source: str = "sweep") -> SweepSpec:
    """Validate a mapping into a :class:`SweepSpec`; an error is one line naming the field.

    Types are as strict as in scenario files (:func:`check_strict_types`): ``reps: true`` or
    ``n: "5"`` are errors, not coerced.
    """
    return validated(SweepSpec, data, source=source)


def validated(model: type[M], data: Mapping[str, Any], *, source: str) -> M:
    """``data`` validated into ``model`` (a sweep, tune or explore spec), as strictly typed as a
    scenario file; any error is one :class:`SweepError` line: ``<source>: <field>: <what>``."""
    from simres.scenario.checks import check_strict_types

    plain = dict(data)
    try:
        spec = model.model_validate(plain)
        check_strict_types(spec, plain)
        return spec
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith(("function-", "literal[")))
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        raise SweepError(f"{source}: {loc + ': ' if loc else ''}{msg}") from None
    except ValueError as e:  # check_strict_types: already "<field>: <what was expected>"
        raise SweepError(f"{source}: {e}") from None


def parse_axis(items: Sequence[str], *, flag: str = "--grid") -> dict[str, list[Any]]:
    """Parse ``PATH=V1,V2,...`` strings; values are YAML (``1,2.5,null,[1,2],{a: 1}``)."""
    out: dict[str, list[Any]] = {}
    for item in items:
        path, eq, raw = item.partition("=")
        path = path.strip()
        if not eq or not path or not raw.strip():
            raise SweepError(f"{flag} '{item}': expected PATH=V1,V2,..., e.g. services.db.workers=2,4,8")
        try:
            values = loads(f"[{raw}]")
        except yaml.YAMLError:
            raise SweepError(f"{flag} '{item}': the values are not valid YAML") from None
        if path in out:
            raise SweepError(f"{flag} {path}: given twice")
        out[path] = values
    return out


# ---------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Point:
    """One run of a sweep: a parameter combination, a variant and a replicate."""

    run_id: str
    params: dict[str, Any]
    variant: str | None
    replicate: int
    seed: int


@dataclass(frozen=True)
class Plan:
    """A validated sweep: the base scenario, every point, and the results' description."""

    spec: SweepSpec
    scenario: Scenario
    base: dict[str, Any]
    combinations: list[dict[str, Any]]
    variants: list[str | None]
    seeds: list[int]
    points: list[Point]
    meta: dict[str, Any] = field(repr=False)

    def __str__(self) -> str:
        nv = len(self.variants)
        return (f"{len(self.combinations)} combination(s) x {nv} variant(s) x "
                f"{len(self.seeds)} replication(s) = {len(self.points)} points")


def run_id(params: Mapping[str, Any], variant: str | None, replicate: int) -> str:
    """A short stable id of (parameters, variant, replicate): the same in every process."""
    payload = json.dumps([dict(sorted(params.items())), variant or "", int(replicate)],
                         sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=8).hexdigest()


def plan_sweep(spec: SweepSpec, *, source: str | None = None) -> Plan:
    """Expand and validate a sweep before anything runs.

    Every combination is applied to the scenario (with each variant) and validated, so a
    typo or an out-of-range value fails at once with one line naming the path.
    """
    from simres.rng import replication_seeds
    from simres.scenario.loading import apply_overrides, load_scenario, resolved_dict, validate

    where = source or "sweep"
    # One order everywhere: the scenario, then its variant, then the overrides (--set), then
    # the point's own parameters. ``base`` is the scenario as written; every point applies
    # the rest in that order (see :func:`point_overrides`).
    try:
        scenario = load_scenario(spec.scenario)
    except ScenarioError as e:
        raise SweepError(str(e)) from None
    try:
        with_sets = load_scenario(scenario, overrides=spec.overrides or None)
    except ScenarioError as e:
        raise SweepError(f"overrides: {e}") from None
    base = resolved_dict(scenario)
    if spec.variants == "all":
        if not scenario.variants:
            raise SweepError(f"{where}: variants: the scenario '{scenario.name}' defines no variants")
        variants: list[str | None] = list(scenario.variants)
    else:
        variants = list(dict.fromkeys(spec.variants)) if spec.variants else [None]
    for v in variants:
        if v is not None and v not in scenario.variants:
            opts = ", ".join(scenario.variants) or "none defined"
            raise SweepError(f"{where}: variants: unknown variant '{v}' (variants: {opts})")
    combos = spec.combinations()
    sections = {p: "grid" for p in spec.grid} | {p: "zip" for p in spec.zip}
    sections |= {p: "sample" for p in (spec.sample.ranges if spec.sample else {})}
    # Each path alone first (a typo is reported as such), then every combination. The paths
    # of ``zip`` vary together (fields that are only valid together, such as a mode and its
    # bound), so they are checked together.
    for path in spec.params:
        if path not in spec.zip:
            _check(base, {**spec.overrides, path: combos[0][path]}, f"{where}: {sections[path]}")
    if spec.zip:
        _check(base, {**spec.overrides, **{p: combos[0][p] for p in spec.zip}}, f"{where}: zip")
    for v in variants:
        data = base if v is None else apply_overrides(base, scenario.variants[v], source=f"variant {v}")
        if v is not None:
            validate(data, source=f"variant {v}")
        for combo in combos:
            _check(data, point_overrides(spec, combo), f"{where}: {_label(combo, v)}")
    seed = scenario.seed if spec.seed is None else spec.seed
    seeds = replication_seeds(seed, spec.reps)
    points = [Point(run_id(c, v, r), c, v, r, s)
              for c in combos for v in variants for r, s in enumerate(seeds)]
    if len({p.run_id for p in points}) != len(points):
        raise SweepError(f"{where}: the design repeats a combination; every combination must be unique")
    dtypes = {p: _dtype([c[p] for c in combos]) for p in spec.params}
    meta = {
        "version": 1,
        "scenario": spec.scenario if isinstance(spec.scenario, str) else "<mapping>",
        "scenario_name": scenario.name,
        "fingerprint": _fingerprint(resolved_dict(with_sets)),
        "overrides": spec.overrides,
        "params": spec.params,
        "dtypes": dtypes,
        "variants": [v or "" for v in variants],
        "variant_overrides": {v: scenario.variants[v] for v in variants if v},
        "seed": seed,
        "reps": spec.reps,
        # What "better" means for this scenario, so `best` can choose by it without flags.
        "objective": scenario.objective.model_dump(),
    }
    return Plan(spec, scenario, base, combos, variants, seeds, points, meta)


def point_overrides(spec: SweepSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """What a point applies after its variant: the sweep's fixed overrides, then its parameters."""
    return {**spec.overrides, **params}


def _check(data: dict[str, Any], combo: Mapping[str, Any], where: str) -> None:
    from simres.scenario.loading import apply_overrides, validate

    try:
        validate(apply_overrides(data, combo, source=where), source=where)
    except ScenarioError as e:
        raise SweepError(str(e)) from None


def _label(combo: Mapping[str, Any], variant: str | None) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in combo.items()) or "(no parameters)"
    return f"point {text}" + (f" variant {variant}" if variant else "")


def _fingerprint(data: Mapping[str, Any]) -> str:
    blob = json.dumps(data, sort_keys=True, default=str).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


def _dtype(values: Sequence[Any]) -> str:
    """The column dtype for a parameter's values; mixed or structured values become JSON text."""
    present = [v for v in values if v is not None]
    nullable = len(present) < len(values)
    if present and all(isinstance(v, bool) for v in present):
        return "boolean" if nullable else "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "Int64" if nullable else "int64"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "float64"
    if present and all(isinstance(v, str) for v in present):
        return "str"
    return "json"


def _encode(value: Any, dtype: str) -> Any:
    return json.dumps(value, sort_keys=True, default=str) if dtype == "json" else value


def decode_param(value: Any, dtype: str) -> Any:
    """A parameter cell back as the plain value given to the scenario (NaN/NA -> None)."""
    import pandas as pd

    if dtype == "json":
        return json.loads(value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if dtype in ("int64", "Int64"):
        return int(value)
    if dtype in ("bool", "boolean"):
        return bool(value)
    if dtype == "float64":
        return float(value)
    return str(value)
