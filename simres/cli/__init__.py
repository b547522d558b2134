"""The ``simres`` command line: thin click commands that parse, call the API and print.

One module per command family (:mod:`.run`: run, show, compare, list; :mod:`.authoring`:
init, schema; :mod:`.report`: report, plot; :mod:`.sweep`: sweep, best; :mod:`.validate`),
helpers in :mod:`._util`, the summary view in :mod:`.summary_view`.
The top layer: it may import anything in the package, and nothing imports it.

Bad input (a scenario file, an override, a flag) prints one line naming the field and
what was expected, and exits with status 2; never a traceback.
"""

from __future__ import annotations

import click

from simres import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="simres")
def main() -> None:
    """simres: simulate resilience policies against injected failures."""



def _register() -> None:
    """Attach every command: one module per command family, each thin over the API."""
    from simres.cli.authoring import init, schema
    from simres.cli.check import check
    from simres.cli.report import plot, report
    from simres.cli.run import compare, list_scenarios, run, show
    from simres.cli.sweep import best_cmd, sweep_cmd
    from simres.cli.validate import validate

    for cmd in (run, show, check, compare, list_scenarios, init, schema, plot, report, sweep_cmd, best_cmd,
                validate):
        main.add_command(cmd)


_register()
