"""Metastability maps: where, over load x trigger size x trigger duration, does a system stay stuck?

A metastable system recovers from a small or short trigger and stays failed after a big
or long one, and the line between the two moves with the load and the policies. This
module maps it. Every *cell* is one setting of up to three scenario paths (the *axes*,
for example ``clients.web.arrival.rate``, ``faults.0.factor``, ``faults.0.duration``);
each cell runs ``reps`` replications with the same seeds as every other cell (common
random numbers: replicate ``i`` sees the same arrivals everywhere, so neighbouring cells
differ by the setting, not by luck). A run's verdict is the one the summary already
holds, ``recovered:<fault>`` (:mod:`simres.metrics.recovery`): *stuck* when the fault's
recovery verdict is 0 (never recovered, or recovered and relapsed), not judged when NaN.
A cell reports ``runs``, ``judged``, ``stuck``, the probability of staying stuck
``p_stuck = stuck / judged`` with its Wilson interval (:func:`simres.metrics.stats.binomial_ci`),
and a verdict: ``stuck`` (the interval lies above 50 %), ``recovers`` (below 50 %) or
``uncertain`` (it contains 50 %).

**Adaptive refinement** (``refine=K`` rounds). A full fine grid spends most of its runs
far from the boundary, where every replication agrees. Instead, after the initial grid,
each round (1) adds the midpoint between every two neighbouring cells (adjacent along one
axis, all other coordinates equal) whose majority verdicts differ (``p_stuck >= 0.5`` on
one side, ``< 0.5`` on the other), and (2) gives ``reps`` more replications to every
cell whose interval still contains 50 %, up to ``max_reps``. After ``K`` rounds the
boundary is located to ``1 / 2**K`` of the initial spacing; :attr:`ExploreResult.summary`
reports the runs this took against the full grid at that resolution.

Positions are kept as integers on the finest lattice (``pos:<path>``: the initial value
``k`` of an axis sits at ``k * 2**K``), so neighbours and midpoints are exact; a value
between two initial values is their linear interpolation (rounded for an integer axis,
where a midpoint that rounds onto a neighbour is not added). Axes whose values are not
all numbers (a policy as a mapping, a name), and axes left out of ``refine_axes``, are
crossed but never refined.

Pure library: no printing, no figures (:func:`simres.reporting.plots.stuck_map` draws the
map). Results are identical for any executor and worker count: every run is keyed by its
cell and replicate, and rounds are decided only from finished rounds.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simres.errors import ScenarioError, SweepError
from simres.progress import ProgressArg, reporter

if TYPE_CHECKING:
    import pandas as pd

    from simres.experiments.executors import Executor
    from simres.scenario.schema import Scenario

THRESHOLD = 0.5
"""The probability of staying stuck that separates the two sides of the boundary."""

MAX_AXES = 3
MAX_REFINE = 6

CELLS_FILE = "cells.csv"
CELLS_PARQUET = "cells.parquet"
RUNS_FILE = "runs.parquet"
SUMMARY_FILE = "summary.json"
FIGURE_FILE = "map.png"

Verdict = Literal["stuck", "recovers", "uncertain", "not judged"]


class ExploreSpec(BaseModel):
    """What to map: the scenario, the axes, replications and refinement (an explore file holds the same keys)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str | dict[str, Any] = Field(description="A scenario file, a bundled name, or a mapping.")
    axes: dict[str, list[Any]] = Field(description="Dotted path -> initial values (1 to 3 axes).")
    variants: list[str | None] | Literal["all"] | None = Field(
        default=None, description="Variants to map, one map each (null = the scenario as written), or 'all'.")
    reps: int = Field(default=10, ge=1, description="Replications of every new cell (and per extra round).")
    max_reps: int | None = Field(default=None, ge=1,
                                 description="Most replications a cell gets [default: 4 x reps].")
    refine: int = Field(default=0, ge=0, le=MAX_REFINE, description="Rounds of adaptive refinement.")
    refine_axes: list[str] | None = Field(
        default=None, description="The axes refinement may add values to [default: every numeric axis]; "
                                  "the others keep their initial values (e.g. the panels of the figure).")
    seed: int | None = Field(default=None, ge=0, description="Root seed (default: the scenario's).")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Fixed dotted-path overrides (like --set).")
    fault: str | None = Field(default=None, description="The fault whose recovery is judged [default: the only one].")
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Confidence level of the intervals.")

    @model_validator(mode="after")
    def _checks(self) -> ExploreSpec:
        if not 1 <= len(self.axes) <= MAX_AXES:
            raise ValueError(f"axes: give 1 to {MAX_AXES} axes, got {len(self.axes)}")
        for path, values in self.axes.items():
            if not values:
                raise ValueError(f"axes.{path}: needs at least one value")
            if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
                raise ValueError(f"axes.{path}: a value is given twice")
            if path in self.overrides:
                raise ValueError(f"axes.{path}: also in overrides; an axis is varied, an override fixed")
            if _numeric(values) and sorted(values) != list(values):
                raise ValueError(f"axes.{path}: numbers must be in increasing order, got {values}")
        for path in self.refine_axes or []:
            if path not in self.axes:
                raise ValueError(f"refine_axes: {path} is not an axis (axes: {', '.join(self.axes)})")
            if not _numeric(self.axes[path]):
                raise ValueError(f"refine_axes: {path}: only an axis of numbers can be refined")
        if self.max_reps is not None and self.max_reps < self.reps:
            raise ValueError(f"max_reps: must be >= reps ({self.reps}), got {self.max_reps}")
        return self

    @property
    def most_reps(self) -> int:
        """The most replications any cell can get."""
        return self.max_reps if self.max_reps is not None else 4 * self.reps


def validate_explore_spec(data: Mapping[str, Any], *, source: str = "explore") -> ExploreSpec:
    """Validate a mapping into an :class:`ExploreSpec`; an error is one line naming the field."""
    from simres.experiments.design import validated

    return validated(ExploreSpec, data, source=source)


def is_explore_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an explore file (a YAML mapping with top-level ``scenario`` and ``axes`` keys)."""
    from simres.experiments.design import yaml_has_keys

    return yaml_has_keys(path, "scenario", "axes")


def load_explore(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an explore file as a mapping; a relative ``scenario`` path is taken from the file's folder."""
    from simres.scenario.yamlio import load_file

    p = Path(path)
    try:
        data = load_file(p)
    except ScenarioError as e:
        raise SweepError(str(e)) from None
    if not isinstance(data, dict):
        raise SweepError(f"{p}: must be a mapping with 'scenario' and 'axes' keys at the top level")
    scen = data.get("scenario")
    if isinstance(scen, str) and (p.parent / scen).is_file():
        data["scenario"] = str(p.parent / scen)
    return data


# ---------------------------------------------------------------------------- axes and cells


def _numeric(values: Sequence[Any]) -> bool:
    return len(values) > 0 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


@dataclass(frozen=True)
class Axis:
    """One axis: its path, initial values, and how a lattice position maps to a value."""

    path: str
    values: tuple[Any, ...]
    scale: int
    """Lattice steps between two initial values (``2**refine`` for a refinable axis, else 1)."""

    @property
    def refinable(self) -> bool:
        return self.scale > 1

    @property
    def integer(self) -> bool:
        return all(isinstance(v, int) for v in self.values)

    @property
    def positions(self) -> int:
        """Lattice positions along the axis (the finest resolution refinement can reach)."""
        return (len(self.values) - 1) * self.scale + 1

    def value(self, pos: int) -> Any:
        """The value at lattice position ``pos``: an initial value, or the interpolation between two."""
        k, rest = divmod(int(pos), self.scale)
        if rest == 0:
            return self.values[k]
        lo, hi = float(self.values[k]), float(self.values[k + 1])
        x = lo + (hi - lo) * rest / self.scale
        return round(x) if self.integer else float(f"{x:.6g}")

    def distinct_values(self) -> int:
        """How many different values the positions give (an integer axis may repeat some)."""
        return len({self.value(p) for p in range(self.positions)})


@dataclass
class Cell:
    """One setting (a variant and a lattice position) and the verdicts of its runs so far."""

    variant: str | None
    pos: tuple[int, ...]
    params: dict[str, Any]
    round: int
    target: int
    verdicts: dict[int, bool | None] = field(default_factory=dict)
    """replicate -> stuck (True), recovered (False), not judged (None)."""
    errors: int = 0

    @property
    def runs(self) -> int:
        return len(self.verdicts)

    @property
    def judged(self) -> int:
        return sum(v is not None for v in self.verdicts.values())

    @property
    def stuck(self) -> int:
        return sum(v is True for v in self.verdicts.values())

    @property
    def p_stuck(self) -> float:
        return self.stuck / self.judged if self.judged else math.nan

    def side(self) -> bool | None:
        """The majority verdict used to find the boundary: stuck in at least half the judged runs."""
        return None if not self.judged else self.p_stuck >= THRESHOLD


def cell_interval(stuck: int, judged: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(p, lo, hi)``: the share of judged runs that stayed stuck, with its Wilson interval."""
    from simres.metrics.stats import binomial_ci

    ci = binomial_ci(int(stuck), int(judged), confidence=confidence)
    return ci.p, ci.lo, ci.hi


def verdict_of(lo: float, hi: float) -> Verdict:
    """``stuck`` / ``recovers`` when the whole interval is on one side of 50 %, else ``uncertain``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "not judged"
    if lo > THRESHOLD:
        return "stuck"
    if hi < THRESHOLD:
        return "recovers"
    return "uncertain"


def boundary_midpoints(cells: Mapping[tuple[int, ...], Cell], axes: Sequence[Axis]) -> list[tuple[int, ...]]:
    """Lattice positions to add: midpoints between neighbours (one axis apart) whose majority verdicts differ.

    ``cells`` are one variant's cells by position. Neighbours along axis ``a`` are
    consecutive cells of one line (every other coordinate equal); a pair already adjacent
    on the lattice, or whose midpoint gives the value of an end (an integer axis), adds
    nothing. Sorted, so the same cells always give the same list.
    """
    new: set[tuple[int, ...]] = set()
    for a, axis in enumerate(axes):
        if not axis.refinable:
            continue
        lines: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
        for pos in cells:
            lines.setdefault(pos[:a] + pos[a + 1:], []).append(pos)
        for line in lines.values():
            line.sort(key=lambda p: p[a])
            for p, q in itertools.pairwise(line):
                sp, sq = cells[p].side(), cells[q].side()
                if sp is None or sq is None or sp == sq or q[a] - p[a] < 2:
                    continue
                m = (p[a] + q[a]) // 2
                if axis.value(m) in (axis.value(p[a]), axis.value(q[a])):
                    continue
                mid = (*p[:a], m, *p[a + 1:])
                if mid not in cells:
                    new.add(mid)
    return sorted(new)


# ---------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class ExplorePlan:
    """A validated exploration: the scenario, its axes on the lattice, variants, seeds and the fault judged."""

    spec: ExploreSpec
    scenario: Scenario
    base: dict[str, Any]
    axes: list[Axis]
    variants: list[str | None]
    seeds: list[int]
    fault: str
    limit: float | None

    @property
    def initial_cells(self) -> int:
        return math.prod(len(a.values) for a in self.axes) * len(self.variants)

    @property
    def initial_runs(self) -> int:
        return self.initial_cells * self.spec.reps

    @property
    def full_grid_runs(self) -> int:
        """Runs of the full grid at the resolution refinement can reach, ``reps`` per cell."""
        return math.prod(a.distinct_values() for a in self.axes) * len(self.variants) * self.spec.reps

    def __str__(self) -> str:
        dims = " x ".join(str(len(a.values)) for a in self.axes)
        text = (f"{dims} cells x {len(self.variants)} variant(s) x {self.spec.reps} replication(s) = "
                f"{self.initial_runs} runs in the initial grid")
        if self.spec.refine:
            text += (f", then up to {self.spec.refine} refinement round(s) at the boundary (a full grid at that "
                     f"resolution: {self.full_grid_runs} runs)")
        return text


def plan_explore(spec: ExploreSpec, *, source: str = "explore", point_timeout: float | None = None) -> ExplorePlan:
    """Validate an exploration before anything runs: every initial cell, every variant, the fault to judge."""
    from simres.experiments.design import SweepSpec, plan_sweep
    from simres.experiments.sweeping import resolve_point_timeout
    from simres.model.faults import fault_name
    from simres.rng import replication_seeds
    from simres.scenario.loading import load_scenario

    try:
        sweep = SweepSpec(scenario=spec.scenario, grid=spec.axes, variants=spec.variants,
                          overrides=spec.overrides, seed=spec.seed)
    except ValidationError as e:  # pragma: no cover - the explore spec has the same rules
        raise SweepError(f"{source}: {e.errors(include_url=False)[0]['msg']}") from None
    plan = plan_sweep(sweep, source=source)  # every initial cell x variant validated here
    names = set()
    for v in plan.variants:
        sc = load_scenario(plan.scenario, variant=v, overrides=spec.overrides or None)
        names |= {fault_name(f, i) for i, f in enumerate(sc.faults)}
    if not names:
        raise SweepError(f"{source}: the scenario '{plan.scenario.name}' has no fault; explore maps whether the "
                         "system recovers after a trigger, so it needs one (faults: [...])")
    if spec.fault is not None and spec.fault not in names:
        raise SweepError(f"{source}: fault: no fault named '{spec.fault}' (faults: {', '.join(sorted(names))})")
    if spec.fault is None and len(names) > 1:
        raise SweepError(f"{source}: fault: the scenario has {len(names)} faults ({', '.join(sorted(names))}); "
                         "name the one whose recovery is judged (--fault NAME)")
    fault = spec.fault or next(iter(names))
    scale = 2 ** spec.refine
    refined = set(spec.axes if spec.refine_axes is None else spec.refine_axes)
    axes = [Axis(p, tuple(v), scale if _numeric(v) and len(v) > 1 and p in refined else 1)
            for p, v in spec.axes.items()]
    seeds = replication_seeds(plan.seeds[0], spec.most_reps)
    limit = resolve_point_timeout(point_timeout, plan.scenario)
    return ExplorePlan(spec, plan.scenario, plan.base, axes, plan.variants, seeds, fault, limit)


# ---------------------------------------------------------------------------- the result


class ExploreInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`explore`: ``result`` holds every finished run (and was written to ``out``)."""

    def __init__(self, result: ExploreResult) -> None:
        super().__init__("interrupted")
        self.result = result


@dataclass
class ExploreResult:
    """The map: ``cells`` (one row per cell), ``runs`` (one row per simulation) and a ``summary`` dict."""

    cells: pd.DataFrame
    runs: pd.DataFrame
    summary: dict[str, Any]

    def __str__(self) -> str:
        s = self.summary
        lines = [f"{s['scenario_name']}: P(stuck after '{s['fault']}') over "
                 + " x ".join(a["path"] for a in s["axes"])
                 + f"; {s['confidence']:.0%} Wilson intervals"]
        for v in s["variants"]:
            c = s["by_variant"][v]
            name = v or "(as written)"
            lines.append(f"  {name}: {c['cells']} cells, {c['stuck']} stuck, {c['uncertain']} uncertain, "
                         f"{c['recovers']} recover" + (f", {c['not_judged']} not judged" if c["not_judged"] else ""))
        lines.append(f"{s['runs']} runs ({s['errors']} with errors): the initial grid ({s['initial_runs']}) "
                     f"and {s['rounds_run']} refinement round(s)"
                     + (f"; a full grid at the final resolution would take {s['full_grid_runs']} runs"
                        if s["refine"] else ""))
        if s.get("interrupted"):
            lines.append("interrupted: the finished runs are kept")
        return "\n".join(lines)

    def write(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``cells.csv``, ``cells.parquet``, ``runs.parquet`` and ``summary.json`` into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cells = self.cells.copy()
        for a in self.summary["axes"]:  # structured values as JSON text, so CSV and Parquet hold them
            if not a["numeric"]:
                cells[a["path"]] = cells[a["path"]].map(lambda v: json.dumps(v, sort_keys=True, default=str))
        cells.to_csv(d / CELLS_FILE, index=False)
        cells.to_parquet(d / CELLS_PARQUET, index=False)
        runs = self.runs.copy()
        for a in self.summary["axes"]:
            if not a["numeric"] and a["path"] in runs:
                runs[a["path"]] = runs[a["path"]].map(lambda v: json.dumps(v, sort_keys=True, default=str))
        runs.to_parquet(d / RUNS_FILE, index=False)
        (d / SUMMARY_FILE).write_text(json.dumps(self.summary, indent=2, default=str) + "\n", encoding="utf-8")
        return d


def load_explore_result(directory: str | os.PathLike[str]) -> ExploreResult:
    """Read back a results directory written by :meth:`ExploreResult.write`."""
    import pandas as pd

    d = Path(directory)
    if not (d / SUMMARY_FILE).is_file():
        raise SweepError(f"{d}: not an explore results directory (no {SUMMARY_FILE})")
    summary = json.loads((d / SUMMARY_FILE).read_text(encoding="utf-8"))
    cells = pd.read_parquet(d / CELLS_PARQUET)
    runs = pd.read_parquet(d / RUNS_FILE) if (d / RUNS_FILE).is_file() else pd.DataFrame()
    for a in summary["axes"]:
        if not a["numeric"]:
            cells[a["path"]] = cells[a["path"]].map(json.loads)
    return ExploreResult(cells, runs, summary)


# ---------------------------------------------------------------------------- running

RUN_METRICS = ("success_rate", "tries_per_request")
"""Kept in the runs frame beside the verdict, to see how a stuck run looks."""


def _run_one(shared: dict[str, Any], task: tuple[Any, ...]) -> tuple[dict[str, Any], str | None, float]:
    """One simulation in a worker (the scenario is the executor's shared object); never raises."""
    from simres.experiments.sweeping import _run_task

    return _run_task(shared, task)  # type: ignore[arg-type]


def _verdict(metrics: Mapping[str, Any], fault: str) -> bool | None:
    v = metrics.get(f"recovered:{fault}")
    try:
        v = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v == 0.0


class _Explorer:
    """The state of one exploration: cells by (variant, position), the runs' rows, the rounds run."""

    def __init__(self, plan: ExplorePlan, point_fn: Callable[..., dict[str, Any]]) -> None:
        self.plan = plan
        self.fn = point_fn
        self.cells: dict[tuple[str | None, tuple[int, ...]], Cell] = {}
        self.rows: dict[tuple[str | None, tuple[int, ...], int], dict[str, Any]] = {}
        self.rounds_run = 0
        self.started = time.perf_counter()

    def add(self, variant: str | None, pos: tuple[int, ...], round_: int) -> None:
        params = {a.path: a.value(p) for a, p in zip(self.plan.axes, pos, strict=True)}
        self.cells[(variant, pos)] = Cell(variant, pos, params, round_, self.plan.spec.reps)

    def pending(self) -> list[tuple[Cell, int]]:
        return [(c, r) for _, c in sorted(self.cells.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
                for r in range(c.target) if r not in c.verdicts]

    def total_planned(self) -> int:
        return sum(c.target for c in self.cells.values())

    def run(self, executor: Executor, report: Callable[[int, int, int], None]) -> None:
        from contextlib import closing

        plan = self.plan
        jobs = self.pending()
        if not jobs:
            return
        tasks = [(self.fn, c.variant, copy.deepcopy({**plan.spec.overrides, **c.params}), plan.seeds[r], plan.limit)
                 for c, r in jobs]
        with closing(executor.as_completed(_run_one, tasks, shared=plan.base)) as outcomes:
            for outcome in outcomes:
                cell, r = jobs[outcome.index]
                if outcome.error is not None or outcome.value is None:
                    metrics, err, wall = {}, f"{type(outcome.error).__name__}: {outcome.error}", math.nan
                else:
                    metrics, err, wall = outcome.value
                verdict = None if err else _verdict(metrics, plan.fault)
                cell.verdicts[r] = verdict
                cell.errors += err is not None
                row: dict[str, Any] = {"variant": cell.variant or "", **cell.params, "replicate": r,
                                       "seed": plan.seeds[r], "round": cell.round, "stuck": verdict}
                for key in (f"recovered:{plan.fault}", f"relapsed:{plan.fault}", *RUN_METRICS):
                    row[key] = metrics.get(key)
                row.update(error=err, wall_time=wall)
                self.rows[(cell.variant, cell.pos, r)] = row
                report(len(self.rows), self.total_planned(), sum(c.errors for c in self.cells.values()))

    def refine_round(self, round_: int) -> bool:
        """Plan round ``round_``: midpoints at the boundary and more replications where a cell is uncertain."""
        spec = self.plan.spec
        changed = False
        for v in self.plan.variants:
            mine = {pos: c for (vv, pos), c in self.cells.items() if vv == v and c.runs == c.target}
            for pos in boundary_midpoints(mine, self.plan.axes):
                self.add(v, pos, round_)
                changed = True
        for c in self.cells.values():
            if c.round == round_ or c.target >= spec.most_reps or not c.judged:
                continue
            _, lo, hi = cell_interval(c.stuck, c.judged, spec.confidence)
            if lo <= THRESHOLD <= hi:
                c.target = min(spec.most_reps, c.target + spec.reps)
                changed = True
        return changed

    def result(self, *, interrupted: bool = False) -> ExploreResult:
        import pandas as pd

        plan, spec = self.plan, self.plan.spec
        paths = [a.path for a in plan.axes]
        rows = []
        for (v, pos), c in sorted(self.cells.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            if not c.runs:
                continue
            p, lo, hi = cell_interval(c.stuck, c.judged, spec.confidence)
            rows.append({"variant": v or "", **c.params,
                         **{f"pos:{a}": int(x) for a, x in zip(paths, pos, strict=True)},
                         "round": c.round, "runs": c.runs, "judged": c.judged, "stuck": c.stuck,
                         "errors": c.errors, "p_stuck": p, "lo": lo, "hi": hi, "verdict": verdict_of(lo, hi)})
        columns = ["variant", *paths, *[f"pos:{a}" for a in paths], "round", "runs", "judged", "stuck", "errors",
                   "p_stuck", "lo", "hi", "verdict"]
        cells = pd.DataFrame(rows, columns=columns)
        runs = pd.DataFrame([self.rows[k] for k in sorted(self.rows, key=lambda k: (str(k[0]), k[1], k[2]))])
        if len(runs):
            runs["stuck"] = runs["stuck"].astype("boolean")
        by_variant = {}
        for v in plan.variants:
            part = cells[cells["variant"] == (v or "")]
            counts = part["verdict"].value_counts()
            by_variant[v or ""] = {"cells": len(part), "runs": int(part["runs"].sum()),
                                   **{k.replace(" ", "_"): int(counts.get(k, 0))
                                      for k in ("stuck", "recovers", "uncertain", "not judged")}}
        summary = {
            "scenario": spec.scenario if isinstance(spec.scenario, str) else "<mapping>",
            "scenario_name": plan.scenario.name,
            "fault": plan.fault,
            "verdict": f"stuck = recovered:{plan.fault} is 0 (never recovered, or relapsed); "
                       "NaN = not judged",
            "axes": [{"path": a.path, "values": list(a.values), "numeric": _numeric(a.values),
                      "scale": a.scale, "positions": a.positions} for a in plan.axes],
            "variants": [v or "" for v in plan.variants],
            "overrides": spec.overrides,
            "reps": spec.reps, "max_reps": spec.most_reps, "refine": spec.refine,
            "seed": plan.seeds[0], "confidence": spec.confidence, "threshold": THRESHOLD,
            "cells": len(cells), "runs": len(runs),
            "errors": int(runs["error"].notna().sum()) if len(runs) else 0,
            "initial_runs": plan.initial_runs, "full_grid_runs": plan.full_grid_runs,
            "rounds_run": self.rounds_run, "by_variant": by_variant,
            "wall_seconds": round(time.perf_counter() - self.started, 2),
            "interrupted": interrupted,
        }
        return ExploreResult(cells, runs, summary)


def explore(spec: ExploreSpec | Mapping[str, Any], *, executor: Executor | None = None,
            out: str | os.PathLike[str] | None = None, progress: ProgressArg = False,
            point_fn: Callable[..., dict[str, Any]] | None = None, point_timeout: float | None = None,
            source: str = "explore", plan: ExplorePlan | None = None) -> ExploreResult:
    """Map the probability of staying stuck over the spec's axes; see the module docstring.

    Args:
        spec: an :class:`ExploreSpec` or a mapping of its keys (``scenario``, ``axes``, ``reps``, ...).
        executor: where runs go (:mod:`simres.experiments.executors`); default local processes,
            one per core. One you pass stays open.
        out: a directory to write ``cells.csv``/``.parquet``, ``runs.parquet``, ``summary.json``
            (also on Ctrl-C, with what finished).
        progress: a bar (True), none (False), or ``callable(done, total)``.
        point_fn: runs one point, ``fn(scenario_data, seed=, variant=, overrides=) -> dict`` holding
            ``recovered:<fault>`` (default :func:`simres.experiments.replications.run_point`);
            module-level, so it pickles.
        point_timeout: wall-clock seconds per run, as for sweeps (None: derived, 0: none).
        plan: the plan, when the caller already made it (:func:`plan_explore`).

    Raises:
        ExploreInterrupted: on Ctrl-C, carrying the result of the finished runs.
    """
    from simres.experiments.executors import ProcessExecutor
    from simres.experiments.replications import run_point

    spec = spec if isinstance(spec, ExploreSpec) else validate_explore_spec(spec, source=source)
    plan = plan or plan_explore(spec, source=source, point_timeout=point_timeout)
    ex_ = _Explorer(plan, point_fn or run_point)

    for v in plan.variants:
        for pos in itertools.product(*[range(0, a.positions, a.scale) for a in plan.axes]):
            ex_.add(v, tuple(pos), 0)
    owned = executor is None
    ex = ProcessExecutor() if owned else executor
    report = reporter(progress, ex_.total_planned(), label=plan.scenario.name, unit="run")
    try:
        ex_.run(ex, report)  # type: ignore[arg-type]
        for r in range(1, spec.refine + 1):
            if not ex_.refine_round(r):
                break  # nothing left to refine: the boundary is as fine as the lattice, or there is none
            ex_.run(ex, report)  # type: ignore[arg-type]
            ex_.rounds_run = r
    except KeyboardInterrupt:
        result = ex_.result(interrupted=True)
        if out is not None:
            result.write(out)
        raise ExploreInterrupted(result) from None
    finally:
        report.close()
        if owned:
            ex.close()  # type: ignore[union-attr]
    result = ex_.result()
    if out is not None:
        result.write(out)
    return result
