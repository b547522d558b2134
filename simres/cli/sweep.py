"""``simres sweep`` (run a parameter sweep) and ``simres best`` (choose a setting from it).

Thin: parse flags, call :mod:`simres.experiments.sweeping`, print. Bad input exits 2 with one line;
``best`` exits 1 when no configuration satisfies the constraints; Ctrl-C during a sweep
keeps the finished rows and exits 130.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import click

from simres.cli._util import (
    check_out_path,
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


@click.command(name="sweep", short_help="Run a grid x variants x replications, in parallel, resumable.",
               epilog=examples("simres sweep baseline --grid clients.web.retry.max_attempts=1,2,3,5 \\",
                               "    --grid faults.0.duration=5,10,30 -n 10 -o results/retries.parquet",
                               "simres sweep scenarios/sweeps/baseline-capacity.yaml -o results/capacity.parquet",
                               "simres sweep baseline --grid services.db.workers=2,4,8 -o r.parquet --dry-run",
                               note="A SWEEP_FILE (YAML with a top-level 'scenario' key) can also zip "
                                    "parameters and sample ranges; flags given here are added to it."))
@click.argument("target", metavar="SCENARIO|SWEEP_FILE")
@click.option("--grid", "grids", multiple=True, metavar="PATH=V1,V2,...",
              help="Sweep a field over values (repeatable; every combination is run).")
@click.option("--zip", "zips", multiple=True, metavar="PATH=V1,V2,...",
              help="Vary fields together (repeatable; equal lengths; crossed with --grid).")
@set_option("fixed for every point")
@click.option("--variant", "variants", multiple=True, metavar="NAME", help="Run only these variants (repeatable).")
@click.option("--all-variants", is_flag=True, help="Run every variant of the scenario.")
@reps_option(None, what="per combination and variant [default: 1, or the sweep file's]")
@seed_option()
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
              help="Worker processes [default: one per core; 1 = in this process]. Results are identical "
                   "for any N. With --dask local: the number of Dask workers.")
@click.option("--dask", "dask_address", metavar="ADDRESS|local", default=None,
              help="Run on Dask: a scheduler address (tcp://host:8786) or 'local' for a LocalCluster.")
@out_option("directory", "the results, e.g. results/NAME.parquet (a directory of Parquet parts, written "
            "as points finish).", required=True)
@click.option("--resume", is_flag=True, help="Continue the sweep in --out: run only the missing points.")
@click.option("--retry-errors", is_flag=True, help="With --resume, also re-run points that ended in an error.")
@click.option("--overwrite", is_flag=True, help="Delete existing results in --out first.")
@click.option("--point-timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Wall-clock limit per point; a point past it becomes an error row (its worker is "
                   "killed if it will not stop). Default: derived from the scenario (at least 300 s); 0 = none.")
@dry_run_option
@quiet_option()
@strict_option
@friendly
def sweep_cmd(target: str, grids: tuple[str, ...], zips: tuple[str, ...], sets: tuple[str, ...],
              variants: tuple[str, ...], all_variants: bool, reps: int | None, seed: int | None,
              jobs: int | None, dask_address: str | None, out: str, resume: bool, retry_errors: bool,
              overwrite: bool, point_timeout: float | None, dry_run: bool, quiet: bool, strict: bool) -> None:
    """Run SCENARIO over a grid of parameters x variants x replications, in parallel.

    Rows are written as points finish: interrupt it and run again with --resume to run
    only the missing points.
    """
    from simres.experiments.executors import make_executor  # light: the heavy imports come after the start

    if variants and all_variants:
        raise click.UsageError("--variant and --all-variants exclude each other")
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    if retry_errors and not resume:
        raise click.UsageError("--retry-errors needs --resume")
    check_out_path(out)
    # started now: local workers get ready while the design is planned and checked (closed at the end,
    # also when planning fails)
    executor = make_executor(jobs=jobs, dask=dask_address)
    click.get_current_context().call_on_close(executor.close)
    if not dry_run:
        executor.start()
    from simres.errors import SweepError
    from simres.experiments.design import is_sweep_file, load_sweep, parse_axis, plan_sweep, validate_spec
    from simres.experiments.sweeping import resolve_point_timeout, run_sweep
    from simres.scenario.loading import load_scenario, parse_overrides

    if is_sweep_file(target):
        spec = load_sweep(target)
        data = spec.model_dump()
        source = target
    else:
        data = {"scenario": target}
        source = "sweep"
    for key, extra in (("grid", parse_axis(grids, flag="--grid")), ("zip", parse_axis(zips, flag="--zip")),
                       ("overrides", parse_overrides(sets))):
        both = set(extra) & set(data.get(key) or {})
        if both:
            raise SweepError(f"--{'set' if key == 'overrides' else key} {sorted(both)[0]}: already in {target}")
        data[key] = {**(data.get(key) or {}), **extra}
    if reps is not None:
        data["reps"] = reps
    if seed is not None:
        data["seed"] = seed
    if variants or all_variants:
        data["variants"] = "all" if all_variants else list(variants)
    spec = validate_spec(data, source=source)
    plan = plan_sweep(spec, source=source)
    # the scenario as every point starts from it: as written, then the sweep's --set overrides
    announce(load_scenario(plan.scenario, overrides=spec.overrides or None), strict=strict, label=target)
    where = Path(out)
    limit = resolve_point_timeout(point_timeout, plan.scenario)
    if not quiet or dry_run:
        shown = f"{limit:.0f} s" if limit else "none"
        click.echo(f"{plan.scenario.name}: {plan} on {executor.describe()} -> {where} (point timeout {shown})",
                   err=not dry_run)
    announce_estimate(plan.scenario, runs=len(plan.points), workers=getattr(executor, "workers", 1) or 1,
                      overrides=spec.overrides or None, quiet=quiet, dry_run=dry_run)
    if dry_run:
        executor.close()
        return
    if overwrite and where.exists():
        shutil.rmtree(where) if where.is_dir() else where.unlink()
    t0 = time.perf_counter()
    try:
        df = run_sweep(spec, executor=executor, out=where, resume=resume, retry_errors=retry_errors,
                       progress=not quiet, plan=plan, point_timeout=limit or 0)
    except KeyboardInterrupt:
        click.echo(f"interrupted: the finished points are in {where}; run again with --resume "
                   "to run only the missing ones", err=True)
        sys.exit(130)
    finally:
        executor.close()
    errors = df[df["error"].notna()]
    click.echo(f"{len(df)} rows ({len(errors)} with errors) in {time.perf_counter() - t0:.1f}s; wrote {where}")
    if len(errors):
        click.echo(f"first error ({errors.iloc[0]['run_id']}): {errors.iloc[0]['error']}", err=True)
    if len(df) and len(errors) == len(df):
        click.echo("error: every point failed", err=True)
        sys.exit(1)


@click.command(name="best", short_help="Choose the best setting of a sweep under constraints.",
               epilog=examples('simres best results/retries.parquet --minimize latency_p99 '
                               '--subject-to "success_rate >= 0.999"',
                               "simres best results/capacity.parquet --maximize goodput --conservative --top 3"))
@click.argument("results", type=click.Path())
@click.option("--minimize", metavar="METRIC", default=None, help="Metric to minimise (e.g. latency_all_p99).")
@click.option("--maximize", metavar="METRIC", default=None,
              help="Metric to maximise (e.g. goodput) [default: the swept scenario's objective: primary metric and "
                   "constraints, else --maximize success_rate].")
@click.option("--subject-to", "constraints", multiple=True, metavar="'METRIC OP NUMBER'",
              help="Constraint on a metric's mean, e.g. 'success_rate >= 0.999' (repeatable).")
@click.option("--conservative", is_flag=True,
              help="Apply constraints to the pessimistic end of the confidence interval instead of the mean.")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the intervals and tests.")
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True, help="Runners-up to show.")
@friendly
def best_cmd(results: str, minimize: str | None, maximize: str | None, constraints: tuple[str, ...],
             conservative: bool, confidence: float, top: int) -> None:
    """Pick the best setting of a sweep's RESULTS under constraints.

    Prints the settings statistically indistinguishable from the best mean (paired t-tests
    over replicates, Holm-corrected), the one chosen among them by a fixed rule (the best
    pessimistic bound, then the fewest tries per request), parameters with no measurable
    effect, and the --set overrides and YAML that reproduce it. Exits 1 if no
    configuration satisfies the constraints.
    """
    from simres.experiments.choosing import NoFeasibleSetting, best, parse_constraint

    for text in constraints:
        parse_constraint(text)  # a malformed constraint is an error before any results are read
    try:
        choice = best(results, minimize=minimize, maximize=maximize, subject_to=constraints,
                      conservative=conservative, confidence=confidence, top=top)
    except NoFeasibleSetting as e:
        click.echo(f"no feasible setting: {e}", err=True)
        sys.exit(1)
    click.echo(str(choice))
