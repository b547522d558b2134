"""Tuning: search a scenario's parameters with Optuna, replications under common random numbers, racing.

A *trial* is one setting of the tuned parameters proposed by Optuna (TPE for one
objective, NSGA-II for several). Every trial is run with replications whose seeds are the
same for every trial (common random numbers, as in sweeps), so two trials are compared
replicate by replicate. Replications are spent where a decision is close (racing): a
trial first gets ``min_reps`` replications; it stops there when its paired interval
against the reference (the best feasible trial measured at least as far) clearly loses,
or when a constraint is clearly violated; otherwise it gets more (the stage size doubles)
up to ``reps``.

Determinism: trials are asked in batches of ``batch`` (a property of the study, not of
the number of workers); the sampler is re-seeded for each trial from (seed, trial number);
a batch's simulations run in parallel on any executor and are collected by index, every
racing decision is a function of the data alone (not of completion order), and the trials
are told in trial order before the next batch is asked. So a seed gives the same trials,
values and choice on ``--jobs 1``, ``--jobs 8`` or Dask, and a resumed study the same as
an uninterrupted one.

Storage: an Optuna RDB study on SQLite (``DIR/study.db``). Each trial's finished
simulations are kept in its user attributes as they complete a stage, so an interrupted
study resumes without re-running a finished trial or a finished simulation.

Robust tuning: ``across`` (variants of the scenario) and ``also`` (more scenarios) make a
set of *members*; the objective of a replicate is aggregated over them (``worst``: the
member with the worst mean; ``mean``: a weighted mean per replicate) and every
constraint must hold in every member.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from simres.errors import ScenarioError, SweepError
from simres.experiments.choosing import RULE_METRIC, Constraint, parse_constraint
from simres.experiments.design import RangeSpec, _check, _dtype, _encode, _Strict, validated, yaml_has_keys
from simres.metrics.directions import direction
from simres.progress import ProgressArg, reporter

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from simres.experiments.choosing import Choice
    from simres.experiments.executors import Executor

STUDY_FILE = "study.db"
STUDY_NAME = "simres-tune"


# ---------------------------------------------------------------------------- the spec


class TuneSpec(_Strict):
    """A tuning study: what to run, the search space, the objective(s), the budget."""

    scenario: str | dict[str, Any] = Field(description="A scenario file, a bundled name, or a mapping.")
    params: dict[str, RangeSpec] = Field(min_length=1, description="Dotted path -> range or choices.")
    minimize: list[str] = Field(default_factory=list, description="Metrics to minimise.")
    maximize: list[str] = Field(default_factory=list, description="Metrics to maximise.")
    subject_to: list[str] = Field(default_factory=list, description="Constraints 'METRIC OP NUMBER'.")
    trials: int = Field(default=30, ge=1, description="Trials (settings) Optuna proposes.")
    reps: int = Field(default=10, ge=2, description="The most replications a trial gets (racing's cap).")
    min_reps: int | None = Field(default=None, ge=2, description="Replications every trial gets first "
                                                                  "(default: min(reps, 3)).")
    batch: int = Field(default=4, ge=1, description="Trials asked at once and run in parallel (fixed, so "
                                                     "results do not depend on the number of workers).")
    seed: int | None = Field(default=None, ge=0, description="Root seed (default: the scenario's).")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Fixed overrides (like --set).")
    across: list[str | None] = Field(default_factory=list, description="Variants of the scenario to tune "
                                                                       "across (null = as written).")
    also: list[str | dict[str, Any]] = Field(default_factory=list,
                                             description="More scenarios to tune across.")
    aggregate: Literal["worst", "mean"] = Field(default="worst", description="How the members' objective "
                                                                             "values combine.")
    weights: list[float] | None = Field(default=None, description="Weights of the members (with mean).")
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Level of the intervals and tests.")

    @model_validator(mode="before")
    @classmethod
    def _lists(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("minimize", "maximize", "subject_to"):
                if isinstance(data.get(key), str):
                    data[key] = [data[key]]
        return data

    @model_validator(mode="after")
    def _checks(self) -> TuneSpec:
        if self.min_reps is not None and self.min_reps > self.reps:
            raise ValueError(f"min_reps: must be <= reps ({self.reps}), got {self.min_reps}")
        for path in self.params:
            if path in self.overrides:
                raise ValueError(f"params.{path}: already set in overrides")
        if self.weights is not None:
            if self.aggregate != "mean":
                raise ValueError("weights: only with aggregate: mean")
            if any(not (w >= 0 and math.isfinite(w)) for w in self.weights) or not sum(self.weights) > 0:
                raise ValueError("weights: must be >= 0 and not all 0")
        if len(set(map(str, self.across))) != len(self.across):
            raise ValueError("across: a variant is named twice")
        return self

    @property
    def first_reps(self) -> int:
        return self.min_reps if self.min_reps is not None else min(self.reps, 3)

    def stages(self) -> list[int]:
        """Replication counts at which racing decides: ``min_reps``, then doubling, up to ``reps``."""
        out = [self.first_reps]
        while out[-1] < self.reps:
            out.append(min(self.reps, out[-1] * 2))
        return out


def validate_tune_spec(data: Mapping[str, Any], *, source: str = "tune") -> TuneSpec:
    """A mapping as a :class:`TuneSpec`; an error is one line naming the field."""
    return validated(TuneSpec, data, source=source)


def is_tune_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a tune file: YAML with top-level ``scenario`` and ``params`` keys."""
    return yaml_has_keys(path, "scenario", "params")


def load_tune(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A tune file's mapping, with relative scenario paths taken from the file's folder."""
    from simres.scenario.yamlio import load_file

    p = Path(path)
    try:
        data = load_file(p)
    except ScenarioError as e:
        raise SweepError(str(e)) from None
    if not isinstance(data, dict):
        raise SweepError(f"{p}: must be a mapping with 'scenario' and 'params' keys")
    validate_tune_spec(data, source=str(p))

    def near(s: Any) -> Any:
        return str(p.parent / s) if isinstance(s, str) and (p.parent / s).is_file() else s

    data["scenario"] = near(data["scenario"])
    if isinstance(data.get("also"), list):
        data["also"] = [near(s) for s in data["also"]]
    return data


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--param`` flags: ``PATH=LO:HI`` (float), ``PATH=LO:HI:int``, ``PATH=LO:HI:log``
    (also ``:int:log``), or ``PATH=A,B,C`` (choices; YAML values, as ``--grid``)."""
    import re

    from simres.experiments.design import parse_axis

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        path, eq, raw = item.partition("=")
        path = path.strip()
        example = ("expected PATH=LO:HI, PATH=LO:HI:int, PATH=LO:HI:log or PATH=A,B,C, "
                   "e.g. clients.web.timeout=0.1:2 or services.db.workers=2,4,8")
        if not eq or not path or not raw.strip():
            raise SweepError(f"--param '{item}': {example}")
        if path in out:
            raise SweepError(f"--param {path}: given twice")
        m = re.fullmatch(rf"\s*({_NUM})\s*:\s*({_NUM})\s*((?::\s*(?:int|log)\s*)*)", raw)
        if m:
            flags = {f.strip() for f in m[3].split(":") if f.strip()}
            rng: dict[str, Any] = {"low": float(m[1]), "high": float(m[2])}
            if "int" in flags:
                rng["integer"] = True
            if "log" in flags:
                rng["log"] = True
        elif ":" in raw and "," not in raw and not raw.strip().startswith(("[", "{")):
            raise SweepError(f"--param '{item}': {example}")
        else:
            choices = parse_axis([f"{path}={raw}"], flag="--param")[path]
            if len(choices) < 2:
                raise SweepError(f"--param '{item}': needs a range LO:HI or at least two choices A,B")
            rng = {"choices": choices}
        try:
            RangeSpec.model_validate(rng)
        except ValidationError as e:  # pydantic's message, as one line
            msg = e.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
            raise SweepError(f"--param {path}: {msg}") from None
        out[path] = rng
    return out


# ---------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Member:
    """One member of the set a setting is tuned across: a scenario (by index) and a variant."""

    scenario: int
    variant: str | None
    label: str


@dataclass
class _Plan:
    spec: TuneSpec
    scenarios: list[Any]  # Scenario, as written
    bases: list[dict[str, Any]]
    members: list[Member]
    objectives: list[tuple[str, bool]]  # (metric, maximize)
    constraints: tuple[Constraint, ...]
    seeds: list[int]
    seed: int
    needed: list[str]
    weights: list[float]
    limit: float | None


def _objectives(spec: TuneSpec, scenario: Any) -> tuple[list[tuple[str, bool]], list[str]]:
    """(metric, maximize) pairs and the constraints, from the flags or the scenario's ``objective:``."""
    objs = [(m, False) for m in spec.minimize] + [(m, True) for m in spec.maximize]
    subject = list(spec.subject_to)
    if not objs:
        primary = scenario.objective.primary
        objs = [(primary, direction(primary) != "lower")]
        subject = [*scenario.objective.subject_to, *subject]
    seen = set()
    for metric, maximize in objs:
        if metric in seen:
            raise SweepError(f"objective: '{metric}' given twice")
        seen.add(metric)
        way = direction(metric)
        if way is None:
            raise SweepError(f"objective: '{metric}' is not a metric with a better direction "
                             "(simres.metrics.directions: unknown, or it describes load); use it in "
                             "--subject-to, not as the objective")
        if (way == "higher") != maximize:
            flag = "--maximize" if way == "higher" else "--minimize"
            raise SweepError(f"objective: {way} is better for '{metric}' (simres.metrics.directions); use {flag}")
    return objs, subject


def plan_tune(spec: TuneSpec, *, source: str = "tune") -> _Plan:
    """Load and check everything before any simulation: scenarios, members, every range end, objectives."""
    from simres.experiments.sweeping import resolve_point_timeout
    from simres.rng import replication_seeds
    from simres.scenario.loading import apply_overrides, load_scenario, resolved_dict, validate

    scenarios = []
    for s in [spec.scenario, *spec.also]:
        try:
            sc = load_scenario(s)
            load_scenario(sc, overrides=spec.overrides or None)
        except ScenarioError as e:
            raise SweepError(str(e)) from None
        scenarios.append(sc)
    main = scenarios[0]
    members: list[Member] = []
    for v in spec.across or [None]:
        if v is not None and v not in main.variants:
            opts = ", ".join(main.variants) or "none defined"
            raise SweepError(f"{source}: across: unknown variant '{v}' of {main.name} (variants: {opts})")
        members.append(Member(0, v, f"{main.name}" + (f"[{v}]" if v else "")))
    members += [Member(i, None, sc.name) for i, sc in enumerate(scenarios[1:], start=1)]
    if len({m.label for m in members}) != len(members):
        raise SweepError(f"{source}: also: a scenario is in the set twice")
    if spec.weights is not None and len(spec.weights) != len(members):
        raise SweepError(f"{source}: weights: expected {len(members)} (one per member: "
                         f"{', '.join(m.label for m in members)}), got {len(spec.weights)}")
    bases = [resolved_dict(sc) for sc in scenarios]
    for path, rng in spec.params.items():
        ends = rng.choices if rng.choices is not None else [_cast(rng, rng.low), _cast(rng, rng.high)]
        for mem in members:
            data = bases[mem.scenario]
            if mem.variant is not None:
                data = apply_overrides(data, scenarios[0].variants[mem.variant], source=f"variant {mem.variant}")
                validate(data, source=f"variant {mem.variant}")
            for value in ends:
                _check(data, copy.deepcopy({**spec.overrides, path: value}), f"{source}: param")
    objs, subject = _objectives(spec, main)
    cons = tuple(parse_constraint(c) for c in subject)
    seed = main.seed if spec.seed is None else spec.seed
    needed = list(dict.fromkeys([*(m for m, _ in objs), *(c.metric for c in cons), RULE_METRIC]))
    weights = list(spec.weights) if spec.weights else [1.0] * len(members)
    limit = max((resolve_point_timeout(None, sc) or 0.0) for sc in scenarios) or None
    return _Plan(spec, scenarios, bases, members, objs, cons, replication_seeds(seed, spec.reps), seed,
                 needed, weights, limit)


def _cast(rng: RangeSpec, x: float | None) -> Any:
    return int(math.ceil(x) if x == rng.low else math.floor(x)) if rng.integer else float(x)  # type: ignore[arg-type]


def _distributions(spec: TuneSpec) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for path, r in spec.params.items():
        if r.choices is not None:
            out[path] = CategoricalDistribution([_choice_key(c) for c in r.choices])
        elif r.integer:
            out[path] = IntDistribution(math.ceil(r.low), math.floor(r.high), log=r.log)  # type: ignore[arg-type]
        else:
            out[path] = FloatDistribution(float(r.low), float(r.high), log=r.log)  # type: ignore[arg-type]
    return out


def _choice_key(c: Any) -> Any:
    """A choice as Optuna stores it: plain scalars as they are, lists and mappings as JSON text."""
    return c if c is None or isinstance(c, bool | int | float | str) else json.dumps(c, sort_keys=True)


def _decode(spec: TuneSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for path, r in spec.params.items():
        v = params[path]
        if r.choices is not None:
            v = next(c for c in r.choices if _choice_key(c) == v)
        elif not r.integer:
            v = float(f"{float(v):.6g}")  # readable values, as sampled sweeps round them
        out[path] = v
    return out


def _space_size(spec: TuneSpec) -> int | None:
    n = 1
    for r in spec.params.values():
        if r.choices is not None:
            n *= len(r.choices)
        elif r.integer:
            n *= math.floor(r.high) - math.ceil(r.low) + 1  # type: ignore[arg-type]
        else:
            return None
    return n


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _trial_seed(seed: int, number: int) -> int:
    import numpy as np

    return int(np.random.SeedSequence([int(seed), 0x74756E65, int(number)]).generate_state(1)[0])


def _sampler(plan: _Plan, number: int) -> Any:
    optuna = _import_optuna()

    seed = _trial_seed(plan.seed, number)
    # Optuna 5 reads constraints a trial sets itself (Trial.set_constraint, see _evaluate_batch);
    # before 5 they come from the sampler's constraints_func
    cons = _constraints_of if plan.constraints and not _sets_constraints() else None
    if len(plan.objectives) > 1:
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, 2 * plan.spec.batch),
                                             constraints_func=cons)
    startup = max(4, min(10, plan.spec.trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True,
                                      constraints_func=cons)


def _sets_constraints() -> bool:
    """Whether this Optuna has Trial.set_constraint (5.0 on; constraints_func is deprecated there)."""
    from optuna.trial import Trial

    return hasattr(Trial, "set_constraint")


def _constraints_of(trial: Any) -> list[float]:
    """Optuna's constraints_func: values <= 0 are feasible (computed before the trial is told)."""
    return list(trial.user_attrs.get("constraints", []))


# ---------------------------------------------------------------------------- evaluation


@dataclass
class _Eval:
    """One distinct setting and its simulations: ``rows[(member, replicate)]`` = metrics or an error."""

    key: str
    params: dict[str, Any]
    first_trial: int
    members: int
    rows: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    done: bool = False
    raced: bool = False

    @property
    def n(self) -> int:
        """Replications complete in every member."""
        n = 0
        while all((m, n) in self.rows for m in range(self.members)):
            n += 1
        return n

    def errors(self) -> list[str]:
        return [r["error"] for r in self.rows.values() if r.get("error")]


def _tune_task(shared: list[dict[str, Any]], task: tuple[int, str | None, dict[str, Any], int, float | None]
               ) -> tuple[dict[str, Any], str | None, float]:
    """One simulation of a trial in a worker (the scenarios are the executor's shared object)."""
    from simres.experiments.replications import run_point
    from simres.experiments.sweeping import _run_task

    index, variant, overrides, seed, limit = task
    return _run_task(shared[index], (run_point, variant, overrides, seed, limit))


class _Tuner:
    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.evals: dict[str, _Eval] = {}
        self.sims_run = 0
        self.checked = False

    # ---- values

    def member_values(self, ev: _Eval, metric: str, n: int) -> np.ndarray:
        """``[member, replicate]`` values of ``metric`` over the first ``n`` replicates."""
        import numpy as np

        return np.array([[_float(ev.rows.get((m, r), {}).get(metric)) for r in range(n)]
                         for m in range(len(self.plan.members))], dtype=float).reshape(len(self.plan.members), n)

    def objective_values(self, ev: _Eval, metric: str, maximize: bool, n: int) -> np.ndarray:
        """Per replicate, the objective aggregated over the members (see the module docstring)."""
        import numpy as np

        v = self.member_values(ev, metric, n)
        if len(v) == 1:
            return v[0]
        if self.plan.spec.aggregate == "mean":
            w = np.asarray(self.plan.weights, dtype=float)
            return (w[:, None] * v).sum(axis=0) / w.sum()
        means = np.array([_mean(row) for row in v])
        means = np.where(np.isnan(means), -np.inf if maximize else np.inf, means)  # a member without values is worst
        return v[int(np.argmin(means) if maximize else np.argmax(means))]

    def constraint_values(self, ev: _Eval, c: Constraint, n: int) -> np.ndarray:
        """Per replicate, the constrained metric of the member whose mean is worst for ``c``."""
        import numpy as np

        v = self.member_values(ev, c.metric, n)
        means = np.array([_mean(row) for row in v])
        means = np.where(np.isnan(means), -np.inf if c.wants_high else np.inf, means)
        return v[int(np.argmin(means) if c.wants_high else np.argmax(means))]

    def feasible(self, ev: _Eval, n: int) -> bool:

        return not ev.errors() and all(
            c.holds(_mean(self.constraint_values(ev, c, n))) for c in self.plan.constraints)

    def clearly_infeasible(self, ev: _Eval, n: int) -> bool:
        from simres.metrics.stats import mean_ci

        for c in self.plan.constraints:
            for m in range(len(self.plan.members)):
                ci = mean_ci(self.member_values(ev, c.metric, n)[m], confidence=self.plan.spec.confidence)
                pess = ci.hi if c.wants_high else ci.lo  # the end most favourable to the constraint
                if math.isfinite(pess) and not c.holds(pess):
                    return True
        return False

    def worse(self, ev: _Eval, ref: _Eval, n: int, metric: str, maximize: bool) -> bool:
        """Whether ``ev`` is significantly worse than ``ref`` on ``metric`` (paired, first ``n`` replicates)."""
        from simres.metrics.stats import paired_difference

        d = paired_difference(self.objective_values(ev, metric, maximize, n),
                              self.objective_values(ref, metric, maximize, n), confidence=self.plan.spec.confidence)
        if not math.isfinite(d.lo):
            return False
        return d.hi < 0 if maximize else d.lo > 0

    def loses(self, ev: _Eval, n: int) -> bool:
        """The racing rule: stop ``ev`` after ``n`` replicates?"""

        if ev.errors() or self.clearly_infeasible(ev, n):
            return True
        refs = [r for r in self.evals.values() if r is not ev and r.n >= n and self.feasible(r, n)]
        if not refs:
            return False
        if len(self.plan.objectives) == 1:
            metric, maximize = self.plan.objectives[0]
            sign = -1 if maximize else 1
            ref = min(refs, key=lambda r: (sign * _mean(self.objective_values(r, metric, maximize, n)),
                                           r.first_trial))
            return self.worse(ev, ref, n, metric, maximize)
        return any(all(self.worse(ev, r, n, m, mx) for m, mx in self.plan.objectives) for r in refs)

    def told_values(self, ev: _Eval) -> tuple[list[float], list[float]]:
        """The values Optuna is told (means over every replicate) and the constraint values (<= 0 feasible)."""

        n = ev.n
        values = [_mean(self.objective_values(ev, m, mx, n)) for m, mx in self.plan.objectives]
        cons = []
        for c in self.plan.constraints:
            mean = _mean(self.constraint_values(ev, c, n))
            cons.append(c.bound - mean if c.wants_high else mean - c.bound)
        return values, cons

    # ---- running

    def run_stage(self, executor: Executor, evs: list[_Eval], n: int, on_done: Callable[[], None]) -> None:
        """Run the replicates ``< n`` that ``evs`` lack, in parallel; rows are stored by index."""
        from contextlib import closing

        plan = self.plan
        jobs = [(ev, m, r) for ev in evs for m in range(len(plan.members)) for r in range(n)
                if (m, r) not in ev.rows]
        if not jobs:
            return
        # deep copies: applying a path inside a mapping override writes into that mapping
        tasks = [(plan.members[m].scenario, plan.members[m].variant,
                  copy.deepcopy({**plan.spec.overrides, **ev.params}), plan.seeds[r], plan.limit)
                 for ev, m, r in jobs]
        try:
            with closing(executor.as_completed(_tune_task, tasks, shared=plan.bases)) as outcomes:
                for outcome in outcomes:
                    ev, m, r = jobs[outcome.index]
                    if outcome.error is not None or outcome.value is None:
                        row: dict[str, Any] = {"error": f"{type(outcome.error).__name__}: {outcome.error}"}
                    else:
                        metrics, err, _ = outcome.value
                        if err is None and not self.checked:
                            self.check_metrics(metrics)
                        row = {k: _num(metrics.get(k)) for k in plan.needed} if err is None else {"error": err}
                    ev.rows[(m, r)] = row
                    self.sims_run += 1
        finally:
            on_done()

    def check_metrics(self, metrics: Mapping[str, Any]) -> None:
        import difflib

        for m in self.plan.needed:
            if m not in metrics and m != RULE_METRIC:
                known = [k for k in metrics if k not in ("variant", "seed", "wall_time")]
                hint = difflib.get_close_matches(m, known, n=1)
                raise _UnknownMetric(f"metric '{m}': not in a run's summary"
                                     + (f" (did you mean '{hint[0]}'?)" if hint else ""))
        self.checked = True


class _UnknownMetric(SweepError):
    pass


def _float(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _mean(v: Any) -> float:
    """The mean of the non-NaN values (NaN if there are none, without numpy's warning)."""
    import numpy as np

    a = np.asarray(v, dtype=float)
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else float("nan")


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _rows_attr(ev: _Eval) -> list[list[Any]]:
    return [[m, r, row] for (m, r), row in sorted(ev.rows.items())]


def _spec_json(spec: TuneSpec) -> dict[str, Any]:
    """What a resumed study must agree on (everything but the trial budget)."""
    return spec.model_dump(mode="json", exclude={"trials"})


# ---------------------------------------------------------------------------- the result


@dataclass
class TuneResult:
    """A finished (or resumed) study: the choice, every trial, and the simulations they used."""

    spec: TuneSpec
    members: list[Member]
    objectives: list[tuple[str, bool]]
    trials: pd.DataFrame
    """One row per trial: ``trial``, the parameters, ``state`` (complete, raced out, duplicate, failed),
    ``reps``, ``sims``, and the told objective values and constraint values."""
    runs: pd.DataFrame
    """One row per simulation: ``trial`` (the first with that setting), ``member``, ``replicate``,
    ``seed``, the parameters, the metrics used, ``error``."""
    sims: int
    sims_run: int
    choice: Choice | None
    front: pd.DataFrame | None
    by_member: pd.DataFrame | None
    out: Path | None
    scenario_yaml: dict[str, str] = field(default_factory=dict)

    @property
    def fixed_sims(self) -> int:
        """The simulations the same distinct settings would have needed at ``reps`` replications each."""
        distinct = self.runs["trial"].nunique() if len(self.runs) else 0
        return distinct * self.spec.reps * len(self.members)

    def __str__(self) -> str:
        t = self.trials
        counts = t["state"].value_counts()
        states = ", ".join(f"{counts[s]} {s}" for s in ("complete", "raced out", "duplicate", "failed") if s in counts)
        lines = [f"{len(t)} trials ({states}); {self.sims} simulations "
                 f"({self.sims_run} in this run; every distinct setting at {self.spec.reps} replications would "
                 f"have taken {self.fixed_sims})"]
        if len(self.members) > 1:
            agg = self.spec.aggregate + (f" (weights {self.spec.weights})" if self.spec.weights else "")
            lines.append(f"tuned across {len(self.members)} members: {', '.join(m.label for m in self.members)}; "
                         f"objective aggregated by {agg}; constraints must hold in every member")
        raced = int((t["state"] == "raced out").sum())
        if self.choice is not None:
            if raced:
                lines.append(f"{raced} setting(s) stopped early by racing (clearly worse than the reference after "
                             "their first replications) are left out of the comparison below; see trials.csv")
            lines += ["", str(self.choice)]
        if self.front is not None:
            lines += ["", f"Pareto front ({len(self.front)} settings; no single best: choose by preference):"]
            lines += ["  " + ln for ln in self.front.to_string(index=False).splitlines()]
        if self.by_member is not None and len(self.members) > 1:
            lines += ["", "the chosen setting in each member:"]
            lines += ["  " + ln for ln in self.by_member.to_string(index=False).splitlines()]
        if self.out is not None:
            files = [f for f in ("best.yaml", "trials.parquet", "trials.csv", "runs.parquet", "study.db")
                     if (self.out / f).exists()]
            lines += ["", f"wrote {', '.join(str(self.out / f) for f in files)}"]
        return "\n".join(lines)


# ---------------------------------------------------------------------------- the study


def tune(spec: TuneSpec | Mapping[str, Any], *, executor: Executor | None = None,
         out: str | os.PathLike[str] | None = None, resume: bool = False, overwrite: bool = False,
         progress: ProgressArg = False, source: str = "tune") -> TuneResult:
    """Run (or resume) a tuning study; see the module docstring and docs/tuning.md.

    ``out`` is the study's directory (``study.db``, ``trials.parquet``/``.csv``,
    ``runs.parquet``, ``best.yaml``); without it the study lives in memory. ``executor``
    as for sweeps (default: local processes, one per core; yours stays open).
    """
    optuna = _import_optuna()

    from simres.experiments.executors import ProcessExecutor

    spec = spec if isinstance(spec, TuneSpec) else validate_tune_spec(spec, source=source)
    plan = plan_tune(spec, source=source)
    directory = Path(out) if out is not None else None
    fresh = True
    if directory is not None:
        db = directory / STUDY_FILE
        if overwrite and directory.exists():
            shutil.rmtree(directory)
        if db.exists() and not resume:
            raise SweepError(f"--out {directory}: holds a study already; use --resume to continue it "
                             "or --overwrite to start over")
        if resume and not db.exists():
            raise SweepError(f"--resume: no study in {directory} (no {STUDY_FILE})")
        fresh = not db.exists()
        directory.mkdir(parents=True, exist_ok=True)
        storage: Any = f"sqlite:///{db}"
    else:
        storage = None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize" if mx else "minimize" for _, mx in plan.objectives]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage, directions=directions,
                                    load_if_exists=True, sampler=_sampler(plan, 0))
    if fresh:
        study.set_user_attr("spec", _spec_json(spec))
    else:
        _check_resume(study.user_attrs.get("spec", {}), _spec_json(spec))
    tuner = _Tuner(plan)
    dists = _distributions(spec)
    size = _space_size(spec)
    running = _restore(study, tuner, spec)
    owned = executor is None
    ex = ProcessExecutor() if owned else executor
    report = reporter(progress, spec.trials, label=plan.scenarios[0].name, unit="trial",
                      initial=min(spec.trials, len(study.trials) - len(running)))
    try:
        while True:
            batch = list(running)
            running = []
            start = len(study.trials) - len(batch)
            while len(study.trials) < min(spec.trials, start + spec.batch) and not _exhausted(size, tuner, batch):
                study.sampler = _sampler(plan, len(study.trials))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t = study.ask(fixed_distributions=dists)
                params = _decode(spec, t.params)
                key = _key(params)
                t.set_user_attr("key", key)
                batch.append((t.number, t._trial_id, key, params))
            if not batch:
                break
            _evaluate_batch(study, tuner, batch, ex)  # type: ignore[arg-type]
            report(min(spec.trials, len(study.trials)), spec.trials)
    except _UnknownMetric:
        if fresh and directory is not None:
            del study
            shutil.rmtree(directory, ignore_errors=True)
        raise
    finally:
        report.close()
        if owned:
            ex.close()  # type: ignore[union-attr]
    return _result(study, tuner, directory)


def _import_optuna() -> Any:
    """Optuna, imported without the warning its progress-bar import prints in Jupyter without ipywidgets."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import optuna
    return optuna


def _exhausted(size: int | None, tuner: _Tuner, batch: list[tuple[int, int, str, dict[str, Any]]]) -> bool:
    """Whether every setting of a discrete space is evaluated or in the batch (asking more only repeats)."""
    return size is not None and len(set(tuner.evals) | {k for _, _, k, _ in batch}) >= size


def _check_resume(stored: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    for k in sorted(set(stored) | set(now)):
        if stored.get(k) != now.get(k):
            raise SweepError(f"--resume: {k} differs from the study's ({json.dumps(stored.get(k), default=str)} "
                             f"there, {json.dumps(now.get(k), default=str)} now); only --trials may change")


def _restore(study: Any, tuner: _Tuner, spec: TuneSpec) -> list[tuple[int, int, str, dict[str, Any]]]:
    """Rebuild the evaluations from the storage; the RUNNING trials of an interrupted batch."""
    from optuna.trial import TrialState

    running = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if set(t.params) != set(spec.params):  # interrupted inside ask: nothing was run for it
            if t.state == TrialState.RUNNING:
                study.tell(t.number, state=TrialState.FAIL)
            continue
        params = _decode(spec, t.params)
        key = t.user_attrs.get("key", _key(params))
        ev = tuner.evals.get(key)
        if ev is None:
            ev = tuner.evals[key] = _Eval(key, params, t.number, len(tuner.plan.members))
        for m, r, row in t.user_attrs.get("rows", []):
            ev.rows.setdefault((int(m), int(r)), row)
            tuner.checked = True
        if t.state == TrialState.RUNNING:
            running.append((t.number, t._trial_id, key, params))
        elif t.user_attrs.get("state") != "duplicate":
            ev.done = True
            ev.raced = bool(t.user_attrs.get("raced"))
    return running


def _evaluate_batch(study: Any, tuner: _Tuner, batch: list[tuple[int, int, str, dict[str, Any]]],
                    executor: Executor) -> None:
    """Race the batch's distinct new settings stage by stage, then tell every trial in trial order."""
    from optuna.trial import TrialState

    plan = tuner.plan
    owners: dict[str, list[int]] = {}
    mine: list[_Eval] = []
    for number, trial_id, key, params in batch:
        owners.setdefault(key, []).append(trial_id)
        ev = tuner.evals.get(key)
        if ev is None:
            ev = tuner.evals[key] = _Eval(key, params, number, len(plan.members))
        if not ev.done and ev not in mine:
            mine.append(ev)

    def persist() -> None:
        for ev in mine:
            for trial_id in owners.get(ev.key, []):
                study._storage.set_trial_user_attr(trial_id, "rows", _rows_attr(ev))

    for n in plan.spec.stages():
        alive = [ev for ev in mine if not ev.done]
        if not alive:
            break
        tuner.run_stage(executor, alive, n, persist)
        decisions = [(ev, n >= plan.spec.reps or tuner.loses(ev, n)) for ev in alive]
        for ev, stop in decisions:
            if stop:
                ev.done = True
                ev.raced = n < plan.spec.reps
    seen: set[str] = set()
    for number, trial_id, key, _ in batch:
        ev = tuner.evals[key]
        dup = key in seen or ev.first_trial != number
        seen.add(key)
        values, cons = tuner.told_values(ev)
        attrs = {"state": "duplicate" if dup else ("failed" if ev.errors() else
                                                   "raced out" if ev.raced else "complete"),
                 "reps": ev.n, "raced": ev.raced, "constraints": cons, "first_trial": ev.first_trial,
                 "sims": 0 if dup else len(ev.rows)}
        if dup:
            attrs["rows"] = []
        for k, v in attrs.items():
            study._storage.set_trial_user_attr(trial_id, k, v)
        if _sets_constraints():
            from optuna.trial import Trial

            for i, v in enumerate(cons):
                Trial(study, trial_id).set_constraint(f"c{i}", v if math.isfinite(v) else 1e300)
        if ev.errors() or any(not math.isfinite(v) for v in values):
            study.tell(number, state=TrialState.FAIL)
        else:
            study.tell(number, values if len(values) > 1 else values[0])


def _result(study: Any, tuner: _Tuner, directory: Path | None) -> TuneResult:
    import numpy as np
    import pandas as pd

    plan = tuner.plan
    spec = plan.spec
    trials = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if set(t.params) != set(spec.params):
            continue
        row: dict[str, Any] = {"trial": t.number, **_decode(spec, t.params),
                               "state": t.user_attrs.get("state", t.state.name.lower()),
                               "reps": t.user_attrs.get("reps", 0), "sims": t.user_attrs.get("sims", 0)}
        vals = t.values or [np.nan] * len(plan.objectives)
        for (m, _), v in zip(plan.objectives, vals, strict=True):
            row[m] = v
        for c, v in zip(plan.constraints, t.user_attrs.get("constraints", []), strict=False):
            row[f"violation[{c}]"] = v
        trials.append(row)
    tdf = _frame_params(pd.DataFrame(trials), spec)
    evs = sorted((ev for ev in tuner.evals.values() if ev.rows), key=lambda e: e.first_trial)
    runs = []
    for ev in evs:
        for (m, r), row in sorted(ev.rows.items()):
            runs.append({"trial": ev.first_trial, "member": plan.members[m].label, "replicate": r,
                         "seed": plan.seeds[r], **ev.params,
                         **{k: row.get(k) for k in plan.needed}, "error": row.get("error")})
    rdf = _frame_params(pd.DataFrame(runs), spec)
    sims = len(runs)
    choice = front = by_member = None
    if evs:
        if len(plan.objectives) == 1:
            # the settings racing stopped were already found clearly worse than a reference: the
            # comparison (tie set, Holm correction) is among the ones measured to the end
            survivors = [ev for ev in evs if not ev.raced] or evs
            choice = _choose(tuner, survivors)
            by_member = _by_member(tuner, evs, choice)
        else:
            front = _front(tuner, evs)
    res = TuneResult(spec, plan.members, plan.objectives, tdf, rdf, sims, tuner.sims_run, choice, front,
                     by_member, directory)
    if directory is not None:
        _write(res, plan, directory)
    return res


def _frame_params(df: pd.DataFrame, spec: TuneSpec) -> pd.DataFrame:
    for p in spec.params:
        if p in df and _dtype(list(df[p])) == "json":
            df[p] = [_encode(v, "json") for v in df[p]]
    return df


def _sweep_frame(tuner: _Tuner, evs: list[_Eval]) -> pd.DataFrame:
    """The trials as a sweep's results frame (one row per setting and replicate), for :func:`choosing.best`.

    The objective column holds the aggregated per-replicate value, a constrained metric the
    values of the member whose mean is worst for it, ``tries_per_request`` the members' mean.
    """
    import numpy as np
    import pandas as pd

    from simres.experiments.design import run_id

    plan = tuner.plan
    dtypes = {p: _dtype([ev.params[p] for ev in evs]) for p in plan.spec.params}
    rows = []
    for ev in evs:
        n = ev.n
        err = ev.errors()
        cols: dict[str, np.ndarray] = {}
        tries = tuner.member_values(ev, RULE_METRIC, n)
        cols[RULE_METRIC] = np.array([_mean(tries[:, r]) for r in range(n)])
        for c in plan.constraints:
            cols[c.metric] = tuner.constraint_values(ev, c, n)
        for m, mx in plan.objectives:
            cols[m] = tuner.objective_values(ev, m, mx, n)
        base = {p: _encode(ev.params[p], dtypes[p]) for p in plan.spec.params}
        if err:
            rows.append({"run_id": run_id(ev.params, None, 0), "variant": "", "replicate": 0,
                         "seed": plan.seeds[0], **base, "error": err[0], "trial": ev.first_trial})
            continue
        for r in range(n):
            rows.append({"run_id": run_id(ev.params, None, r), "variant": "", "replicate": r, "seed": plan.seeds[r],
                         **base, **{k: float(v[r]) for k, v in cols.items()}, "error": None,
                         "trial": ev.first_trial})
    df = pd.DataFrame(rows)
    for p, dt in dtypes.items():
        if dt in ("int64", "float64", "bool"):
            df[p] = df[p].astype(dt)
    scenario = plan.spec.scenario if isinstance(plan.spec.scenario, str) else "<mapping>"
    df.attrs["sweep"] = {"version": 1, "scenario": scenario, "scenario_name": plan.scenarios[0].name,
                         "overrides": copy.deepcopy(plan.spec.overrides), "params": list(plan.spec.params),
                         "dtypes": dtypes, "variants": [""], "variant_overrides": {}, "seed": plan.seed,
                         "reps": plan.spec.reps, "objective": {}}
    return df


def _choose(tuner: _Tuner, evs: list[_Eval]) -> Choice | None:
    from simres.experiments.choosing import NoFeasibleSetting, best

    plan = tuner.plan
    metric, maximize = plan.objectives[0]
    df = _sweep_frame(tuner, evs)
    try:
        return best(df, minimize=None if maximize else metric, maximize=metric if maximize else None,
                    subject_to=list(plan.constraints), confidence=plan.spec.confidence)
    except NoFeasibleSetting:
        return None


def _by_member(tuner: _Tuner, evs: list[_Eval], choice: Choice | None) -> pd.DataFrame | None:
    import pandas as pd

    from simres.experiments.choosing import _fmt_ci
    from simres.metrics.stats import mean_ci

    if choice is None:
        return None
    plan = tuner.plan
    winner = {p: choice.winner[p] for p in plan.spec.params}
    ev = tuner.evals.get(_key(winner))
    if ev is None:
        return None
    metrics = list(dict.fromkeys([m for m, _ in plan.objectives] + [c.metric for c in plan.constraints]))
    rows = []
    for i, mem in enumerate(plan.members):
        row: dict[str, Any] = {"member": mem.label}
        for m in metrics:
            ci = mean_ci(tuner.member_values(ev, m, ev.n)[i], confidence=plan.spec.confidence)
            row[m] = f"{_fmt_ci(ci.mean, ci.lo, ci.hi)} [{ci.lo:.4g}, {ci.hi:.4g}]"
        row["n"] = ev.n
        rows.append(row)
    return pd.DataFrame(rows)


def _front(tuner: _Tuner, evs: list[_Eval]) -> pd.DataFrame:
    """The feasible settings no other feasible setting beats on every objective's mean (at full replications)."""
    import pandas as pd

    from simres.experiments.choosing import _fmt_ci
    from simres.metrics.stats import mean_ci

    plan = tuner.plan
    full = [ev for ev in evs if not ev.raced and not ev.errors() and tuner.feasible(ev, ev.n)]
    means = {ev.key: [(-1 if mx else 1) * _mean(tuner.objective_values(ev, m, mx, ev.n))
                      for m, mx in plan.objectives] for ev in full}

    def dominated(a: _Eval) -> bool:
        return any(all(x <= y for x, y in zip(means[b.key], means[a.key], strict=True)) and means[b.key] != means[a.key]
                   for b in full if b is not a)

    rows = []
    for ev in full:
        if dominated(ev):
            continue
        row: dict[str, Any] = {"trial": ev.first_trial, **ev.params}
        for m, mx in plan.objectives:
            ci = mean_ci(tuner.objective_values(ev, m, mx, ev.n), confidence=plan.spec.confidence)
            row[m] = _fmt_ci(ci.mean, ci.lo, ci.hi) + f" [{ci.lo:.4g}, {ci.hi:.4g}]"
        row["n"] = ev.n
        rows.append(row)
    return pd.DataFrame(rows)


def _write(res: TuneResult, plan: _Plan, directory: Path) -> None:
    from simres.scenario.loading import load_scenario, resolved_dict

    res.trials.to_parquet(directory / "trials.parquet", index=False)
    res.trials.to_csv(directory / "trials.csv", index=False)
    if len(res.runs):
        res.runs.to_parquet(directory / "runs.parquet", index=False)
    for stale in directory.glob("best*.yaml"):
        stale.unlink()
    if res.choice is None:
        return
    for i, sc in enumerate(plan.scenarios):
        resolved = resolved_dict(load_scenario(sc, overrides=copy.deepcopy(res.choice.overrides)))
        text = yaml.safe_dump(resolved, sort_keys=False, default_flow_style=False)
        name = "best.yaml" if i == 0 else f"best-{sc.name}.yaml"
        (directory / name).write_text(text, encoding="utf-8")
        res.scenario_yaml[name] = text


def study_digest(res: TuneResult) -> str:
    """A short hash of the trials and their told values: equal for equal studies (tests, docs)."""
    cols = [c for c in res.trials.columns if c != "sims"]
    blob = res.trials[cols].to_json(orient="records", double_precision=12)
    return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()
