"""A run's requests as OpenTelemetry traces (OTLP JSON) or Chrome/Perfetto trace events.

Why: a user can then look at a simulated run with the tools they already use (an
OpenTelemetry Collector, Jaeger, Tempo, ui.perfetto.dev) instead of reading frames.

What: every sampled request is one trace. Its root span is the client's logical call (the
request row); each try is a CLIENT span (the ``attempts`` rows); a downstream call a
handler made is a logical-call span (INTERNAL) whose parent is the try that handler was
serving (``parent_try``), and its tries are its children. Spans belong to the resource of
the service (or client population) that made the call (``service.name``); the callee is
``peer.service``. Local decisions are attributes (``simres.outcome``,
``simres.local_decision``, ``simres.hedge``, ``simres.breaker.state``) and the events
keyed by request id (``budget_denied``, ``hedge``, ``hedge_won``, ``throttled``, ...) are
span events of the logical call they belong to.

Simulated time ``t`` becomes ``epoch + t`` in unix nanoseconds. Trace and span ids are
hashes of the seed and the request / try ids, so the same run gives the same file byte
for byte. The OTLP encoding is the official protobuf definitions
(``opentelemetry-proto``) through ``google.protobuf.json_format``, then the OTLP/JSON
rules applied: ids as hex strings (json_format would write base64), enums as integers,
lowerCamelCase keys; one ``TracesData`` object per line, as the Collector's file
exporter writes and its file receiver (``otlpjsonfile``) reads. Requests are written in
chunks, one line each, so a long run never builds one giant string.

A pure function of the frames (a ``RunResult``, a ``simres.reporting.sources.RunFrames``
or anything with ``requests``, ``attempts`` and ``events``): it lives with the metrics.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from simres import __version__
from simres.errors import SimresError
from simres.outcomes import LOCAL_OUTCOMES, SHED, SUCCESS_OUTCOMES, UNFINISHED

DEFAULT_EPOCH = "2026-01-01T00:00:00Z"
"""Wall-clock time of simulated second 0 in the exported timestamps."""

FORMATS = ("otlp", "chrome")
"""``otlp``: OTLP JSON lines (TracesData); ``chrome``: Chrome/Perfetto trace-event JSON."""

REQUEST_EVENTS = frozenset({"budget_denied", "hedge", "hedge_won", "throttled", "rate_limit_expired",
                            "limit_rejected", "bulkhead_rejected"})
"""Event kinds whose ``value`` is the root request id: they become span events."""

BEFORE_FAULT, AFTER_FAULT = 5.0, 10.0
"""``around:FAULT`` keeps requests starting in [fault start - 5 s, fault end + 10 s]."""

CHUNK = 2000
"""Requests per written chunk (one OTLP line each)."""

# OTLP enum values (opentelemetry.proto.trace.v1): written as integers, as OTLP/JSON requires
SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_CODE_UNSET, STATUS_CODE_ERROR = 0, 2


class TraceError(SimresError, ValueError):
    """A trace export was asked for with an input it cannot use; ``field`` names the input
    (``sample``, ``format``, ``epoch``, ``frames``) so the CLI can name its flag."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


# ---------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class Sample:
    """Which requests to export: ``all``, ``failures``, one in ``n`` or a time window.

    ``fault`` is the fault name of ``around:FAULT`` (its window is read from the events
    frame); ``window`` an explicit ``(t0, t1)`` of request start times (``window:T0:T1``).
    """

    kind: str = "all"
    n: int = 1
    fault: str | None = None
    window: tuple[float, float] | None = None

    def __str__(self) -> str:
        if self.kind == "one_in":
            return f"1/{self.n}"
        if self.kind == "around":
            return f"around:{self.fault}"
        if self.kind == "window" and self.window:
            return f"window:{self.window[0]:g}:{self.window[1]:g}"
        return self.kind


SAMPLE_HELP = "all, failures, 1/N, around:FAULT or window:T0:T1"


def parse_sample(spec: str | Sample | None, *, faults: Sequence[str] | None = None) -> Sample:
    """``all`` | ``failures`` | ``1/N`` | ``around:FAULT`` | ``window:T0:T1`` -> :class:`Sample`.

    With ``faults`` (the run's fault names) an unknown ``around:`` name is refused here,
    before any work; raises :class:`TraceError` (field ``sample``)."""
    if spec is None:
        return Sample()
    if isinstance(spec, Sample):
        s = spec
    else:
        text = str(spec).strip()
        if text in ("all", "failures"):
            s = Sample(text)
        elif m := re.fullmatch(r"1/(\d+)", text):
            n = int(m.group(1))
            if n < 1:
                raise TraceError("sample", f"'{text}': N must be at least 1")
            s = Sample("one_in", n=n)
        elif text.startswith("around:") and text[7:]:
            s = Sample("around", fault=text[7:])
        elif m := re.fullmatch(r"window:([^:]+):([^:]+)", text):
            try:
                t0, t1 = float(m.group(1)), float(m.group(2))
            except ValueError:
                raise TraceError("sample", f"'{text}': expected window:T0:T1 in simulated seconds") from None
            if not t0 <= t1:
                raise TraceError("sample", f"'{text}': T0 must not be after T1")
            s = Sample("window", window=(t0, t1))
        else:
            raise TraceError("sample", f"unknown sample '{text}' (expected {SAMPLE_HELP})")
    if s.kind == "around" and faults is not None and s.fault not in faults:
        known = ", ".join(faults) or "none"
        raise TraceError("sample", f"around:{s.fault}: no fault named '{s.fault}' (faults: {known})")
    return s


def fault_windows(events: pd.DataFrame, name: str) -> list[tuple[float, float]]:
    """``[(start, end)]`` of each occurrence of fault ``name`` in the events frame (end:
    its ``fault_end``, else start + duration, else the end of time)."""
    ev = events[events["component"].astype(object) == name]
    starts = ev[ev["kind"] == "fault_start"]
    ends = ev[ev["kind"] == "fault_end"]["time"].to_numpy(dtype=float)
    out = []
    for t, dur in zip(starts["time"].to_numpy(dtype=float), starts["value"].to_numpy(dtype=float), strict=True):
        later = ends[ends >= t]
        end = later.min() if len(later) else (t + dur if math.isfinite(dur) else math.inf)
        out.append((float(t), float(end)))
    return out


def fault_names(events: pd.DataFrame) -> list[str]:
    """The faults that started in a run, from its events frame."""
    return sorted(set(events.loc[events["kind"] == "fault_start", "component"].astype(str)))


def sample_mask(requests: pd.DataFrame, events: pd.DataFrame, sample: str | Sample | None, *,
                seed: int = 0) -> np.ndarray:
    """Boolean mask over ``requests``: the requests ``sample`` keeps.

    ``1/N`` is decided by the trace id, as OpenTelemetry's ``TraceIdRatioBased`` sampler
    does (its low 8 bytes as an integer below 2^64 / N): deterministic per request and seed,
    and an unbiased one-in-N whatever the order of request ids."""
    s = parse_sample(sample, faults=fault_names(events) if events is not None else None)
    n = len(requests)
    if s.kind == "all":
        return np.ones(n, dtype=bool)
    if s.kind == "failures":
        return ~requests["outcome"].astype(object).isin(SUCCESS_OUTCOMES).to_numpy()
    if s.kind == "one_in":
        bound = (1 << 64) // s.n
        ids = requests["request_id"].to_numpy(dtype=np.int64)
        return np.fromiter((int.from_bytes(trace_id(seed, int(r))[8:], "big") < bound for r in ids),
                           dtype=bool, count=n)
    start = requests["start"].to_numpy(dtype=float)
    if s.kind == "window":
        t0, t1 = s.window  # type: ignore[misc]
        return (start >= t0) & (start <= t1)
    mask = np.zeros(n, dtype=bool)
    for t0, t1 in fault_windows(events, s.fault or ""):
        mask |= (start >= t0 - BEFORE_FAULT) & (start <= t1 + AFTER_FAULT)
    return mask


# ---------------------------------------------------------------------------- ids and time


def _hash(size: int, *parts: object) -> bytes:
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=size).digest()
    return digest if any(digest) else digest[:-1] + b"\x01"  # an all-zero id is invalid in OTLP


def trace_id(seed: int, request_id: int) -> bytes:
    """The 16-byte trace id of a request: a hash of the seed and the request id."""
    return _hash(16, "simres", seed, "trace", request_id)


def request_span_id(seed: int, request_id: int) -> bytes:
    """The 8-byte span id of a request's root span (the client's logical call)."""
    return _hash(8, "simres", seed, "request", request_id)


def try_span_id(seed: int, try_id: int) -> bytes:
    """The 8-byte span id of one try."""
    return _hash(8, "simres", seed, "try", try_id)


def call_span_id(seed: int, first_try: int) -> bytes:
    """The 8-byte span id of a downstream logical call, named by its first try."""
    return _hash(8, "simres", seed, "call", first_try)


def epoch_nanos(epoch: str | datetime | int | None) -> int:
    """Unix nanoseconds of simulated second 0: an ISO 8601 time (``Z`` or an offset; a naive
    time is UTC), a datetime, or already an integer of nanoseconds."""
    if epoch is None:
        epoch = DEFAULT_EPOCH
    if isinstance(epoch, (int, np.integer)) and not isinstance(epoch, bool):
        return int(epoch)
    if isinstance(epoch, str):
        try:
            epoch = datetime.fromisoformat(epoch)
        except ValueError:
            raise TraceError("epoch", f"'{epoch}': expected an ISO 8601 time such as {DEFAULT_EPOCH}") from None
    if not isinstance(epoch, datetime):
        raise TraceError("epoch", f"expected an ISO 8601 time, a datetime or unix nanoseconds, got {epoch!r}")
    if epoch.tzinfo is None:
        epoch = epoch.replace(tzinfo=UTC)
    delta = epoch - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


# ---------------------------------------------------------------------------- spans


@dataclass
class SpanRecord:
    """One span, independent of the encoding: times in simulated seconds."""

    resource: str
    trace: bytes
    span: bytes
    parent: bytes
    name: str
    kind: int
    start: float
    end: float
    attributes: dict[str, Any]
    error: str | None = None
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    request_id: int = 0
    category: str = "try"


def _f(x: Any) -> float:
    return float(x) if x is not None else math.nan


class _Breakers:
    """Breaker state over time per component, from the ``breaker`` events (``old->new: why``)."""

    def __init__(self, events: pd.DataFrame) -> None:
        ev = events[events["kind"] == "breaker"]
        self.by: dict[str, tuple[np.ndarray, list[str]]] = {}
        for comp, g in ev.groupby(ev["component"].astype(str), sort=False):
            states = [str(d).split(":", 1)[0].split("->")[-1].strip() for d in g["detail"]]
            self.by[str(comp)] = (g["time"].to_numpy(dtype=float), states)
        self.edges = {c.split("#", 1)[0] for c in self.by}

    def state(self, caller: str, service: str, caller_instance: int | None, t: float) -> str | None:
        edge = f"{caller}->{service}"
        if edge not in self.edges:
            return None
        for comp in ((f"{edge}#{caller_instance}",) if caller_instance is not None else ()) + (edge,):
            if comp in self.by:
                times, states = self.by[comp]
                i = int(np.searchsorted(times, t, side="right"))
                return states[i - 1] if i else "closed"
        return "closed"


def _calls(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A request's tries (sorted by try id) grouped into logical calls: a call is the tries
    of one (parent try, caller, service) with attempts 1, 2, ... An ``attempt == 1`` opens a
    call; a later attempt joins the first open call of the same key whose last attempt is
    the one before (two parallel calls of one handler to the same service are told apart
    this way only approximately: the frames do not record the call site)."""
    calls: list[list[dict[str, Any]]] = []
    open_: dict[tuple[int, str, str], list[list[dict[str, Any]]]] = {}
    for r in rows:
        key = (r["parent_try"], r["caller"], r["service"])
        cands = open_.setdefault(key, [])
        target = None
        if r["attempt"] > 1:
            target = next((c for c in cands if c[-1]["attempt"] == r["attempt"] - 1), None)
        if target is None:
            target = [r]
            cands.append(target)
            calls.append(target)
        else:
            target.append(r)
    return calls


def _outcome_of(tries: list[dict[str, Any]]) -> str:
    """A logical call's outcome: its successful try's, else that of the try that ended last."""
    ok = [t for t in tries if t["outcome"] in SUCCESS_OUTCOMES]
    if ok:
        return str(ok[0]["outcome"])
    return str(max(tries, key=lambda t: (_end(t), t["try_id"]))["outcome"])


def _end(t: dict[str, Any]) -> float:
    e = t["end"]
    return e if math.isfinite(e) else t["start"]


def _request_spans(seed: int, req: dict[str, Any], rows: list[dict[str, Any]],
                   events: list[tuple[float, str, str, str]], breakers: _Breakers) -> list[SpanRecord]:
    """Every span of one request (root first, then in try order)."""
    rid = int(req["request_id"])
    tid = trace_id(seed, rid)
    by_try = {r["try_id"]: r for r in rows}
    try_span = {r["try_id"]: try_span_id(seed, r["try_id"]) for r in rows}
    ends = [_end(r) for r in rows]
    last = max(ends) if ends else float(req["start"])
    r_end = float(req["end"]) if math.isfinite(req["end"]) else max(last, float(req["start"]))
    outcome = str(req["outcome"])
    root_attrs: dict[str, Any] = {
        "simres.request_id": rid, "simres.client": str(req["client"]), "simres.member": int(req["member"]),
        "peer.service": str(req["target"]), "simres.priority": str(req["priority"]),
        "simres.outcome": outcome, "simres.tries": int(req["tries"]),
    }
    root = SpanRecord(str(req["client"]), tid, request_span_id(seed, rid), b"", f"{req['client']} -> {req['target']}",
                      SPAN_KIND_INTERNAL, float(req["start"]), r_end, root_attrs,
                      None if outcome in SUCCESS_OUTCOMES else outcome, request_id=rid, category="request")
    spans = [root]
    callspans: list[tuple[SpanRecord, str, str]] = [(root, str(req["client"]), str(req["target"]))]
    for tries in _calls(rows):
        first = tries[0]
        depth0 = first["parent_try"] < 0
        caller, service = str(first["caller"]), str(first["service"])
        if depth0:
            call = root
        else:
            parent = try_span.get(first["parent_try"])
            out = _outcome_of(tries)
            attrs = {"simres.request_id": rid, "simres.caller": caller, "peer.service": service,
                     "simres.outcome": out, "simres.tries": len(tries), "simres.parent_try": int(first["parent_try"])}
            t0 = first["start"] - (first["wait"] if math.isfinite(first["wait"]) else 0.0)
            call = SpanRecord(caller, tid, call_span_id(seed, first["try_id"]), parent or root.span,
                              f"{caller} -> {service}", SPAN_KIND_INTERNAL, float(t0),
                              float(max(_end(t) for t in tries)), attrs,
                              None if out in SUCCESS_OUTCOMES else out, request_id=rid, category="call")
            spans.append(call)
            callspans.append((call, caller, service))
        hedges = 0
        for i, t in enumerate(tries):
            o = str(t["outcome"])
            hedge = any(_end(p) > t["start"] for p in tries[:i])
            hedges += hedge
            attrs = {"simres.request_id": rid, "simres.try_id": int(t["try_id"]),
                     "simres.parent_try": int(t["parent_try"]), "simres.caller": caller,
                     "peer.service": service, "simres.attempt": int(t["attempt"]),
                     "http.request.resend_count": int(t["attempt"]) - 1, "simres.outcome": o,
                     "simres.sent": bool(t["sent"]), "simres.depth": int(t["depth"])}
            if t["instance"] >= 0:
                attrs["simres.instance"] = int(t["instance"])
            if math.isfinite(t["wait"]) and t["wait"] > 0:
                attrs["simres.wait"] = float(t["wait"])
            if o in LOCAL_OUTCOMES or o == SHED:
                attrs["simres.local_decision"] = o
            if hedge:
                attrs["simres.hedge"] = True
            if o not in SUCCESS_OUTCOMES:
                attrs["error.type"] = o
            parent_row = by_try.get(t["parent_try"])
            caller_inst = int(req["member"]) if depth0 else (int(parent_row["instance"]) if parent_row else None)
            state = breakers.state(caller, service, caller_inst, float(t["start"]))
            if state is not None:
                attrs["simres.breaker.state"] = state
            span_events = []
            if math.isfinite(t["service_start"]):
                span_events.append((float(t["service_start"]), "simres.service_start",
                                    {"simres.queue_wait": float(t["service_start"] - t["start"])}))
            end = float(t["end"]) if math.isfinite(t["end"]) else max(float(t["start"]), r_end)
            if not math.isfinite(t["end"]):
                attrs["simres.outcome"] = UNFINISHED
            spans.append(SpanRecord(caller, tid, try_span[t["try_id"]], call.span, f"{service} try {t['attempt']}",
                                    SPAN_KIND_CLIENT, float(t["start"]), end, attrs,
                                    None if o in SUCCESS_OUTCOMES else o, span_events, rid, "try"))
        if hedges:
            call.attributes["simres.hedges"] = call.attributes.get("simres.hedges", 0) + hedges
    for time, kind, comp, detail in events:
        edge = comp.split("#", 1)[0]
        target = next((s for s, c, sv in callspans if f"{c}->{sv}" == edge and s.start - 1e-9 <= time <= s.end + 1e-9),
                      None)
        target = target or next((s for s, c, sv in callspans if f"{c}->{sv}" == edge), root)
        attrs = {"simres.component": comp}
        if detail:
            attrs["simres.detail"] = detail
        target.events.append((time, f"simres.{kind}", attrs))
    return spans


_TRY_COLUMNS = ("request_id", "attempt", "caller", "service", "instance", "start", "end", "outcome", "sent", "wait",
                "depth", "try_id", "parent_try", "service_start")


def _frames(result: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    try:
        requests, attempts = result.requests, result.attempts
    except AttributeError:
        raise TraceError("frames", "expected a run (a RunResult or RunFrames with requests, attempts and "
                                   "events frames)") from None
    events = getattr(result, "events", None)
    if events is None:
        events = pd.DataFrame({"time": [], "kind": [], "component": [], "detail": [], "value": []})
    if not len(requests) and getattr(result, "record", "full") == "summary":
        raise TraceError("frames", "the run kept no per-request frames (record: summary); run with "
                                   "record: full, or export the --stream directory")
    missing = [c for c in ("try_id", "parent_try", "service_start") if c not in attempts.columns]
    if missing:
        raise TraceError("frames", f"the attempts frame has no {', '.join(missing)} column (written by an older "
                                   "simres); run the scenario again")
    return requests, attempts, events


def iter_spans(result: Any, *, sample: str | Sample | None = "all", seed: int | None = None,
               chunk: int = CHUNK) -> Iterator[list[SpanRecord]]:
    """The spans of the sampled requests of ``result``, a list per chunk of ``chunk`` requests
    (in request-id order): what both encodings write."""
    requests, attempts, events = _frames(result)
    seed = int(seed if seed is not None else (getattr(result, "seed", None) or 0))
    mask = sample_mask(requests, events, sample, seed=seed)
    chosen = requests[mask]
    att = attempts.sort_values(["request_id", "try_id"], kind="stable")
    a_req = att["request_id"].to_numpy(dtype=np.int64)
    cols = {c: (att[c].astype(object).to_numpy() if c in ("caller", "service", "outcome") else att[c].to_numpy())
            for c in _TRY_COLUMNS}
    ev = events[events["kind"].isin(REQUEST_EVENTS)]
    ev = ev[np.isfinite(ev["value"].to_numpy(dtype=float))]
    by_req: dict[int, list[tuple[float, str, str, str]]] = {}
    for t, k, c, d, v in zip(ev["time"], ev["kind"], ev["component"], ev["detail"], ev["value"], strict=True):
        by_req.setdefault(int(v), []).append((float(t), str(k), str(c), "" if pd.isna(d) else str(d)))
    breakers = _Breakers(events)
    req_cols = {c: chosen[c].astype(object).to_numpy() if c in ("client", "target", "priority", "outcome")
                else chosen[c].to_numpy() for c in ("request_id", "client", "member", "target", "priority", "start",
                                                    "end", "outcome", "tries")}
    n = len(chosen)
    for lo in range(0, n, chunk):
        out: list[SpanRecord] = []
        for i in range(lo, min(lo + chunk, n)):
            req = {c: v[i] for c, v in req_cols.items()}
            rid = int(req["request_id"])
            a, b = np.searchsorted(a_req, [rid, rid + 1])
            rows = [{c: cols[c][j].item() if hasattr(cols[c][j], "item") else cols[c][j] for c in _TRY_COLUMNS}
                    for j in range(a, b)]
            out.extend(_request_spans(seed, req, rows, by_req.get(rid, []), breakers))
        yield out


# ---------------------------------------------------------------------------- OTLP JSON


def _any_value(v: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, (int, np.integer)):
        return AnyValue(int_value=int(v))
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=str(v))


def _key_values(attrs: dict[str, Any]) -> list[Any]:
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    out = []
    for k, v in attrs.items():
        if isinstance(v, (str, bool)):  # few distinct values (names, outcomes): built once
            out.append(_shared_kv(k, v))
        else:
            out.append(KeyValue(key=k, value=_any_value(v)))
    return out


@functools.lru_cache(maxsize=4096)
def _shared_kv(key: str, value: str | bool) -> Any:
    """A KeyValue of a string or bool attribute, shared (a repeated field copies it on append)."""
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    return KeyValue(key=key, value=_any_value(value))


def traces_data(spans: Iterable[SpanRecord], *, epoch: int) -> Any:
    """One ``opentelemetry.proto.trace.v1.TracesData`` of ``spans``: a ResourceSpans per
    service (``service.name``), sorted by name, each with one ScopeSpans of scope ``simres``."""
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status, TracesData

    def ns(t: float) -> int:
        return epoch + round(t * 1e9)

    grouped: dict[str, list[Any]] = {}
    for s in spans:
        pb = Span(trace_id=s.trace, span_id=s.span, parent_span_id=s.parent, name=s.name, kind=s.kind,
                  start_time_unix_nano=ns(s.start), end_time_unix_nano=ns(s.end),
                  attributes=_key_values(s.attributes),
                  events=[Span.Event(time_unix_nano=ns(t), name=name, attributes=_key_values(a))
                          for t, name, a in sorted(s.events, key=lambda e: e[0])],
                  status=Status(code=STATUS_CODE_ERROR, message=s.error) if s.error else Status(code=STATUS_CODE_UNSET))
        grouped.setdefault(s.resource, []).append(pb)
    scope = InstrumentationScope(name="simres", version=__version__)
    return TracesData(resource_spans=[
        ResourceSpans(resource=Resource(attributes=_key_values({"service.name": name})),
                      scope_spans=[ScopeSpans(scope=scope, spans=grouped[name])])
        for name in sorted(grouped)])


_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def otlp_dict(data: Any) -> dict[str, Any]:
    """A TracesData as an OTLP/JSON dict: ``json_format.MessageToDict`` (lowerCamelCase,
    enums as integers), then every trace / span id turned from protobuf JSON's base64 into
    the hex string OTLP/JSON requires."""
    from google.protobuf import json_format

    d = json_format.MessageToDict(data, use_integers_for_enums=True)
    for rs in d.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for obj in (span, *span.get("links", ())):
                    for k in _ID_KEYS:
                        if k in obj:
                            obj[k] = base64.b64decode(obj[k]).hex()
    return d


def hex_ids_to_base64(d: dict[str, Any]) -> dict[str, Any]:
    """The reverse of :func:`otlp_dict`'s id rule, in place: hex ids back to base64 so
    ``json_format.ParseDict`` reads an OTLP/JSON object into a TracesData."""
    for rs in d.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for obj in (span, *span.get("links", ())):
                    for k in _ID_KEYS:
                        if obj.get(k):
                            obj[k] = base64.b64encode(bytes.fromhex(obj[k])).decode()
    return d


def read_otlp(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The TracesData of each line of an OTLP JSON lines file (as :func:`write_trace` or a
    Collector's file exporter writes)."""
    from google.protobuf import json_format
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json_format.ParseDict(hex_ids_to_base64(json.loads(line)), TracesData())


# ---------------------------------------------------------------------------- Chrome trace events


def _chrome_events(spans: list[SpanRecord], pids: dict[str, int]) -> Iterator[dict[str, Any]]:
    for s in spans:
        pid = pids.setdefault(s.resource, len(pids) + 1)
        args = dict(s.attributes)
        if s.error:
            args["status"] = "ERROR"
        yield {"name": s.name, "cat": s.category, "ph": "X", "ts": round(s.start * 1e6, 3),
               "dur": round((s.end - s.start) * 1e6, 3), "pid": pid, "tid": s.request_id, "args": args}
        for t, name, a in s.events:
            yield {"name": name, "cat": "event", "ph": "i", "s": "t", "ts": round(t * 1e6, 3), "pid": pid,
                   "tid": s.request_id, "args": a}


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class TraceExport:
    """What :func:`write_trace` wrote."""

    path: Path
    format: str
    requests: int
    spans: int
    bytes: int


def write_trace(result: Any, path: str | os.PathLike[str], format: str = "otlp", *,
                sample: str | Sample | None = "all", epoch: str | datetime | int | None = None,
                seed: int | None = None, chunk: int = CHUNK) -> TraceExport:
    """Write the sampled requests of a run as traces to ``path``.

    Args:
        result: a ``RunResult`` (``simres.run``), a ``RunFrames`` (``load_run(DIR)``) or
            anything with ``requests``, ``attempts`` and ``events`` frames.
        format: ``otlp`` (OTLP JSON lines, one TracesData per chunk of requests) or
            ``chrome`` (``{"traceEvents": [...]}`` for chrome://tracing and ui.perfetto.dev).
        sample: ``all``, ``failures``, ``1/N``, ``around:FAULT``, ``window:T0:T1``.
        epoch: wall-clock time of simulated second 0 (default 2026-01-01T00:00:00Z).
        seed: the seed the ids derive from [default: the run's].
        chunk: requests per written chunk (OTLP line).
    """
    if format not in FORMATS:
        raise TraceError("format", f"unknown format '{format}' (expected {' or '.join(FORMATS)})")
    e_ns = epoch_nanos(epoch)
    sample = parse_sample(sample)
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    n_req = n_spans = 0
    with open(p, "w", encoding="utf-8") as f:
        chunks = iter_spans(result, sample=sample, seed=seed, chunk=chunk)
        if format == "otlp":
            for spans in chunks:
                if not spans:
                    continue
                n_spans += len(spans)
                n_req += sum(s.category == "request" for s in spans)
                f.write(json.dumps(otlp_dict(traces_data(spans, epoch=e_ns)), separators=(",", ":")))
                f.write("\n")
        else:
            n_req, n_spans = _write_chrome(f, chunks)
    return TraceExport(p, format, n_req, n_spans, p.stat().st_size)


def _write_chrome(f: TextIO, chunks: Iterable[list[SpanRecord]]) -> tuple[int, int]:
    pids: dict[str, int] = {}
    n_req = n_spans = 0
    f.write('{"displayTimeUnit":"ms","traceEvents":[\n')
    first = True
    for spans in chunks:
        n_spans += len(spans)
        n_req += sum(s.category == "request" for s in spans)
        for ev in _chrome_events(spans, pids):
            f.write(("" if first else ",\n") + json.dumps(ev, separators=(",", ":")))
            first = False
    for name, pid in pids.items():
        meta = {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": name}}
        f.write(("" if first else ",\n") + json.dumps(meta, separators=(",", ":")))
        first = False
    f.write("\n]}\n")
    return n_req, n_spans


def span_tree(data: Iterable[Any], request_id: int) -> str:
    """One request's spans from TracesData messages as an indented tree (for docs and notebooks):
    name, [start, end] in simulated ms from the request's start, outcome and the main attributes."""
    spans = []
    for td in data:
        for rs in td.resource_spans:
            svc = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    attrs = {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in s.attributes}
                    if attrs.get("simres.request_id") == request_id:
                        spans.append((svc, s, attrs))
    if not spans:
        return f"request {request_id}: not in the export"
    t0 = min(s.start_time_unix_nano for _, s, _ in spans)
    kids: dict[bytes, list[Any]] = {}
    for item in spans:
        kids.setdefault(item[1].parent_span_id, []).append(item)
    lines: list[str] = []

    def walk(parent: bytes, depth: int) -> None:
        for svc, s, a in sorted(kids.get(parent, []), key=lambda x: (x[1].start_time_unix_nano, x[1].name)):
            extra = [f"{k.removeprefix('simres.')}={a[k]}" for k in ("simres.instance", "simres.local_decision",
                                                                        "simres.breaker.state") if k in a]
            if a.get("simres.hedge"):
                extra.append("hedge")
            evs = [e.name.removeprefix("simres.") for e in s.events if e.name != "simres.service_start"]
            lines.append(f"{'  ' * depth}{s.name} [{svc}] {(s.start_time_unix_nano - t0) / 1e6:.1f}-"
                         f"{(s.end_time_unix_nano - t0) / 1e6:.1f} ms {a.get('simres.outcome', '')}"
                         + (f" ({', '.join(extra)})" if extra else "") + (f" events: {', '.join(evs)}" if evs else ""))
            walk(s.span_id, depth + 1)

    walk(b"", 0)
    return "\n".join(lines)
