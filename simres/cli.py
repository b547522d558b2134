"""The ``simres`` command line: thin click commands that parse, call the API and print.

Bad input (a scenario file, an override, a flag) prints one line naming the field and
what was expected, and exits with status 2; never a traceback.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import click

from simres import __version__
from simres.cli_util import friendly
from simres.errors import SimresError

KEY_METRICS = (
    "count", "success_rate", "goodput", "throughput", "latency_mean", "latency_p50", "latency_p90",
    "latency_p99", "latency_p999", "latency_all_p99", "tries_per_request",
)


class _Progress:
    """A progress bar of simulated time that appears only for runs longer than ~2 s."""

    def __init__(self, label: str, enabled: bool = True):
        self.label = label
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.bar: Any = None

    def __call__(self, now: float, end: float) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        if self.bar is None:
            if elapsed < 0.5 or elapsed / max(now / end, 1e-9) < 2.0:
                return
            from tqdm import tqdm

            self.bar = tqdm(total=round(end, 3), desc=self.label, unit="sim s", leave=False,
                            file=sys.stderr,
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} sim s [{elapsed}<{remaining}]")
        self.bar.n = round(now, 3)
        self.bar.refresh()
        if now >= end:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def format_value(v: Any) -> str:
    """A compact rendering of a metric value."""
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if v.is_integer() and abs(v) < 1e12:
            return str(int(v))
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def summary_table(summary: dict[str, float]) -> str:
    """The summary as aligned ``metric  value`` lines, key metrics first."""
    keys = [k for k in KEY_METRICS if k in summary] + sorted(k for k in summary if k not in KEY_METRICS)
    width = max((len(k) for k in keys), default=10)
    return "\n".join(f"{k:<{width}}  {format_value(summary[k])}" for k in keys)


def _write_frame(df: Any, target: Path) -> None:
    """Write a results frame as CSV (``.csv``) or Parquet (anything else) and say where."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".csv":
        df.to_csv(target, index=False)
    else:
        df.to_parquet(target, index=False)
    click.echo(f"wrote {target}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="simres")
def main() -> None:
    """simres: simulate resilience policies against injected failures."""


@main.command()
@click.argument("scenario")
@click.option("--seed", type=int, default=None, help="Root seed (default: the scenario's).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a field by dotted path (repeatable).")
@click.option("--variant", default=None, help="Apply one of the scenario's variants.")
@click.option("--all-variants", is_flag=True, help="Run every variant with common random numbers and compare.")
@click.option("--reps", type=click.IntRange(min=1), default=1, show_default=True,
              help="Independent replications (mean and 95% CI).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Directory to write the frames to.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly
def run(scenario: str, seed: int | None, sets: tuple[str, ...], variant: str | None, all_variants: bool,
        reps: int, out: str | None, fmt: str, quiet: bool) -> None:
    """Run SCENARIO (a file or a bundled name) and print its summary."""
    from simres.scenario import load_scenario, parse_overrides

    overrides = parse_overrides(sets)
    if all_variants and variant:
        raise click.UsageError("--variant and --all-variants exclude each other")
    sc = load_scenario(scenario, overrides=overrides)
    if all_variants or reps > 1:
        from simres.experiment import compare_table, replicate

        if all_variants and not sc.variants:
            raise SimresError(f"{scenario}: variants: the scenario defines no variants")
        names = list(sc.variants) if all_variants else [variant]
        df = replicate(sc, variants=names, reps=reps, seed=seed, progress=not quiet)
        click.echo(compare_table(df))
        if out:
            _write_frame(df, Path(out) / f"replications.{fmt}")
        return
    from simres.runs import run as run_once

    prog = _Progress(sc.name, enabled=not quiet)
    try:
        result = run_once(sc, seed=seed, variant=variant, progress=prog)
    finally:
        prog.close()
    title = f"{sc.name}" + (f" [{variant}]" if variant else "") + f"  seed={result.seed}  wall={result.wall_time:.2f}s"
    click.echo(title)
    click.echo(summary_table(result.summary))
    if out:
        paths = result.write(out, fmt)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}")


@main.command()
@click.argument("scenario")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a field by dotted path (repeatable).")
@click.option("--variant", default=None, help="Apply one of the scenario's variants.")
@friendly
def show(scenario: str, sets: tuple[str, ...], variant: str | None) -> None:
    """Print SCENARIO fully resolved, every default filled in, as YAML."""
    from simres.runs import scenario_yaml
    from simres.scenario import load_scenario, parse_overrides

    sc = load_scenario(scenario, overrides=parse_overrides(sets), variant=variant)
    click.echo(scenario_yaml(sc), nl=False)


@main.command()
@click.argument("scenario")
@click.option("--reps", type=click.IntRange(min=2), default=10, show_default=True, help="Replications per variant.")
@click.option("--seed", type=int, default=None, help="Root seed (default: the scenario's).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a field for every variant.")
@click.option("--variant", "variants", multiple=True, help="Compare only these variants (repeatable).")
@click.option("--metric", "metrics", multiple=True, help="Show only these metrics (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the replications (.parquet or .csv).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly
def compare(scenario: str, reps: int, seed: int | None, sets: tuple[str, ...], variants: tuple[str, ...],
            metrics: tuple[str, ...], out: str | None, quiet: bool) -> None:
    """Run every variant of SCENARIO with common random numbers and compare them.

    Prints, per metric, each variant's mean and 95% confidence interval, marks the best,
    and says whether each difference from the best is significant (paired t-test across
    replications). Recovery after faults is reported as the share of replications that
    stayed stuck, with a binomial interval.
    """
    from simres.experiment import compare_table, replicate
    from simres.scenario import load_scenario, parse_overrides

    sc = load_scenario(scenario, overrides=parse_overrides(sets))
    if not sc.variants and not variants:
        raise SimresError(f"{scenario}: variants: the scenario defines no variants to compare")
    unknown = [v for v in variants if v not in sc.variants]
    if unknown:
        raise SimresError(f"--variant: unknown variant '{unknown[0]}' (variants: {', '.join(sc.variants)})")
    names = list(variants) or list(sc.variants)
    df = replicate(sc, variants=names, reps=reps, seed=seed, progress=not quiet)
    if metrics:
        missing = [m for m in metrics if m not in df.columns]
        if missing:
            raise SimresError(f"--metric: unknown metric '{missing[0]}'")
    click.echo(compare_table(df, metrics=list(metrics) or None))
    if out:
        _write_frame(df, Path(out))


@main.command(name="list")
@friendly
def list_scenarios() -> None:
    """List the bundled scenarios with a one-line description and their variants."""
    from simres.scenario import bundled_scenarios, load_scenario

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


def _register() -> None:
    """Attach the commands that live in simres/commands/ (one module per area)."""
    from simres.commands.report import plot, report
    from simres.commands.sweep import best_cmd, sweep_cmd
    from simres.commands.validate import validate

    for cmd in (plot, report, sweep_cmd, best_cmd, validate):
        main.add_command(cmd)


_register()


if __name__ == "__main__":  # pragma: no cover
    main()
