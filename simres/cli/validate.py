"""``simres validate``: run the queueing-theory suite and print expected against simulated.

Exit status: 0 when every check passes, 1 on any miss, 2 on bad input.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from simres.cli._util import (
    command_executor,
    examples,
    friendly,
    jobs_option,
    out_option,
    quiet_option,
    reps_option,
    seed_option,
)
from simres.progress import Progress


def _default_jobs() -> int:
    return max(1, os.cpu_count() or 1)


@click.command(name="validate", short_help="Check the simulator against exact queueing-theory results.",
               epilog=examples("simres validate --quick", "simres validate --case 'mm1*' -n 20 -j 4 -o checks.csv",
                               "simres validate --list"))
@click.option("--quick", is_flag=True,
              help="Every case with a quarter of its simulated time (tolerances doubled), as the test suite runs it.")
@click.option("--case", "cases", multiple=True, metavar="PATTERN",
              help="Only these cases: an exact name, a glob, or a substring (repeatable).")
@reps_option(None, minimum=2, what="per case [default: each case's own, usually 10]")
@jobs_option
@seed_option("2024, the suite's")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Confidence level of the intervals (default 0.99).")
@out_option("file", "the result table, one row per check, as CSV (the table still prints).")
@click.option("--list", "list_only", is_flag=True, help="List the cases and their formulas; run nothing.")
@quiet_option()
@friendly
def validate(quick: bool, cases: tuple[str, ...], reps: int | None, jobs: int | None, seed: int | None,
             confidence: float | None, out: str | None, list_only: bool, quiet: bool) -> None:
    """Check the simulator against exact queueing results (docs/validation.md).

    Each case runs independent replications; a check passes when the exact value lies in the
    confidence interval of the simulated mean and the interval is tighter than the case's
    stated tolerance. Exits 1 if any check fails.
    """
    jobs = jobs if jobs is not None else _default_jobs()
    # started before the heavy imports: the workers get ready while they load
    ex = None if list_only else command_executor(jobs)  # every case's replications on the same warm workers
    from simres.experiments import validation as v

    selected = v.select_cases(cases)
    if list_only:
        for c in selected:
            click.echo(f"{c.name:<20}  {c.title}")
            click.echo(f"{'':<20}  {c.formula}")
        return
    seed = v.DEFAULT_SEED if seed is None else seed
    confidence = v.CONFIDENCE if confidence is None else confidence
    if out is not None and not Path(out).resolve().parent.is_dir():
        raise v.ValidationError(f"out: directory {str(Path(out).parent)!r} does not exist")
    t0 = time.perf_counter()
    bar = Progress(0, label="validate", unit="run", enabled=not quiet)
    try:
        df = v.run_validation(cases=cases, quick=quick, reps=reps, seed=seed, jobs=jobs, confidence=confidence,
                              progress=bar, executor=ex)
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    click.echo(v.format_table(df, confidence=confidence))
    failed = int((~df["passed"]).sum())
    mode = "quick" if quick else "full"
    cpu = df.drop_duplicates("case")["cpu_time"].sum()
    click.echo(f"\n{len(df) - failed}/{len(df)} checks passed ({mode}, {df['case'].nunique()} cases, seed {seed}, "
               f"{jobs} job(s), {elapsed:.1f} s wall, {cpu:.1f} s CPU in the runs)")
    if out is not None:
        df.to_csv(out, index=False)
        click.echo(f"wrote {out}")
    if failed:
        bad = ", ".join(dict.fromkeys(df.loc[~df["passed"], "case"]))
        click.echo(f"FAILED: {failed} check(s) in {bad}", err=True)
        sys.exit(1)
