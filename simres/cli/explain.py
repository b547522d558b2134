"""``simres explain``: why did a policy decide what it did at time T, from a decision log."""

from __future__ import annotations

import math
from pathlib import Path

import click

from simres.cli._util import examples, friendly
from simres.errors import SimresError


def _source(path: str) -> Path:
    """The log file itself, or ``RUN_DIR/decisions.jsonl``; one line when neither exists."""
    p = Path(path)
    if p.is_dir():
        f = p / "decisions.jsonl"
        if not f.is_file():
            raise SimresError(f"{p}: no decisions.jsonl in this run directory "
                              "(write one with `simres run SCENARIO --out DIR --log`)")
        return f
    if not p.exists():
        raise SimresError(f"{p}: no such run directory or decision log")
    return p


@click.command(name="explain", short_help="Explain a run's decisions near a time (why the breaker opened).",
               epilog=examples("simres explain results/dob --at 16 --component 'api->inventory'",
                               "simres explain decisions.jsonl --at 12.3 --window 2",
                               note="RUN_DIR is what `simres run SCENARIO --out DIR --log` wrote "
                                    "(DIR/decisions.jsonl); LOG_FILE what `simres run SCENARIO --log FILE` wrote."))
@click.argument("source", metavar="RUN_DIR|LOG_FILE")
@click.option("--at", "at", type=float, required=True, metavar="T",
              help="Simulated second to explain (the decisions nearest to it are shown).")
@click.option("--component", "component", default=None, metavar="C",
              help="Only this component: a call site (web->api, or web->api#3 for one member), a service "
                   "(api: the sites calling it and its instances), a fault name or a glob.")
@click.option("--window", "window", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              metavar="S", help="Seconds around T to look for decisions, and before each for the tries that led to it.")
@friendly
def explain_cmd(source: str, at: float, component: str | None, window: float) -> None:
    """Explain the state changes nearest to --at in a run's decision log.

    One paragraph per decision (a breaker transition, an ejection, a rate-limiter cut, a
    fault) with the evidence it was made on: for a breaker, the window's calls, failures
    and failure rate against the threshold and rule, and the open duration chosen; then
    the failed tries of that component just before it and the faults active then.
    """
    from simres.metrics.decisions import LogReadError, read_log
    from simres.metrics.explain import explain

    if not math.isfinite(at) or at < 0:
        raise click.BadParameter(f"{at}: expected a simulated time >= 0", param_hint="'--at'")
    path = _source(source)
    try:
        rows = read_log(path)
    except LogReadError as e:
        raise SimresError(str(e)) from None
    paragraphs = explain(rows, at, component, window)
    if not paragraphs:
        who = f" of {component}" if component else ""
        click.echo(f"no state change{who} within {window:g} s of {at:g} s in {path} "
                   f"({len(rows):,} decisions logged); try a wider --window")
        return
    click.echo("\n\n".join(paragraphs))
