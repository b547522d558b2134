"""How ``simres run`` shows a summary: grouped, with units, rows without data hidden.

The summary of a run is a flat mapping of ~70 keys (docs/metrics.md); most of them are
empty or zero for any one scenario. The default view groups what a reader looks for
first (requests, latency, failures, work, services, breakers, faults, stability), shows
latencies in milliseconds and shares in percent, and hides the rows that carry no
information: NaN values (a priority with no traffic), failure shares that are zero, and
the per-client and per-priority rows when there is only one class. ``--metrics`` picks
keys by glob pattern (``latency_*``, ``all``) and ``--json`` prints every key for scripts.
Rendering uses rich, so the table fits the terminal and reads the same when piped.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

Formatter = Callable[[float], str]


def _num(x: float) -> str:
    if x.is_integer() and abs(x) < 1e12:
        return f"{int(x):,}"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:.4g}"


def _ms(x: float) -> str:
    return f"{x * 1000:.3g} ms" if abs(x) < 1 else f"{x:.3g} s"


def _pct(x: float) -> str:
    if x == 0 or x == 1:
        return f"{x * 100:.0f} %"
    return f"{x * 100:.3g} %" if x * 100 < 99.9 else f"{x * 100:.2f} %"


def _per_s(x: float) -> str:
    return f"{x:.4g} /s"


def _sec(x: float) -> str:
    return f"{x:.3g} s"


def _yes(x: float) -> str:
    return "yes" if x == 1 else "no"


def _times(x: float) -> str:
    return f"{x:.3g}×"


RATES = ("error_rate", "timeout_rate", "connection_rate", "rejected_rate", "shed_rate", "throttled_rate",
         "breaker_open_rate", "bulkhead_full_rate", "degraded_rate", "unfinished_rate")

# (group, key or pattern, label, formatter, hide when zero)
_ROWS: tuple[tuple[str, str, str, Formatter, bool], ...] = (
    ("requests", "count", "measured requests", _num, False),
    ("requests", "success_rate", "success", _pct, False),
    ("requests", "goodput", "goodput", _per_s, False),
    ("requests", "throughput", "throughput", _per_s, False),
    ("requests", "slo_attainment", "within the SLO", _pct, False),
    ("latency of successes", "latency_p50", "p50", _ms, False),
    ("latency of successes", "latency_p90", "p90", _ms, False),
    ("latency of successes", "latency_p99", "p99", _ms, False),
    ("latency of successes", "latency_p999", "p99.9", _ms, False),
    ("latency of successes", "latency_max", "max", _ms, False),
    ("latency of all requests", "latency_all_p99", "p99 (failures at give-up)", _ms, False),
    *(("failures", k, k.removesuffix("_rate").replace("_", " "), _pct, True) for k in RATES),
    ("work", "tries_per_request", "client tries per request", _num, False),
    ("work", "work_per_success", "work per success (total / useful)", _times, False),
    ("work", "amplification:*", "amplification at {}", _times, False),
    ("services", "utilization:*", "utilization of {}", _pct, False),
    ("services", "queue_len:*", "mean queue at {}", _num, True),
    ("breakers", "breaker_open_share:*", "open share of {}", _pct, False),
    ("breakers", "breaker_transitions:*", "transitions of {}", _num, False),
    ("faults", "recovered:*", "recovered from {}", _yes, False),
    ("faults", "relapsed:*", "relapsed after {}", _yes, True),
    ("faults", "recovery_time:*", "recovery time after {}", _sec, False),
    ("stability", "stable_at_end", "healthy at the end", _yes, False),
    ("per class", "success_rate:*", "success of {}", _pct, False),
    ("per class", "latency_p99:*", "p99 of {}", _ms, False),
    ("per class", "shed_rate:*", "shed share of {}", _pct, True),
)

FORMATS: dict[str, Formatter] = {
    "latency": _ms, "recovery_time": _sec, "goodput": _per_s, "throughput": _per_s, "tries_per_s": _per_s,
    "utilization": _pct, "breaker_open_share": _pct, "slo_attainment": _pct, "recovered": _yes,
    "relapsed": _yes, "stable_at_end": _yes, "amplification": _times, "work_per_success": _times,
}
"""The formatter of a key by its prefix, for ``--metrics`` (everything else is a plain number)."""


def format_for(key: str) -> Formatter:
    """The unit-aware formatter of a summary key."""
    base = key.split(":", 1)[0]
    if base.endswith("_rate") or base.startswith("success_rate"):
        return _pct
    for prefix, fmt in FORMATS.items():
        if base.startswith(prefix):
            return fmt
    return _num


def _classes(summary: Mapping[str, float], prefix: str) -> list[str]:
    return [k for k in summary if k.startswith(prefix) and _present(summary[k])]


def _present(v: float) -> bool:
    return isinstance(v, int | float) and not math.isnan(v)


def grouped_rows(summary: Mapping[str, float]) -> list[tuple[str, str, str]]:
    """``(group, label, value)`` rows of the default view, in display order."""
    rows: list[tuple[str, str, str]] = []
    # per-class rows only tell something when there are several classes with traffic
    several = {p: len(_classes(summary, f"success_rate:{p}=")) > 1 for p in ("priority", "client")}
    for group, key, label, fmt, hide_zero in _ROWS:
        keys = sorted(k for k in summary if fnmatch.fnmatchcase(k, key)) if "*" in key else [key]
        for k in keys:
            v = summary.get(k)
            if v is None or not _present(v) or (hide_zero and v == 0):
                continue
            name = k.split(":", 1)[1] if ":" in k else ""
            if group == "per class":
                kind = name.split("=", 1)[0]
                if not several.get(kind, False):
                    continue
            rows.append((group, label.format(name), fmt(float(v))))
    return rows


def select(summary: Mapping[str, float], patterns: Sequence[str]) -> list[str]:
    """The keys matching any of ``patterns`` (globs; ``all`` is every key), in summary order."""
    if "all" in patterns:
        return list(summary)
    keys = [k for k in summary if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
    if not keys:
        from simres.errors import SimresError

        raise SimresError(f"--metrics: no summary key matches {', '.join(patterns)} "
                          "(e.g. latency_p99, 'latency_*', 'utilization:*', all)")
    return keys


def summary_table(summary: Mapping[str, float], *, title: str, metrics: Sequence[str] = ()) -> Table:
    """The rich table ``simres run`` prints: the grouped view, or the keys ``metrics`` picks."""
    del title  # printed above the table by print_table (a table title wraps at the table's width)
    table = Table(box=box.SIMPLE_HEAD if metrics else None, show_header=bool(metrics), pad_edge=False)
    if metrics:
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k in select(summary, metrics):
            v = summary[k]
            table.add_row(k, format_for(k)(float(v)) if _present(v) else "-")
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
    n_data = sum(1 for v in summary.values() if _present(v))
    return (f"{n_shown} of {n_data} metrics with data shown; "
            "--metrics 'PATTERN' picks others (e.g. 'latency_*', all), --json prints every key")
