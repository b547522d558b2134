"""Sweeps in this process: the design, up-front validation, Parquet output, resume, `best`, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from simres.cli.sweep import best_cmd, sweep_cmd
from simres.errors import SweepError
from simres.experiments.choosing import NoFeasibleSetting, best, parse_constraint
from simres.experiments.design import SampleSpec, SweepSpec, load_sweep, parse_axis, plan_sweep, run_id
from simres.experiments.executors import SerialExecutor
from simres.experiments.replications import run_point
from simres.experiments.store import load_results
from simres.experiments.sweeping import sweep
from simres.rng import replication_seeds

from .conftest import single_queue

ROOT = Path(__file__).resolve().parent.parent
GRID = {"services.api.workers": [1, 2, 3], "clients.web.timeout": [0.1, 1.0]}


def tiny(**kw: Any) -> dict[str, Any]:
    """A one-queue scenario that runs in a few tens of milliseconds."""
    sc = single_queue(rate=20, mean=0.04, workers=2, duration=kw.pop("duration", 10))
    sc["clients"]["web"]["timeout"] = 1.0
    sc["variants"] = {"fast": {"services.api.service_time.mean": 0.02}}
    return sc


def raising_point(data: dict[str, Any], *, seed: int, variant: str | None,
                  overrides: dict[str, Any]) -> dict[str, Any]:
    """run_point, except that 3 workers raise (a point that fails at run time)."""
    if overrides.get("services.api.workers") == 3:
        raise RuntimeError("boom at three workers")
    return run_point(data, seed=seed, variant=variant, overrides=overrides)


def without_wall(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns="wall_time").reset_index(drop=True)


# ---------------------------------------------------------------------------- design


def test_full_grid_crosses_every_value_in_order() -> None:
    spec = SweepSpec(scenario="x", grid={"a": [1, 2, 3], "b": ["x", "y"]})
    combos = spec.combinations()
    assert combos == [{"a": a, "b": b} for a in (1, 2, 3) for b in ("x", "y")]
    assert spec.params == ["a", "b"]


def test_zip_varies_together_and_crosses_the_grid() -> None:
    spec = SweepSpec(scenario="x", grid={"a": [1, 2]}, zip={"w": [2, 4, 8], "i": [1, 2, 4]})
    combos = spec.combinations()
    assert len(combos) == 6
    assert {(c["w"], c["i"]) for c in combos} == {(2, 1), (4, 2), (8, 4)}
    with pytest.raises(ValueError, match="same length"):
        SweepSpec(scenario="x", zip={"w": [2, 4], "i": [1]})


def test_sample_is_deterministic_and_stays_in_its_ranges() -> None:
    ranges = {"t": {"low": 0.1, "high": 2.0, "log": True}, "w": {"choices": [2, 4, 8]},
              "n": {"low": 1, "high": 10, "integer": True}}
    a = SampleSpec(n=40, seed=3, ranges=ranges).points()
    assert a == SampleSpec(n=40, seed=3, ranges=ranges).points()
    assert a != SampleSpec(n=40, seed=4, ranges=ranges).points()
    assert all(0.1 <= p["t"] <= 2.0 and p["w"] in (2, 4, 8) and 1 <= p["n"] <= 10 for p in a)
    assert all(isinstance(p["n"], int) for p in a)
    assert np.median([p["t"] for p in a]) < 0.9  # log-uniform: the median is near sqrt(0.2) = 0.45
    lhs = SampleSpec(n=10, seed=1, method="lhs", ranges={"x": {"low": 0, "high": 1}}).points()
    assert sorted(int(p["x"] * 10) for p in lhs) == list(range(10))  # one point per stratum


def test_spec_rejects_bad_input_with_one_line() -> None:
    with pytest.raises(ValueError, match=r"grdi|extra"):
        SweepSpec.model_validate({"scenario": "x", "grdi": {}})
    with pytest.raises(ValueError, match="low must be < high"):
        SampleSpec(n=3, ranges={"x": {"low": 2, "high": 1}})
    with pytest.raises(ValueError, match="already set in grid"):
        SweepSpec(scenario="x", grid={"a": [1]}, zip={"a": [2]})
    assert parse_axis(["a.b=1,2.5,null", "c=[1,2],{k: v}"]) == {"a.b": [1, 2.5, None], "c": [[1, 2], {"k": "v"}]}
    with pytest.raises(SweepError, match="expected PATH=V1,V2"):
        parse_axis(["services.db.workers"])


def test_sweep_file_loads_and_the_bundled_examples_plan(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny()))
    f = tmp_path / "s.yaml"
    f.write_text("scenario: tiny.yaml\nreps: 2\ngrid: {services.api.workers: [1, 2]}\n"
                 "sample: {n: 3, ranges: {clients.web.timeout: {low: 0.1, high: 1}}}\n")
    plan = plan_sweep(load_sweep(f))
    assert len(plan.points) == 2 * 3 * 2
    f.write_text("scenario: tiny.yaml\ngird: {}\n")
    with pytest.raises(SweepError, match="gird: unknown field"):
        load_sweep(f)
    examples = sorted((ROOT / "scenarios" / "sweeps").glob("*.yaml"))
    assert examples
    for example in examples:
        assert len(plan_sweep(load_sweep(example)).points) >= 1
    # The sweep file shown in docs/sweeps.md is valid and as big as it says.
    doc = (ROOT / "docs" / "sweeps.md").read_text(encoding="utf-8")
    (tmp_path / "doc.yaml").write_text(doc.split("```yaml\n")[1].split("```")[0])
    assert len(plan_sweep(load_sweep(tmp_path / "doc.yaml")).points) == 4 * 3 * 50 * 5


def test_zip_paths_valid_only_together_are_checked_together() -> None:
    """A mode and its bound vary together in ``zip``; crossed in ``grid`` the first point
    (mode consistent, no bound yet) is invalid and named."""
    scenario = str(ROOT / "scenarios" / "replica-partition-cap.yaml")
    mode, bound = "services.accounts-replica.replica.mode", "services.accounts-replica.replica.max_staleness"
    plan = plan_sweep(SweepSpec(scenario=scenario, zip={mode: ["consistent", "available"], bound: [2.0, None]}))
    assert [c[bound] for c in plan.combinations] == [2.0, None]
    with pytest.raises(SweepError, match="mode: consistent needs the staleness"):
        plan_sweep(SweepSpec(scenario=scenario, grid={mode: ["consistent"], bound: [2.0]}))


def test_typo_or_bad_value_fails_before_any_point_runs() -> None:
    calls: list[int] = []
    with pytest.raises(SweepError, match=r"max_atempts: unknown field \(did you mean 'max_attempts'\?\)"):
        sweep(tiny(), grid={"clients.web.retry.max_atempts": [1, 2]}, executor=SerialExecutor(),
              progress=lambda done, total: calls.append(done))
    with pytest.raises(SweepError, match=r"services.api.workers=0.*must be >= 1, got 0"):
        sweep(tiny(), grid={"services.api.workers": [2, 1, 0]}, executor=SerialExecutor())
    with pytest.raises(SweepError, match="unknown variant 'slow'"):
        sweep(tiny(), grid={"services.api.workers": [1]}, variants=["slow"], executor=SerialExecutor())
    assert calls == []


def test_run_ids_are_stable_and_seeds_are_common_random_numbers() -> None:
    plan = plan_sweep(SweepSpec(scenario=tiny(), grid=GRID, variants=[None, "fast"], reps=3, seed=11))
    assert len(plan.points) == 6 * 2 * 3
    assert len({p.run_id for p in plan.points}) == len(plan.points)
    assert run_id({"b": 1, "a": 2}, None, 0) == run_id({"a": 2, "b": 1}, "", 0)
    seeds = replication_seeds(11, 3)
    assert all(p.seed == seeds[p.replicate] for p in plan.points)


# ---------------------------------------------------------------------------- running


def test_sweep_frame_is_tidy_and_written_as_parquet(tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    df = sweep(tiny(), grid=GRID, reps=2, executor=SerialExecutor(), out=out)
    assert len(df) == 12
    assert list(df.columns[:6]) == ["run_id", "variant", "replicate", "seed", "services.api.workers",
                                    "clients.web.timeout"]
    assert list(df.columns[-2:]) == ["error", "wall_time"]
    assert df["error"].isna().all() and (df["wall_time"] > 0).all()
    assert df["success_rate"].between(0, 1).all()
    assert df["services.api.workers"].tolist() == sorted(df["services.api.workers"])
    pd.testing.assert_frame_equal(load_results(out), df)
    assert load_results(out).attrs["sweep"]["params"] == list(GRID)
    # The same point alone gives the same metrics (a sweep adds nothing to a run).
    row = df.iloc[5]
    alone = run_point(tiny(), seed=int(row.seed), overrides={p: row[p].item() for p in GRID})
    assert alone["latency_p99"] == row["latency_p99"]


def test_parameters_of_mixed_types_round_trip(tmp_path: Path) -> None:
    grid = {"services.api.queue.capacity": [None, 5], "services.api.queue.discipline": ["fifo", "lifo"],
            "services.api.service_time": [{"kind": "constant", "value": 0.03}, 0.04]}
    out = tmp_path / "r.parquet"
    df = sweep(tiny(duration=5), grid=grid, executor=SerialExecutor(), out=out)
    assert len(df) == 8 and df["error"].isna().all()
    assert str(df["services.api.queue.capacity"].dtype) == "Int64"
    assert set(df["services.api.service_time"]) == {'{"kind": "constant", "value": 0.03}', "0.04"}  # JSON
    pd.testing.assert_frame_equal(load_results(out), df)
    choice = best(out, maximize="success_rate")
    assert set(choice.overrides) == set(grid)
    assert choice.overrides["services.api.queue.capacity"] in (None, 5)
    assert choice.overrides["services.api.service_time"] in grid["services.api.service_time"]


def test_a_point_that_raises_becomes_an_error_row() -> None:
    df = sweep(tiny(), grid=GRID, executor=SerialExecutor(), point_fn=raising_point)
    bad = df[df["services.api.workers"] == 3]
    assert len(bad) == 2 and bad["error"].str.contains("RuntimeError: boom at three workers").all()
    assert bad["latency_p99"].isna().all()
    assert df[df["services.api.workers"] != 3]["error"].isna().all()


def test_interrupted_sweep_keeps_its_rows_and_resume_completes_it(tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"

    def stop_after_five(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    kw: dict[str, Any] = {"grid": GRID, "variants": [None, "fast"]}
    with pytest.raises(KeyboardInterrupt):
        sweep(tiny(), executor=SerialExecutor(), out=out, progress=stop_after_five, **kw)
    partial = load_results(out)
    assert len(partial) == 5
    with pytest.raises(SweepError, match="already holds sweep results"):
        sweep(tiny(), executor=SerialExecutor(), out=out, **kw)
    with pytest.raises(SweepError, match="another root seed"):
        sweep(tiny(), executor=SerialExecutor(), out=out, resume=True, seed=99, **kw)
    ran: list[int] = []
    df = sweep(tiny(), executor=SerialExecutor(), out=out, resume=True,
               progress=lambda done, total: ran.append(done), **kw)
    assert ran[0] == 6 and ran[-1] == 12  # only the 7 missing points ran
    assert len(df) == 12 and df["run_id"].is_unique
    assert set(partial["run_id"]) <= set(df["run_id"])
    clean = sweep(tiny(), executor=SerialExecutor(), **kw)
    pd.testing.assert_frame_equal(without_wall(df), without_wall(clean))
    assert len(list(out.glob("*.parquet"))) == 1  # parts compacted at the end
    ran.clear()
    again = sweep(tiny(), executor=SerialExecutor(), out=out, resume=True, reps=2,
                  progress=lambda done, total: ran.append(done), **kw)
    assert len(again) == 24 and ran == list(range(13, 25))  # more replications: only the new ones ran
    assert (again.groupby("replicate")["seed"].nunique() == 1).all()


def test_retry_errors_reruns_only_failed_points(tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    first = sweep(tiny(), grid=GRID, executor=SerialExecutor(), out=out, point_fn=raising_point)
    assert first["error"].notna().sum() == 2
    fixed = sweep(tiny(), grid=GRID, executor=SerialExecutor(), out=out, resume=True, retry_errors=True)
    assert fixed["error"].isna().all() and len(fixed) == 6
    pd.testing.assert_frame_equal(without_wall(fixed).drop(columns="error"),
                                  without_wall(sweep(tiny(), grid=GRID, executor=SerialExecutor()))
                                  .drop(columns="error"))


def test_simres_sweep_is_callable() -> None:
    import simres
    import simres.experiments.sweeping

    df = simres.sweep(tiny(duration=5), grid={"services.api.workers": [1, 2]}, executor=SerialExecutor())
    assert len(df) == 2


# ---------------------------------------------------------------------------- best


def synthetic(reps: int = 4) -> pd.DataFrame:
    """a = 1..5: latency grows with a, success_rate = 1 - 0.01 / a with a known spread."""
    rows = []
    for a in range(1, 6):
        for r in range(reps):
            wobble = (-1) ** r * 0.0005
            rows.append({"run_id": f"{a}-{r}", "variant": "", "replicate": r, "seed": r, "a": a,
                         "latency_p99": 0.1 * a + 0.001 * r, "success_rate": 1 - 0.01 / a + wobble,
                         "error": None, "wall_time": 0.1})
    df = pd.DataFrame(rows)
    df.attrs["sweep"] = {"params": ["a"], "dtypes": {"a": "int64"}, "variants": [""], "scenario": "tiny.yaml",
                         "overrides": {"clients.web.timeout": 1.0}, "variant_overrides": {}, "seed": 1,
                         "reps": reps}
    return df


def test_best_picks_the_optimal_feasible_setting() -> None:
    df = synthetic()
    choice = best(df, minimize="latency_p99", subject_to=["success_rate >= 0.996"])
    means = df.groupby("a")[["latency_p99", "success_rate"]].mean()
    feasible = means[means.success_rate >= 0.996]
    assert choice.winner == {"a": int(feasible.latency_p99.idxmin())} == {"a": 3}
    assert choice.table.loc[0, "success_rate_mean"] >= 0.996
    assert choice.overrides == {"clients.web.timeout": 1.0, "a": 3}
    assert "--set a=3" in choice.command and "--set clients.web.timeout=1.0" in choice.command
    text = str(choice)
    assert "significantly worse than the best mean" in text and "p (Holm)" in text and "\n      a: 3" in text
    # Conservative: the low end of success_rate's CI must clear the bound, which rules out a=3.
    cons = best(df, minimize="latency_p99", subject_to=["success_rate >= 0.996"], conservative=True)
    assert cons.winner["a"] > 3 and cons.table.loc[0, "success_rate_lo"] >= 0.996
    assert best(df, maximize="success_rate").winner == {"a": 5}


def test_best_rejects_bad_input_and_reports_infeasibility() -> None:
    df = synthetic()
    with pytest.raises(SweepError, match="expected METRIC OP NUMBER"):
        parse_constraint("success_rate = 0.9")
    assert parse_constraint("success_rate:priority=high>=0.9").metric == "success_rate:priority=high"
    with pytest.raises(SweepError, match="did you mean 'success_rate'"):
        best(df, minimize="latency_p99", subject_to=["succes_rate >= 0.9"])
    with pytest.raises(SweepError, match="exactly one"):
        best(df, minimize="latency_p99", maximize="success_rate")
    with pytest.raises(NoFeasibleSetting, match="best success_rate reached"):
        best(df, minimize="latency_p99", subject_to=["success_rate >= 0.9999"])


# ---------------------------------------------------------------------------- CLI


def test_cli_sweep_then_best(tmp_path: Path) -> None:
    scen = tmp_path / "tiny.yaml"
    scen.write_text(yaml.safe_dump(tiny()))
    out = tmp_path / "r.parquet"
    runner = CliRunner()
    args = [str(scen), "--grid", "services.api.workers=1,2,3", "--grid", "clients.web.timeout=0.1,1.0",
            "--reps", "2", "--jobs", "1", "--out", str(out), "--quiet"]
    res = runner.invoke(sweep_cmd, args)
    assert res.exit_code == 0, res.output
    assert len(load_results(out)) == 12
    res = runner.invoke(sweep_cmd, args)
    assert res.exit_code == 2 and "--resume" in res.output
    assert runner.invoke(sweep_cmd, [*args, "--resume"]).exit_code == 0
    res = runner.invoke(best_cmd, [str(out), "--minimize", "latency_p99", "--subject-to", "success_rate >= 0.9"])
    assert res.exit_code == 0, res.output
    assert "simres run" in res.output and "variants:" in res.output
    df = load_results(out)
    means = df.groupby(list(GRID)).agg(lat=("latency_p99", "mean"), ok=("success_rate", "mean"))
    feasible = means[means.ok >= 0.9]
    w, t = feasible.lat.idxmin()
    assert f"--set services.api.workers={w}" in res.output
    assert f"--set clients.web.timeout={t}" in res.output
    res = runner.invoke(best_cmd, [str(out), "--minimize", "latency_p99", "--subject-to", "success_rate >= 1.5"])
    assert res.exit_code == 1 and "no feasible setting" in res.output
    res = runner.invoke(best_cmd, [str(out), "--minimize", "latency_p99", "--subject-to", "success_rate ~ 1"])
    assert res.exit_code == 2 and res.output.count("\n") == 1


def test_cli_bad_grid_exits_2_with_one_line(tmp_path: Path) -> None:
    scen = tmp_path / "tiny.yaml"
    scen.write_text(yaml.safe_dump(tiny()))
    runner = CliRunner()
    out = str(tmp_path / "r.parquet")
    for bad, expect in ((["--grid", "clients.web.retry.max_atempts=1,2"], "did you mean 'max_attempts'"),
                        (["--grid", "services.api.workers"], "expected PATH=V1,V2"),
                        (["--grid", "services.api.workers=1,0"], "must be >= 1")):
        res = runner.invoke(sweep_cmd, [str(scen), *bad, "--out", out, "--jobs", "1"])
        assert res.exit_code == 2, res.output
        assert res.output.startswith("error: ") and res.output.count("\n") == 1 and expect in res.output
    assert not Path(out).exists()
    res = runner.invoke(sweep_cmd, [str(scen), "--grid", "services.api.workers=1,2", "--out", out, "--dry-run"])
    assert res.exit_code == 0 and "2 combination(s)" in res.output and not Path(out).exists()
    meta = json.dumps({})  # a results path that is not a sweep
    (tmp_path / "junk").write_text(meta)
    res = runner.invoke(best_cmd, [str(tmp_path / "missing"), "--minimize", "latency_p99"])
    assert res.exit_code == 2 and "no such results" in res.output
