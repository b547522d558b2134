"""The topology of a scenario: clients and services as boxes, calls as arrows with their policies.

A report opens with it, so a reader sees what talks to what before reading numbers: each
arrow is labelled with the policies of that call (timeout, retry, budget, breaker,
bulkhead), each box with its capacity, faults are marked in red on their targets, and the
variants that change a call or a service are named on it. Drawn with matplotlib only (a
layered layout computed here: clients on the left, every service one column right of its
furthest caller), so it needs no graph library or Graphviz binary.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from simres.reporting.plots._base import PlotError, _figure, _styled, format_number, set_title

BOX_W, BOX_H = 2.0, 1.0
"""Box size in layout units (a column is :data:`COL_GAP` wide, a row :data:`ROW_GAP` tall)."""
COL_GAP, ROW_GAP = 4.6, 2.1
LABEL_CHARS = 28
"""Edge labels are wrapped to this many characters a line, so they fit between two columns."""
FAULT_COLOUR = "#B2182B"


@dataclass
class _Node:
    name: str
    kind: str  # "client" or "service"
    lines: list[str]
    column: int = 0
    row: float = 0.0
    faults: list[str] = field(default_factory=list)
    varied: list[str] = field(default_factory=list)


@dataclass
class _Edge:
    source: str
    target: str
    lines: list[str]
    varied: list[str] = field(default_factory=list)


def _seconds(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{format_number(x * 1000)}\u00a0ms" if x < 1 else f"{format_number(x)}\u00a0s"


def _kind(obj: Any) -> str:
    k = getattr(obj, "kind", obj)
    return str(k)


def policy_lines(call: Any) -> list[str]:
    """Short descriptions of the policies of a call or client: timeout, retry, budget, breaker, bulkhead."""
    out = []
    timeout = getattr(call, "timeout", None)
    deadline = getattr(call, "deadline", None)
    if timeout is not None or deadline is not None:
        parts = [f"timeout {_seconds(timeout)}"] if timeout is not None else []
        if deadline is not None:
            parts.append(f"deadline {_seconds(deadline)}")
        out.append(", ".join(parts))
    retry = getattr(call, "retry", None)
    if retry is not None:
        tries = getattr(retry, "max_attempts", None)
        backoff = getattr(retry, "backoff", None)
        jitter = _kind(getattr(retry, "jitter", "none"))
        text = f"retry: {tries} tries"
        if backoff is not None and _kind(backoff) != "none":
            base = getattr(backoff, "base", None)
            text += f", {_kind(backoff)} backoff" + (f" {_seconds(base)}" if base else "")
        if jitter != "none":
            text += f", {jitter} jitter"
        preset = getattr(retry, "preset", None)
        out.append(text + (f" ({preset})" if preset else ""))
        budget = getattr(retry, "budget", None)
        if budget is not None:
            preset = getattr(budget, "preset", None)
            out.append(f"budget: {_kind(budget)}" + (f" ({preset})" if preset else ""))
    breaker = getattr(call, "breaker", None)
    if breaker is not None:
        preset = getattr(breaker, "preset", None)
        out.append(f"breaker: {getattr(breaker, 'trip', '?')}" + (f" ({preset})" if preset else ""))
    bulkhead = getattr(call, "bulkhead", None)
    if bulkhead is not None:
        out.append(f"bulkhead: {getattr(bulkhead, 'max_concurrent', '?')} in flight")
    throttle = getattr(call, "throttle", None)
    if throttle is not None:
        out.append("adaptive throttling")
    if getattr(call, "critical", True) is False:
        out.append("optional (fallback)")
    return out or ["no timeout, no retry"]


def _calls(handler: Any) -> list[tuple[str, Any]]:
    """``(path segment, call)`` of every downstream call of a handler (also in nested steps)."""
    out: list[tuple[str, Any]] = []
    for i, c in enumerate(getattr(handler, "calls", None) or []):
        out.append((str(i), c))
    for i, step in enumerate(getattr(handler, "steps", None) or []):
        for j, c in _calls(step):
            out.append((f"steps.{i}.{j}", c))
        if hasattr(step, "to"):
            out.append((f"steps.{i}", step))
    return out


def _arrival_text(client: Any) -> str:
    arrival = getattr(client, "arrival", None)
    count = getattr(client, "count", 1) or 1
    kind = _kind(arrival)
    if kind in ("poisson", "constant"):
        return f"{format_number(float(arrival.rate) * count)} req/s ({kind})"
    if kind == "closed":
        return f"{arrival.users * count} users (closed loop)"
    return f"{kind} arrivals"


def _fault_text(f: Any) -> str:
    when = f"{f.at:g}" + ("\u00a0s on" if f.duration is None else f"–{f.at + f.duration:g}\u00a0s")
    kind = f.kind
    extra = {"slowdown": lambda: f"×{f.factor:g}", "load": lambda: f"×{f.factor:g}",
             "capacity": lambda: f"-{f.remove} workers", "errors": lambda: f"{f.probability:.0%}",
             "chaos": lambda: f"{f.rate:.0%}", "crash": lambda: str(f.mode),
             "partition": lambda: f"{', '.join(f.from_)} ↔ {', '.join(f.to)}",
             "latency": lambda: f"{', '.join(f.from_)} ↔ {', '.join(f.to)}"}.get(kind, lambda: "")()
    instance = getattr(f, "instance", None)
    if instance is not None:
        extra += f" (instance {instance})"
    head = kind if not f.name or f.name == kind else f"{f.name}: {kind}"
    return " ".join(t for t in (head, extra, when) if t)


def _layout(nodes: dict[str, _Node], edges: Sequence[_Edge]) -> None:
    """Columns by longest path from a client; rows ordered by the mean row of the callers."""
    callers: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        callers[e.target].append(e.source)
    done: dict[str, int] = {}

    def depth(n: str, seen: frozenset[str] = frozenset()) -> int:
        if n in done:
            return done[n]
        if n in seen:  # cannot happen for a validated scenario (cycles are refused)
            return 0
        d = 0 if nodes[n].kind == "client" or not callers[n] else \
            1 + max(depth(c, seen | {n}) for c in callers[n])
        if nodes[n].kind == "service" and d == 0:
            d = 1  # a service nobody calls still sits right of the clients
        done[n] = d
        return d

    for n in nodes:
        nodes[n].column = depth(n)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(nodes[n].column, []).append(n)
    for col in sorted(columns):
        names = columns[col]
        if col > 0:
            def key(n: str, col: int = col) -> float:
                rows = [nodes[c].row for c in callers[n] if nodes[c].column < col]
                return sum(rows) / len(rows) if rows else 0.0
            names.sort(key=key)
        k = len(names)
        for i, n in enumerate(names):
            nodes[n].row = (i - (k - 1) / 2) * ROW_GAP


def _variant_targets(overrides: Mapping[str, Mapping[str, Any]], scenario: Any) -> tuple[dict[str, list[str]],
                                                                                         dict[tuple[str, str],
                                                                                              list[str]]]:
    """Which variants change each node and each edge (by the dotted paths of their overrides)."""
    on_node: dict[str, list[str]] = {}
    on_edge: dict[tuple[str, str], list[str]] = {}
    for v, ov in overrides.items():
        for path in ov:
            parts = str(path).split(".")
            if len(parts) >= 2 and parts[0] == "clients" and parts[1] in scenario.clients:
                keys = [(parts[1], scenario.clients[parts[1]].target)]
                if len(parts) > 2 and parts[2] in ("arrival", "count", "start", "stop", "priority", "workflow"):
                    on_node.setdefault(parts[1], []).append(v)
                    continue
                for k in keys:
                    on_edge.setdefault(k, []).append(v)
            elif len(parts) >= 2 and parts[0] == "services" and parts[1] in scenario.services:
                svc = scenario.services[parts[1]]
                if len(parts) >= 5 and parts[2] == "handler" and parts[3] == "calls":
                    target = None
                    if parts[4].isdigit() and int(parts[4]) < len(svc.handler.calls):
                        target = svc.handler.calls[int(parts[4])].to
                    elif parts[4] in scenario.services:
                        target = parts[4]
                    if target is not None:
                        on_edge.setdefault((parts[1], target), []).append(v)
                        continue
                on_node.setdefault(parts[1], []).append(v)
    return ({k: list(dict.fromkeys(v)) for k, v in on_node.items()},
            {k: list(dict.fromkeys(v)) for k, v in on_edge.items()})


def _graph(scenario: Any, variants: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, _Node], list[_Edge]]:
    nodes: dict[str, _Node] = {}
    edges: list[_Edge] = []
    for name, svc in scenario.services.items():
        lines = [f"{svc.instances}×{svc.workers} workers" if svc.instances > 1 else f"{svc.workers} workers"]
        cap = getattr(getattr(svc, "queue", None), "capacity", None)
        if cap is not None:
            lines.append(f"queue ≤ {cap}")
        if getattr(svc, "on_caller_gone", "continue") == "cancel":
            lines.append("cancels abandoned work")
        if getattr(svc, "shedding", None) is not None:
            lines.append("load shedding")
        calls = _calls(svc.handler)
        if len(calls) > 1:
            lines.append(f"{getattr(svc.handler, 'mode', 'sequential')} calls")
        rep = getattr(svc, "replica", None)
        if rep is not None:  # the replication stream is no call: named in both boxes, not drawn as an arrow
            lines.append(f"replica of {rep.of}")
            bound = _seconds(rep.max_staleness)
            lines.append("available (AP)" if rep.mode == "available" else f"consistent (CP, ≤ {bound})")
        readers = [r for r, s in scenario.services.items() if getattr(s, "replica", None) is not None
                   and s.replica.of == name]
        if readers:
            lines.append("write log → " + ", ".join(readers))
        nodes[name] = _Node(name, "service", lines)
    for name, c in scenario.clients.items():
        key = f"client:{name}"
        nodes[key] = _Node(name, "client", [_arrival_text(c)])
        edges.append(_Edge(key, c.target, policy_lines(c)))
    for name, svc in scenario.services.items():
        by_target: dict[str, list[list[str]]] = {}
        for _seg, call in _calls(svc.handler):
            by_target.setdefault(call.to, []).append(policy_lines(call))
        for target, lines in by_target.items():
            if len(lines) == 1:
                edges.append(_Edge(name, target, lines[0]))
            else:
                merged = [f"call {i + 1}: " + "; ".join(ls) for i, ls in enumerate(lines)]
                edges.append(_Edge(name, target, merged))
    for f in scenario.faults:
        targets: Iterable[str]
        if getattr(f, "service", None) is not None:
            targets = [f.service]
        elif f.kind == "load":
            targets = [f"client:{f.client}"]
        else:  # network faults: mark both sides
            targets = [*getattr(f, "from_", []), *getattr(f, "to", [])]
        for t in dict.fromkeys(str(t).split("/")[0].split("#")[0] for t in targets):
            key = t if t in nodes else f"client:{t}" if f"client:{t}" in nodes else None
            if key is not None:
                nodes[key].faults.append(_fault_text(f))
    on_node, on_edge = _variant_targets(variants, scenario)
    for n, vs in on_node.items():
        key = n if n in nodes and nodes[n].kind == "service" else f"client:{n}"
        if key in nodes:
            nodes[key].varied = vs
    for e in edges:
        src = nodes[e.source].name
        e.varied = on_edge.get((src, e.target), [])
    return nodes, edges


@_styled
def topology(scenario: Any, *, variants: Mapping[str, Mapping[str, Any]] | None = None,
             title: str | None = None) -> Figure:
    """The scenario's clients, services and calls, with the policies on each call and faults on their targets.

    Args:
        scenario: a :class:`simres.scenario.schema.Scenario` (as written: variants are named, not applied).
        variants: ``{variant: {dotted path: value}}``; by default the scenario's own. Each box
            and arrow a variant changes names it ("varied by: ...").
        title: figure title (default: the scenario's name).
    """
    if not hasattr(scenario, "services") or not hasattr(scenario, "clients"):
        raise PlotError(f"scenario: expected a Scenario, got {type(scenario).__name__}")
    nodes, edges = _graph(scenario, scenario.variants if variants is None else variants)
    _layout(nodes, edges)
    ncols = max(n.column for n in nodes.values()) + 1
    rows_per_col: dict[int, int] = {}
    for n in nodes.values():
        rows_per_col[n.column] = rows_per_col.get(n.column, 0) + 1
    nrows = max(rows_per_col.values())
    width = min(2.75 * ncols + 0.3, 12.0)
    height = min(max(1.45 * nrows + 0.8, 2.2), 9.0)
    fig = _figure(width, height)
    ax = fig.subplots()
    ax.set_axis_off()
    ax.grid(False)
    for e in edges:
        a, b = nodes[e.source], nodes[e.target]
        x0, y0 = a.column * COL_GAP + BOX_W / 2, a.row
        x1, y1 = b.column * COL_GAP - BOX_W / 2, b.row
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=11, color="0.25",
                                     linewidth=1.1, zorder=1, shrinkA=0, shrinkB=0))
        lines = e.lines + ([f"varied by: {', '.join(e.varied)}"] if e.varied else [])
        text = "\n".join(w for ln in lines for w in textwrap.wrap(ln, LABEL_CHARS, subsequent_indent="  "))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, text, ha="center", va="center", fontsize=6.3, color="0.1",
                zorder=3, linespacing=1.2,
                bbox={"boxstyle": "round,pad=0.25", "fc": "#fffdf3", "ec": "0.7", "lw": 0.5})
    for n in nodes.values():
        x, y = n.column * COL_GAP, n.row
        client = n.kind == "client"
        ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H,
                                    boxstyle="round,pad=0.05,rounding_size=0.35" if client else "round,pad=0.05",
                                    fc="#e8f1f8" if client else "#f2f2f2",
                                    ec=FAULT_COLOUR if n.faults else "0.3", lw=1.6 if n.faults else 0.9, zorder=2))
        label = ("client " if client else "") + n.name
        ax.text(x, y + 0.2, label, ha="center", va="center", fontsize=8.5, fontweight="bold", zorder=4)
        ax.text(x, y - 0.2, "\n".join(n.lines), ha="center", va="center", fontsize=6.5, color="0.2", zorder=4,
                linespacing=1.15)
        below = [f"⚠ {t}" for t in n.faults] + ([f"varied by: {', '.join(n.varied)}"] if n.varied else [])
        below = [w for ln in below for w in textwrap.wrap(ln, LABEL_CHARS + 6, subsequent_indent="  ")]
        if below:
            ax.text(x, y - BOX_H / 2 - 0.12, "\n".join(below), ha="center", va="top", fontsize=6.3, zorder=4,
                    color=FAULT_COLOUR if n.faults else "0.3", linespacing=1.2)
    xs = [n.column * COL_GAP for n in nodes.values()]
    ys = [n.row for n in nodes.values()]
    ax.set_xlim(min(xs) - BOX_W / 2 - 0.3, max(xs) + BOX_W / 2 + 0.3)
    low = max((len(n.faults) + bool(n.varied) for n in nodes.values() if n.row == min(ys)), default=0)
    ax.set_ylim(min(ys) - BOX_H / 2 - 0.2 - 0.3 * low, max(ys) + BOX_H / 2 + 0.2)
    set_title(ax, title if title is not None else f"Topology of {scenario.name}")
    return fig
