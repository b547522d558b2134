"""Parameter sweeps: a design x variants x replications, run on an executor, rows stored as they come.

Each point runs :func:`simres.experiments.replications.run_point` on an executor (serial,
local processes, Dask). The result is one tidy DataFrame: ``run_id``, ``variant``,
``replicate``, ``seed``, one column per swept parameter (named by its dotted path), one per
metric, ``error`` and ``wall_time``. Rows come back sorted by parameters, variant and
replicate, so the frame is the same whatever the executor and worker count.
:func:`simres.experiments.choosing.best` picks a setting from it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from simres.errors import SweepError
from simres.experiments.design import (
    Plan,
    Point,
    SampleSpec,
    SweepSpec,
    _encode,
    plan_sweep,
    point_overrides,
    validate_spec,
)
from simres.experiments.store import _frame, _prepare_directory, _Sink, compact, load_results
from simres.progress import ProgressArg, reporter

if TYPE_CHECKING:
    import pandas as pd

    from simres.experiments.executors import Executor
    from simres.scenario.schema import Scenario



# ---------------------------------------------------------------------------- running


Task = tuple[Callable[..., dict[str, Any]], str | None, dict[str, Any], int, float | None]
"""One point as shipped to a worker: (point function, variant, overrides, seed, time limit).

The scenario every point starts from is not in it: it is the executor's ``shared`` object,
sent to each worker once (:mod:`simres.experiments.executors`)."""


def _run_task(data: dict[str, Any], task: Task) -> tuple[dict[str, Any], str | None, float]:
    """Run one point of ``data`` in a worker within its wall-clock limit: (metrics, error or None,
    wall seconds); never raises."""
    from simres.experiments.timeouts import PointTimeout, limited

    fn, variant, overrides, seed, limit = task
    t0 = time.perf_counter()
    try:
        row = dict(limited(limit, fn, data, seed=seed, variant=variant, overrides=overrides))
        error = None
    except PointTimeout as e:  # raised into the point by its watchdog (possibly late, outside fn)
        row, error = {}, _error_text(e if e.args else PointTimeout(limit))
    except Exception as e:
        row, error = {}, _error_text(e)
    return row, error, time.perf_counter() - t0


def _error_text(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= 2000 else text[:1997] + "..."




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
    progress: ProgressArg = False,
    point_fn: Callable[..., dict[str, Any]] | None = None,
    source: str | None = None,
    plan: Plan | None = None,
    point_timeout: float | None = None,
) -> pd.DataFrame:
    """Run a :class:`SweepSpec`; see :func:`sweep` for the arguments.

    ``plan`` (from :func:`plan_sweep`) saves planning twice when the caller already has it.
    """
    from simres.experiments.executors import ProcessExecutor

    plan = plan or plan_sweep(spec, source=source)
    directory = Path(out) if out is not None else None
    meta = dict(plan.meta)
    done: set[str] = set()
    if directory is not None:
        meta, done = _prepare_directory(directory, meta, plan, resume=resume, retry_errors=retry_errors)
    pending = [p for p in plan.points if p.run_id not in done]
    sink = _Sink(directory, meta)
    fn = point_fn or _default_point_fn()
    limit = resolve_point_timeout(point_timeout, plan.scenario)
    tasks: list[Task] = [(fn, p.variant, point_overrides(plan.spec, p.params), p.seed, limit) for p in pending]
    report = reporter(progress, len(plan.points), label=plan.scenario.name, unit="pt",
                      initial=len(plan.points) - len(pending))
    owned = executor is None and bool(pending)
    ex = ProcessExecutor() if owned else executor
    errors = 0
    try:
        if pending:
            from contextlib import closing

            with closing(ex.as_completed(_run_task, tasks, shared=plan.base)) as outcomes:  # type: ignore[union-attr]
                for k, outcome in enumerate(outcomes, start=1):
                    row = _row(pending[outcome.index], outcome.value, outcome.error, meta["dtypes"])
                    errors += row["error"] is not None
                    sink.add(row)
                    report(len(plan.points) - len(pending) + k, len(plan.points), errors)
    finally:
        sink.close()
        report.close()
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


def resolve_point_timeout(point_timeout: float | None, scenario: Scenario) -> float | None:
    """The per-point wall-clock limit: ``None`` derives one from the scenario, ``0`` means none."""
    from simres.experiments.timeouts import default_point_timeout

    if point_timeout is None:
        return default_point_timeout(scenario)
    if not point_timeout >= 0:
        raise SweepError(f"point_timeout: must be >= 0 seconds (0 = no limit), got {point_timeout}")
    return float(point_timeout) or None


def _default_point_fn() -> Callable[..., dict[str, Any]]:
    from simres.experiments.replications import run_point

    return run_point




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
    progress: ProgressArg = False,
    point_fn: Callable[..., dict[str, Any]] | None = None,
    point_timeout: float | None = None,
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
        executor: where points run (``simres.experiments.executors``); default local processes, one per
            core. An executor you pass stays open for reuse; close it yourself.
        out: results directory (``results/name.parquet``); rows are written as they finish.
        resume: continue a sweep in ``out``, running only the points not yet there.
        retry_errors: with ``resume``, also re-run the points that ended in an error.
        progress: a progress bar with ETA (:mod:`simres.progress`: on a terminal's stderr or in
            Jupyter, never into a pipe), or ``callable(done, total)``.
        point_fn: runs one point, ``fn(scenario_data, seed=, variant=, overrides=) -> dict``
            (default :func:`simres.experiments.replications.run_point`); module-level, so it pickles.
        point_timeout: wall-clock seconds one point may take before it is stopped and becomes an
            error row (its worker is killed if it does not stop); ``None`` derives a generous
            limit from the scenario (:func:`simres.experiments.timeouts.default_point_timeout`),
            ``0`` means no limit. ``resume`` skips timed-out points like other errors unless
            ``retry_errors``.

    Returns:
        One row per point: ``run_id``, ``variant``, ``replicate``, ``seed``, one column per
        swept path, one per metric, ``error`` (None if it ran) and ``wall_time``; sorted by
        parameters, variant and replicate. ``df.attrs["sweep"]`` describes the sweep. A plain
        DataFrame (code comparing it with ``assert_frame_equal`` keeps working); wrap it in
        :class:`simres.SweepResult` for the compact notebook view and ``.plot(kind)``.
    """
    from simres.scenario.loading import resolved_dict
    from simres.scenario.schema import Scenario

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
                     progress=progress, point_fn=point_fn, point_timeout=point_timeout)
