"""``simres explore``: map where a system stays stuck after a trigger (metastability), with adaptive refinement.

Thin: parse flags, call :func:`simres.experiments.explore.explore`, draw the map with
:func:`simres.reporting.plots.stuck_map`, print. Bad input exits 2 with one line; Ctrl-C
keeps the finished cells (written to --out, with the map) and exits 130.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from simres.cli._util import (
    check_out_path,
    command_executor,
    dry_run_option,
    examples,
    friendly,
    out_option,
    quiet_option,
    reps_option,
    seed_option,
    set_option,
)
from simres.cli.check import announce, strict_option
from simres.cli.estimate import announce_estimate


@click.command(name="explore", short_help="Map where a system stays stuck after a trigger (metastability).",
               epilog=examples("simres explore retry-storm-metastable --axis clients.web.arrival.rate=30,45,60,75 \\",
                               "    --axis faults.0.factor=1.5,2.5,3.5 --variant naive --variant token-bucket \\",
                               "    -n 8 --refine 2 -o results/storm-map",
                               "simres explore scenarios/explore/retry-storm.yaml -o results/storm-map",
                               "simres explore scenarios/explore/retry-storm.yaml -o r --dry-run",
                               note="An EXPLORE_FILE (YAML with top-level 'scenario' and 'axes' keys) holds the same "
                                    "settings; flags given here are added to it or replace its values. "
                                    "docs/explore.md explains the method and the figure."))
@click.argument("target", metavar="SCENARIO|EXPLORE_FILE")
@click.option("--axis", "axes", multiple=True, metavar="PATH=V1,V2,...",
              help="An axis of the map: a scenario path and its initial values, as for sweep's --grid "
                   "(repeatable, 1 to 3; numbers in increasing order are refined).")
@click.option("--refine", type=click.IntRange(0, 6), default=None, metavar="K",
              help="Rounds of adaptive refinement: midpoints where neighbouring verdicts differ, more "
                   "replications where a cell's interval includes 50 % [default: 0, or the file's].")
@click.option("--refine-axis", "refine_axes", multiple=True, metavar="PATH",
              help="Refine only this axis (repeatable) [default: every axis of numbers]; the others keep "
                   "their initial values.")
@reps_option(None, what="of every new cell, and added per round to an uncertain one [default: 10, or the file's]")
@click.option("--max-reps", type=click.IntRange(min=1), default=None, metavar="N",
              help="Most replications one cell gets [default: 4 x --reps].")
@click.option("--variant", "variants", multiple=True, metavar="NAME",
              help="Run only these variants (repeatable; one map each) [default: the scenario as written].")
@click.option("--all-variants", is_flag=True, help="Run every variant of the scenario (one map each).")
@click.option("--fault", default=None, metavar="NAME",
              help="The fault whose recovery is judged [default: the scenario's only fault].")
@set_option("fixed for every cell")
@seed_option()
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Confidence level of the binomial intervals [default: 0.95].")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
              help="Worker processes [default: one per core; 1 = in this process]. Results are identical "
                   "for any N. With --dask local: the number of Dask workers.")
@click.option("--dask", "dask_address", metavar="ADDRESS|local", default=None,
              help="Run on Dask: a scheduler address (tcp://host:8786) or 'local' for a LocalCluster.")
@out_option("directory", "cells.csv/.parquet (one row per cell), runs.parquet, summary.json and map.png.",
            required=True)
@click.option("--overwrite", is_flag=True, help="Delete existing results in --out first.")
@dry_run_option
@quiet_option()
@strict_option
@friendly
def explore_cmd(target: str, axes: tuple[str, ...], refine: int | None, refine_axes: tuple[str, ...],
                reps: int | None, max_reps: int | None,
                variants: tuple[str, ...], all_variants: bool, fault: str | None, sets: tuple[str, ...],
                seed: int | None, confidence: float | None, jobs: int | None, dask_address: str | None, out: str,
                overwrite: bool, dry_run: bool, quiet: bool, strict: bool) -> None:
    """Map the probability that SCENARIO stays stuck after its trigger, over 1 to 3 axes.

    Each cell (one setting of the axes) runs replications with common random numbers and
    judges every run by its recovery verdict (recovered:<fault> = 0: stuck). A cell reports
    P(stuck) with a Wilson interval; --refine adds cells only at the boundary, so it is
    located finely with far fewer runs than a full fine grid (both counts are printed).
    """
    from simres.errors import SweepError
    from simres.experiments.design import parse_axis
    from simres.experiments.explore import (
        FIGURE_FILE,
        SUMMARY_FILE,
        ExploreInterrupted,
        is_explore_file,
        load_explore,
        plan_explore,
        validate_explore_spec,
    )
    from simres.scenario.loading import load_scenario, parse_overrides

    if variants and all_variants:
        raise click.UsageError("--variant and --all-variants exclude each other")
    check_out_path(out)
    if is_explore_file(target):
        data = load_explore(target)
        source = target
    else:
        data = {"scenario": target}
        source = "explore"
    for key, extra in (("axes", parse_axis(axes, flag="--axis")), ("overrides", parse_overrides(sets))):
        both = set(extra) & set(data.get(key) or {})
        if both:
            raise SweepError(f"--{'set' if key == 'overrides' else 'axis'} {sorted(both)[0]}: already in {target}")
        data[key] = {**(data.get(key) or {}), **extra}
    if not data.get("axes"):
        raise SweepError("--axis: give at least one axis, e.g. --axis clients.web.arrival.rate=30,60,90")
    if refine_axes:
        data["refine_axes"] = list(refine_axes)
    if variants or all_variants:
        data["variants"] = "all" if all_variants else list(variants)
    for key, value in (("refine", refine), ("reps", reps), ("max_reps", max_reps), ("fault", fault),
                       ("seed", seed), ("confidence", confidence)):
        if value is not None:
            data[key] = value
    spec = validate_explore_spec(data, source=source)
    plan = plan_explore(spec, source=source)
    announce(load_scenario(plan.scenario, overrides=spec.overrides or None), strict=strict, label=target)
    where = Path(out)
    executor = None if dry_run else command_executor(jobs, dask=dask_address)
    workers = getattr(executor, "workers", 1) or 1
    if not quiet or dry_run:
        click.echo(f"{plan.scenario.name}: {plan}; judging recovered:{plan.fault} -> {where}", err=not dry_run)
    announce_estimate(plan.scenario, runs=plan.initial_runs, workers=workers,
                      overrides=spec.overrides or None, quiet=quiet, dry_run=dry_run)
    if dry_run:
        return
    if where.exists() and any(where.iterdir()):
        if not overwrite:
            raise SweepError(f"--out {where}: holds results already"
                             + (f" ({SUMMARY_FILE})" if (where / SUMMARY_FILE).exists() else "")
                             + "; use --overwrite to replace them or choose another directory")
        shutil.rmtree(where)
    from simres.experiments.executors import SerialExecutor
    from simres.experiments.explore import explore
    from simres.reporting.plots import save_figure, stuck_map

    try:
        result = explore(spec, executor=executor or SerialExecutor(), out=where, progress=not quiet,
                         source=source, plan=plan)
    except ExploreInterrupted as e:
        if len(e.result.cells):
            save_figure(stuck_map(e.result), where / FIGURE_FILE)
        click.echo(f"interrupted: the {len(e.result.runs)} finished runs ({len(e.result.cells)} cells) are in "
                   f"{where}", err=True)
        sys.exit(130)
    save_figure(stuck_map(result), where / FIGURE_FILE)
    click.echo(str(result))
    click.echo(f"wrote {where}/ (cells.csv, cells.parquet, runs.parquet, summary.json, {FIGURE_FILE})")
    if result.summary["runs"] and result.summary["errors"] == result.summary["runs"]:
        first = result.runs["error"].dropna().iloc[0]
        click.echo(f"error: every run failed; the first: {first}", err=True)
        sys.exit(1)
