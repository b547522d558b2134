"""The ``simres`` command line: thin click commands that parse, call the API and print.

One module per command family (:mod:`.run`: run, show, compare, list; :mod:`.authoring`:
init, schema; :mod:`.report`: report, plot; :mod:`.sweep`: sweep, best; :mod:`.tune`; :mod:`.explore`;
:mod:`.validate`; :mod:`.trace`: trace;
:mod:`.importing`: import traces, calibrate), helpers in :mod:`._util`, the summary view in :mod:`.summary_view`.
The top layer: it may import anything in the package, and nothing imports it.

Bad input (a scenario file, an override, a flag) prints one line naming the field and
what was expected, and exits with status 2; never a traceback.
"""

from __future__ import annotations

import re
import sys
import warnings
from typing import Any

import click

from simres import __version__


class _Main(click.Group):
    """The ``simres`` group: click's own usage errors become the same one line (exit 2) as ours.

    A bad flag value (``--reps 0``) would otherwise print click's three-line usage block;
    here it prints ``error: <what is wrong> (see 'simres CMD --help')``. Scenario
    warnings print as one ``warning:`` line each.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        from simres.errors import ScenarioWarning, one_line

        with warnings.catch_warnings():
            warnings.simplefilter("default", ScenarioWarning)
            shown = warnings.showwarning

            def show(message: Any, category: Any, *rest: Any, **kw: Any) -> None:
                if issubclass(category, ScenarioWarning):
                    click.echo(f"warning: {one_line(str(message))}", err=True)
                else:
                    shown(message, category, *rest, **kw)

            warnings.showwarning = show
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except click.exceptions.NoArgsIsHelpError as e:
                e.show()
                sys.exit(e.exit_code)
            except click.UsageError as e:
                where = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
                # name a flag by its long form only: '--seed', not '--seed' / '-s'
                message = re.sub(r"('--[\w-]+')(?: / '-\w')+", r"\1", e.format_message())
                click.echo(f"error: {one_line(message)}{where}", err=True)
                sys.exit(2)
            except click.ClickException as e:
                click.echo(f"error: {one_line(e.format_message())}", err=True)
                sys.exit(e.exit_code)
            except click.Abort:
                click.echo("interrupted", err=True)
                sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


FLAGS_NOTE = """\b
Examples:
  simres run baseline
  simres compare retry-storm-metastable -n 5 -j 4
  simres report retry-storm-metastable --reference naive -o reports/demo

\b
The same flag means the same thing on every command:
  -o, --out PATH    a path to write (each command's --help says file or directory)
  -q, --quiet       no progress bar and no chatter; results still print
  -s, --seed N      the root seed          -n, --reps N      replications
  -j, --jobs N      worker processes       -m, --metrics P   metrics to show (names or globs)
  --set KEY=VALUE   override a field       --dry-run         plan and time estimate; run nothing"""


@click.group(name="simres", cls=_Main, epilog=FLAGS_NOTE,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(__version__, prog_name="simres")
def main() -> None:
    """simres: simulate resilience policies against injected failures."""



def _register() -> None:
    """Attach every command: one module per command family, each thin over the API."""
    from simres.cli.authoring import init, schema
    from simres.cli.check import check
    from simres.cli.explain import explain_cmd
    from simres.cli.explore import explore_cmd
    from simres.cli.export import export_config
    from simres.cli.importing import calibrate_cmd, import_group
    from simres.cli.report import plot, report
    from simres.cli.run import compare, list_scenarios, run, show
    from simres.cli.sweep import best_cmd, sweep_cmd
    from simres.cli.trace import trace_cmd
    from simres.cli.tune import tune_cmd
    from simres.cli.validate import validate

    for cmd in (run, show, check, compare, list_scenarios, init, schema, plot, report, sweep_cmd, best_cmd,
                validate, tune_cmd, explore_cmd, trace_cmd, explain_cmd, import_group, calibrate_cmd):
        main.add_command(cmd)
    main.add_command(export_config)


_register()
