"""How ``simres run`` shows a summary: the grouped view of :mod:`simres.metrics.display` on rich.

``--metrics`` picks keys by glob pattern (``latency_*``, ``all``) and ``--json`` prints
every key for scripts. Rendering uses rich, so the table fits the terminal (at most 120
columns) and reads the same when piped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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


COMPARE_DEFAULT = 16
"""Metrics ``simres compare`` shows unless ``--metrics`` picks others."""

_COMPARE_FIRST = ("success_rate", "goodput", "latency_all_p50", "latency_all_p99", "latency_all_p999",
                  "latency_p99", "tries_per_request", "work_per_success", "amplification:*", "recovered:*",
                  "recovery_time:*", "stable_at_end", "utilization:*", "queue_len:*")
"""The default view of a comparison, in this order (patterns expand in the frame's order)."""


def compare_text(reps: Any, *, metrics: Sequence[str] | None = None, controls: Sequence[str] = (),
                 width: int | None = None) -> str:
    """The comparison ``simres compare`` prints: metrics x variants, in units, at most ``width`` columns.

    Each cell is the mean over replications with its 95 % interval at two significant
    digits (:func:`simres.metrics.display.format_interval`; a 0/1 metric such as
    ``recovered:*`` is a share of runs with its Wilson interval); ``*`` marks the best
    variant, ``~`` one not significantly different from it (paired t-test). Metrics with no
    data are left out; without ``metrics`` the first :data:`COMPARE_DEFAULT` of the
    headline metrics are shown and the last line says how many more there are and how to
    see them. Variants that do not fit the width continue in a block below, the metric
    column repeated, so no line is longer than ``width`` (120 by default, or the terminal's
    if narrower).
    """
    import fnmatch

    from simres.experiments.replications import compare_frame
    from simres.metrics.display import format_interval

    if width is None:
        console = Console()
        width = min(120, console.width) if console.is_terminal else 120
    cmp = compare_frame(reps, metrics=list(metrics) if metrics else None, controls=controls)
    cmp = cmp[cmp["mean"].notna()]
    with_data = list(dict.fromkeys(cmp["metric"]))
    if metrics:
        shown = with_data
    else:
        shown = []
        for p in _COMPARE_FIRST:
            shown += [m for m in with_data if fnmatch.fnmatchcase(m, p) and m not in shown]
        shown = shown[:COMPARE_DEFAULT]
    variants = [v for v in dict.fromkeys(reps["variant"].fillna("").astype(str)) if v in set(cmp["variant"])]
    labels = {v: (v or "(as written)") + (" (control)" if v in controls else "") for v in variants}
    cells: dict[tuple[str, str], str] = {}
    marked = set(cmp.loc[cmp["best"], "metric"])
    for row in cmp.itertuples(index=False):
        if row.metric not in shown:
            continue
        mark = ""
        if row.best:
            mark = " *"
        elif row.metric in marked and row.variant not in controls and not row.significant \
                and not math.isnan(row.p_value):
            mark = " ~"
        cells[(row.metric, row.variant)] = format_interval(row.metric, row.mean, row.halfwidth, lo=row.lo,
                                                           hi=row.hi) + mark
    mw = min(max([len(m) for m in shown] + [6]), 30)
    cw = {v: max(len(labels[v]), *(len(cells.get((m, v), "-")) for m in shown)) for v in variants}
    blocks: list[list[str]] = [[]]
    used = mw
    for v in variants:
        if blocks[-1] and used + 2 + cw[v] > width:
            blocks.append([])
            used = mw
        blocks[-1].append(v)
        used += 2 + cw[v]
    n = int(reps.groupby(reps["variant"].fillna("").astype(str)).size().min()) if len(reps) else 0
    lines = [f"{len(variants)} variant(s) x {n} replication(s), common random numbers; "
             "mean ± 95 % interval"[: width]]
    for block in blocks:
        lines.append("")
        lines.append(f"{'metric':<{mw}}" + "".join(f"  {labels[v]:>{cw[v]}}" for v in block))
        for m in shown:
            name = m if len(m) <= mw else m[: mw - 1] + "…"
            lines.append(f"{name:<{mw}}" + "".join(f"  {cells.get((m, v), '-'):>{cw[v]}}" for v in block))
    lines.append("")
    lines.append("* best   ~ not significantly different from the best (paired t-test)   "
                 "a share of runs: [Wilson interval]"[: width])
    hidden = len(with_data) - len(shown)
    if hidden > 0:
        lines.append(f"{len(shown)} of {len(with_data)} metrics with data shown; --metrics 'PATTERN' "
                     "shows others (e.g. 'latency_*', all), -o FILE writes every run"[: width])
    return "\n".join(lines)


def bullet_lines(lines: Iterable[str], width: int = 120) -> str:
    """Sentences as ``- `` bullets wrapped at ``width`` columns, continuation lines indented."""
    import textwrap

    return "\n".join(textwrap.fill(line, width=width, initial_indent="- ", subsequent_indent="  ",
                                    break_on_hyphens=False, break_long_words=False) for line in lines)
