"""``simres tune``: search a scenario's parameters with Optuna, with replications and racing.

Thin: parse flags, call :func:`simres.experiments.tuning.tune`, print. Bad input exits 2 with
one line; no feasible setting exits 1; Ctrl-C keeps the finished trials and exits 130.
"""

from __future__ import annotations

import sys

import click

from simres.cli._util import (
    check_out_path,
    command_executor,
    examples,
    friendly,
    out_option,
    quiet_option,
    reps_option,
    seed_option,
    set_option,
)


@click.command(name="tune", short_help="Search parameters with Optuna: replications, racing, resumable.",
               epilog=examples("simres tune baseline --param services.api.handler.calls.0.timeout=0.05:1 \\",
                               "    --minimize latency_all_p99 --subject-to 'success_rate >= 0.999' -o results/tune",
                               "simres tune chaos-error-injection --param 'services.api.handler.calls.db.retry="
                               "{max_attempts: 1},{max_attempts: 3}' -o t",
                               "simres tune baseline --param clients.web.timeout=0.2:3:log --across normal,peak-load "
                               "--aggregate worst -o t",
                               "simres tune scenarios/tune/hedging-delay.yaml -o results/hedge-tune --resume",
                               note="A TUNE_FILE (YAML with top-level 'scenario' and 'params' keys) holds the same "
                                    "settings; flags given here are added to it or replace its values."))
@click.argument("target", metavar="SCENARIO|TUNE_FILE")
@click.option("--param", "params", multiple=True, metavar="PATH=LO:HI|PATH=LO:HI:int|PATH=A,B,C",
              help="A parameter to tune: a float range, an integer range (':int'; ':log' for a log scale), "
                   "or choices as for sweep's --grid (repeatable).")
@click.option("--minimize", multiple=True, metavar="METRIC", help="Metric to minimise (repeatable: several "
                                                                  "objectives give a Pareto front).")
@click.option("--maximize", multiple=True, metavar="METRIC",
              help="Metric to maximise (repeatable) [default: the scenario's objective: primary metric].")
@click.option("--subject-to", "constraints", multiple=True, metavar="'METRIC OP NUMBER'",
              help="Constraint on a metric's mean, e.g. 'success_rate >= 0.999' (repeatable).")
@click.option("--trials", type=click.IntRange(min=1), default=None, metavar="N",
              help="Settings Optuna proposes [default: 30, or the tune file's].")
@reps_option(None, minimum=2, what="per trial at most (racing stops a clear loser after --min-reps) "
                                   "[default: 10, or the tune file's]")
@click.option("--min-reps", type=click.IntRange(min=2), default=None, metavar="N",
              help="Replications every trial gets first [default: min(reps, 3)].")
@click.option("--batch", type=click.IntRange(min=1), default=None, metavar="N",
              help="Trials proposed at once and run in parallel [default: 4]. Part of the study: results "
                   "depend on it, not on --jobs.")
@set_option("fixed for every trial")
@click.option("--across", metavar="V1,V2,...", default=None,
              help="Tune across these variants of the scenario (robust tuning; see --aggregate).")
@click.option("--also", multiple=True, metavar="SCENARIO",
              help="Also tune across this scenario (repeatable; the parameters must apply to each).")
@click.option("--aggregate", type=click.Choice(["worst", "mean"]), default=None,
              help="How the objective combines over --across/--also members [default: worst].")
@click.option("--weights", metavar="W1,W2,...", default=None, help="Weights of the members, with --aggregate mean.")
@seed_option()
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
              help="Worker processes [default: one per core; 1 = in this process]. Results are identical "
                   "for any N. With --dask local: the number of Dask workers.")
@click.option("--dask", "dask_address", metavar="ADDRESS|local", default=None,
              help="Run on Dask: a scheduler address (tcp://host:8786) or 'local' for a LocalCluster.")
@out_option("directory", "the study (study.db, SQLite), trials.parquet/.csv, runs.parquet and best.yaml.",
            required=True)
@click.option("--resume", is_flag=True, help="Continue the study in --out (finished trials are kept, not re-run).")
@click.option("--overwrite", is_flag=True, help="Delete an existing study in --out first.")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Confidence level of the intervals, racing and tie tests [default: 0.95].")
@quiet_option()
@friendly
def tune_cmd(target: str, params: tuple[str, ...], minimize: tuple[str, ...], maximize: tuple[str, ...],
             constraints: tuple[str, ...], trials: int | None, reps: int | None, min_reps: int | None,
             batch: int | None, sets: tuple[str, ...], across: str | None, also: tuple[str, ...],
             aggregate: str | None, weights: str | None, seed: int | None, jobs: int | None,
             dask_address: str | None, out: str, resume: bool, overwrite: bool, confidence: float | None,
             quiet: bool) -> None:
    """Search SCENARIO's parameters for the best setting (Optuna: TPE, or NSGA-II for several objectives).

    Every trial runs replications with common random numbers; a trial that clearly loses
    stops after its first ones, a close one gets more (racing). Prints the best setting with
    intervals, the settings indistinguishable from it, the --set flags and YAML that reproduce
    it, and writes DIR/best.yaml (the scenario with the setting applied). Exits 1 if no
    trial satisfies the constraints.
    """
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    check_out_path(out)
    executor = command_executor(jobs, dask=dask_address)
    from simres.errors import SweepError
    from simres.experiments.choosing import parse_constraint
    from simres.experiments.design import parse_axis
    from simres.experiments.executors import SerialExecutor
    from simres.experiments.tuning import is_tune_file, load_tune, parse_params, tune, validate_tune_spec
    from simres.scenario.loading import parse_overrides

    for text in constraints:
        parse_constraint(text)
    if is_tune_file(target):
        data = load_tune(target)
        source = target
    else:
        data = {"scenario": target}
        source = "tune"
    for key, extra in (("params", parse_params(params)), ("overrides", parse_overrides(sets))):
        both = set(extra) & set(data.get(key) or {})
        if both:
            raise SweepError(f"--{'set' if key == 'overrides' else 'param'} {sorted(both)[0]}: already in {target}")
        data[key] = {**(data.get(key) or {}), **extra}
    if not data.get("params"):
        raise SweepError("--param: give at least one parameter to tune, e.g. --param clients.web.timeout=0.1:2")
    if minimize or maximize:
        data["minimize"], data["maximize"] = list(minimize), list(maximize)
    if constraints:
        prior = data.get("subject_to") or []
        data["subject_to"] = [*([prior] if isinstance(prior, str) else prior), *constraints]
    if across is not None:
        names = [v.strip() for v in across.split(",")]
        if not all(names):
            raise SweepError(f"--across {across!r}: expected variant names separated by commas")
        data["across"] = names
    if also:
        data["also"] = [*(data.get("also") or []), *also]
    if weights is not None:
        try:
            data["weights"] = [float(w) for w in parse_axis([f"w={weights}"], flag="--weights")["w"]]
        except (TypeError, ValueError):
            raise SweepError(f"--weights {weights!r}: expected numbers separated by commas, e.g. 1,2") from None
    for key, value in (("trials", trials), ("reps", reps), ("min_reps", min_reps), ("batch", batch),
                       ("seed", seed), ("aggregate", aggregate), ("confidence", confidence)):
        if value is not None:
            data[key] = value
    spec = validate_tune_spec(data, source=source)
    try:
        result = tune(spec, executor=executor or SerialExecutor(), out=out, resume=resume, overwrite=overwrite,
                      progress=not quiet, source=source)
    except KeyboardInterrupt:
        click.echo(f"interrupted: the finished trials are in {out}/study.db; run again with --resume "
                   "to continue the study", err=True)
        sys.exit(130)
    click.echo(str(result))
    if result.choice is None and result.front is None:
        click.echo("no feasible setting: no trial satisfies the constraints", err=True)
        sys.exit(1)
    if result.front is not None and not len(result.front):
        click.echo("no feasible setting: no trial satisfies the constraints", err=True)
        sys.exit(1)
