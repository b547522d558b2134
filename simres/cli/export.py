"""``simres export-config``: one call's policy stack in a library's own configuration format.

The mapping is :mod:`simres.export` (pure); this module picks the call (from a scenario, or
from the winner of a sweep as ``simres best`` chooses it), measures it and writes the text.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from simres.cli._util import (
    check_out_path,
    command_executor,
    examples,
    fail,
    friendly,
    jobs_option,
    out_option,
    quiet_option,
    reps_option,
    seed_option,
    set_option,
)
from simres.export import LIBRARIES

MEASURED = ("success_rate", "latency_p99", "tries_per_request")
"""What the header reports of the exported setting, each with its interval."""


def _is_results(source: str) -> bool:
    p = Path(source)
    return p.is_dir() or (p.is_file() and p.suffix in (".parquet", ".pq"))


def _pick_call(sc: Any, call: str | None, label: str) -> tuple[str, str, Any]:
    """The (key, target, call) chosen by ``--call``, or the only call with a policy."""
    from simres.export import call_policies, has_policy

    calls = call_policies(sc)
    listing = ", ".join(f"{k}{'' if has_policy(c) else ' (no policy)'}" for k, (_, c) in calls.items())
    if call is None:
        with_policy = [k for k, (_, c) in calls.items() if has_policy(c)]
        if not with_policy:
            fail(f"--call: no call in {label} sets a policy (calls: {listing})")
        if len(with_policy) > 1:
            fail(f"--call: {label} has {len(with_policy)} calls with policies; expected one of: "
                 f"{', '.join(with_policy)}")
        call = with_policy[0]
    if call not in calls:
        caller, _, target = call.partition("->")
        hits = [k for k, (t, _) in calls.items() if k.startswith(f"{caller}->") and t == target]
        if len(hits) != 1:
            fail(f"--call {call!r}: no such call in {label}; expected CALLER->TARGET, one of: {listing}")
        call = hits[0]
    target, policy = calls[call]
    return call, target, policy


def _interval(metric: str, mean: float, lo: float, hi: float) -> str:
    from simres.metrics.display import format_for

    fmt = format_for(metric)
    return f"{metric} {fmt(mean)} [{fmt(lo)}, {fmt(hi)}]"


def _measure_lines(rows: Any, metrics: list[str], confidence: float, what: str,
                   chosen: Any = None) -> list[str]:
    """Mean and interval of each metric over ``rows``; ``chosen`` (the winner's row of simres best) gives
    the intervals best printed for the metrics it holds (a bootstrap for tail percentiles)."""
    from simres.metrics.stats import aggregate_replications

    metrics = [m for m in dict.fromkeys(metrics) if m in rows.columns]
    agg = aggregate_replications(rows, metrics=metrics, confidence=confidence).set_index("metric")
    if chosen is not None:
        for m in metrics:
            if f"{m}_mean" in chosen.index and m in agg.index:
                agg.loc[m, ["mean", "lo", "hi"]] = [chosen[f"{m}_{k}"] for k in ("mean", "lo", "hi")]
    n = int(agg["n"].max()) if len(agg) else 0
    parts = [_interval(m, *(float(agg.at[m, k]) for k in ("mean", "lo", "hi"))) for m in metrics if m in agg.index]
    return [f"measured: {what}, {n} replication(s), mean [{round(confidence * 100)}% CI]:",
            *(f"  {p}" for p in parts)]


def _from_results(source: str, minimize: str | None, maximize: str | None, constraints: tuple[str, ...],
                  conservative: bool, confidence: float) -> tuple[str, str | None, dict[str, Any], list[str], Any]:
    """The scenario, variant and overrides of the sweep's winner (as ``simres best``), and its header lines."""
    from simres.experiments.choosing import NoFeasibleSetting, best, parse_constraint
    from simres.experiments.store import load_results

    for text in constraints:
        parse_constraint(text)
    df = load_results(source)
    meta = df.attrs.get("sweep") or {}
    scenario = meta.get("scenario")
    if not scenario:
        fail(f"SOURCE {source}: expected a scenario or a sweep's results; this holds no sweep results "
             "(no manifest naming the swept scenario)")
    if scenario == "<mapping>":
        fail(f"SOURCE {source}: the sweep's scenario is not a file or bundled name (it was given as a mapping); "
             "write it to a YAML file and export that")
    try:
        choice = best(df, minimize=minimize, maximize=maximize, subject_to=constraints,
                      conservative=conservative, confidence=confidence, top=0)
    except NoFeasibleSetting as e:
        click.echo(f"no feasible setting: {e}", err=True)
        sys.exit(1)
    row = choice.table.iloc[0]
    variant = str(row["variant"]) or None
    params = {p: choice.winner[p] for p in choice.params}
    overrides = {**meta.get("overrides", {}), **params}
    subject = " and ".join(map(str, choice.constraints)) or "no constraint"
    pick = df[df["error"].isna()]
    for p in choice.params:
        pick = pick[pick[p].astype(str) == str(row[p])]
    pick = pick[pick["variant"].astype(str) == str(row["variant"])]
    lines = [f"sweep: {source}: the setting simres best chooses to "
             f"{'maximize' if choice.maximize else 'minimize'} {choice.objective} subject to {subject}",
             f"  reproduce: {choice.command}"]
    metrics = [choice.objective, *(c.metric for c in choice.constraints), *MEASURED]
    return str(scenario), variant, overrides, lines, (pick, metrics, row)


@click.command(name="export-config", short_help="Write a call's policies in a library's own config format.",
               epilog=examples(
                   "simres export-config baseline --call 'api->db' --library envoy",
                   "simres export-config my-service.yaml --library resilience4j -o application.yml",
                   "simres export-config results/retries --library urllib3 --minimize latency_p99 "
                   "--subject-to 'success_rate >= 0.999'",
                   "simres export-config retry-storm-metastable --variant budget --library grpc --no-measure",
                   note="Settings the library cannot express are named in a comment block and on stderr. "
                        "See docs/export.md."))
@click.argument("source")
@click.option("--library", required=True, type=click.Choice(list(LIBRARIES), case_sensitive=False),
              help="The library whose format to write.")
@click.option("--call", "call", default=None, metavar="CALLER->TARGET",
              help="The call to export (a client 'web->api' or a service's call 'api->db') [default: the only "
                   "call with a policy].")
@click.option("--variant", default=None, metavar="NAME", help="Apply one of the scenario's variants.")
@set_option("applied after the variant (and after a sweep winner's settings)")
@out_option("file", "the configuration [default: standard output].")
@reps_option(5, what="of the measurement reported in the header")
@seed_option()
@jobs_option
@click.option("--no-measure", is_flag=True, help="Do not run the scenario; the header says so.")
@click.option("--minimize", metavar="METRIC", default=None, help="With sweep RESULTS: as simres best.")
@click.option("--maximize", metavar="METRIC", default=None, help="With sweep RESULTS: as simres best.")
@click.option("--subject-to", "constraints", multiple=True, metavar="'METRIC OP NUMBER'",
              help="With sweep RESULTS: as simres best (repeatable).")
@click.option("--conservative", is_flag=True, help="With sweep RESULTS: as simres best.")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the intervals.")
@quiet_option()
@friendly
def export_config(source: str, library: str, call: str | None, variant: str | None, sets: tuple[str, ...],
                  out: str | None, reps: int, seed: int | None, jobs: int | None, no_measure: bool,
                  minimize: str | None, maximize: str | None, constraints: tuple[str, ...], conservative: bool,
                  confidence: float, quiet: bool) -> None:
    """Write the policy stack of one call of SOURCE in a library's own configuration format.

    SOURCE is a scenario (a YAML file or a bundled name, with --variant and --set) or a sweep's
    results (a directory or Parquet file, as simres best reads), whose winner under
    --minimize/--maximize/--subject-to is exported. The header names the scenario and the
    measured result: the sweep's replications of the winner, or a short run of the scenario
    (--reps, default 5; --no-measure to skip).
    """
    from simres.export import NothingToExport, export_call
    from simres.export._common import show
    from simres.scenario.loading import load_scenario, parse_overrides

    library = library.lower()
    target_path = check_out_path(out, flag="--out") if out else None
    overrides = parse_overrides(sets)
    header = [f"simres export-config: {library} ({LIBRARIES[library][2]})"]
    measured: Any = None
    if _is_results(source):
        if variant is not None:
            fail("--variant: not with sweep results; the winner of the sweep sets the variant")
        scenario, variant, won, lines, measured = _from_results(source, minimize, maximize, constraints,
                                                                conservative, confidence)
        overrides = {**won, **overrides}
        header += lines
    else:
        for flag, given in (("--minimize", minimize), ("--maximize", maximize), ("--subject-to", constraints),
                            ("--conservative", conservative)):
            if given:
                fail(f"{flag}: only with sweep results as SOURCE (a results directory or Parquet file), "
                     f"not the scenario {source}")
        scenario = source
    sc = load_scenario(scenario, overrides=overrides or None, variant=variant)
    key, target, policy = _pick_call(sc, call, scenario)
    flags = [f"--variant {shlex.quote(variant)}"] if variant else []
    flags += [f"--set {shlex.quote(f'{k}={show(v)}')}" for k, v in overrides.items()]
    header.append(f"scenario: {scenario}" + (f" {' '.join(flags)}" if flags else "") + f"; call {key}")
    try:
        exported = export_call(policy, library, instance=target, header=())
    except NothingToExport as e:
        fail(f"--library {library}: {e} (call {key})")
    if measured is not None:
        rows, metrics, chosen = measured
        header += _measure_lines(rows, metrics, confidence, "the sweep's runs of this setting", chosen)
    elif no_measure:
        header.append("measured: not run (--no-measure)")
    else:
        from simres.experiments.replications import replicate

        base = load_scenario(scenario)
        executor = command_executor(jobs, needed=reps > 1)
        rows = replicate(base, variants=[variant] if variant else None, reps=reps, seed=seed,
                         overrides=overrides or None, progress=not quiet, executor=executor)
        what = f"{scenario} seed {base.seed if seed is None else seed}"
        header += _measure_lines(rows, list(MEASURED), confidence, what)
    exported = export_call(policy, library, instance=target, header=header)
    for note in exported.unexpressed:
        click.echo(f"not expressible in {library}: {note}", err=True)
    if target_path is None:
        click.echo(exported.text, nl=False)
    else:
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target_path.write_text(exported.text, encoding="utf-8")
        if not quiet:
            click.echo(f"wrote {target_path} ({library}, call {key})", err=True)
