"""How ``simres run`` shows a summary: the grouped view of :mod:`simres.metrics.display` on rich.

``--metrics`` picks keys by glob pattern (``latency_*``, ``all``) and ``--json`` prints
every key for scripts. Rendering uses rich, so the table fits the terminal (at most 120
columns) and reads the same when piped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from simres.metrics.display import format_for, grouped_rows, has_value, select


def summary_table(summary: Mapping[str, float], *, title: str, metrics: Sequence[str] = ()) -> Table:
    """The rich table ``simres run`` prints: the grouped view, or the keys ``metrics`` picks."""
    del title  # printed above the table by print_table (a table title wraps at the table's width)
    table = Table(box=box.SIMPLE_HEAD if metrics else None, show_header=bool(metrics), pad_edge=False)
    if metrics:
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k in select(summary, metrics):
            v = summary[k]
            table.add_row(k, format_for(k)(float(v)) if has_value(v) else "-")
        return table
    table.add_column("group", style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    last = None
    for group, label, value in grouped_rows(summary):
        table.add_row(group if group != last else "", label, value)
        last = group
    return table


def summary_json(summary: Mapping[str, float], extra: Mapping[str, object]) -> str:
    """Every summary key as JSON (NaN as null), with ``extra`` fields first."""
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
    return json.dumps({**extra, "summary": clean}, indent=2)


def print_table(table: Table, *, title: str = "", width: int | None = None) -> None:
    """Print ``title`` and the table to stdout, at most 120 columns wide (less on a narrow terminal)."""
    console = Console(width=width, soft_wrap=False, highlight=False)
    if width is None and (console.width > 120 or not console.is_terminal):
        console = Console(width=120, soft_wrap=False, highlight=False)
    if title:
        console.print(escape(title), style="bold")
    console.print(table)


def hidden_note(summary: Mapping[str, float], shown: Iterable[tuple[str, str, str]]) -> str:
    """The line under the table: how many keys the view left out and how to see them."""
    n_shown = len(list(shown))
    n_data = sum(1 for v in summary.values() if has_value(v))
    return (f"{n_shown} of {n_data} metrics with data shown; "
            "--metrics 'PATTERN' picks others (e.g. 'latency_*', all), --json prints every key")


def bullet_lines(lines: Iterable[str], width: int = 120) -> str:
    """Sentences as ``- `` bullets wrapped at ``width`` columns, continuation lines indented."""
    import textwrap

    return "\n".join(textwrap.fill(line, width=width, initial_indent="- ", subsequent_indent="  ",
                                    break_on_hyphens=False, break_long_words=False) for line in lines)
