"""Helpers shared by the click commands: one-line errors with exit status 2, progress, value formatting."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from simres.errors import SimresError, one_line
from simres.progress import Progress

F = TypeVar("F", bound=Callable[..., Any])


SEED = click.IntRange(min=0)
"""The type of every ``--seed`` flag: the one rule for seeds (:func:`simres.rng.check_seed`)."""


def fail(message: str) -> None:
    """Print ``error: message`` on one line on stderr and exit with status 2 (bad input)."""
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(2)


def _path_problem(e: OSError) -> str:
    """What is wrong with the path of a failed file operation, in words (not just the errno)."""
    target = Path(e.filename) if e.filename else None
    reason = e.strerror or str(e)
    if target is None:
        return reason
    parent = next((p for p in [target, *target.parents] if p.exists()), None)
    if isinstance(e, PermissionError):
        return f"{target}: cannot write here: permission denied"
    if isinstance(e, FileNotFoundError) and parent is not None and parent != target:
        if not parent.is_dir():
            return f"{target}: cannot create it: {parent} is a file, not a directory"
        return (f"{target}: cannot create it inside {parent} ({reason}); choose a directory on an "
                "ordinary writable file system")
    if isinstance(e, FileNotFoundError):
        return f"{target}: no such file or directory"
    return f"{target}: {reason}"


def check_out_path(path: str | Path, *, flag: str = "--out") -> Path:
    """Refuse an ``--out`` path that cannot be written before any work starts (one line, exit 2)."""
    import os

    target = Path(path)
    parent = next((p for p in [target, *target.parents] if p.exists()), Path("."))
    problem = None
    if parent != target and not parent.is_dir():
        problem = f"{parent} is a file, not a directory"
    elif not os.access(parent, os.W_OK | os.X_OK):
        problem = f"{parent} is not writable"
    else:
        try:
            if os.statvfs(parent).f_flag & os.ST_RDONLY:
                problem = f"{parent} is on a read-only file system"
        except (OSError, AttributeError):
            pass
        if problem is None and str(parent.resolve()).startswith(("/proc", "/sys")):
            problem = f"{parent} is a virtual (kernel) file system, not storage"
    if problem:
        raise SimresError(f"{flag} {target}: cannot write results there: {problem}")
    return target


def friendly(fn: F) -> F:
    """Turn simres errors into one line on stderr and exit status 2; Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SimresError as e:
            fail(str(e))
        except BrokenPipeError:
            raise  # `simres show X | head`: click handles a closed pipe
        except OSError as e:
            fail(_path_problem(e))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def sim_progress(label: str, enabled: bool = True) -> Progress:
    """The bar of one run's simulated time (``progress(now, end)``), shown only for runs of more than ~2 s."""
    return Progress(0, label=label, unit="sim s", enabled=enabled, delay=0.5, min_total=2.0)


def write_frame(df: Any, target: Path) -> None:
    """Write a results frame as CSV (``.csv``) or Parquet (anything else) and say where."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".csv":
        df.to_csv(target, index=False)
    else:
        df.to_parquet(target, index=False)
    click.echo(f"wrote {target}")


def jobs_option(fn: F) -> F:
    """``--jobs/-j N``: worker processes for the simulations of one command (one per core by default).

    The same flag, with the same meaning, as on ``sweep`` and ``validate``. Results are
    identical for any N: every replication has its own seed and the rows come back in order.
    """
    return click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
                        help="Worker processes [default: one per core; 1 = in this process]. "
                             "Results are identical for any N.")(fn)


def command_executor(jobs: int | None, *, needed: bool = True, dask: str | None = None) -> Any:
    """The one executor of a command, shared by every stage of it (replications, then the report's
    representative runs; every validation case), started now so its workers get ready while the
    command reads and checks its input; closed when the command ends.

    None (serial in this process) under ``--jobs 1`` or when the command will run at most one
    simulation (``needed=False``). With ``--dask`` it is a Dask executor
    (:func:`simres.experiments.executors.make_executor`). Closing is registered with click's
    context (the command's end, also on an error or Ctrl-C); outside a click command, with
    :mod:`atexit`, or close it yourself. Local workers start on demand, so a command with
    fewer tasks than ``--jobs`` starts only as many.
    """
    if not dask and (jobs == 1 or not needed):
        return None
    from simres.experiments.executors import make_executor

    ex = make_executor(jobs=jobs, dask=dask).start()
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(ex.close)
    else:  # pragma: no cover - a command function called directly
        import atexit

        atexit.register(ex.close)
    return ex


# ---------------------------------------------------------------------------- the shared flags
# One meaning per flag name across commands, one short form each (tests/test_cli_conventions.py
# holds the table): -o/--out a path to write, -q/--quiet no progress and no chatter (results
# still print), -s/--seed the root seed, -n/--reps replications, -j/--jobs worker processes,
# -m/--metrics which metrics to show, --set an override, --dry-run plan and estimate only.

QUIET_HELP = "No progress bar and no chatter (estimates, plan lines); results still print."
DRY_RUN_HELP = "Print what would run and a time estimate; run nothing."


def out_option(kind: str, what: str, *, required: bool = False, default: str | None = None) -> Callable[[F], F]:
    """``--out/-o PATH``: where to write. ``kind`` is ``file`` or ``directory``; the help says which, then ``what``."""
    if kind not in ("file", "directory"):
        raise ValueError(kind)
    path = click.Path(dir_okay=False) if kind == "file" else click.Path(file_okay=False)
    return click.option("--out", "-o", type=path, required=required, default=default,
                        metavar="FILE" if kind == "file" else "DIR",
                        help=f"{kind.capitalize()} to write: {what}")


def quiet_option(extra: str = "") -> Callable[[F], F]:
    """``--quiet/-q``: no progress bar and no chatter; results (and warnings) still print."""
    return click.option("--quiet", "-q", is_flag=True, help=QUIET_HELP + (f" {extra}" if extra else ""))


def seed_option(default_is: str = "the scenario's") -> Callable[[F], F]:
    """``--seed/-s N``: the root seed every random stream derives from."""
    return click.option("--seed", "-s", type=SEED, default=None, metavar="N",
                        help=f"Root seed [default: {default_is}].")


def reps_option(default: int | None, *, minimum: int | None = 1, what: str = "per variant") -> Callable[[F], F]:
    """``--reps/-n N``: independent replications (common random numbers across variants).

    ``minimum=None`` leaves the range check to the command (its own one-line message).
    """
    shown = "" if default is None else f" [default: {default}]"
    kind = int if minimum is None else click.IntRange(min=minimum)
    return click.option("--reps", "-n", type=kind, default=default, metavar="N",
                        help=f"Replications {what}{shown}.")


def set_option(scope: str = "") -> Callable[[F], F]:
    """``--set KEY=VALUE``: override a scenario field by its dotted path (repeatable)."""
    return click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                        help="Override a field by dotted path (repeatable)" + (f"; {scope}." if scope else "."))


def dry_run_option(fn: F) -> F:
    """``--dry-run``: validate, print the plan and a time estimate, run nothing."""
    return click.option("--dry-run", is_flag=True, help=DRY_RUN_HELP)(fn)


def examples(*lines: str, note: str = "") -> str:
    """A command's epilog: an ``Examples:`` block kept as written (click's ``\\b``), then ``note``."""
    block = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
    return block + (f"\n\n{note}" if note else "")
