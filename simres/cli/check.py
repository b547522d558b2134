"""``simres check``: the pre-flight findings of a scenario, and the same warnings before other commands.

The analysis is :mod:`simres.scenario.preflight` (pure arithmetic on the scenario). Warnings
never change results; ``--strict`` turns them into errors (exit status 2).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from simres.cli._util import examples, friendly, quiet_option, set_option


def strict_option(fn: Any) -> Any:
    """The ``--strict`` flag shared by run, compare, sweep and report."""
    return click.option("--strict", is_flag=True,
                        help="Treat pre-flight warnings (simres check) as errors: exit 2 before running.")(fn)


def announce(sc: Any, *, variants: Sequence[str | None] = (), strict: bool = False, label: str = "",
             source: Any = None, overrides: Mapping[str, Any] | None = None) -> None:
    """Print the pre-flight warnings of ``sc`` (and its ``variants``) once on stderr; exit 2 under ``strict``.

    ``sc`` has the overrides applied; ``source`` and ``overrides`` let each variant be
    resolved in the one order (scenario, variant, overrides).
    """
    from simres.scenario.preflight import scenario_warnings

    lines = scenario_warnings(sc, [v for v in variants if v], source=source, overrides=overrides)
    if not lines:
        return
    for line in lines:
        click.echo(f"{'error' if strict else 'pre-flight'}: {line.split(': ', 1)[1]}", err=True)
    if strict:
        click.echo(f"error: {len(lines)} pre-flight warning(s) and --strict; see `simres check "
                   f"{label or sc.name}`", err=True)
        sys.exit(2)


@click.command(short_help="Pre-flight: load against capacity, settings that cannot work.",
               epilog=examples("simres check baseline", "simres check my-service.yaml --all-variants --strict",
                               "simres check baseline --set clients.web.arrival.rate=600 -q"))
@click.argument("scenario")
@set_option()
@click.option("--variant", default=None, metavar="NAME", help="Apply one of the scenario's variants.")
@click.option("--all-variants", is_flag=True, help="Also check every variant (its own warnings are tagged).")
@click.option("--strict", is_flag=True, help="Treat pre-flight warnings as errors: exit 2 if there is any.")
@quiet_option("Here the notes are chatter: warnings and the count only.")
@friendly
def check(scenario: str, sets: tuple[str, ...], variant: str | None, all_variants: bool, strict: bool,
          quiet: bool) -> None:
    """Pre-flight check of SCENARIO: load against capacity, policies that cannot work, faults outside the run.

    Prints one line per finding: warnings (a likely broken setup) and notes (context: the
    load each service is offered before and during faults, and in the worst case where
    every try is retried). Exit status 0, or 2 with --strict and any warning.
    """
    from simres.scenario.loading import load_scenario, parse_overrides
    from simres.scenario.preflight import preflight, scenario_warnings

    sc = load_scenario(scenario, overrides=parse_overrides(sets), variant=variant)
    findings = [f for f in preflight(sc) if not quiet or f.level == "warning"]
    lines = [str(f) for f in findings]
    if all_variants:
        base = set(lines)
        lines += [ln for ln in scenario_warnings(sc, list(sc.variants)) if ln not in base]
    warnings = sum(ln.startswith("warning") for ln in lines)
    for ln in lines:
        click.echo(ln)
    click.echo(f"{sc.name}: {warnings} warning(s), {len(lines) - warnings} note(s)")
    if strict and warnings:
        sys.exit(2)
