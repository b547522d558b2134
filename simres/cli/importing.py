"""Scenarios from recorded measurements, and the check that they match: ``simres import traces`` and
``simres calibrate``.

The inference is :mod:`simres.metrics.trace_import`, the comparison
:mod:`simres.reporting.calibrate`; this module parses the flags, validates what it wrote
(the written scenario must load) and prints. Bad input is one line naming the file and what
was expected, exit 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from simres.cli._util import check_out_path, examples, friendly, out_option, quiet_option, seed_option, set_option
from simres.errors import SimresError


@click.group(name="import", short_help="Build a starter scenario from recorded measurements (traces).",
             epilog=examples("simres import traces traces.otlp.jsonl -o imported.yaml",
                             "simres import traces jaeger-export.json -o shop.yaml"))
def import_group() -> None:
    """Build a starter scenario from recorded measurements (see `simres import traces --help`)."""


@import_group.command(name="traces", short_help="A starter scenario from OTLP JSON or Jaeger JSON traces.",
                      epilog=examples("simres import traces traces.otlp.jsonl -o imported.yaml",
                                      "simres import traces jaeger-export.json -o shop.yaml -q"))
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False))
@out_option("file", "the scenario YAML (self-time CSV files go to <stem>-data/ next to it).", required=True)
@quiet_option("Here: only the path written, not what was inferred.")
@friendly
def import_traces_cmd(file: str, out: str, quiet: bool) -> None:
    """Build a starter scenario from the recorded traces in FILE.

    FILE is OTLP JSON (one TracesData per line, the Collector's file exporter format, or
    what `simres run --trace` writes) or Jaeger JSON (the query API's {"data": [...]}).
    From the spans: the service graph (sequential or parallel handlers from span timing),
    each service's self-time (its span's duration less the time its downstream calls took:
    empirical from a CSV with 100 samples or more, else a lognormal fit), calls per handler
    (rounded: a call has no probability in the schema), retries (most tries per call),
    timeouts (failed tries clustering at one duration), non-critical calls and each client's
    arrival rate. The scenario is validated before this command returns; its header lists
    what was inferred. See docs/observability.md.
    """
    from simres.metrics.trace_import import TraceImportError, import_traces
    from simres.scenario.loading import load_scenario

    if not Path(file).is_file():
        raise SimresError(f"{file}: no such file; expected an OTLP JSON or Jaeger JSON trace file")
    check_out_path(out)
    try:
        path, notes = import_traces(file, out)
    except TraceImportError as e:
        raise SimresError(str(e)) from None
    sc = load_scenario(path)
    if not quiet:
        for n in notes:
            click.echo(n)
    click.echo(f"wrote {path}: {len(sc.services)} services, {len(sc.clients)} client(s); "
               f"check it with `simres check {path}`")


@click.command(name="calibrate", short_help="Simulated vs measured latency per service: quantiles, KS, QQ figure.",
               epilog=examples("simres calibrate imported.yaml --against traces.otlp.jsonl",
                               "simres calibrate my-service.yaml --against latencies.csv -o calib"))
@click.argument("scenario")
@click.option("--against", "against", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="The measurements: a trace file (OTLP JSON or Jaeger JSON) or a CSV with columns "
                   "service,latency (seconds).")
@out_option("directory", "calibration.csv (the quantile table and distances) and qq.png.")
@click.option("--variant", default=None, metavar="NAME", help="Apply one of the scenario's variants.")
@set_option()
@seed_option()
@quiet_option()
@friendly
def calibrate_cmd(scenario: str, against: str, out: str | None, variant: str | None, sets: tuple[str, ...],
                  seed: int | None, quiet: bool) -> None:
    """Run SCENARIO once and compare each service's simulated try durations with the measured ones.

    Per service (the duration of every try sent to it, at its caller): p50, p90, p99 and
    p99.9 simulated vs measured and their ratio; the Kolmogorov-Smirnov statistic (the
    headline: a service matches when KS <= 0.1) and the Wasserstein distance relative to
    the measured mean. One verdict line per service. Exit status 0 whatever the verdicts;
    2 for bad input.
    """
    from simres.cli._util import sim_progress
    from simres.experiments.runs import run as run_once
    from simres.reporting.calibrate import compare, measured_latencies, qq_figure, quantile_text, simulated_latencies
    from simres.scenario.loading import load_scenario, parse_overrides

    if not Path(against).is_file():
        raise SimresError(f"--against {against}: no such file; expected a trace file or a CSV of service,latency")
    if out:
        check_out_path(out)
    overrides = parse_overrides(sets)
    sc = load_scenario(scenario, overrides=overrides, variant=variant)
    measured = measured_latencies(against)
    prog = sim_progress(sc.name, enabled=not quiet)
    try:
        result = run_once(scenario, seed=seed, variant=variant, overrides=overrides, progress=prog)
    finally:
        prog.close()
    cal = compare(simulated_latencies(result.attempts), measured)
    if cal.table.empty:
        raise SimresError(f"--against {against}: no service in common with {sc.name} (measured: "
                          f"{', '.join(measured) or 'none'}; simulated: {', '.join(cal.simulated) or 'none'})")
    click.echo(quantile_text(cal))
    click.echo("")
    for line in cal.verdicts():
        click.echo(line)
    if out:
        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        cal.table.to_csv(d / "calibration.csv", index=False)
        qq_figure(cal, d / "qq.png")
        click.echo(f"wrote {d / 'calibration.csv'} and {d / 'qq.png'}")
