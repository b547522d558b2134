"""``simres plot`` and ``simres report``: figures and HTML reports from runs, results and scenarios.

The commands parse flags, pick the figure or report function and print where the file
went. Which flags a figure kind takes is checked here, so a wrong combination is one line
naming the flag, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from simres.cli._util import (
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
)
from simres.cli.check import announce, strict_option
from simres.cli.estimate import announce_estimate, workers_for

PLOT_KINDS = ("cdf", "ccdf", "percentiles", "timeline", "herd", "amplification", "heatmap", "pareto")
"""What ``simres plot --kind`` draws."""

_RUN_KINDS = ("cdf", "ccdf", "timeline", "herd")
_OPTION_KINDS = {
    "metric": ("amplification", "heatmap", "pareto"), "x": ("amplification", "heatmap"), "y": ("heatmap",),
    "where": ("amplification", "heatmap", "pareto"), "service": ("herd",), "fault": ("herd",),
    "latency": ("pareto",),
}


def parse_where(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (VALUE read as YAML, so ``3`` is a number) as a mapping."""
    import yaml

    from simres.reporting.sources import ReportError
    from simres.scenario.yamlio import loads

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ReportError(f"--where: expected KEY=VALUE, e.g. max_attempts=3, got {item!r}")
        try:
            out[key.strip()] = loads(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ReportError(f"--where: the value of {item!r} is not valid YAML") from None
    return out


def plot_files(kind: str, sources: Sequence[str | os.PathLike[str]], *, metric: str | None = None,
               x: str | None = None, y: str | None = None, where: Mapping[str, Any] | None = None,
               service: str | None = None, fault: str | None = None, latency: str | None = None) -> Any:
    """The figure ``simres plot`` draws: ``kind`` of :data:`PLOT_KINDS` from run directories or a results file.

    ``cdf``, ``ccdf``, ``herd`` take one or more run directories (one line per run);
    ``timeline`` exactly one; ``amplification``, ``heatmap``, ``pareto`` one results file;
    ``percentiles`` either. Options a kind does not use are refused, naming the kind.
    """
    import pandas as pd

    from simres.reporting import plots
    from simres.reporting.sources import RESULTS_FILES, ReportError, is_results_source, is_run_dir, load_results

    if kind not in PLOT_KINDS:
        raise ReportError(f"--kind: expected one of {', '.join(PLOT_KINDS)}, got {kind!r}")
    given = {"metric": metric, "x": x, "y": y, "where": where or None, "service": service, "fault": fault,
             "latency": latency}
    for opt, value in given.items():
        if value is not None and kind not in _OPTION_KINDS[opt]:
            raise ReportError(f"--{opt}: not used by --kind {kind} (only by {', '.join(_OPTION_KINDS[opt])})")
    if not sources:
        raise ReportError("RESULTS: give at least one run directory or results file")
    for src in sources:
        if not Path(src).exists():
            raise ReportError(f"{src}: no such file or directory")
    if kind in _RUN_KINDS or (kind == "percentiles" and all(is_run_dir(s) for s in sources)):
        runs = _runs(sources, kind)
        pal = plots.Palette(list(runs))
        if kind == "cdf":
            return plots.latency_cdf({v: r.requests for v, r in runs.items()}, palette=pal)
        if kind == "ccdf":
            return plots.latency_ccdf({v: r.requests for v, r in runs.items()}, palette=pal)
        if kind == "herd":
            return plots.herd({v: r.attempts for v, r in runs.items()}, events=next(iter(runs.values())).events,
                              service=service, fault=fault, palette=pal)
        if kind == "timeline":
            if len(runs) != 1:
                raise ReportError(f"RESULTS: --kind timeline draws one run, got {len(runs)} directories")
            ((name, r),) = runs.items()
            return plots.timeline(requests=r.requests, timeline=r.timeline, events=r.events, title=name)
        return plots.percentile_bars(pd.DataFrame([_percentile_row(v, r) for v, r in runs.items()]), palette=pal)
    if len(sources) != 1:
        raise ReportError(f"RESULTS: --kind {kind} takes one results file, got {len(sources)}")
    if not is_results_source(sources[0]):
        raise ReportError(f"{sources[0]}: not a results file (.parquet or .csv, or a directory with "
                          f"{' / '.join(RESULTS_FILES)}); --kind {kind} needs one")
    results = load_results(sources[0])
    if kind == "percentiles":
        return plots.percentile_bars(results)
    if kind == "amplification":
        if x is None:
            raise ReportError("--x: --kind amplification needs the swept parameter to put on the x axis")
        return plots.amplification(results, x=x, metric=metric or "tries_per_request", where=where)
    if kind == "heatmap":
        if x is None or y is None:
            raise ReportError("--x/--y: --kind heatmap needs two swept parameters")
        return plots.heatmap(results, x=x, y=y, metric=metric or "latency_p99", where=where)
    return plots.pareto(results, latency=latency or "latency_p99", other=metric or "success_rate", where=where)


def _runs(sources: Sequence[str | os.PathLike[str]], kind: str) -> dict[str, Any]:
    """Run directories by variant name (the directory name when the run had no variant or a duplicate)."""
    from simres.reporting.sources import ReportError, is_results_source, is_run_dir, load_run

    runs: dict[str, Any] = {}
    for src in sources:
        if not is_run_dir(src):
            what = "a results file" if is_results_source(src) else "not a run directory"
            raise ReportError(f"{src}: {what}; --kind {kind} needs run directories written by "
                              "`simres run --out DIR`")
        frames = load_run(src)
        name = frames.variant or Path(src).resolve().name
        runs[str(src) if name in runs else name] = frames
    return runs


def _percentile_row(variant: str, run: Any) -> dict[str, Any]:
    """A run's steady-state percentiles from its summary; from all its requests without one."""
    from simres.reporting import plots

    names = plots.PERCENTILES
    if run.summary is not None and all(n in run.summary for n in names):
        return {"variant": variant, **{n: float(run.summary[n]) for n in names}}
    from simres.metrics.latency import latency_percentiles

    lat = latency_percentiles(run.requests)
    return {"variant": variant, **{n: lat[n.removeprefix("latency_")] for n in names}}


@click.command(short_help="Draw one figure (cdf, timeline, heatmap, pareto) from results.",
               epilog=examples("simres run baseline -o runs/base && simres plot runs/base --kind timeline -o t.png",
                               "simres plot results/retries.parquet --kind amplification --x max_attempts -o a.svg",
                               "simres plot results/q.parquet --kind heatmap --x capacity --y timeout -o h.png"))
@click.argument("results", nargs=-1, required=True)
@click.option("--kind", required=True, metavar="KIND", help=f"What to draw: {', '.join(PLOT_KINDS)}.")
@click.option("--metric", default=None, help="Metric to draw (amplification, heatmap; pareto: the second "
              "objective, default success_rate).")
@click.option("--x", "x", default=None, metavar="PARAM", help="Swept parameter on the x axis (dotted path or its "
              "last segment).")
@click.option("--y", "y", default=None, metavar="PARAM", help="Second swept parameter (heatmap).")
@click.option("--where", "where", multiple=True, metavar="PARAM=VALUE", help="Fix another swept parameter "
              "(repeatable).")
@click.option("--service", default=None, help="Service of the herd plot (default: the burstiest).")
@click.option("--fault", default=None, help="Fault of the herd plot (default: the first that ended).")
@click.option("--latency", default=None, metavar="METRIC", help="Latency metric of the pareto plot "
              "(default latency_p99).")
@out_option("file", "the figure; .png, .svg or .pdf (the suffix picks the format).", required=True)
@click.option("--dpi", type=click.IntRange(min=20, max=600), default=110, show_default=True,
              help="Resolution of a .png figure.")
@friendly
def plot(results: tuple[str, ...], kind: str, metric: str | None, x: str | None, y: str | None,
         where: tuple[str, ...], service: str | None, fault: str | None, latency: str | None, out: str,
         dpi: int) -> None:
    """Draw one figure from RESULTS: run directories (`simres run --out DIR`) or a results file.

    \b
    cdf, ccdf, herd    one or more run directories, one line each
    timeline           one run directory
    percentiles        run directories, or a replications/sweep file
    amplification      a sweep file, --x PARAM [--metric M] [--where P=V]
    heatmap            a sweep file, --x PARAM --y PARAM [--metric M]
    pareto             a sweep file [--latency M] [--metric success_rate|tries_per_request]
    """
    from simres.reporting import plots
    from simres.reporting.sources import ReportError

    suffix = Path(out).suffix.lower()
    if suffix not in (".png", ".svg", ".pdf"):
        raise ReportError(f"--out: expected a .png, .svg or .pdf file, got {out!r}")
    fig = plot_files(kind, list(results), metric=metric, x=x, y=y, where=parse_where(where) or None,
                     service=service, fault=fault, latency=latency)
    click.echo(str(plots.save_figure(fig, out, dpi=dpi)))


@click.command(short_help="Write a self-contained HTML report and print its verdict.",
               epilog=examples("simres report retry-storm-metastable --reference naive -o reports/demo",
                               "simres report baseline -n 10 -j 4 --figures svg -o reports/baseline",
                               "simres report results/cmp.parquet -o reports/cmp"))
@click.argument("source")
@out_option("directory", "the report, DIR/index.html with its figures and verdict.txt.", required=True)
@reps_option(5, minimum=None, what="per variant (a scenario SOURCE only)")
@seed_option()
@set_option()
@click.option("--reference", default=None, metavar="VARIANT", help="Variant the verdict compares against "
              "(default: the scenario's reference, else its first variant).")
@click.option("--figures", "figures", default=None, metavar="png|svg",
              help="How figures are embedded in the page [default: png].")
@click.option("--format", "old_format", default=None, hidden=True, help="Old spelling of --figures.")
@quiet_option()
@dry_run_option
@jobs_option
@strict_option
@friendly
def report(source: str, out: str, reps: int, seed: int | None, sets: tuple[str, ...], reference: str | None,
           figures: str | None, old_format: str | None, quiet: bool, dry_run: bool, strict: bool,
           jobs: int | None) -> None:
    """Write a self-contained HTML report of SOURCE to DIR/index.html and print its verdict.

    SOURCE is a scenario (file or bundled name: its variants are run and compared) or a
    results file (.parquet/.csv, or a directory holding replications.parquet).
    """
    from simres.reporting.sources import ReportError, is_results_source

    if reps < 1:
        raise ReportError(f"--reps: must be >= 1, got {reps}")
    flag = "--format" if old_format is not None and figures is None else "--figures"
    fmt = figures or old_format or "png"
    if fmt not in ("png", "svg"):
        raise ReportError(f"{flag}: expected png or svg, got {fmt!r}")
    # one executor for both stages (the replications, then one run per variant for the figures),
    # started before the heavy imports so its workers get ready while they load and the scenario
    # is checked and estimated
    ex = command_executor(jobs, needed=not dry_run and not is_results_source(source))
    from simres.reporting.report import build_report
    from simres.scenario.loading import parse_overrides

    tasks = reps * 2
    if not is_results_source(source):
        from simres.scenario.loading import load_scenario

        sc = load_scenario(source, overrides=parse_overrides(sets) or None)
        announce(sc, variants=list(sc.variants), strict=strict, label=source, source=source,
                 overrides=parse_overrides(sets))
        variants = max(len(sc.variants), 1)
        tasks = variants * reps
        # the replications, then one representative run per variant for the per-request figures
        announce_estimate(source, runs=tasks + variants, workers=workers_for(jobs, tasks),
                          overrides=parse_overrides(sets), quiet=quiet, dry_run=dry_run)
    elif dry_run:
        click.echo(f"{source}: a results file; the report simulates nothing")
    if dry_run:
        return
    path = build_report(source, out, reps=reps, seed=seed, overrides=parse_overrides(sets) or None,
                        reference=reference, figure_format=fmt, progress=not quiet, executor=ex)
    verdict = path.parent / "verdict.txt"
    if not is_results_source(source) and verdict.is_file():  # written by this scenario report
        from simres.cli.summary_view import bullet_lines

        click.echo("verdict:")
        sentences = [ln[2:] if ln.startswith("- ") else ln
                     for ln in verdict.read_text(encoding="utf-8").splitlines() if ln.strip()]
        click.echo(bullet_lines(sentences))
    click.echo(f"report: {path}")
