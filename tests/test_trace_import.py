"""`simres import traces` and `simres calibrate`: inference on hand-made traces, the CLI's errors,
and the round trip of docs/observability.md (simulate, export, import, re-simulate, calibrate).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from simres.cli import main
from simres.metrics.trace_import import infer, read_spans, scenario_dict, self_time, tries_of, union_length
from simres.reporting.calibrate import KS_MATCH, compare, measured_latencies, simulated_latencies

US = 1000  # Jaeger times are microseconds: 1 ms


def _jspan(sid: str, op: str, pid: str, start_ms: float, dur_ms: float, parent: str | None = None,
           kind: str = "server", error: bool = False, peer: str | None = None) -> dict:
    tags = [{"key": "span.kind", "type": "string", "value": kind}]
    if error:
        tags.append({"key": "error", "type": "bool", "value": True})
    if peer:
        tags.append({"key": "peer.service", "type": "string", "value": peer})
    return {"traceID": "", "spanID": sid, "operationName": op, "processID": pid,
            "references": [{"refType": "CHILD_OF", "spanID": parent}] if parent else [],
            "startTime": int(1_767_225_600_000_000 + start_ms * US), "duration": int(dur_ms * US), "tags": tags}


def _jaeger_trace(tid: str, t0: float) -> dict:
    """frontend (root SERVER span, 100 ms) calls cart and payment at once; cart calls db; the
    first payment try fails after 20 ms and is retried 5 ms later."""
    spans = [
        _jspan("a1", "GET /checkout", "p1", t0, 100),
        _jspan("a2", "cart", "p1", t0 + 10, 30, "a1", kind="client"),
        _jspan("a3", "GetCart", "p2", t0 + 11, 28, "a2"),
        _jspan("a4", "query", "p2", t0 + 15, 10, "a3", kind="client", peer="db"),
        _jspan("a5", "payment", "p1", t0 + 10, 20, "a1", kind="client", error=True),
        _jspan("a6", "Charge", "p3", t0 + 10.5, 18.5, "a5", error=True),
        _jspan("a7", "payment", "p1", t0 + 35, 25, "a1", kind="client"),
        _jspan("a8", "Charge", "p3", t0 + 36, 23, "a7"),
    ]
    for s in spans:
        s["traceID"] = tid
    return {"traceID": tid, "spans": spans, "processes": {"p1": {"serviceName": "frontend"},
                                                          "p2": {"serviceName": "cart"},
                                                          "p3": {"serviceName": "payment"}}}


@pytest.fixture
def jaeger_file(tmp_path: Path) -> Path:
    p = tmp_path / "jaeger.json"
    p.write_text(json.dumps({"data": [_jaeger_trace("t1", 0), _jaeger_trace("t2", 1000)]}), encoding="utf-8")
    return p


def _ospan(sid: str, parent: str, name: str, start_ms: float, end_ms: float, kind: int, *, error: bool = False,
           **attrs: object) -> dict:
    out = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": sid, "parentSpanId": parent, "name": name,
           "kind": kind, "startTimeUnixNano": str(int(1.7672256e18 + start_ms * 1e6)),
           "endTimeUnixNano": str(int(1.7672256e18 + end_ms * 1e6)),
           "attributes": [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
                          for k, v in attrs.items()]}
    if error:
        out["status"] = {"code": 2}
    return out


@pytest.fixture
def otlp_file(tmp_path: Path) -> Path:
    """web's logical call (INTERNAL root) to api: try 1 fails after 10 ms, try 2 10 ms later
    succeeds in 40 ms; api's SERVER span calls db for 10 ms."""
    web = [_ospan("b000000000000001", "", "web -> api", 0, 60, 1),
           _ospan("b000000000000002", "b000000000000001", "api try 1", 0, 10, 3, error=True,
                  **{"peer.service": "api", "http.request.resend_count": 0}),
           _ospan("b000000000000003", "b000000000000001", "api try 2", 20, 60, 3,
                  **{"peer.service": "api", "http.request.resend_count": 1})]
    api = [_ospan("b000000000000004", "b000000000000003", "GET /", 21, 59, 2),
           _ospan("b000000000000005", "b000000000000004", "SELECT", 30, 40, 3, **{"peer.service": "db"})]
    doc = {"resourceSpans": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
         "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]} for name, spans in (("web", web), ("api", api))]}
    p = tmp_path / "t.otlp.jsonl"
    p.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return p


def test_union_length_counts_overlaps_once() -> None:
    assert union_length([(0, 10), (5, 20), (30, 40)]) == 30
    assert union_length([]) == 0


def test_jaeger_graph_self_time_parallel_and_retry(jaeger_file: Path) -> None:
    traces = tries_of(read_spans(jaeger_file))
    assert traces.clients == ["frontend-callers"]
    assert traces.services == ["cart", "db", "frontend", "payment"]
    assert traces.duration == pytest.approx(1.0)
    front = [t for t in traces.tries if t.callee == "frontend"]
    assert len(front) == 2
    # 100 ms less the union of cart [10, 40] and payment [10, 60] (the retry's backoff included)
    assert self_time(front[0]) == pytest.approx(0.050, abs=1e-6)
    cart = [t for t in traces.tries if t.callee == "cart"]
    assert self_time(cart[0]) == pytest.approx(0.020, abs=1e-6)
    inf = infer(traces)
    f = inf.services["frontend"]
    assert set(f.edges) == {"cart", "payment"} and f.parallel
    pay = f.edges["payment"]
    assert pay.max_tries == 2 and pay.backoff() == pytest.approx(0.005, abs=1e-6)
    assert pay.calls == 2 and pay.parents_with == 2
    assert inf.services["cart"].edges["db"].calls == 2
    doc, notes = scenario_dict(inf, name="shop", source="jaeger.json")
    h = doc["services"]["frontend"]["handler"]
    assert h["mode"] == "parallel" and [c["to"] for c in h["calls"]] == ["cart", "payment"]
    assert h["calls"][1]["retry"]["max_attempts"] == 2
    assert doc["services"]["frontend"]["service_time"]["kind"] == "constant"  # 2 equal samples
    assert doc["clients"]["frontend-callers"] == {"target": "frontend", "arrival": {"kind": "poisson", "rate": 1.0}}
    assert any("parallel handler" in n for n in notes)


def test_otlp_client_retry_and_sequential_handler(otlp_file: Path) -> None:
    traces = tries_of(read_spans(otlp_file))
    assert traces.clients == ["web"] and traces.services == ["api", "db"]
    inf = infer(traces)
    api = [t for t in traces.tries if t.callee == "api" and t.handled]
    assert len(api) == 1 and self_time(api[0]) == pytest.approx(0.030, abs=1e-6)
    target, n, edge = inf.clients["web"]
    assert (target, n, edge.max_tries) == ("api", 1, 2)
    assert edge.backoff() == pytest.approx(0.010, abs=1e-6)
    doc, _ = scenario_dict(inf, name="x", source="t")
    assert doc["clients"]["web"]["retry"]["max_attempts"] == 2
    assert doc["services"]["api"]["handler"] == {"mode": "sequential", "calls": [{"to": "db"}]}
    assert "handler" not in doc["services"]["db"]


def test_a_cluster_of_failed_durations_is_a_timeout() -> None:
    from simres.metrics.trace_import import timeout_of

    assert timeout_of([0.1, 0.1001, 0.0999, 0.1, 0.02]) == pytest.approx(0.1, rel=1e-3)
    assert timeout_of([0.01, 0.05, 0.2]) is None
    assert timeout_of([0.1, 0.1]) is None  # too few to call it a cluster


def test_import_writes_a_scenario_that_validates(jaeger_file: Path, tmp_path: Path) -> None:
    from simres.scenario.loading import load_scenario

    out = tmp_path / "shop.yaml"
    res = CliRunner().invoke(main, ["import", "traces", str(jaeger_file), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "frontend -> payment" in res.output
    sc = load_scenario(out)
    assert set(sc.services) == {"cart", "db", "frontend", "payment"}
    assert out.read_text(encoding="utf-8").startswith("# Written by `simres import traces`")
    res = CliRunner().invoke(main, ["check", str(out)])
    assert res.exit_code == 0 and "0 warning(s)" in res.output
    res = CliRunner().invoke(main, ["run", str(out), "-q"])
    assert res.exit_code == 0 and "success" in res.output, res.output


@pytest.mark.parametrize("content, expected", [
    ("not json at all {", "not JSON"),
    ('{"foo": 1}', "expected OTLP JSON"),
    ('{"data": [{"spans": [{"spanID": "x"}]}]}', "expected OTLP JSON"),
    ('{"resourceSpans": []}', "no spans"),
])
def test_garbled_input_is_one_line_naming_the_file(tmp_path: Path, content: str, expected: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content, encoding="utf-8")
    res = CliRunner().invoke(main, ["import", "traces", str(p), "-o", str(tmp_path / "x.yaml")])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(p) in lines[0] and expected in lines[0], lines


def test_cli_errors_missing_files_and_bad_csv(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["import", "traces", str(tmp_path / "nope.json"), "-o", str(tmp_path / "x.yaml")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1 and "no such file" in res.output
    csv = tmp_path / "lat.csv"
    csv.write_text("svc,ms\napi,3\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["calibrate", "baseline", "--against", str(csv)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "expected columns service,latency" in res.output


def test_calibrate_against_a_csv(tmp_path: Path) -> None:
    import numpy as np

    csv = tmp_path / "lat.csv"
    rng = np.random.default_rng(3)
    rows = [f"db,{x:.6f}" for x in rng.exponential(0.008, 400)] + ["other,0.1"]
    csv.write_text("service,latency\n" + "\n".join(rows) + "\n", encoding="utf-8")
    m = measured_latencies(csv)
    assert set(m) == {"db", "other"} and len(m["db"]) == 400
    res = CliRunner().invoke(main, ["calibrate", "baseline", "--against", str(csv), "--set", "duration=2",
                                    "--set", "warmup=0", "-q"])
    assert res.exit_code == 0, res.output
    assert "db: " in res.output and "other: measured only" in res.output and "p99.9" in res.output


def test_round_trip_simulate_export_import_resimulate_calibrate(tmp_path: Path) -> None:
    """The worked example of docs/observability.md, shortened to 10 s of baseline (~3,000
    requests, ~9,000 tries). Measured (seed 1): KS 0.012 (api), 0.020 (db), 0.012
    (recommendations); Wasserstein 1.3 to 2.1 % of the mean. Two samples of 3,000 from
    one distribution give a KS above 0.035 one time in 20 (1.36 * sqrt(2/3000)); the
    bound 0.05 is above that noise and 2.5 times the largest measured value, yet well
    below what a wrong model gives (dropping the recommendations call moves api's KS
    above 0.3)."""
    import simres
    from simres.metrics.trace_import import import_traces
    from simres.metrics.traces import write_trace

    original = simres.run("baseline", overrides={"duration": 10, "warmup": 1})
    trace = tmp_path / "t.jsonl"
    write_trace(original, trace)
    scenario, _ = import_traces(trace, tmp_path / "imported.yaml")
    resim = simres.run(scenario)
    cal = compare(simulated_latencies(resim.attempts), measured_latencies(trace))
    assert set(cal.table["service"]) == {"api", "db", "recommendations"}
    assert not cal.only_measured and not cal.only_simulated
    for _, r in cal.table.iterrows():
        assert r["ks"] < 0.05, (r["service"], r["ks"])
        assert r["wasserstein_rel"] < 0.05, (r["service"], r["wasserstein_rel"])
        assert r["verdict"] == "matches" and r["ks"] <= KS_MATCH
    # the CLI says the same, and writes the table and the figure
    res = CliRunner().invoke(main, ["calibrate", str(scenario), "--against", str(trace), "-o", str(tmp_path / "c"),
                                    "-q"])
    assert res.exit_code == 0, res.output
    assert res.output.count(": matches: KS") == 3
    assert (tmp_path / "c" / "calibration.csv").is_file() and (tmp_path / "c" / "qq.png").stat().st_size > 10_000


def test_names_are_made_scenario_safe_and_uninstrumented_callees_are_named(tmp_path: Path) -> None:
    """A dotted service name becomes a scenario name; a CLIENT span with no child but a
    ``db.system`` attribute is a call to that database; a client named like a called
    service is renamed."""
    spans = [_ospan("c000000000000001", "", "GET", 0, 30, 2),
             _ospan("c000000000000002", "c000000000000001", "SELECT", 5, 15, 3, **{"db.system": "postgresql"})]
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                           "value": {"stringValue": "shop.api/v1"}}]},
                              "scopeSpans": [{"spans": spans}]}]}
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    traces = tries_of(read_spans(p))
    assert traces.services == ["postgresql", "shop-api-v1"] and traces.clients == ["shop-api-v1-callers"]
    inf = infer(traces)
    assert inf.services["shop-api-v1"].edges["postgresql"].calls == 1
    assert self_time(next(t for t in traces.tries if t.callee == "shop-api-v1")) == pytest.approx(0.020, abs=1e-6)
