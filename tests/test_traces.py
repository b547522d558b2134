"""Trace export: the OTLP JSON loads back with the official protobuf definitions and its
span tree is the frames' tree; sampling, determinism, the Chrome format and the CLI errors."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

import simres
from simres.cli import main
from simres.metrics.traces import DEFAULT_EPOCH, epoch_nanos, sample_mask, span_tree, write_trace
from simres.outcomes import LOCAL_OUTCOMES, SUCCESS_OUTCOMES

SCENARIO = "dependency-outage-breaker"
OVERRIDES = ["duration=22", "warmup=2"]
"""The inventory crashes at 15 s: timeouts and retries, then the breaker opens (breaker_open tries)."""


@pytest.fixture(scope="module")
def run() -> Any:
    return simres.run(SCENARIO, variant="breaker", overrides=OVERRIDES)


@pytest.fixture(scope="module")
def exported(run: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TracesData]]:
    path = tmp_path_factory.mktemp("traces") / "run.otlp.jsonl"
    write_trace(run, path, chunk=500)
    return path, load(path)


def load(path: Path) -> list[TracesData]:
    """Each line -> TracesData with the official parser, after the OTLP/JSON hex ids are turned
    back into the base64 that protobuf's JSON mapping expects (done here, not by simres)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        for rs in d["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    assert re.fullmatch(r"[0-9a-f]{32}", s["traceId"]), s["traceId"]
                    assert re.fullmatch(r"[0-9a-f]{16}", s["spanId"])
                    assert isinstance(s["kind"], int)  # enums as integers
                    for k in ("traceId", "spanId", "parentSpanId"):
                        if k in s:
                            s[k] = base64.b64encode(bytes.fromhex(s[k])).decode()
        out.append(json_format.ParseDict(d, TracesData()))
    return out


def spans_of(data: list[TracesData]) -> list[tuple[str, Span, dict[str, Any]]]:
    out = []
    for td in data:
        for rs in td.resource_spans:
            (svc,) = [a.value.string_value for a in rs.resource.attributes if a.key == "service.name"]
            for ss in rs.scope_spans:
                for s in ss.spans:
                    attrs = {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in s.attributes}
                    out.append((svc, s, attrs))
    return out


def ns(t: float) -> int:
    return epoch_nanos(DEFAULT_EPOCH) + round(t * 1e9)


def test_the_export_is_the_frames_tree(run: Any, exported: tuple[Path, list[TracesData]]) -> None:
    _, data = exported
    assert len(data) > 1  # written in chunks, one TracesData per line
    spans = spans_of(data)
    by_id = {s.span_id: (svc, s, a) for svc, s, a in spans}
    assert len(by_id) == len(spans)
    # one trace per request, each with exactly one root: the request
    roots = [(svc, s, a) for svc, s, a in spans if not s.parent_span_id]
    assert len(roots) == len(run.requests) == len({s.trace_id for _, s, _ in spans})
    req = run.requests.set_index("request_id")
    for svc, s, a in roots:
        r = req.loc[a["simres.request_id"]]
        assert svc == r["client"] and a["simres.outcome"] == r["outcome"]
        assert s.start_time_unix_nano == ns(r["start"]) and s.end_time_unix_nano == ns(r["end"])
        assert (s.status.code == Status.STATUS_CODE_ERROR) == (r["outcome"] not in SUCCESS_OUTCOMES)
    # one CLIENT span per attempts row, parented by its logical call, itself under the parent try
    tries = {a["simres.try_id"]: (svc, s, a) for svc, s, a in spans if s.kind == Span.SPAN_KIND_CLIENT}
    assert len(tries) == len(run.attempts) == sum(s.kind == Span.SPAN_KIND_CLIENT for _, s, _ in spans)
    try_span = {a["simres.try_id"]: s.span_id for _, s, a in tries.values()}
    retried = 0
    for row in run.attempts.itertuples():
        svc, s, a = tries[row.try_id]
        assert svc == row.caller and a["peer.service"] == row.service
        assert a["simres.outcome"] == row.outcome and a["simres.attempt"] == row.attempt
        assert a["simres.request_id"] == row.request_id and a["simres.parent_try"] == row.parent_try
        assert a.get("simres.instance", -1) == row.instance
        assert s.start_time_unix_nano == ns(row.start) and s.end_time_unix_nano == ns(row.end)
        assert abs((s.end_time_unix_nano - s.start_time_unix_nano) - (row.end - row.start) * 1e9) <= 2
        assert (s.status.code == Status.STATUS_CODE_ERROR) == (row.outcome not in SUCCESS_OUTCOMES)
        if row.outcome in LOCAL_OUTCOMES:
            assert a["simres.local_decision"] == row.outcome and not a["simres.sent"]
        _, call, ca = by_id[s.parent_span_id]
        assert call.kind == Span.SPAN_KIND_INTERNAL and call.trace_id == s.trace_id
        if row.parent_try < 0:
            assert not call.parent_span_id  # the client's logical call is the root
        else:
            assert call.parent_span_id == try_span[row.parent_try]
            assert ca["simres.caller"] == row.caller and ca["peer.service"] == row.service
        retried += row.attempt > 1
    assert retried > 0
    assert (run.attempts["outcome"] == "breaker_open").any()
    assert any(a.get("simres.breaker.state") == "open" for _, _, a in tries.values())


def test_the_library_reader_and_the_tree_print(exported: tuple[Path, list[TracesData]], run: Any) -> None:
    path, data = exported
    from simres.metrics.traces import read_otlp

    assert [td.SerializeToString() for td in read_otlp(path)] == [td.SerializeToString() for td in data]
    rid = int(run.attempts.loc[run.attempts["attempt"] == 2, "request_id"].iloc[0])
    tree = span_tree(data, rid).splitlines()
    assert tree[0].startswith("web -> api") and any("try 2" in line for line in tree)
    assert all(line.startswith("  ") for line in tree[1:])


def test_same_seed_same_file_and_other_seed_other_ids(run: Any, exported: tuple[Path, list[TracesData]],
                                                       tmp_path: Path) -> None:
    path, _ = exported
    again = simres.run(SCENARIO, variant="breaker", overrides=OVERRIDES)
    write_trace(again, tmp_path / "again.jsonl", chunk=100, sample="1/4")
    write_trace(run, tmp_path / "first.jsonl", chunk=100, sample="1/4")
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "first.jsonl").read_bytes()
    write_trace(run, tmp_path / "other.jsonl", sample="window:2:3", seed=run.seed + 1)
    first = json.loads((tmp_path / "other.jsonl").read_text().splitlines()[0])
    assert first["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] not in path.read_text()[:5000]


def _exported_requests(path: Path) -> set[int]:
    return {a["simres.request_id"] for _, s, a in spans_of(load(path)) if not s.parent_span_id}


def test_sampling_selects_the_right_requests(run: Any, tmp_path: Path) -> None:
    req = run.requests
    write_trace(run, tmp_path / "f.jsonl", sample="failures")
    failed = set(req.loc[~req["outcome"].astype(object).isin(SUCCESS_OUTCOMES), "request_id"])
    assert failed and _exported_requests(tmp_path / "f.jsonl") == failed
    write_trace(run, tmp_path / "n.jsonl", sample="1/10")
    got = _exported_requests(tmp_path / "n.jsonl")
    mask = sample_mask(req, run.events, "1/10", seed=run.seed)
    assert got == set(req.loc[mask, "request_id"])
    assert abs(len(got) - len(req) / 10) < 4 * np.sqrt(len(req) * 0.09)
    write_trace(run, tmp_path / "a.jsonl", sample="around:inventory-outage")
    # the crash starts at 15 s and outlives the run: [10 s, end]
    assert _exported_requests(tmp_path / "a.jsonl") == set(req.loc[req["start"] >= 10.0, "request_id"])
    write_trace(run, tmp_path / "w.jsonl", sample="window:3:4")
    assert _exported_requests(tmp_path / "w.jsonl") == set(req.loc[req["start"].between(3, 4), "request_id"])


def test_chrome_format(run: Any, tmp_path: Path) -> None:
    done = write_trace(run, tmp_path / "t.json", "chrome", sample="1/5")
    doc = json.loads((tmp_path / "t.json").read_text())
    x = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert len(x) == done.spans and done.requests == len({e["tid"] for e in x})
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M"}
    assert names == {"web", "api"}
    tries = [e for e in x if e["cat"] == "try"]
    row = run.attempts.set_index("try_id").loc[tries[0]["args"]["simres.try_id"]]
    assert tries[0]["ts"] == pytest.approx(row["start"] * 1e6, abs=1e-3)
    assert tries[0]["dur"] == pytest.approx((row["end"] - row["start"]) * 1e6, abs=1e-3)


def test_hedges_and_their_events() -> None:
    r = simres.run("hedging-tail-latency", variant="hedge-fixed", overrides=["duration=3", "warmup=1"])
    rid = int(r.events.loc[r.events["kind"] == "hedge_won", "value"].iloc[0])
    t = float(r.requests.loc[r.requests["request_id"] == rid, "start"].iloc[0])
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        write_trace(r, Path(d) / "h.jsonl", sample=f"window:{t}:{t}")
        spans = [x for x in spans_of(load(Path(d) / "h.jsonl")) if x[2]["simres.request_id"] == rid]
    root = next(s for _, s, _ in spans if not s.parent_span_id)
    assert {e.name for e in root.events} >= {"simres.hedge", "simres.hedge_won"}
    assert any(a.get("simres.hedge") for _, _, a in spans)


def test_cli_run_trace_and_trace_run_dir_agree(run: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["run", SCENARIO, "--variant", "breaker", *(x for o in OVERRIDES for x in ("--set", o)),
                               "-q", "-o", str(tmp_path / "run"), "--trace", str(tmp_path / "a.jsonl"),
                               "--trace-sample", "1/20"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["trace", str(tmp_path / "run"), "-o", str(tmp_path / "b.jsonl"), "--sample", "1/20"])
    assert res.exit_code == 0, res.output
    assert "requests" in res.output and "spans" in res.output
    write_trace(run, tmp_path / "c.jsonl", sample="1/20")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes() \
        == (tmp_path / "c.jsonl").read_bytes()


@pytest.mark.parametrize(("argv", "expected"), [
    (["run", "baseline", "--trace", "T", "--trace-sample", "2/3"], "--trace-sample: unknown sample '2/3'"),
    (["run", "baseline", "--trace", "T", "--trace-sample", "around:nope"], "--trace-sample: around:nope: no fault"),
    (["run", "baseline", "--trace", "T", "--trace-format", "xml"], "Invalid value for '--trace-format'"),
    (["run", "baseline", "--trace", "T", "--trace-epoch", "soon"], "--trace-epoch: 'soon': expected an ISO 8601"),
    (["run", "baseline", "--trace", "T", "-n", "2"], "--trace writes the requests of one run"),
    (["trace", "RUN", "-o", "T", "--sample", "1/0"], "--sample: '1/0': N must be at least 1"),
    (["trace", "RUN", "-o", "T", "--sample", "around:nope"], "--sample: around:nope: no fault named 'nope' "
                                                             "(faults: inventory-outage)"),
    (["trace", "RUN", "-o", "T", "--format", "xml"], "Invalid value for '--format'"),
    (["trace", "NOWHERE", "-o", "T"], "not a run directory"),
])
def test_cli_errors_are_one_line_exit_2(argv: list[str], expected: str, run: Any, tmp_path: Path) -> None:
    run.write(tmp_path / "run")
    argv = [str(tmp_path / "run") if a == "RUN" else str(tmp_path / "t.out") if a == "T"
            else str(tmp_path / "nowhere") if a == "NOWHERE" else a for a in argv]
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error: "), res.output
    assert expected in res.output and "Traceback" not in res.output
    assert not (tmp_path / "t.out").exists()
