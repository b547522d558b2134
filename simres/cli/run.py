"""The commands that run a scenario: ``run``, ``show``, ``compare`` and ``list``."""

from __future__ import annotations

from pathlib import Path

import click

from simres.cli._util import SEED, check_out_path, executor_for, friendly, jobs_option, sim_progress, write_frame
from simres.cli.check import announce, strict_option
from simres.cli.summary_view import hidden_note, print_table, summary_json
from simres.cli.summary_view import summary_table as view_table
from simres.errors import SimresError
from simres.metrics.display import grouped_rows


@click.command()
@click.argument("scenario")
@click.option("--seed", type=SEED, default=None, help="Root seed (default: the scenario's).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a field by dotted path (repeatable).")
@click.option("--variant", default=None, help="Apply one of the scenario's variants.")
@click.option("--all-variants", is_flag=True, help="Run every variant with common random numbers and compare.")
@click.option("--reps", type=click.IntRange(min=1), default=1, show_default=True,
              help="Independent replications (mean and 95% CI).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Directory to write the frames to.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--metrics", "metrics", multiple=True, metavar="PATTERN",
              help="Show these summary keys instead of the grouped view (glob, repeatable; 'all' = every key).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole summary as JSON (for scripts).")
@jobs_option
@strict_option
@friendly
def run(scenario: str, seed: int | None, sets: tuple[str, ...], variant: str | None, all_variants: bool,
        reps: int, out: str | None, fmt: str, quiet: bool, metrics: tuple[str, ...], as_json: bool,
        strict: bool, jobs: int | None) -> None:
    """Run SCENARIO (a file or a bundled name) and print its summary.

    The summary is grouped (requests, latency, failures, work, services, breakers,
    faults, stability) with units; rows without data are hidden. Example:

        simres run baseline --set services.db.workers=2 --metrics 'latency_*'
    """
    if out:
        check_out_path(out)
    from simres.scenario.loading import load_scenario, parse_overrides

    overrides = parse_overrides(sets)
    if all_variants and variant:
        raise click.UsageError("--variant and --all-variants exclude each other")
    sc = load_scenario(scenario, overrides=overrides)
    announce(load_scenario(scenario, variant=variant, overrides=overrides) if variant else sc,
             variants=list(sc.variants) if all_variants else (), strict=strict, label=scenario,
             source=scenario, overrides=overrides)
    if all_variants or reps > 1:
        from simres.experiments.replications import compare_table, replicate

        if all_variants and not sc.variants:
            raise SimresError(f"{scenario}: variants: the scenario defines no variants")
        names = list(sc.variants) if all_variants else [variant]
        with executor_for(jobs, len(names) * reps) as ex:
            df = replicate(scenario, variants=names, reps=reps, seed=seed, overrides=overrides,
                           progress=not quiet, executor=ex)
        click.echo(compare_table(df, controls=sc.controls))
        if out:
            write_frame(df, Path(out) / f"replications.{fmt}")
        return
    from simres.experiments.runs import run as run_once

    prog = sim_progress(sc.name, enabled=not quiet)
    try:
        # the variant first, then --set (the explicit flag wins): the scenario `show` prints
        result = run_once(scenario, seed=seed, variant=variant, overrides=overrides, progress=prog)
    finally:
        prog.close()
    if as_json:
        click.echo(summary_json(result.summary, {"scenario": sc.name, "variant": variant, "seed": result.seed,
                                                 "wall_time": result.wall_time}))
    else:
        span = result.scenario.duration - result.scenario.warmup
        title = (f"{sc.name}" + (f" [{variant}]" if variant else "")
                 + f": seed {result.seed}, {span:g} s measured ({result.scenario.warmup:g} s warm-up),"
                 f" {result.wall_time:.2f} s wall")
        print_table(view_table(result.summary, title=title, metrics=metrics), title=title)
        if not metrics:
            click.echo(hidden_note(result.summary, grouped_rows(result.summary)))
    if out:
        paths = result.write(out, fmt)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}")


@click.command()
@click.argument("scenario")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a field by dotted path (repeatable).")
@click.option("--variant", default=None, help="Apply one of the scenario's variants.")
@friendly
def show(scenario: str, sets: tuple[str, ...], variant: str | None) -> None:
    """Print SCENARIO fully resolved, every default filled in, as YAML."""
    from simres.experiments.runs import scenario_yaml
    from simres.scenario.loading import load_scenario, parse_overrides

    sc = load_scenario(scenario, overrides=parse_overrides(sets), variant=variant)
    click.echo(scenario_yaml(sc), nl=False)


@click.command()
@click.argument("scenario")
@click.option("--reps", type=click.IntRange(min=2), default=5, show_default=True, help="Replications per variant.")
@click.option("--seed", type=SEED, default=None, help="Root seed (default: the scenario's).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a field for every variant.")
@click.option("--variant", "variants", multiple=True, help="Compare only these variants (repeatable).")
@click.option("--metrics", "--metric", "metrics", multiple=True, metavar="METRIC",
              help="Show only these metrics (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the replications (.parquet or .csv).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@jobs_option
@strict_option
@friendly
def compare(scenario: str, reps: int, seed: int | None, sets: tuple[str, ...], variants: tuple[str, ...],
            metrics: tuple[str, ...], out: str | None, quiet: bool, strict: bool, jobs: int | None) -> None:
    """Run every variant of SCENARIO with common random numbers and compare them.

    Prints, per metric, each variant's mean and 95% confidence interval, marks the best
    (never a control, never a descriptive metric such as utilisation), and says whether
    each difference from the best is significant (paired t-test across replications).
    Recovery after faults is reported as the share of replications that stayed stuck, with
    a binomial interval. Then the verdict: the scenario's objective, every variant against
    its reference, controls shown but not ranked.
    """
    from simres.experiments.replications import compare_table, replicate
    from simres.scenario.loading import load_scenario, parse_overrides

    overrides = parse_overrides(sets)
    sc = load_scenario(scenario, overrides=overrides)
    if not sc.variants and not variants:
        raise SimresError(f"{scenario}: variants: the scenario defines no variants to compare")
    unknown = [v for v in variants if v not in sc.variants]
    if unknown:
        raise SimresError(f"--variant: unknown variant '{unknown[0]}' (variants: {', '.join(sc.variants)})")
    names = list(variants) or list(sc.variants)
    announce(sc, variants=names, strict=strict, label=scenario, source=scenario, overrides=overrides)
    with executor_for(jobs, len(names) * reps) as ex:
        df = replicate(scenario, variants=names, reps=reps, seed=seed, overrides=overrides, progress=not quiet,
                       executor=ex)
    if metrics:
        missing = [m for m in metrics if m not in df.columns]
        if missing:
            raise SimresError(f"--metric: unknown metric '{missing[0]}'")
    click.echo(compare_table(df, metrics=list(metrics) or None, controls=sc.controls))
    from simres.reporting.verdicts import verdicts

    ref = sc.reference if sc.reference in names else None
    click.echo("\nverdict:")
    for line in verdicts(df, reference=ref, objective=sc.objective, controls=[c for c in sc.controls if c in names]):
        click.echo(f"- {line}")
    if out:
        write_frame(df, Path(out))


@click.command(name="list")
@friendly
def list_scenarios() -> None:
    """List the bundled scenarios with a one-line description and their variants."""
    from simres.scenario.loading import bundled_scenarios, load_scenario

    rows = []
    for name, path in bundled_scenarios().items():
        sc = load_scenario(path)
        first = (sc.description.strip().splitlines() or [""])[0]
        rows.append((name, first, ", ".join(sc.variants) or "-"))
    if not rows:
        click.echo("no bundled scenarios found")
        return
    w = max(len(r[0]) for r in rows)
    for name, desc, variants in rows:
        click.echo(f"{name:<{w}}  {desc}")
        click.echo(f"{'':<{w}}  variants: {variants}")
