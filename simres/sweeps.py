"""Parameter sweeps: a design (grid x zip x sample) x variants x replications, in parallel.

A sweep turns a scenario and a design into points, each point one
``(parameter combination, variant, replicate)`` run by
:func:`simres.experiment.run_point` on an executor (serial, local processes, Dask). The
result is one tidy DataFrame: ``run_id``, ``variant``, ``replicate``, ``seed``, one
column per swept parameter (named by its dotted path), one per metric, ``error`` and
``wall_time``. Replicate ``i`` has the same seed for every combination and variant
(common random numbers), and ``run_id`` is a stable hash of (parameters, variant,
replicate), so a resumed sweep knows what is done.

With ``out``, finished rows are written as Parquet part files under a directory as they
come in: an interrupted sweep keeps what it finished and ``resume=True`` runs only the
rest. Rows come back sorted by parameters, variant and replicate, so the frame is the
same whatever the executor and worker count. :func:`best` picks a setting from it.

``simres.sweep(...)`` calls :func:`sweep`: this module is callable (see the end).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simres.errors import ScenarioError, SweepError

if TYPE_CHECKING:
    import pandas as pd

    from simres.executors import Executor
    from simres.scenario import Scenario

ID_COLUMNS = ("run_id", "variant", "replicate", "seed")
"""Columns that identify a row; then the parameters, the metrics and :data:`TAIL_COLUMNS`."""
TAIL_COLUMNS = ("error", "wall_time")
"""``error`` (None, or ``"Type: message"``) and the point's wall time in seconds."""
MANIFEST = "_sweep.json"
"""File in the results directory describing the sweep (parameters, seeds, scenario)."""
METADATA_KEY = b"simres.sweeps"
"""Parquet schema metadata key holding the same description in every file."""
FIRST_METRICS = (
    "count", "ok", "success_rate", "goodput", "throughput", "latency_mean", "latency_p50",
    "latency_p90", "latency_p99", "latency_p999", "latency_max",
)
"""Metric columns shown first; the others follow alphabetically, ``name:qualified`` last."""


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
    Precedence for a run: scenario < ``overrides`` < variant < swept parameters.
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
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise SweepError(f"{p}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise SweepError(f"{p}: invalid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SweepError(f"{p}: must be a mapping with a 'scenario' key at the top level")
    spec = validate_spec(data, source=str(p))
    if isinstance(spec.scenario, str) and (p.parent / spec.scenario).is_file():
        spec = spec.model_copy(update={"scenario": str(p.parent / spec.scenario)})
    return spec


def is_sweep_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a sweep file (a YAML mapping with a top-level ``scenario`` key)."""
    p = Path(path)
    if not p.is_file() or p.suffix not in (".yaml", ".yml"):
        return False
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "scenario" in data


def validate_spec(data: Mapping[str, Any], *, source: str = "sweep") -> SweepSpec:
    """Validate a mapping into a :class:`SweepSpec`; an error is one line naming the field."""
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith(("function-", "literal[")))
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        raise SweepError(f"{source}: {loc + ': ' if loc else ''}{msg}") from None


def parse_axis(items: Sequence[str], *, flag: str = "--grid") -> dict[str, list[Any]]:
    """Parse ``PATH=V1,V2,...`` strings; values are YAML (``1,2.5,null,[1,2],{a: 1}``)."""
    out: dict[str, list[Any]] = {}
    for item in items:
        path, eq, raw = item.partition("=")
        path = path.strip()
        if not eq or not path or not raw.strip():
            raise SweepError(f"{flag} '{item}': expected PATH=V1,V2,..., e.g. services.db.workers=2,4,8")
        try:
            values = yaml.safe_load(f"[{raw}]")
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
    from simres.scenario import apply_overrides, load_scenario, resolved_dict, validate

    where = source or "sweep"
    try:
        scenario = load_scenario(spec.scenario, overrides=spec.overrides or None)
    except ScenarioError as e:
        raise SweepError(str(e) if spec.overrides == {} else f"overrides: {e}") from None
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
    # Each path alone first (a typo is reported as such), then every combination.
    for path in spec.params:
        _check(base, {path: combos[0][path]}, f"{where}: {sections[path]}")
    for v in variants:
        data = base if v is None else apply_overrides(base, scenario.variants[v], source=f"variant {v}")
        if v is not None:
            validate(data, source=f"variant {v}")
        for combo in combos:
            _check(data, combo, f"{where}: {_label(combo, v)}")
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
        "fingerprint": _fingerprint(base),
        "overrides": spec.overrides,
        "params": spec.params,
        "dtypes": dtypes,
        "variants": [v or "" for v in variants],
        "variant_overrides": {v: scenario.variants[v] for v in variants if v},
        "seed": seed,
        "reps": spec.reps,
    }
    return Plan(spec, scenario, base, combos, variants, seeds, points, meta)


def _check(data: dict[str, Any], combo: Mapping[str, Any], where: str) -> None:
    from simres.scenario import apply_overrides, validate

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


# ---------------------------------------------------------------------------- running


def _run_task(task: tuple[Callable[..., dict[str, Any]], dict[str, Any], str | None, dict[str, Any], int],
              ) -> tuple[dict[str, Any], str | None, float]:
    """Run one point in a worker: (metrics, error or None, wall seconds); never raises."""
    fn, data, variant, overrides, seed = task
    t0 = time.perf_counter()
    try:
        row = dict(fn(data, seed=seed, variant=variant, overrides=overrides))
        error = None
    except Exception as e:
        row, error = {}, _error_text(e)
    return row, error, time.perf_counter() - t0


def _error_text(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= 2000 else text[:1997] + "..."


class _Sink:
    """Collects rows and writes them as Parquet part files (or keeps the tables in memory).

    Pending rows are written every ``flush_seconds`` by a background thread (and at once
    when ``batch_rows`` are pending), so a hard kill loses at most the last few seconds;
    :meth:`close` writes the rest, on Ctrl-C too. Each part is written to a temporary name
    and renamed, so a file on disk is always complete. Every ``compact_every`` parts the
    directory is compacted, so a long sweep does not leave thousands of small files.
    """

    def __init__(self, directory: Path | None, meta: dict[str, Any], *, batch_rows: int = 500,
                 flush_seconds: float = 2.0, compact_every: int = 200) -> None:
        import threading

        self.directory = directory
        self.meta = meta
        self.batch_rows = batch_rows
        self.compact_every = compact_every
        self.rows: list[dict[str, Any]] = []
        self.tables: list[Any] = []
        self.session = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.parts = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if directory is not None:
            self._thread = threading.Thread(target=self._flusher, args=(flush_seconds,),
                                            name="simres-sweep-writer", daemon=True)
            self._thread.start()

    def _flusher(self, every: float) -> None:
        while not self._stop.wait(every):
            self.flush()

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self.rows.append(row)
            full = len(self.rows) >= self.batch_rows
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self.rows:
                return
            table = _table(self.rows, self.meta)
            self.rows = []
            if self.directory is None:
                self.tables.append(table)
                return
            self.parts += 1
            _write_table(table, self.directory / f"part-{self.session}-{self.parts:05d}.parquet")
            if self.parts % self.compact_every == 0:
                compact(self.directory)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()


def _table(rows: list[dict[str, Any]], meta: Mapping[str, Any]) -> Any:
    import pandas as pd
    import pyarrow as pa

    df = pd.DataFrame(rows)
    for p, dt in meta["dtypes"].items():
        if p in df and dt not in ("json", "str"):
            df[p] = df[p].astype(dt)
    for c in df.columns:
        metric = c not in meta["dtypes"] and c not in ID_COLUMNS and c not in TAIL_COLUMNS
        if metric and (pd.api.types.is_numeric_dtype(df[c]) or df[c].isna().all()):
            df[c] = df[c].astype("float64")
    df["error"] = df["error"].astype(object)
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          METADATA_KEY: json.dumps(meta, default=str).encode("utf-8")})


def _write_table(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(f".tmp-{path.name}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _row(point: Point, result: tuple[dict[str, Any], str | None, float] | None,
         error: BaseException | None, dtypes: Mapping[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": point.run_id, "variant": point.variant or "",
                           "replicate": point.replicate, "seed": point.seed}
    row.update({p: _encode(point.params[p], dtypes[p]) for p in dtypes})
    if result is None:
        row.update(error=_error_text(error) if error else "no result", wall_time=float("nan"))
        return row
    metrics, err, wall = result
    for k, v in metrics.items():
        if k not in ("variant", "seed", "wall_time", "replicate", "run_id", "error") and k not in dtypes:
            row[k] = v
    row.update(error=err, wall_time=wall)
    return row


def run_sweep(
    spec: SweepSpec,
    *,
    executor: Executor | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    retry_errors: bool = False,
    progress: bool | Callable[[int, int], None] = False,
    point_fn: Callable[..., dict[str, Any]] | None = None,
    source: str | None = None,
    plan: Plan | None = None,
) -> pd.DataFrame:
    """Run a :class:`SweepSpec`; see :func:`sweep` for the arguments.

    ``plan`` (from :func:`plan_sweep`) saves planning twice when the caller already has it.
    """
    from simres.executors import ProcessExecutor

    plan = plan or plan_sweep(spec, source=source)
    directory = Path(out) if out is not None else None
    meta = dict(plan.meta)
    done: set[str] = set()
    if directory is not None:
        meta, done = _prepare_directory(directory, meta, plan, resume=resume, retry_errors=retry_errors)
    pending = [p for p in plan.points if p.run_id not in done]
    sink = _Sink(directory, meta)
    fn = point_fn or _default_point_fn()
    tasks = [(fn, plan.base, p.variant, p.params, p.seed) for p in pending]
    report = _progress(progress, len(plan.points), len(plan.points) - len(pending), plan.scenario.name)
    owned = executor is None and bool(pending)
    ex = ProcessExecutor() if owned else executor
    errors = 0
    try:
        if pending:
            from contextlib import closing

            with closing(ex.as_completed(_run_task, tasks)) as outcomes:  # type: ignore[union-attr]
                for k, outcome in enumerate(outcomes, start=1):
                    row = _row(pending[outcome.index], outcome.value, outcome.error, meta["dtypes"])
                    errors += row["error"] is not None
                    sink.add(row)
                    report(len(plan.points) - len(pending) + k, len(plan.points), errors)
    finally:
        sink.close()
        _progress_close(report)
        if owned:
            ex.close()  # type: ignore[union-attr]
    wanted = {p.run_id for p in plan.points}
    if directory is None:
        df = _frame(sink.tables, meta)
    else:
        if len([f for f in directory.glob("*.parquet") if not f.name.startswith(".")]) > 1:
            compact(directory)
        df = load_results(directory)
    df = df[df["run_id"].isin(wanted)].reset_index(drop=True)
    df.attrs["sweep"] = meta
    return df


def _default_point_fn() -> Callable[..., dict[str, Any]]:
    from simres.experiment import run_point

    return run_point


def _prepare_directory(directory: Path, meta: dict[str, Any], plan: Plan, *, resume: bool,
                       retry_errors: bool) -> tuple[dict[str, Any], set[str]]:
    """Check an existing results directory against the plan; return the merged meta and done ids."""
    if directory.exists() and not directory.is_dir():
        raise SweepError(f"{directory}: is a file; a sweep writes a directory of Parquet parts")
    old = _read_manifest(directory) if directory.is_dir() else None
    has_rows = directory.is_dir() and any(directory.glob("*.parquet"))
    done: set[str] = set()
    if old is not None or has_rows:
        if not resume:
            raise SweepError(f"{directory}: already holds sweep results; resume to run only the "
                             "missing points (--resume), or choose another output (--overwrite)")
        if old is None:
            raise SweepError(f"{directory}: has Parquet files but no {MANIFEST}; not a simres sweep")
        for key, what in (("fingerprint", "scenario (with its overrides)"), ("seed", "root seed")):
            if old.get(key) != meta[key]:
                raise SweepError(f"{directory}: was written for another {what}; resume needs the same "
                                 f"one (got {meta[key]!r}, results have {old.get(key)!r})")
        if list(old.get("params", [])) != meta["params"]:
            raise SweepError(f"{directory}: sweeps the parameters {old.get('params')}; a resumed sweep "
                             f"must sweep the same ones, got {meta['params']}")
        meta = {**meta, "variants": list(dict.fromkeys([*old["variants"], *meta["variants"]])),
                "variant_overrides": {**old.get("variant_overrides", {}), **meta["variant_overrides"]},
                "reps": max(int(old.get("reps", 1)), meta["reps"]),
                "dtypes": {p: _merge_dtype(p, old["dtypes"].get(p, dt), dt) for p, dt in meta["dtypes"].items()}}
        if has_rows:
            existing = load_results(directory)
            if retry_errors:
                existing = existing[existing["error"].isna()]
            done = set(existing["run_id"])
    directory.mkdir(parents=True, exist_ok=True)
    _write_manifest(directory, meta)
    return meta, done


def _merge_dtype(param: str, a: str, b: str) -> str:
    """The column dtype when a resumed sweep adds values: numbers widen, anything else must match."""
    if a == b:
        return a
    numeric = {"int64", "Int64", "float64"}
    if a in numeric and b in numeric:
        return "float64" if "float64" in (a, b) else "Int64"
    if {a, b} == {"bool", "boolean"}:
        return "boolean"
    raise SweepError(f"{param}: the results store {a} values, this sweep gives {b}; a resumed sweep "
                     "must keep each parameter's type (use another --out)")


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SweepError(f"{path}: unreadable sweep description ({e})") from None


def _write_manifest(directory: Path, meta: Mapping[str, Any]) -> None:
    tmp = directory / f".tmp-{MANIFEST}"
    tmp.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, directory / MANIFEST)


def sweep(
    scenario: str | os.PathLike[str] | Mapping[str, Any] | Scenario,
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    zip: Mapping[str, Sequence[Any]] | None = None,
    sample: SampleSpec | Mapping[str, Any] | None = None,
    variants: Sequence[str | None] | Literal["all"] | None = None,
    reps: int = 1,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    executor: Executor | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    retry_errors: bool = False,
    progress: bool | Callable[[int, int], None] = False,
    point_fn: Callable[..., dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Run a parameter sweep and return its tidy results frame.

    Args:
        scenario: a scenario file, bundled name, mapping or Scenario.
        grid: dotted path -> values; every combination is run (full factorial).
        zip: dotted path -> values of equal length, varied together (crossed with the grid).
        sample: ``{"n": 50, "seed": 3, "ranges": {path: {"low": .., "high": .., "log": ..}}}``.
        variants: variants to run (None in the list = the scenario as written), or "all".
        reps: replications per combination and variant (common random numbers).
        seed: root seed of the replications (default: the scenario's).
        overrides: fixed dotted-path overrides applied to every point (like ``--set``).
        executor: where points run (``simres.executors``); default local processes, one per
            core. An executor you pass stays open for reuse; close it yourself.
        out: results directory (``results/name.parquet``); rows are written as they finish.
        resume: continue a sweep in ``out``, running only the points not yet there.
        retry_errors: with ``resume``, also re-run the points that ended in an error.
        progress: a progress bar with ETA (tqdm, notebook-aware), or ``callable(done, total)``.
        point_fn: runs one point, ``fn(scenario_data, seed=, variant=, overrides=) -> dict``
            (default :func:`simres.experiment.run_point`); module-level, so it pickles.

    Returns:
        One row per point: ``run_id``, ``variant``, ``replicate``, ``seed``, one column per
        swept path, one per metric, ``error`` (None if it ran) and ``wall_time``; sorted by
        parameters, variant and replicate. ``df.attrs["sweep"]`` describes the sweep.
    """
    from simres.scenario import Scenario, resolved_dict

    if isinstance(scenario, Scenario):
        scen: str | dict[str, Any] = resolved_dict(scenario)
    elif isinstance(scenario, Mapping):
        scen = dict(scenario)
    else:
        scen = os.fspath(scenario)
    spec = validate_spec({
        "scenario": scen, "grid": {k: list(v) for k, v in (grid or {}).items()},
        "zip": {k: list(v) for k, v in (zip or {}).items()},
        "sample": sample.model_dump() if isinstance(sample, SampleSpec) else sample,
        "variants": variants if variants is None or variants == "all" else list(variants),
        "reps": reps, "seed": seed, "overrides": dict(overrides or {}),
    })
    return run_sweep(spec, executor=executor, out=out, resume=resume, retry_errors=retry_errors,
                     progress=progress, point_fn=point_fn)


def _progress(progress: bool | Callable[[int, int], None], total: int, initial: int,
              label: str) -> Callable[[int, int, int], None]:
    if callable(progress):
        user = progress
        return lambda done, total, errors: user(done, total)
    if not progress:
        return lambda done, total, errors: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, desc=label, unit="pt", dynamic_ncols=True,
               file=sys.stderr)

    def update(done: int, total: int, errors: int) -> None:
        bar.update(done - bar.n)
        if errors:
            bar.set_postfix(errors=errors, refresh=False)

    update.bar = bar  # type: ignore[attr-defined]
    return update


def _progress_close(report: Callable[..., None]) -> None:
    bar = getattr(report, "bar", None)
    if bar is not None:
        bar.close()


# ---------------------------------------------------------------------------- results


def load_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a sweep's results: a directory of parts (as written by :func:`sweep`) or one file.

    Rows are deduplicated by ``run_id`` (a successful row wins over an error row, then the
    first) and sorted by parameters, variant and replicate; ``df.attrs["sweep"]`` holds
    the sweep's description (parameters, seeds, scenario).
    """
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.glob("*.parquet") if not f.name.startswith("."))
        meta = _read_manifest(p)
    elif p.is_file():
        files, meta = [p], None
    else:
        raise SweepError(f"{p}: no such results file or directory")
    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f))
        except Exception as e:
            raise SweepError(f"{f}: not a readable Parquet file ({type(e).__name__}: {e})") from None
    if meta is None:
        for t in tables:
            raw = (t.schema.metadata or {}).get(METADATA_KEY)
            if raw:
                meta = json.loads(raw)
                break
    if meta is None:
        meta = {"params": [], "dtypes": {}, "variants": []}
    df = _frame(tables, meta)
    df.attrs["sweep"] = meta
    return df


def _frame(tables: Sequence[Any], meta: Mapping[str, Any]) -> pd.DataFrame:
    """Concatenate part tables into the canonical frame: deduplicated, sorted, ordered columns."""
    import pandas as pd

    frames = [t.to_pandas() for t in tables]
    params = list(meta.get("params", []))
    if frames:
        df = pd.concat(frames, ignore_index=True, sort=False)
    else:
        df = pd.DataFrame(columns=[*ID_COLUMNS, *params, *TAIL_COLUMNS])
    for c in (*ID_COLUMNS, *TAIL_COLUMNS):
        if c not in df:
            df[c] = None
    df["error"] = df["error"].astype(object).where(df["error"].notna(), None)
    df["wall_time"] = df["wall_time"].astype("float64")
    for c in ("replicate", "seed"):
        df[c] = df[c].astype("int64")
    for p, dt in meta.get("dtypes", {}).items():
        if p in df and dt not in ("json", "str"):
            df[p] = df[p].astype(dt)
    df = df.sort_values("error", key=lambda s: s.notna(), kind="stable")
    df = df.drop_duplicates("run_id", keep="first")
    order = {v: i for i, v in enumerate(meta.get("variants", []))}
    df["_v"] = df["variant"].map(order).fillna(len(order))
    df = df.sort_values([*params, "_v", "variant", "replicate"], kind="stable", na_position="last")
    df = df.drop(columns="_v")
    fixed = {*ID_COLUMNS, *params, *TAIL_COLUMNS}
    metrics = [c for c in df.columns if c not in fixed]
    first = [m for m in FIRST_METRICS if m in metrics]
    rest = sorted((m for m in metrics if m not in first), key=lambda m: (":" in m, m))
    return df[[*ID_COLUMNS, *params, *first, *rest, *TAIL_COLUMNS]].reset_index(drop=True)


def compact(path: str | os.PathLike[str]) -> Path:
    """Merge a results directory's part files into one (rows deduplicated); returns it."""
    directory = Path(path)
    olds = sorted(f for f in directory.glob("*.parquet") if not f.name.startswith("."))
    df = load_results(directory)
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           METADATA_KEY: json.dumps(df.attrs["sweep"], default=str).encode("utf-8")})
    target = directory / f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}-all.parquet"
    _write_table(table, target)
    for f in olds:  # a crash here leaves duplicates, which load_results drops
        f.unlink(missing_ok=True)
    return target


# ---------------------------------------------------------------------------- choosing


class NoFeasibleSetting(SweepError):
    """No configuration of a sweep satisfies the constraints (the CLI exits with status 1)."""


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``, e.g. ``success_rate >= 0.999``."""

    metric: str
    op: Literal[">=", "<=", ">", "<"]
    bound: float

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the constraint (NaN never does)."""
        if math.isnan(value):
            return False
        return {">=": value >= self.bound, "<=": value <= self.bound,
                ">": value > self.bound, "<": value < self.bound}[self.op]

    @property
    def wants_high(self) -> bool:
        """True for ``>=``/``>``: the pessimistic bound is then the interval's low end."""
        return self.op.startswith(">")

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_constraint(text: str) -> Constraint:
    """Parse ``METRIC >= NUMBER`` (or ``<=``, ``>``, ``<``); metric names may hold ``:`` and ``=``."""
    cut = min((i for i in (text.find("<"), text.find(">")) if i >= 0), default=-1)
    op = text[cut:cut + 2] if text[cut + 1:cut + 2] == "=" else text[cut:cut + 1]
    metric, raw = text[:cut].strip(), text[cut + len(op):].strip()
    try:
        bound = float(raw)
    except ValueError:
        bound = float("nan")
    if cut < 0 or not metric or math.isnan(bound):
        raise SweepError(f"--subject-to '{text}': expected METRIC OP NUMBER with OP one of "
                         ">=, <=, >, <, e.g. 'success_rate >= 0.999'")
    return Constraint(metric, op, bound)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Choice:
    """The best setting of a sweep and how it compares with the others (see :func:`best`)."""

    objective: str
    maximize: bool
    constraints: tuple[Constraint, ...]
    conservative: bool
    confidence: float
    table: pd.DataFrame = field(repr=False)
    """One row per configuration, feasible ones first by rank: parameters, variant, ``n``,
    ``errors``, ``feasible``, ``violates``, ``<metric>_mean/_lo/_hi`` for the objective and
    constrained metrics, ``rank``, ``diff`` (vs the winner) with ``diff_lo``/``diff_hi``,
    ``p_value`` (paired t-test over replicates) and ``significant``."""
    winner: dict[str, Any]
    overrides: dict[str, Any]
    command: str
    top: int = 5

    @property
    def yaml(self) -> str:
        """A YAML snippet: the winner as a scenario variant named ``best``."""
        return yaml.safe_dump({"variants": {"best": self.overrides}}, sort_keys=False)

    def __str__(self) -> str:
        t, obj = self.table, self.objective
        where = "the pessimistic CI bound" if self.conservative else "the mean"
        subject = " and ".join(map(str, self.constraints)) or "no constraint"
        n_ok, n_err = int(t.feasible.sum()), int((t.errors > 0).sum())
        lines = [f"{'maximize' if self.maximize else 'minimize'} {obj} subject to {subject} "
                 f"(constraints on {where})",
                 f"{len(t)} configurations: {n_ok} feasible, {len(t) - n_ok - n_err} violate a "
                 f"constraint, {n_err} had error rows", "", "best:"]
        w = t.iloc[0]
        width = max((len(k) for k in [*self.winner, obj, *(c.metric for c in self.constraints)]), default=8)
        lines += [f"  {k:<{width}}  {_show(v)}" for k, v in self.winner.items()]
        pct = round(self.confidence * 100)
        for m in dict.fromkeys([obj, *(c.metric for c in self.constraints)]):
            lines.append(f"  {m:<{width}}  {_fmt_num(w[f'{m}_mean'])}  {pct}% CI "
                         f"[{_fmt_num(w[f'{m}_lo'])}, {_fmt_num(w[f'{m}_hi'])}]  (n={int(w.n)})")
        runners = t[t.feasible].iloc[1:1 + self.top]
        if len(runners):
            lines += ["", f"runners-up (difference in {obj} from the best, paired over replicates):"]
            cols = [*self.winner]
            rows = [["#", *cols, obj, "diff", f"{pct}% CI", "p", ""]]
            for _, rd in runners.iterrows():
                sig = "significant" if rd["significant"] else "not significant"
                rows.append([str(int(rd["rank"])), *(_show(rd[c]) for c in cols),
                             _fmt_num(rd[f"{obj}_mean"]), _fmt_num(rd["diff"], sign=True),
                             f"[{_fmt_num(rd['diff_lo'], sign=True)}, {_fmt_num(rd['diff_hi'], sign=True)}]",
                             _fmt_num(rd["p_value"]), sig])
            widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
            lines += ["  " + "  ".join(c.ljust(wd) for c, wd in zip(row, widths, strict=True)).rstrip()
                      for row in rows]
        lines += ["", "reproduce:", f"  {self.command}", "", "or add this variant to the scenario:"]
        lines += ["  " + ln for ln in self.yaml.rstrip().splitlines()]
        return "\n".join(lines)


def best(results: pd.DataFrame | str | os.PathLike[str], *, minimize: str | None = None,
         maximize: str | None = None, subject_to: Sequence[str | Constraint] = (),
         conservative: bool = False, confidence: float = 0.95, top: int = 5) -> Choice:
    """Choose the best configuration of a sweep under constraints.

    Replications are aggregated per configuration (parameters + variant). A configuration
    is feasible when every constraint holds on its mean (``conservative=True``: on the
    pessimistic end of its confidence interval) and none of its points ended in an error;
    the feasible one with the best mean objective wins. Runners-up are compared with it by
    a paired t-test over replicates, which share seeds (common random numbers).

    Raises:
        SweepError: a bad argument (unknown metric, malformed constraint).
        NoFeasibleSetting: no configuration satisfies the constraints.
    """
    import numpy as np
    import pandas as pd

    from simres.metrics.stats import aggregate_replications, paired_difference

    df = results if isinstance(results, pd.DataFrame) else load_results(results)
    meta = df.attrs.get("sweep") or {}
    if (minimize is None) == (maximize is None):
        raise SweepError("objective: give exactly one of --minimize METRIC or --maximize METRIC")
    objective = str(minimize or maximize)
    cons = tuple(c if isinstance(c, Constraint) else parse_constraint(c) for c in subject_to)
    needed = list(dict.fromkeys([objective, *(c.metric for c in cons)]))
    params = [p for p in meta.get("params", []) if p in df] or [
        c for c in df.columns if "." in c and ":" not in c]
    for m in needed:
        if m not in df.columns or m in (*ID_COLUMNS, *TAIL_COLUMNS, *params):
            import difflib

            known = [c for c in df.columns if c not in (*ID_COLUMNS, *TAIL_COLUMNS, *params)]
            hint = difflib.get_close_matches(m, known, n=1)
            raise SweepError(f"metric '{m}': not in the results"
                             + (f" (did you mean '{hint[0]}'?)" if hint else ""))
    if df.empty:
        raise NoFeasibleSetting("the results hold no rows")
    group = [*params, "variant"]
    df = df.assign(_cfg=[json.dumps(k, default=str) for k in df[group].astype(object).itertuples(index=False)])
    configs = df.drop_duplicates("_cfg").set_index("_cfg")[group]
    configs["errors"] = df.groupby("_cfg", sort=False)["error"].count()
    ok = df[df["error"].isna()]
    agg = aggregate_replications(ok, group_cols=["_cfg"], metrics=needed, confidence=confidence)
    wide = agg.pivot(index="_cfg", columns="metric", values=["mean", "lo", "hi", "n"])
    for m in needed:
        for stat in ("mean", "lo", "hi"):
            configs[f"{m}_{stat}"] = wide.get((stat, m), np.nan)
    configs["n"] = wide[("n", objective)].reindex(configs.index).fillna(0).astype(int) \
        if ("n", objective) in wide else 0
    violates = []
    for _, row in configs.iterrows():
        why = "errors" if row["errors"] else ("no value" if pd.isna(row[f"{objective}_mean"]) else "")
        for c in cons:
            stat = ("lo" if c.wants_high else "hi") if conservative else "mean"
            if not why and not c.holds(float(row[f"{c.metric}_{stat}"])):
                why = f"{c.metric} {_fmt_num(row[f'{c.metric}_{stat}'])}"
        violates.append(why)
    configs["violates"] = violates
    configs["feasible"] = configs["violates"] == ""
    if not configs["feasible"].any():
        closest = "; ".join(f"best {c.metric} reached {_fmt_num(_extreme(configs[f'{c.metric}_mean'], c))}"
                            for c in cons)
        raise NoFeasibleSetting(f"no configuration satisfies {' and '.join(map(str, cons)) or 'the run'} "
                                f"({len(configs)} tried{'; ' + closest if closest else ''})")
    configs["_order"] = range(len(configs))
    key = configs[f"{objective}_mean"] * (-1 if maximize else 1)
    configs = configs.assign(_key=key.where(configs["feasible"], np.inf)).sort_values(
        ["_key", "_order"], kind="stable")
    configs["rank"] = np.where(configs["feasible"], np.arange(1, len(configs) + 1), 0)
    win_cfg = configs.index[0]
    by_rep = ok.pivot_table(index="replicate", columns="_cfg", values=objective, aggfunc="first")
    diffs = []
    for cfg in configs.index:
        if cfg not in by_rep or win_cfg not in by_rep:
            diffs.append((np.nan,) * 4)
            continue
        d = paired_difference(by_rep[cfg].to_numpy(float), by_rep[win_cfg].to_numpy(float),
                              confidence=confidence)
        diffs.append((d.mean, d.lo, d.hi, d.p_value))
    configs[["diff", "diff_lo", "diff_hi", "p_value"]] = pd.DataFrame(diffs, index=configs.index)
    configs["significant"] = configs["p_value"] < 1 - confidence
    table = configs.drop(columns=["_order", "_key"]).reset_index(drop=True)
    dtypes = meta.get("dtypes", {})
    winner = {p: decode_param(table.at[0, p], dtypes[p]) if p in dtypes else _plain(table.at[0, p])
              for p in params}
    variant = str(table.at[0, "variant"])
    overrides = {**meta.get("overrides", {}), **meta.get("variant_overrides", {}).get(variant, {}), **winner}
    if variant or len(meta.get("variants", [])) > 1:
        winner["variant"] = variant or "(as written)"
    return Choice(objective, maximize is not None, cons, conservative, confidence, table,
                  winner, overrides, _command(meta, variant, winner, params), top)


def _extreme(values: pd.Series, c: Constraint) -> float:
    return float(values.max() if c.wants_high else values.min())


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _command(meta: Mapping[str, Any], variant: str, winner: Mapping[str, Any], params: Sequence[str]) -> str:
    import shlex

    scenario = str(meta.get("scenario", "<mapping>"))
    parts = ["simres", "run", "SCENARIO" if scenario == "<mapping>" else shlex.quote(scenario)]
    if variant:
        parts += ["--variant", shlex.quote(variant)]
    sets = {**meta.get("overrides", {}), **{p: winner[p] for p in params}}
    parts += [f"--set {shlex.quote(f'{k}={_yaml_value(v)}')}" for k, v in sets.items()]
    if meta.get("reps"):
        parts += ["--reps", str(meta["reps"])]
    if meta.get("seed") is not None:
        parts += ["--seed", str(meta["seed"])]
    return " ".join(parts)


def _yaml_value(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True, width=10**6).removesuffix("\n...\n").strip()


def _show(v: Any) -> str:
    """A parameter value as it would be written in YAML (missing -> null)."""
    import pandas as pd

    if isinstance(v, str):
        return v
    if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)):
        return "null"
    return _yaml_value(_plain(v))


def _fmt_num(x: Any, *, sign: bool = False) -> str:
    x = float(x)
    if math.isnan(x):
        return "-"
    flag = "+" if sign else ""
    return f"{x:{flag}.3g}" if x and (abs(x) >= 1e5 or abs(x) < 1e-3) else f"{x:{flag}.4g}"
