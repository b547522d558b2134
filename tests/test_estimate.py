"""The time estimate printed before long work: how it is made, when it prints, and that it is in range."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from simres.cli import estimate as est
from simres.cli import main


@pytest.fixture
def small(tmp_path: Path) -> str:
    sc = {"name": "small", "duration": 10, "warmup": 1, "drain": 2,
          "services": {"api": {"workers": 4, "service_time": {"kind": "exponential", "mean": 0.01}}},
          "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 50}, "timeout": 1.0}},
          "variants": {"a": {}, "b": {"services.api.workers": 2}}}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(sc), encoding="utf-8")
    return str(path)


def test_rounds_of_parallel_runs() -> None:
    e = est.Estimate(runs=10, workers=4, per_run=2.0, covered=60, end_time=60)
    assert e.seconds == 6.0  # ceil(10 / 4) rounds of 2 s
    assert str(e).startswith("10 run(s), about 6 s on 4 workers") and "timed pilot run" in str(e)
    assert "pilot of its first 5 s" in str(est.Estimate(runs=1, workers=1, per_run=1, covered=5, end_time=60))
    assert est.human(0.25) == "0.2 s" and est.human(150) == "2 min" and est.human(7200) == "2.0 h"


def test_a_stopped_pilot_extrapolates_within_a_factor_of_three() -> None:
    """Baseline at 2.5x its length: the pilot stops after 0.5 s and extrapolates by simulated time."""
    from simres.experiments.runs import run

    overrides = {"duration": 150}
    per_run, covered, end = est.per_run_seconds("baseline", overrides)
    assert covered < end  # stopped early: this is the extrapolating branch
    t0 = time.perf_counter()
    run("baseline", overrides=overrides)
    actual = time.perf_counter() - t0
    assert actual / 3 < per_run < actual * 3, (per_run, actual)


def test_a_front_loaded_run_is_extrapolated_by_its_requests_not_its_seconds(tmp_path: Path) -> None:
    """A burst in the first tenth of the run and a trickle after: a pilot that saw the burst
    has seen most of the work; extrapolating by simulated time would say ~10x too long."""
    sc = {"name": "front", "duration": 200, "warmup": 0,
          "services": {"api": {"workers": 64, "service_time": {"kind": "exponential", "mean": 0.005}}},
          "clients": {"web": {"target": "api", "timeout": 1.0, "arrival": {
              "kind": "profile", "points": [{"at": 0, "rate": 3000}, {"at": 20, "rate": 5}]}}}}
    path = tmp_path / "front.yaml"
    path.write_text(yaml.safe_dump(sc), encoding="utf-8")
    from simres.scenario.loading import load_scenario

    loaded = load_scenario(str(path))
    assert est.offered_share(loaded, 20, 200) == pytest.approx(60000 / 60900, rel=1e-3)
    assert est.offered_share(loaded, 200, 200) == 1.0
    # a load fault doubles the trickle's second half: it counts
    spiky = load_scenario(str(path), overrides={"faults": [{"kind": "load", "client": "web", "at": 100,
                                                            "factor": 2.0}]})
    assert est.offered_share(spiky, 100, 200) == pytest.approx(60400 / 61400, rel=1e-3)

    from simres.experiments.runs import run

    run(load_scenario(str(path), overrides={"duration": 0.1}))  # imports, outside the timing
    ratios = []
    for _ in range(3):  # the median of three: a shared machine stalls now and then
        t0 = time.perf_counter()
        run(str(path))
        actual = time.perf_counter() - t0
        per_run, covered, end = est._pilot(loaded, budget=actual / 4)
        assert covered < end  # stopped early
        ratios.append(per_run / actual)
    # extrapolating by simulated time would say ~3.5x (the pilot covers a tenth of the seconds
    # but two thirds of the work)
    assert 1 / 2.5 < sorted(ratios)[1] < 2.5, ratios


def test_a_short_scenario_is_timed_whole(small: str) -> None:
    per_run, covered, end = est.per_run_seconds(small)
    assert covered == end == 12.0 and 0 < per_run < 5


def test_dry_run_prints_the_estimate_and_runs_nothing(small: str, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["compare", small, "-n", "3", "-j", "1", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "6 run(s), about" in res.output and "on 1 worker" in res.output and "verdict" not in res.output
    res = runner.invoke(main, ["run", small, "-n", "4", "--dry-run", "-q"])
    assert res.exit_code == 0 and "4 run(s), about" in res.output
    out = tmp_path / "s.parquet"
    res = runner.invoke(main, ["sweep", small, "--grid", "services.api.workers=2,3", "-n", "2", "-j", "1",
                               "-o", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "4 points" in res.output and "4 run(s), about" in res.output and not out.exists()
    res = runner.invoke(main, ["report", small, "-n", "2", "-o", str(tmp_path / "r"), "--dry-run"])
    assert res.exit_code == 0 and "6 run(s), about" in res.output and not (tmp_path / "r").exists()


def test_the_estimate_prints_before_long_work_but_not_under_quiet(small: str, monkeypatch) -> None:
    monkeypatch.setattr(est, "SHOW_ABOVE", 0.0)  # every piece of work counts as long here
    res = CliRunner().invoke(main, ["compare", small, "-n", "2", "-j", "1"])
    assert res.exit_code == 0, res.output
    assert res.output.index("4 run(s), about") < res.output.index("verdict")
    assert "run(s), about" not in res.stdout  # chatter goes to stderr
    res = CliRunner().invoke(main, ["compare", small, "-n", "2", "-j", "1", "-q"])
    assert res.exit_code == 0 and "run(s), about" not in res.output and "verdict" in res.output
