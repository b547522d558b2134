"""What `simres run` prints: grouped, with units, empty rows hidden, within 120 columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from simres.cli import main
from simres.metrics.display import grouped_rows


@pytest.fixture
def small_scenario(tmp_path) -> str:
    """A 10 s two-tier scenario file with a downstream timeout and retries."""
    sc = {"name": "small", "duration": 10, "warmup": 1, "drain": 2,
          "services": {"api": {"workers": 4, "handler": {"calls": [{"to": "db", "timeout": 0.05}]}},
                       "db": {"workers": 2, "service_time": {"kind": "exponential", "mean": 0.01}}},
          "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 50}, "timeout": 1.0}}}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(sc), encoding="utf-8")
    return str(path)


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["run", *args])
    return res.exit_code, res.output


def test_run_prints_a_grouped_summary_with_units_and_no_empty_rows(small_scenario) -> None:
    code, out = run(small_scenario, "--quiet")
    assert code == 0, out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert len(lines) < 35
    assert "success" in out and "%" in out and " ms" in out
    assert " - " not in out and "priority=" not in out  # no rows for classes without traffic
    assert "metrics with data shown" in lines[-1]


def test_per_class_rows_appear_only_with_several_classes() -> None:
    one = {"success_rate": 1.0, "success_rate:priority=high": 1.0, "success_rate:priority=low": float("nan")}
    assert not [r for r in grouped_rows(one) if r[0] == "per class"]
    two = {**one, "success_rate:priority=low": 0.5}
    assert [r[1] for r in grouped_rows(two) if r[0] == "per class"] == [
        "success of priority=high", "success of priority=low"]


def test_zero_failure_shares_are_hidden_but_a_nonzero_one_is_shown() -> None:
    rows = grouped_rows({"error_rate": 0.0, "timeout_rate": 0.25})
    assert rows == [("failures", "timeout", "25 %")]


def test_metrics_picks_keys_and_json_prints_them_all(small_scenario) -> None:
    code, out = run(small_scenario, "--quiet", "--metrics", "latency_p9*")
    assert code == 0, out
    assert "latency_p90" in out and "latency_p99" in out and "success_rate" not in out
    code, out = run(small_scenario, "--quiet", "--json")
    data = json.loads(out)
    assert data["summary"]["count"] > 0 and data["scenario"]
    assert any(v is None for v in data["summary"].values())  # NaN becomes null, not NaN


def test_unknown_metrics_pattern_is_one_line_and_exit_2(small_scenario) -> None:
    code, out = run(small_scenario, "--quiet", "--metrics", "nope_*")
    assert code == 2
    assert out.strip().splitlines() == [out.strip()] and "--metrics" in out


def test_a_run_result_shows_its_grouped_summary_in_a_notebook() -> None:
    import simres

    r = simres.run({"duration": 5, "services": {"a": {}},
                    "clients": {"c": {"target": "a", "arrival": {"kind": "poisson", "rate": 20}}}}, seed=1)
    page = r._repr_html_()
    assert page.startswith("<div>") and "<table>" in page
    assert "success" in page and "100 %" in page and "priority=" not in page


def test_replications_are_identical_for_any_jobs(small_scenario, tmp_path) -> None:
    import pandas as pd
    import yaml

    path = tmp_path / "v.yaml"
    data = yaml.safe_load(Path(small_scenario).read_text(encoding="utf-8"))
    data["variants"] = {"a": {}, "b": {"services.db.workers": 1}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    frames = []
    for jobs in ("1", "2"):
        out = tmp_path / f"r{jobs}.parquet"
        res = CliRunner().invoke(main, ["compare", str(path), "--reps", "2", "--quiet", "--jobs", jobs,
                                        "--out", str(out)])
        assert res.exit_code == 0, res.output
        frames.append(pd.read_parquet(out).drop(columns="wall_time"))
    pd.testing.assert_frame_equal(frames[0], frames[1])


def test_every_command_that_runs_several_simulations_takes_jobs() -> None:
    for name in ("run", "compare", "report", "sweep", "validate"):
        opts = {o for p in main.commands[name].params for o in getattr(p, "opts", [])}
        assert "--jobs" in opts, name


def test_compare_fits_120_columns_in_units_and_says_what_it_hides(tmp_path) -> None:
    """Six variants of the flagship: no line over 120 columns (the sixth variant continues
    below), shares in %, 0/1 metrics as a share of runs with a Wilson interval, no float
    noise such as ``±2.59e-15``, and the count of hidden metrics with the way to see them."""
    from click.testing import CliRunner

    from simres.cli import main

    res = CliRunner().invoke(main, ["compare", "retry-storm-metastable", "-n", "3", "-j", "1", "--quiet",
                                    "--set", "duration=40"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(ln) for ln in lines) <= 120
    assert sum(ln.startswith("metric ") for ln in lines) == 2  # two blocks of variants
    success = [ln for ln in lines if ln.startswith("success_rate")]
    assert len(success) == 2 and all("%" in ln for ln in success) and any("*" in ln for ln in success)
    recovered = next(ln for ln in lines if ln.startswith("recovered:trigger"))
    assert "[" in recovered and "±" not in recovered  # Wilson interval of a share of runs
    import re

    assert not re.search(r"\d[eE][-+]\d", res.output)  # no exponent, no float noise
    hidden = next(ln for ln in lines if "metrics with data shown" in ln)
    assert "--metrics" in hidden
    picked = CliRunner().invoke(main, ["compare", "retry-storm-metastable", "-n", "3", "-j", "1", "--quiet",
                                       "--set", "duration=40", "--metrics", "latency_all_p99"])
    assert picked.exit_code == 0 and "latency_all_p99" in picked.output and "goodput" not in picked.output


def test_the_run_table_shows_the_consistency_cache_and_saga_keys_when_a_scenario_has_them() -> None:
    rows = grouped_rows({"count": 10.0, "stale_read_rate:r": 0.25, "read_staleness_p99:r": 2.5,
                         "read_refused_rate:r": 0.0, "ryw_violation_rate:r": 0.5, "cache_hit_ratio:api": 0.94,
                         "sagas_inconsistent": 0.0315, "saga_partial_time_p99": 57.8})
    got = {(g, label): v for g, label, v in rows}
    assert got[("consistency", "stale reads at r")] == "25 %"
    assert got[("consistency", "p99 read staleness at r")] == "2.5 s"
    assert got[("consistency", "reads refused at r")] == "0 %"  # a zero refusal share says something: shown
    assert got[("caches", "hit ratio at api")] == "94 %"
    assert got[("sagas", "left inconsistent")] == "3.15 %"
    assert got[("sagas", "p99 time partially applied")] == "57.8 s"
    assert not [r for r in grouped_rows({"count": 10.0}) if r[0] in ("consistency", "caches", "sagas")]
