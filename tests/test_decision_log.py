"""The decision log (``run(..., decision_log=...)``, ``simres run --log``) and ``simres explain``.

The log is a separate sink: the frames are the same with it on or off. Its breaker lines
carry the evidence the breaker decided on, consistent with the events frame, and
``simres explain`` turns them into the answer to "why did the breaker open at T?".
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from click.testing import CliRunner

from simres.cli import main
from simres.experiments.runs import run
from simres.metrics.decisions import EVENTS, DecisionLog, DecisionLogWarning, read_log
from simres.metrics.explain import explain

SHORT = {"duration": 30, "drain": 2}
"""dependency-outage-breaker shortened: the outage (15 s on) and the breaker's first opens are inside."""


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    path = tmp_path_factory.mktemp("dec") / "decisions.jsonl"
    on = run("dependency-outage-breaker", variant="breaker", overrides=SHORT, decision_log=path)
    return on, read_log(path)


def test_frames_are_the_same_with_the_log_on_or_off(logged) -> None:
    on, _ = logged
    off = run("dependency-outage-breaker", variant="breaker", overrides=SHORT)
    for name in ("requests", "attempts", "timeline", "events"):
        pd.testing.assert_frame_equal(getattr(on, name), getattr(off, name))
    assert off.decision_log is None and on.decision_log_lines > 0 and on.decision_log_error is None


def test_every_line_is_a_flat_structlog_style_dict(logged) -> None:
    _, rows = logged
    assert rows
    for d in rows:
        assert {"event", "time", "component"} <= set(d)
        assert d["event"] in EVENTS
        assert all(not isinstance(v, (dict, list)) for v in d.values()), d
    kinds = {d["event"] for d in rows}
    assert {"breaker", "try_failed", "retry_scheduled", "rejected", "fault_start"} <= kinds


def test_breaker_lines_match_the_events_frame_and_carry_their_evidence(logged) -> None:
    on, rows = logged
    ev = on.events[on.events.kind == "breaker"]
    lines = [d for d in rows if d["event"] == "breaker"]
    assert len(lines) == len(ev) > 0
    logged_set = sorted((round(d["time"], 9), d["component"], f"{d['old']}->{d['new']}: {d['reason']}")
                        for d in lines)
    frame_set = sorted((round(t, 9), c, x) for t, c, x in zip(ev.time, ev.component, ev.detail, strict=True))
    assert logged_set == frame_set
    opened = [d for d in lines if d["new"] == "open" and d["reason"] == "failure_rate"]
    assert opened
    for d in opened:
        assert d["failure_rate"] == pytest.approx(d["failures"] / d["calls"])
        assert d["failure_rate"] >= d["threshold"] == 0.5
        assert d["calls"] >= d["minimum_calls"] == 10
        assert d["window"] == "count" and d["window_size"] == 20
        assert d["open_for"] == pytest.approx(5.0)
        assert {"req", "try", "parent"} <= set(d)
    for d in lines:  # the clock, not a try, half-opens a breaker: no try to name
        if d["reason"] == "open_elapsed":
            assert "try" not in d


def test_retry_lines_carry_the_delay_and_the_outcome_that_caused_them(logged) -> None:
    on, rows = logged
    att = on.attempts.set_index("try_id") if "try_id" in on.attempts else None
    retries = [d for d in rows if d["event"] == "retry_scheduled"]
    assert retries
    for d in retries:
        assert d["delay"] >= 0 and d["next_attempt"] == d["attempt"] + 1
        assert d["outcome"] in ("timeout", "error", "connection")
        if att is not None:
            assert att.loc[d["try"], "attempt"] == d["attempt"]


def test_explain_answers_why_the_breaker_opened(logged, tmp_path) -> None:
    on, rows = logged
    first = on.events[(on.events.kind == "breaker") & on.events.detail.str.startswith("closed->open")].iloc[0]
    paragraphs = explain(rows, float(first.time), "api->inventory", window=2.0)
    text = "\n".join(paragraphs)
    assert f"{first.component} breaker closed->open at {first.time:.2f} s" in text
    d = next(r for r in rows if r["event"] == "breaker" and r["component"] == first.component
             and r["new"] == "open")
    assert f"{d['failures']} of the last {d['calls']} calls failed ({100 * d['failure_rate']:.0f} %)" in text
    assert "threshold 50 %" in text and "count window of 20 calls" in text and "open for 5 s" in text
    assert "Led to it:" in text and "timeout" in text
    assert "inventory-outage" in text  # the fault active then


def test_cli_run_log_then_explain(tmp_path) -> None:
    out = tmp_path / "dob"
    res = CliRunner().invoke(main, ["run", "dependency-outage-breaker", "--variant", "breaker", "-q",
                                    "--set", "duration=30", "--set", "drain=2", "-o", str(out), "--log"])
    assert res.exit_code == 0, res.output
    assert (out / "decisions.jsonl").is_file() and "decisions" in res.output
    ex = CliRunner().invoke(main, ["explain", str(out), "--at", "16", "--component", "api->inventory"])
    assert ex.exit_code == 0, ex.output
    assert re.search(r"api->inventory#\d breaker closed->open at 1\d\.\d\d s: \d+ of the last 20 calls failed "
                     r"\(\d+ %\), threshold 50 %", ex.output), ex.output
    quiet = CliRunner().invoke(main, ["explain", str(out / "decisions.jsonl"), "--at", "3", "--window", "1",
                                      "--component", "api->inventory"])
    assert quiet.exit_code == 0 and "no state change" in quiet.output


@pytest.mark.parametrize(("argv", "expected"), [
    (["explain", "/no/such/run", "--at", "1"], "no such run directory or decision log"),
    (["explain", ".", "--at", "1"], "no decisions.jsonl in this run directory"),
    (["explain", "BAD", "--at", "-1"], "'--at'"),
    (["explain", "BAD", "--at", "1", "--window", "0"], "'--window'"),
    (["run", "baseline", "--log"], "--log without a FILE needs --out DIR"),
    (["run", "baseline", "--log", "x.jsonl", "--reps", "2"], "--log writes the decisions of one run"),
])
def test_bad_explain_input_is_one_line_exit_2(argv, expected, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "BAD").write_text("not json\n")
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error: ") and expected in res.output, res.output


def test_a_log_that_is_not_json_is_one_line(tmp_path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"event": "breaker", "time": 1, "component": "a"}\nnot json\n')
    res = CliRunner().invoke(main, ["explain", str(f), "--at", "1"])
    assert res.exit_code == 2 and "line 2: not JSON" in res.output, res.output


def test_a_failing_log_never_loses_the_run(tmp_path, monkeypatch) -> None:
    class Broken:
        def write(self, _s: str) -> None:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    real_init = DecisionLog.__init__

    def init(self, path):  # type: ignore[no-untyped-def]
        real_init(self, path)
        self._fh.close()
        self._fh = Broken()

    monkeypatch.setattr(DecisionLog, "__init__", init)
    with pytest.warns(DecisionLogWarning, match="No space left on device"):
        res = run("dependency-outage-breaker", variant="breaker", overrides=SHORT,
                  decision_log=tmp_path / "d.jsonl")
    assert len(res.requests) > 0 and res.summary
    assert res.decision_log_error is not None and "\n" not in res.decision_log_error


def test_log_lines_are_json_with_finite_numbers(tmp_path) -> None:
    log = DecisionLog(tmp_path / "x.jsonl")
    log.emit("breaker", 1.5, "a->b", rate=float("nan"), until=float("inf"), n=3)
    log.close()
    row = json.loads((tmp_path / "x.jsonl").read_text())
    assert row == {"event": "breaker", "time": 1.5, "component": "a->b", "rate": None, "until": None, "n": 3}


@pytest.mark.filterwarnings("ignore::simres.errors.ScenarioWarning")  # shortened: faults may start in the drain
@pytest.mark.parametrize("scenario", ["hedging-under-overload", "priority-shedding-overload",
                                      "outlier-ejection-bad-host", "adaptive-limit-vs-bulkhead",
                                      "congestive-collapse"])
def test_the_log_changes_no_frame_of_any_policy(scenario, tmp_path) -> None:
    """Hedges, budgets, shedding, ejections, limits and bulkheads: the frames with the log on
    are those with it off, every variant (each shortened), and every line is a known event."""
    from simres.scenario.loading import load_scenario

    sc = load_scenario(scenario)
    short = {"duration": min(sc.duration, 20.0), "warmup": min(sc.warmup, 2.0)}
    for variant in [None, *sc.variants]:
        off = run(scenario, variant=variant, overrides=short)
        on = run(scenario, variant=variant, overrides=short, decision_log=tmp_path / "d.jsonl")
        for name in ("requests", "attempts", "timeline", "events"):
            pd.testing.assert_frame_equal(getattr(on, name), getattr(off, name))
        assert {d["event"] for d in read_log(tmp_path / "d.jsonl")} <= set(EVENTS)
