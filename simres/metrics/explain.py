"""Answer "why did this happen at T?" from a decision log (:mod:`simres.metrics.decisions`).

:func:`explain` finds the state changes (breaker transitions, ejections, rate-limiter
cuts, faults) of a component nearest to a time, and writes one short paragraph per
decision in words with the evidence it was made on, followed by what led to it: the
failed tries of that component just before, with their outcomes, and the faults active
then. ``simres explain`` prints it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

STATE_CHANGES = ("breaker", "ejected", "unejected", "probation", "probe_failed", "rate_limit", "fault_start",
                 "fault_end")
"""The events :func:`explain` explains (the rest are evidence: tries, retries, refusals)."""

LED_BY = 5
"""Failed tries shown before each decision."""


def matches(component: str, pattern: str | None) -> bool:
    """Whether ``component`` is ``pattern``: the same name, the same call site without its
    member suffix (``web->api`` matches ``web->api#3``), a service it calls or is
    (``api`` matches ``web->api#3`` and ``api/0``), or a glob (``web->*``)."""
    if pattern is None:
        return True
    if component == pattern or component.split("#", 1)[0] == pattern:
        return True
    callee = component.split("#", 1)[0].split("->")[-1]
    if callee == pattern or component.split("/", 1)[0] == pattern:
        return True
    return any(c in pattern for c in "*?[") and fnmatchcase(component, pattern)


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.0f} %"


def _s(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.2f} s"


def _dur(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):g} s"


_RULES = {"at_or_above": "at or above", "above": "above", "count_above": "failures above threshold x calls",
          "percent_above": "percentage above"}


def _window(d: dict[str, Any]) -> str:
    kind, size = d.get("window"), d.get("window_size")
    if kind == "count":
        return f"a count window of {size:g} calls"
    if kind in ("time", "rolling", "sampling"):
        return f"a {kind} window of {size:g} s"
    return f"a {kind} window"


def breaker_sentence(d: dict[str, Any]) -> str:
    """One breaker transition in words, with the evidence it decided on."""
    head = f"{d['component']} breaker {d.get('old')}->{d.get('new')} at {_s(d['time'])}"
    reason = d.get("reason", "")
    if reason == "failure_rate":
        why = (f"{d['failures']} of the last {d['calls']} calls failed ({_pct(d.get('failure_rate'))}), "
               f"threshold {_pct(d.get('threshold'))} ({_RULES.get(d.get('rule', ''), d.get('rule'))}) over "
               f"{_window(d)} (minimum {d.get('minimum_calls'):g} calls)")
    elif reason == "slow_rate":
        why = (f"{d['slow_calls']} of the last {d['calls']} calls were slow (over {_dur(d.get('slow_call_duration'))}: "
               f"{_pct(d.get('slow_rate'))}), slow-call threshold {_pct(d.get('slow_threshold'))} over "
               f"{_window(d)} (minimum {d.get('minimum_calls'):g} calls)")
    elif reason == "consecutive_failures":
        why = f"{d.get('streak')} failures in a row, threshold {d.get('failure_threshold')} consecutive failures"
    elif reason in ("half_open_failure_rate", "half_open_slow_rate", "half_open_recovered"):
        what = "were slow" if reason == "half_open_slow_rate" else "failed"
        n = d.get("slow_calls") if reason == "half_open_slow_rate" else d.get("failures")
        rate = (n / d["probes"]) if d.get("probes") else None
        thr = d.get("slow_threshold") if reason == "half_open_slow_rate" else d.get("threshold")
        verdict = "below" if reason == "half_open_recovered" else "at or above"
        why = f"{n} of {d.get('probes')} half-open probes {what} ({_pct(rate)}), {verdict} the threshold {_pct(thr)}"
    elif reason == "probe_failed":
        why = "the half-open probe failed"
    elif reason == "probe_succeeded":
        why = f"the half-open probe succeeded ({d.get('close_after_successes')} success(es) needed)"
    elif reason == "open_elapsed":
        why = "the open period ended; probing the dependency"
    elif reason == "half_open_timeout":
        why = f"no half-open verdict within {_dur(d.get('half_open_max_wait'))}"
    else:
        why = reason or "no reason recorded"
    tail = ""
    if d.get("new") == "open" and d.get("open_for") is not None:
        k = d.get("consecutive_opens")
        tail = f"; open for {_dur(d['open_for'])} (until {_s(d.get('open_until'))}" + (
            f", open #{k} in a row)" if k and k > 1 else ")")
    if d.get("try") is not None:
        tail += f". Decided on the result of try {d['try']} (request {d.get('req')})"
    return f"{head}: {why}{tail}."


def decision_sentence(d: dict[str, Any]) -> str:
    """Any state change in words (a breaker transition by :func:`breaker_sentence`)."""
    ev = d["event"]
    if ev == "breaker":
        return breaker_sentence(d)
    if ev in ("ejected", "unejected", "probation", "probe_failed"):
        verb = {"ejected": "ejected", "unejected": "returned", "probation": "put on probation",
                "probe_failed": "ejected again (failed probe)"}[ev]
        return f"{d['component']} {verb} instance {d.get('instance')} at {_s(d['time'])}: {d.get('reason')}."
    if ev == "rate_limit":
        return (f"{d['component']} client rate limiter cut its fill rate to {d.get('fill_rate'):.3g}/s at "
                f"{_s(d['time'])} after a {d.get('outcome')} reply.")
    if ev == "fault_start":
        return (f"fault {d['component']} ({d.get('kind')}" + (f" on {d['service']}" if d.get("service") else "")
                + f") started at {_s(d['time'])}" + (f" for {_dur(d['duration'])}" if d.get("duration") else "")
                + ".")
    if ev == "fault_end":
        return f"fault {d['component']} ({d.get('kind')}) ended at {_s(d['time'])}."
    return f"{d['component']} {ev} at {_s(d['time'])}."


def _try_line(d: dict[str, Any]) -> str:
    where = f" at {d['instance']}" if d.get("instance") else ""
    took = f" after {float(d['duration']) * 1000:.1f} ms" if d.get("duration") is not None else ""
    return (f"  {_s(d['time'])}  try {d.get('try')} (request {d.get('req')}, attempt {d.get('attempt')}){where}: "
            f"{d.get('outcome')}{took}")


def _active_faults(rows: Sequence[dict[str, Any]], t: float) -> list[str]:
    started: dict[str, dict[str, Any]] = {}
    for d in rows:
        if d["time"] > t:
            break
        if d["event"] == "fault_start":
            started[d["component"]] = d
        elif d["event"] == "fault_end":
            started.pop(d["component"], None)
    return [f"{name} ({d.get('kind')}" + (f" on {d['service']}" if d.get("service") else "")
            + f", since {_s(d['time'])})" for name, d in started.items()]


def explain(rows: Iterable[dict[str, Any]], at: float, component: str | None = None,
            window: float = 5.0, limit: int = 4) -> list[str]:
    """Paragraphs explaining the state changes of ``component`` nearest to ``at``.

    The decisions within ``window`` seconds of ``at`` (the ``limit`` nearest, shown in time
    order), each followed by the failed tries of its component in the ``window`` seconds
    before it (the last :data:`LED_BY`) and the faults active then. An empty list: nothing
    changed there.
    """
    rows = sorted(rows, key=lambda d: d["time"])
    found = [d for d in rows if d["event"] in STATE_CHANGES and abs(d["time"] - at) <= window
             and matches(str(d.get("component", "")), component)]
    found = sorted(sorted(found, key=lambda d: abs(d["time"] - at))[:limit], key=lambda d: d["time"])
    out = []
    for d in found:
        lines = [decision_sentence(d)]
        if d["event"] in ("breaker", "ejected", "probe_failed", "rate_limit"):
            t, comp = d["time"], d["component"]
            comp_match = comp if "#" in comp or d["event"] != "breaker" else None
            tries = [r for r in rows if r["event"] == "try_failed" and t - window <= r["time"] <= t
                     and (r.get("component") == comp or (comp_match is None and matches(r.get("component", ""), comp)))]
            if tries:
                shown = tries[-LED_BY:]
                lines.append(f"Led to it: {len(tries)} failed tries in the {window:g} s before"
                             + (f" (the last {len(shown)}):" if len(shown) < len(tries) else ":"))
                lines.extend(_try_line(r) for r in shown)
            faults = _active_faults(rows, t)
            if faults:
                lines.append("Active fault(s): " + "; ".join(faults) + ".")
        out.append("\n".join(lines))
    return out
