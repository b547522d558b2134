"""The commands that run a scenario: ``run``, ``show``, ``compare`` and ``list``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from simres.cli._util import (
    check_out_path,
    command_executor,
    dry_run_option,
    examples,
    friendly,
    jobs_option,
    out_option,
    quiet_option,
    reps_option,
    seed_option,
    set_option,
    sim_progress,
    write_frame,
)
from simres.cli.check import announce, strict_option
from simres.cli.estimate import announce_estimate, workers_for
from simres.cli.summary_view import hidden_note, print_table, summary_json
from simres.cli.summary_view import summary_table as view_table
from simres.cli.trace import check_trace_flags, check_trace_path, export_trace, trace_options
from simres.errors import SimresError
from simres.metrics.display import grouped_rows


@click.command(short_help="Run a scenario once (or --reps N) and print its summary.",
               epilog=examples("simres run baseline",
                               "simres run baseline --set services.db.workers=2 --metrics 'latency_*'",
                               "simres run retry-storm-metastable --all-variants -n 5 -o results/storm",
                               "simres run baseline --json | jq .summary.latency_p99",
                               "simres run baseline --set duration=1e5 --stream results/long",
                               "simres run dependency-outage-breaker --trace run.otlp.jsonl --trace-sample failures",
                               "simres run dependency-outage-breaker --variant breaker -o results/dob --log"))
@click.argument("scenario")
@seed_option()
@set_option()
@click.option("--variant", default=None, metavar="NAME", help="Apply one of the scenario's variants.")
@click.option("--all-variants", is_flag=True, help="Run every variant with common random numbers and compare.")
@reps_option(1, what="per variant (more than 1: mean and 95% CI)")
@out_option("directory", "the frames (requests, attempts, timeline, events, summary), or replications.FORMAT "
            "with --reps/--all-variants.")
@click.option("--stream", "stream", default=None, metavar="DIR",
              help="Bounded memory for long runs: write the requests and attempts frames to DIR/*.parquet in "
                   "chunks as the run goes (plus timeline, events, summary at the end) and keep only mergeable "
                   "summaries in memory, as with record: summary (single runs only).")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True,
              help="Output format of the files --out writes.")
@quiet_option()
@click.option("--metrics", "-m", "metrics", multiple=True, metavar="PATTERN",
              help="Metrics to show, by name or glob (repeatable; 'all' = every key) [default: the grouped view].")
@click.option("--json", "as_json", is_flag=True, help="Print the whole summary as JSON (for scripts).")
@trace_options
@click.option("--log", "log", is_flag=False, flag_value="", default=None, metavar="[FILE]",
              help="Also write every decision (breaker transitions with their evidence, retries, budget answers, "
                   "refusals, faults) as JSON lines to FILE; --log alone with --out DIR writes "
                   "DIR/decisions.jsonl. Read it with simres explain (docs/observability.md).")
@dry_run_option
@jobs_option
@strict_option
@friendly
def run(scenario: str, seed: int | None, sets: tuple[str, ...], variant: str | None, all_variants: bool,
        reps: int, out: str | None, stream: str | None, fmt: str, quiet: bool, metrics: tuple[str, ...], as_json: bool,
        trace: str | None, trace_format: str, trace_sample: str, trace_epoch: str | None, log: str | None,
        dry_run: bool, strict: bool, jobs: int | None) -> None:
    """Run SCENARIO (a file or a bundled name) and print its summary.

    The summary is grouped (requests, latency, failures, work, services, breakers,
    faults, stability) with units; rows without data are hidden. With --reps N or
    --all-variants it runs replications and prints a comparison instead.
    """
    if out:
        check_out_path(out)
    if stream:
        if all_variants or reps > 1:
            raise click.UsageError("--stream writes the frames of one run; it excludes --reps and --all-variants")
        check_out_path(stream, flag="--stream")
        try:
            Path(stream).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SimresError(f"--stream {stream}: cannot write results there: {e.strerror or e}") from None
    if all_variants and variant:
        raise click.UsageError("--variant and --all-variants exclude each other")
    if trace and (all_variants or reps > 1):
        raise click.UsageError("--trace writes the requests of one run; it excludes --reps and --all-variants")
    if trace:
        check_trace_path(trace, "--trace")
    log_path = _log_path(log, out, all_variants or reps > 1)
    # started first: the workers get ready while the modules are imported and the scenario is
    # loaded, checked and estimated
    ex = command_executor(jobs, needed=(all_variants or reps > 1) and not dry_run)
    from simres.scenario.loading import load_scenario, parse_overrides

    overrides = parse_overrides(sets)
    sc = load_scenario(scenario, overrides=overrides)
    announce(load_scenario(scenario, variant=variant, overrides=overrides) if variant else sc,
             variants=list(sc.variants) if all_variants else (), strict=strict, label=scenario,
             source=scenario, overrides=overrides)
    if trace:
        from simres.model.faults import fault_name

        traced = load_scenario(scenario, variant=variant, overrides=overrides) if variant else sc
        check_trace_flags(trace_sample, trace_epoch,
                          faults=[fault_name(f, i) for i, f in enumerate(traced.faults)], prefix="--trace-")
    if all_variants or reps > 1:
        from simres.experiments.replications import compare_table, replicate

        if all_variants and not sc.variants:
            raise SimresError(f"{scenario}: variants: the scenario defines no variants")
        names = list(sc.variants) if all_variants else [variant]
        tasks = len(names) * reps
        announce_estimate(scenario, runs=tasks, workers=workers_for(jobs, tasks), overrides=overrides,
                          quiet=quiet, dry_run=dry_run)
        if dry_run:
            return
        df = replicate(scenario, variants=names, reps=reps, seed=seed, overrides=overrides,
                       progress=not quiet, executor=ex)
        click.echo(compare_table(df, controls=sc.controls))
        if out:
            write_frame(df, Path(out) / f"replications.{fmt}")
        return
    if dry_run:
        announce_estimate(scenario, runs=1, workers=1, overrides=overrides, dry_run=True)
        return
    from simres.experiments.runs import run as run_once

    prog = sim_progress(sc.name, enabled=not quiet)
    try:
        # the variant first, then --set (the explicit flag wins): the scenario `show` prints
        result = run_once(scenario, seed=seed, variant=variant, overrides=overrides, progress=prog, stream=stream,
                          decision_log=log_path)
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
        if result.record == "summary":
            from simres.metrics.streaming import UNAVAILABLE

            click.echo(f"record: summary: not computed (they need the whole frame): {', '.join(UNAVAILABLE)}")
    if stream:
        click.echo(f"streamed to {stream}: requests.parquet, attempts.parquet (in chunks), timeline.parquet, "
                   "events.parquet, summary.parquet; read them with simres.read_stream")
    if out:
        paths = result.write(out, fmt)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}")
    if trace:
        frames: Any = result
        if stream:
            from types import SimpleNamespace

            from simres.experiments.spill import read_stream

            frames = SimpleNamespace(**read_stream(stream), seed=result.seed)  # the frames it streamed
        export_trace(frames, trace, trace_format, trace_sample, trace_epoch, prefix="--trace-", quiet=quiet)
    if log_path is not None:
        if result.decision_log_error is not None:
            click.echo(f"error: {result.decision_log_error} (the run's results above are complete)", err=True)
            raise SystemExit(1)
        size = result.decision_log.stat().st_size if result.decision_log is not None else 0
        click.echo(f"wrote {log_path}: {result.decision_log_lines:,} decisions, {size / 1e6:.1f} MB")


def _log_path(log: str | None, out: str | None, many: bool) -> Path | None:
    """Where ``--log`` writes: FILE, or ``DIR/decisions.jsonl`` for ``--log`` alone with
    ``--out DIR``; refused (one line, exit 2) before any work when it cannot be."""
    if log is None:
        return None
    if many:
        raise click.UsageError("--log writes the decisions of one run; it excludes --reps and --all-variants")
    if log == "":
        if not out:
            raise click.UsageError("--log without a FILE needs --out DIR (it writes DIR/decisions.jsonl)")
        return Path(out) / "decisions.jsonl"
    check_trace_path(log, "--log")
    return Path(log)


@click.command(short_help="Print a scenario resolved, every default filled in, as YAML.",
               epilog=examples("simres show baseline", "simres show baseline --variant peak-load --set duration=30"))
@click.argument("scenario")
@set_option()
@click.option("--variant", default=None, metavar="NAME", help="Apply one of the scenario's variants.")
@friendly
def show(scenario: str, sets: tuple[str, ...], variant: str | None) -> None:
    """Print SCENARIO fully resolved, every default filled in, as YAML."""
    from simres.experiments.runs import scenario_yaml
    from simres.scenario.loading import load_scenario, parse_overrides

    sc = load_scenario(scenario, overrides=parse_overrides(sets), variant=variant)
    click.echo(scenario_yaml(sc), nl=False)


@click.command(short_help="Compare every variant over replications: intervals, verdict.",
               epilog=examples("simres compare retry-storm-metastable",
                               "simres compare retry-storm-metastable -n 10 -j 4 --metrics 'latency_*' "
                               "--metrics success_rate",
                               "simres compare baseline --variant normal --variant peak-load -o cmp.csv"))
@click.argument("scenario")
@reps_option(5, minimum=2)
@seed_option()
@set_option("applied to every variant")
@click.option("--variant", "variants", multiple=True, metavar="NAME", help="Run only these variants (repeatable).")
@click.option("--metrics", "-m", "--metric", "metrics", multiple=True, metavar="PATTERN",
              help="Metrics to show, by name or glob (repeatable; 'all' = every key) [default: up to 16 "
                   "headline metrics; the last line says how many more there are].")
@out_option("file", "the replications, one row per run (.parquet or .csv, by the suffix).")
@quiet_option()
@dry_run_option
@jobs_option
@strict_option
@friendly
def compare(scenario: str, reps: int, seed: int | None, sets: tuple[str, ...], variants: tuple[str, ...],
            metrics: tuple[str, ...], out: str | None, quiet: bool, dry_run: bool, strict: bool,
            jobs: int | None) -> None:
    """Run every variant of SCENARIO with common random numbers and compare them.

    Prints, per metric, each variant's mean and 95% confidence interval in the metric's
    unit, marks the best (never a control, never a descriptive metric such as
    utilisation), and says whether each difference from the best is significant (paired
    t-test across replications). Recovery after faults is the share of replications that
    recovered, with its Wilson interval. At most 120 columns: variants that do not fit
    continue below. Then the verdict: the scenario's objective, every variant against
    its reference, controls shown but not ranked.
    """
    # started first: the workers get ready while the modules are imported and the scenario is
    # loaded, checked and estimated
    ex = command_executor(jobs, needed=not dry_run)
    from simres.cli.summary_view import bullet_lines
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
    tasks = len(names) * reps
    announce_estimate(scenario, runs=tasks, workers=workers_for(jobs, tasks), overrides=overrides, quiet=quiet,
                      dry_run=dry_run)
    if dry_run:
        return
    df = replicate(scenario, variants=names, reps=reps, seed=seed, overrides=overrides, progress=not quiet,
                   executor=ex)
    chosen = metric_columns(df, metrics) if metrics else None
    click.echo(compare_table(df, metrics=chosen, controls=sc.controls))
    from simres.reporting.verdicts import verdicts

    ref = sc.reference if sc.reference in names else None
    click.echo("\nverdict:")
    click.echo(bullet_lines(verdicts(df, reference=ref, objective=sc.objective,
                                     controls=[c for c in sc.controls if c in names])))
    if out:
        write_frame(df, Path(out))


@click.command(name="list", short_help="List the bundled scenarios and their variants.",
               epilog=examples("simres list", "simres run $(simres list | head -1 | cut -d' ' -f1)"))
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


def metric_columns(df: Any, patterns: tuple[str, ...]) -> list[str]:
    """The metric columns of a replications frame that ``--metrics`` picks (names or globs, ``all``)."""
    import fnmatch

    import pandas as pd

    ids = {"scenario", "variant", "replicate", "seed", "wall_time", "run_id", "error"}
    cols = [c for c in df.columns if c not in ids and pd.api.types.is_numeric_dtype(df[c])]
    if "all" in patterns:
        return cols
    for p in patterns:
        if not any(fnmatch.fnmatchcase(c, p) for c in cols):
            raise SimresError(f"--metrics: unknown metric '{p}' (no column matches; e.g. latency_p99, "
                              "'latency_*', all)")
    return [c for c in cols if any(fnmatch.fnmatchcase(c, p) for p in patterns)]
