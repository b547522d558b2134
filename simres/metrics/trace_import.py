"""Recorded traces (OTLP JSON or Jaeger JSON) read into tries, and a starter scenario inferred from them.

Why: a user who has traces of a real system should not have to write a scenario from a
blank page; the traces already say who calls whom, how long each service works on a
request, how often calls are made and retried, and how fast requests arrive.

What: :func:`read_spans` reads either format into :class:`Span` records (one per span,
times in seconds from the first span seen). :func:`tries_of` turns spans into
:class:`Try` records: a try is a CLIENT span whose callee is known (``peer.service``, or
the service of a child span), or, in server-only instrumentations, a span whose parent
belongs to another service. :func:`infer` builds the service graph from the tries and
:func:`scenario_dict` writes it as a scenario mapping:

- the service graph: an edge per (caller, callee) seen, its calls in the order they
  start; a handler is ``parallel`` when most of its handlers with two or more calls
  overlap them in time, else ``sequential``;
- per-service self-time: a try's duration minus the time covered by the logical calls its
  handler made (from a call's first try's start to its last try's end, so backoff waits
  are not counted as work). Network and queueing time are part of it: the starter
  scenario has no network latency and generous workers, so nothing is counted twice;
- per-edge calls per handler, rounded to the nearest whole number (a handler call has
  no probability in the schema); the measured share is kept as a note;
- retries: the most tries seen in one logical call becomes ``retry.max_attempts``, the
  median gap between a failed try's end and the next try's start a constant backoff;
- timeouts: failed tries whose durations cluster (most within 5 % of their median) give
  that median as the call's ``timeout``;
- non-critical calls: a call whose every try failed under a handler that still succeeded;
- the arrival rate per client: the roots of that client / the span of their start times.

A pure function of the span data: it lives with the metrics and imports no scenario
code; the CLI validates what it writes.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simres.errors import SimresError

EXPECTED = ("expected OTLP JSON (TracesData with resourceSpans, one per line as the Collector's file exporter "
            "writes) or Jaeger JSON ({\"data\": [{\"traceID\", \"spans\", \"processes\"}]})")

EMPIRICAL_MIN = 100
"""With at least this many self-time samples a service's self-time is written as an
``empirical`` distribution in a CSV file next to the scenario (every quirk of the measured
shape kept); with fewer, a lognormal fitted to the logs (a smooth tail beats a handful of
resampled values)."""

TIMEOUT_CLUSTER = 0.05
"""Failed tries within this fraction of their median duration count as one cluster."""

TIMEOUT_SHARE = 0.6
"""...and when at least this share of a call's failed tries (and 3 or more) cluster, their
median is the call's timeout."""

OTLP_KINDS = {0: "", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer",
              "SPAN_KIND_UNSPECIFIED": "", "SPAN_KIND_INTERNAL": "internal", "SPAN_KIND_SERVER": "server",
              "SPAN_KIND_CLIENT": "client", "SPAN_KIND_PRODUCER": "producer", "SPAN_KIND_CONSUMER": "consumer"}

LOCAL = frozenset({"breaker_open", "bulkhead_full", "throttled"})
"""simres outcomes of a try refused by the caller itself: never sent, no duration to learn from."""


CALLEE_KEYS = ("peer.service", "server.address", "net.peer.name", "db.system")
"""Attributes that name a CLIENT span's callee when it has no child span of another service
(an uninstrumented database or API), in order of preference."""


def service_name(name: object) -> str:
    """A trace's service name as a scenario name: letters, digits, ``_`` and ``-`` only (dots,
    slashes and spaces become ``-``, as paths use dots and links ``service/i``), never a
    bare number."""
    out = re.sub(r"[^A-Za-z0-9_-]+", "-", str(name)).strip("-") or "unknown"
    return f"svc-{out}" if out.lstrip("+-").isdigit() else out


class TraceImportError(SimresError, ValueError):
    """A trace file that cannot be read: the message names the file and what was expected."""


@dataclass
class Span:
    """One span in either format; times in seconds from the first span of the file."""

    trace: str
    span: str
    parent: str
    service: str
    name: str
    kind: str
    start: float
    end: float
    error: bool
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.service = service_name(self.service)
        for k in CALLEE_KEYS:
            if self.attrs.get(k):
                self.attrs[k] = service_name(self.attrs[k])

    @property
    def duration(self) -> float:
        """Seconds from start to end (never negative)."""
        return max(0.0, self.end - self.start)


# ---------------------------------------------------------------------------- reading


def _otlp_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    return None


def _otlp_attrs(items: Any) -> dict[str, Any]:
    return {a["key"]: _otlp_value(a.get("value")) for a in items or () if isinstance(a, dict) and "key" in a}


class _Clock:
    """Integer nanoseconds (or microseconds) to float seconds from the first time seen."""

    def __init__(self) -> None:
        self.base: int | None = None

    def __call__(self, t: int) -> float:
        if self.base is None:
            self.base = t
        return (t - self.base) / 1e9


def _otlp_spans(doc: dict[str, Any], clock: _Clock) -> Iterable[Span]:
    for rs in doc["resourceSpans"]:
        service = str(_otlp_attrs((rs.get("resource") or {}).get("attributes")).get("service.name", "unknown"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or ():
            for s in ss.get("spans", ()):
                start, end = clock(int(s["startTimeUnixNano"])), clock(int(s["endTimeUnixNano"]))
                status = (s.get("status") or {}).get("code", 0)
                yield Span(str(s["traceId"]), str(s["spanId"]), str(s.get("parentSpanId") or ""), service,
                           str(s.get("name", "")), OTLP_KINDS.get(s.get("kind", 0), ""), start, end,
                           status in (2, "STATUS_CODE_ERROR"), _otlp_attrs(s.get("attributes")))


def _jaeger_spans(doc: dict[str, Any], clock: _Clock) -> Iterable[Span]:
    for tr in doc["data"]:
        procs = {pid: str(p.get("serviceName", "unknown")) for pid, p in (tr.get("processes") or {}).items()}
        for s in tr["spans"]:
            tags = {t["key"]: t.get("value") for t in s.get("tags") or () if isinstance(t, dict) and "key" in t}
            parent = str(s.get("parentSpanID") or "")
            for ref in s.get("references") or ():
                if ref.get("refType", "CHILD_OF") in ("CHILD_OF", "FOLLOWS_FROM") and ref.get("spanID"):
                    parent = str(ref["spanID"])
                    break
            start = clock(int(s["startTime"]) * 1000)
            error = tags.get("error") in (True, "true") or str(tags.get("otel.status_code", "")).upper() == "ERROR"
            yield Span(str(s.get("traceID") or tr.get("traceID")), str(s["spanID"]), parent,
                       procs.get(s.get("processID"), str(s.get("processID", "unknown"))),
                       str(s.get("operationName", "")), str(tags.get("span.kind", "")).lower(), start,
                       start + int(s["duration"]) / 1e6, error, tags)


def read_spans(path: str | os.PathLike[str]) -> list[Span]:
    """Every span of an OTLP JSON file (one TracesData per line, or one object) or a Jaeger
    JSON file (the query API's ``{"data": [...]}``). Raises :class:`TraceImportError`
    naming the file and what was expected for anything else."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TraceImportError(f"{p}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    docs: list[Any]
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise TraceImportError(f"{p}: not JSON (line {e.lineno}: {e.msg}); {EXPECTED}") from None
    clock = _Clock()
    spans: list[Span] = []
    try:
        for doc in docs:
            if isinstance(doc, dict) and isinstance(doc.get("resourceSpans"), list):
                spans.extend(_otlp_spans(doc, clock))
            elif isinstance(doc, dict) and isinstance(doc.get("data"), list):
                spans.extend(_jaeger_spans(doc, clock))
            else:
                raise TraceImportError(f"{p}: {EXPECTED}")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, TraceImportError):
            raise
        raise TraceImportError(f"{p}: a span without a valid {e}; {EXPECTED}") from None
    if not spans:
        raise TraceImportError(f"{p}: no spans; {EXPECTED}")
    return spans


# ---------------------------------------------------------------------------- tries and calls


@dataclass
class Try:
    """One try of a call from ``caller`` to ``callee``: ``span`` is the span whose
    descendants are the callee's work; ``parent`` the span it was made under (its logical
    call's key)."""

    caller: str
    callee: str
    span: Span
    parent: str
    calls: list[Call] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """The try's span has status ERROR."""
        return self.span.error

    @property
    def local(self) -> bool:
        """Refused by the caller itself (simres: ``simres.sent`` false or a local outcome)."""
        a = self.span.attrs
        return a.get("simres.sent") is False or a.get("simres.outcome") in LOCAL

    @property
    def handled(self) -> bool:
        """The callee worked on it: it succeeded, or made calls of its own."""
        return not self.local and (not self.failed or bool(self.calls))


@dataclass
class Call:
    """One logical call: its tries in start order."""

    callee: str
    tries: list[Try]

    @property
    def start(self) -> float:
        return self.tries[0].span.start

    @property
    def end(self) -> float:
        return max(t.span.end for t in self.tries)

    @property
    def failed(self) -> bool:
        return all(t.failed for t in self.tries)


@dataclass
class Traces:
    """What the spans say: the client tries of every root, and every try."""

    roots: list[tuple[str, float, list[Call]]]
    tries: list[Try]
    services: list[str]
    clients: list[str]
    duration: float


def _group_calls(tries: list[Try]) -> list[Call]:
    """Tries made under one span grouped into logical calls: per (parent, callee), in start
    order, a try joins the previous call when it is a resend (``http.request.resend_count``
    > 0) or, without that attribute, when the previous try failed and had ended."""
    calls: list[Call] = []
    last: dict[tuple[str, str], Call] = {}
    for t in sorted(tries, key=lambda t: (t.span.start, t.span.span)):
        key = (t.parent, t.callee)
        prev = last.get(key)
        resend = t.span.attrs.get("http.request.resend_count")
        if prev is not None and resend is not None:
            join = int(resend) > 0
        else:
            join = prev is not None and prev.tries[-1].failed and t.span.start >= prev.tries[-1].span.end - 1e-9
        if join and prev is not None:
            prev.tries.append(t)
        else:
            c = Call(t.callee, [t])
            calls.append(c)
            last[key] = c
    return calls


class _Tree:
    """One trace's spans: children by parent, and which spans are explicit tries (CLIENT
    spans with a callee of another service)."""

    def __init__(self, group: list[Span]) -> None:
        self.ids = {s.span: s for s in group}
        self.kids: dict[str, list[Span]] = defaultdict(list)
        for s in group:
            if s.parent in self.ids:
                self.kids[s.parent].append(s)
        self.explicit: dict[str, str] = {}
        for s in group:
            if s.kind == "client" and (c := self.callee_of(s)) is not None and c != s.service:
                self.explicit[s.span] = c

    def callee_of(self, s: Span) -> str | None:
        """``peer.service``, else the service of a child span of another service, else the
        first of the other :data:`CALLEE_KEYS` a span carries."""
        peer = s.attrs.get("peer.service")
        if peer:
            return str(peer)
        other = [k.service for k in self.kids.get(s.span, ()) if k.service != s.service]
        if other:
            return other[0]
        return next((str(s.attrs[k]) for k in CALLEE_KEYS[1:] if s.attrs.get(k)), None)

    def try_of(self, s: Span) -> Try | None:
        """``s`` as a try: an explicit one, or a span under another service's non-try span."""
        if s.span in self.explicit:
            return Try(s.service, self.explicit[s.span], s, s.parent)
        p = self.ids.get(s.parent)
        if p is not None and p.service != s.service and p.span not in self.explicit:
            return Try(p.service, s.service, s, s.parent)
        return None

    def below(self, s: Span) -> list[Try]:
        """The tries made under ``s`` (through spans that are not tries)."""
        out: list[Try] = []
        stack = list(self.kids.get(s.span, ()))
        while stack:
            k = stack.pop()
            t = self.try_of(k)
            if t is not None:
                out.append(t)
            else:
                stack.extend(self.kids.get(k.span, ()))
        return out


def tries_of(spans: Sequence[Span]) -> Traces:
    """The tries of ``spans``, each with the logical calls its handler made, and per trace the
    root's client and its calls. A root that is a try belongs to a client named after its
    service; a root SERVER span to a client ``<service>-callers`` (the callers were not
    traced); any other root (simres's own export: the client's logical call) is a client."""
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        by_trace[s.trace].append(s)
    roots: list[tuple[str, float, list[Call]]] = []
    all_tries: list[Try] = []
    services: set[str] = set()
    clients: set[str] = set()
    for group in by_trace.values():
        tree = _Tree(group)
        ids, explicit, below = tree.ids, tree.explicit, tree.below

        def expand(t: Try, tree: _Tree = tree) -> None:
            services.add(t.callee)
            all_tries.append(t)
            t.calls = _group_calls(tree.below(t.span))
            for c in t.calls:
                for u in c.tries:
                    expand(u, tree)

        for r in group:
            if r.parent in ids:
                continue
            if r.span in explicit:
                client, top = r.service, [Try(r.service, explicit[r.span], r, "")]
            elif r.kind == "server":
                client = f"{r.service}-callers"
                top = [Try(client, r.service, r, "")]
            else:
                client, top = r.service, below(r)
            if not top:
                continue
            clients.add(client)
            calls = _group_calls(top)
            for c in calls:
                for t in c.tries:
                    expand(t)
            roots.append((client, r.start, calls))
    if not roots:
        raise TraceImportError("no request in the traces made a call: expected spans with a parent/child "
                               "relation across services (CLIENT spans with peer.service, or child spans "
                               "of another service)")
    clash = clients & services
    if clash:  # a client named like a called service (its root was a try of that service): rename the client
        rename = {c: f"{c}-client" for c in clash}
        roots = [(rename.get(c, c), t, calls) for c, t, calls in roots]
        for client, _, calls in roots:
            for call in calls:
                for t in call.tries:
                    t.caller = client
        clients = {rename.get(c, c) for c in clients}
    services -= clients
    starts = [r[1] for r in roots]
    return Traces(roots, all_tries, sorted(services), sorted(clients), max(starts) - min(starts))


# ---------------------------------------------------------------------------- inference


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length covered by ``intervals`` (overlaps counted once)."""
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s  # type: ignore[operator]
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s  # type: ignore[operator]
    return total


def self_time(t: Try) -> float:
    """A try's duration minus the time covered by its handler's logical calls."""
    return max(0.0, t.span.duration - union_length((c.start, c.end) for c in t.calls))


def timeout_of(durations: Sequence[float]) -> float | None:
    """The value failed tries' durations cluster at (a timeout), or None."""
    if len(durations) < 3:
        return None
    m = float(np.median(durations))
    if m <= 0:
        return None
    near = sum(abs(d - m) <= TIMEOUT_CLUSTER * m for d in durations)
    return m if near >= TIMEOUT_SHARE * len(durations) and near >= 3 else None


@dataclass
class Edge:
    """What was seen of the calls from one caller to one callee."""

    caller: str
    callee: str
    calls: int = 0
    parents_with: int = 0
    max_tries: int = 1
    gaps: list[float] = field(default_factory=list)
    failed_durations: list[float] = field(default_factory=list)
    failed_under_ok: int = 0
    offsets: list[float] = field(default_factory=list)

    @property
    def retries(self) -> bool:
        return self.max_tries > 1

    def backoff(self) -> float:
        return float(np.median(self.gaps)) if self.gaps else 0.0

    def timeout(self) -> float | None:
        return timeout_of(self.failed_durations)


@dataclass
class ServiceFacts:
    """What was seen of one service: its handled tries' self-times, its edges, overlap."""

    name: str
    self_times: list[float] = field(default_factory=list)
    handlers: int = 0
    tries: int = 0
    busy: float = 0.0
    multi: int = 0
    overlapping: int = 0
    error_replies: int = 0
    edges: dict[str, Edge] = field(default_factory=dict)

    @property
    def parallel(self) -> bool:
        return self.multi > 0 and self.overlapping > self.multi / 2


@dataclass
class Inferred:
    """The inferred system: services, clients (name -> target, roots, edge), time span."""

    services: dict[str, ServiceFacts]
    clients: dict[str, tuple[str, int, Edge]]
    duration: float
    tries: int


def _edge_note(e: Edge, tries_of_edge: Sequence[Call]) -> None:
    """Add the retries, backoff gaps and failed-try durations of ``tries_of_edge`` to ``e``."""
    for c in tries_of_edge:
        e.max_tries = max(e.max_tries, len(c.tries))
        for a, b in itertools.pairwise(c.tries):
            if a.failed:
                e.gaps.append(max(0.0, b.span.start - a.span.end))
        e.failed_durations.extend(t.span.duration for t in c.tries if t.failed and not t.local)


def _overlap(calls: list[Call]) -> bool:
    cs = sorted(calls, key=lambda c: c.start)
    for a, b in itertools.pairwise(cs):
        short = min(a.end - a.start, b.end - b.start)
        if min(a.end, b.end) - b.start > max(0.1 * short, 1e-9):
            return True
    return False


def infer(traces: Traces) -> Inferred:
    """Per-service and per-edge facts from the tries (see the module docstring)."""
    services = {s: ServiceFacts(s) for s in traces.services}
    for t in traces.tries:
        f = services.get(t.callee)
        if f is None or t.local:
            continue
        f.tries += 1
        f.busy += t.span.duration
        if not t.handled:
            continue
        f.handlers += 1
        downstream_failed = any(c.failed for c in t.calls)
        if t.failed and not downstream_failed and not t.calls:
            f.error_replies += 1
        f.self_times.append(self_time(t))
        by_callee: dict[str, list[Call]] = defaultdict(list)
        for c in t.calls:
            by_callee[c.callee].append(c)
        if len(t.calls) >= 2:
            f.multi += 1
            f.overlapping += _overlap(t.calls)
        for callee, cs in by_callee.items():
            e = f.edges.setdefault(callee, Edge(t.callee, callee))
            e.calls += len(cs)
            e.parents_with += 1
            e.offsets.append(min(c.start for c in cs) - t.span.start)
            if not t.failed:
                e.failed_under_ok += sum(c.failed for c in cs)
            _edge_note(e, cs)
    # timed-out tries that the callee never answered also carry its self-time (censored at
    # the timeout): counted so the re-simulated call times out about as often
    for t in traces.tries:
        f = services.get(t.callee)
        if f is None or t.local or t.handled:
            continue
        caller = services.get(t.caller)
        edge = caller.edges.get(t.callee) if caller else None
        timeout = edge.timeout() if edge else None
        if timeout is not None and abs(t.span.duration - timeout) <= TIMEOUT_CLUSTER * timeout:
            f.self_times.append(t.span.duration)
    clients: dict[str, tuple[str, int, Edge]] = {}
    by_client: dict[str, list[list[Call]]] = defaultdict(list)
    for client, _start, calls in traces.roots:
        by_client[client].append(calls)
    for client, reqs in by_client.items():
        target = Counter(c.callee for calls in reqs for c in calls).most_common(1)[0][0]
        e = Edge(client, target)
        for calls in reqs:
            cs = [c for c in calls if c.callee == target]
            e.calls += len(cs)
            e.parents_with += bool(cs)
            _edge_note(e, cs)
        clients[client] = (target, len(reqs), e)
    return Inferred(services, clients, traces.duration, len(traces.tries))


# ---------------------------------------------------------------------------- the scenario


def _sig(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits: the YAML stays readable."""
    return float(f"{x:.{digits}g}") if x else 0.0


def _dist(name: str, values: Sequence[float], data_dir: Path | None, rel: str) -> tuple[dict[str, Any], str]:
    """A self-time distribution: ``empirical`` from a CSV (written to ``data_dir``) with
    :data:`EMPIRICAL_MIN` samples or more, else a lognormal fit (or a constant)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return {"kind": "constant", "value": 0.001}, "no handled try: a 1 ms placeholder"
    if len(v) >= EMPIRICAL_MIN and data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / f"{name}.csv"
        with open(path, "w", encoding="utf-8") as f:
            f.write("self_time\n")
            f.writelines(f"{x:.9g}\n" for x in v)
        return {"kind": "empirical", "file": f"{rel}/{name}.csv", "column": "self_time"}, \
            f"{len(v)} samples, empirical from {rel}/{name}.csv"
    pos = np.log(np.maximum(v, 1e-6))
    sigma = float(pos.std(ddof=1)) if len(v) > 1 else 0.0
    if sigma <= 1e-9:
        return {"kind": "constant", "value": _sig(float(v.mean()))}, f"{len(v)} sample(s), constant"
    return {"kind": "lognormal", "mu": _sig(float(pos.mean()), 6), "sigma": _sig(sigma, 6)}, \
        f"{len(v)} samples (< {EMPIRICAL_MIN}), lognormal fit"


def _call_policy(e: Edge, out: dict[str, Any]) -> list[str]:
    notes = []
    if e.retries:
        gap = e.backoff()
        out["retry"] = {"max_attempts": e.max_tries,
                        "backoff": {"kind": "constant", "base": _sig(gap)} if gap > 1e-6 else {"kind": "none"},
                        "jitter": "none"}
        notes.append(f"up to {e.max_tries} tries per call, median backoff {gap * 1e3:.3g} ms")
    t = e.timeout()
    if t is not None:
        out["timeout"] = _sig(t)
        notes.append(f"timeout {t * 1e3:.4g} ms ({len(e.failed_durations)} failed tries cluster there)")
    return notes


def scenario_dict(inf: Inferred, *, name: str, source: str, data_dir: Path | None = None,
                  data_rel: str = "data") -> tuple[dict[str, Any], list[str]]:
    """The starter scenario as a mapping (services, clients, network) and the notes on what
    was inferred (for the YAML header). ``data_dir`` is where the empirical CSV files go
    (``data_rel``: the same directory relative to the scenario file)."""
    notes: list[str] = [f"from {source}: {sum(n for _, n, _ in inf.clients.values())} requests, "
                        f"{inf.tries} tries over {inf.duration:.3g} s"]
    span = max(inf.duration, 1e-9)
    services: dict[str, Any] = {}
    for s in sorted(inf.services):
        f = inf.services[s]
        dist, how = _dist(s, f.self_times, data_dir, data_rel)
        # Little's law: concurrency = try rate x holding time; 3x + 8 keeps queueing (already
        # inside the measured self-time) out of the re-simulation
        workers = max(8, math.ceil(3 * f.busy / span) + 8)
        cfg: dict[str, Any] = {"instances": 1, "workers": workers, "service_time": dist}
        line = f"{s}: self-time {how}; {f.handlers} handled tries"
        if f.handlers and f.error_replies:
            cfg["error_rate"] = _sig(f.error_replies / f.handlers, 3)
            line += f", error replies {f.error_replies / f.handlers:.2%}"
        notes.append(line)
        calls = []
        for callee, e in sorted(f.edges.items(), key=lambda kv: float(np.median(kv[1].offsets))):
            per = e.calls / f.handlers if f.handlers else 0.0
            share = e.parents_with / f.handlers if f.handlers else 0.0
            n = round(per)
            desc = f"  {s} -> {callee}: {per:.3g} calls per handler (made by {share:.1%} of handlers)"
            if n == 0:
                notes.append(desc + ": dropped (rounds to 0; a call has no probability in the schema)")
                continue
            if abs(per - n) > 0.01:
                desc += f", rounded to {n} (a call has no probability in the schema)"
            call: dict[str, Any] = {"to": callee}
            if e.failed_under_ok:
                call["critical"] = False
                desc += f"; non-critical ({e.failed_under_ok} failed calls under successful handlers)"
            extra = _call_policy(e, call)
            notes.append(desc + "".join(f"; {x}" for x in extra))
            for i in range(n):
                c = dict(call)
                if n > 1:
                    c["name"] = f"{callee}-{i + 1}"
                calls.append(c)
        if calls:
            cfg["handler"] = {"mode": "parallel" if f.parallel else "sequential", "calls": calls}
            if len(calls) > 1:
                notes.append(f"  {s}: {'parallel' if f.parallel else 'sequential'} handler ({f.overlapping} of "
                             f"{f.multi} handlers with 2+ calls overlap them)")
        services[s] = cfg
    clients: dict[str, Any] = {}
    for c in sorted(inf.clients):
        target, n, e = inf.clients[c]
        rate = (n - 1) / span if n > 1 else 1.0
        cfg = {"target": target, "arrival": {"kind": "poisson", "rate": _sig(rate)}}
        extra = _call_policy(e, cfg)
        notes.append(f"client {c} -> {target}: {n} requests, {rate:.4g} per second"
                     + "".join(f"; {x}" for x in extra))
        clients[c] = cfg
    doc = {"name": name,
           "description": f"Imported from {source} by `simres import traces`: a starter scenario. Self-times "
                          "include network and queueing time, so there is no network latency and workers are "
                          "generous; set real capacities before asking overload questions.",
           "duration": _sig(max(inf.duration, 1.0), 3), "warmup": 0, "drain": 5, "seed": 1,
           "network": {"default": {"latency": 0.0}}, "services": services, "clients": clients}
    return doc, notes


def import_traces(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> tuple[Path, list[str]]:
    """Read ``path``, infer, and write the starter scenario YAML to ``out`` (and its CSV
    files to ``<stem>-data/`` next to it). Returns the path and the notes."""
    import yaml

    o = Path(out)
    spans = read_spans(path)
    try:
        traces = tries_of(spans)
    except TraceImportError as e:
        raise TraceImportError(f"{path}: {e}") from None
    inf = infer(traces)
    rel = f"{o.stem}-data"
    doc, notes = scenario_dict(inf, name=o.stem, source=Path(path).name, data_dir=o.parent / rel, data_rel=rel)
    header = "".join(f"# {n}\n" for n in ["Written by `simres import traces`; what was inferred:", *notes])
    o.parent.mkdir(parents=True, exist_ok=True)
    o.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=100), encoding="utf-8")
    return o, notes


def try_durations(traces: Traces) -> dict[str, np.ndarray]:
    """Per callee service: the duration of every try that was sent (what ``simres calibrate``
    compares)."""
    out: dict[str, list[float]] = defaultdict(list)
    for t in traces.tries:
        if not t.local:
            out[t.callee].append(t.span.duration)
    return {k: np.asarray(v, dtype=float) for k, v in sorted(out.items())}
