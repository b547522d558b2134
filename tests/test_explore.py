"""``simres explore``: binomial intervals, refinement only at the boundary, the CLI contract, the results directory.

Most tests use a synthetic point function (a known boundary, microseconds a run) on the
bundled retry-storm scenario, so only planning touches the model; one test runs the real
scenario on a tiny map.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import binomtest

from simres.cli import main
from simres.experiments.executors import ProcessExecutor, SerialExecutor
from simres.experiments.explore import (
    Axis,
    Cell,
    boundary_midpoints,
    cell_interval,
    explore,
    load_explore_result,
    verdict_of,
)

RATE, FACTOR = "clients.web.arrival.rate", "faults.0.factor"
SCENARIO = "retry-storm-metastable"


def threshold_point(data: dict[str, Any], *, seed: int, variant: str | None = None,
                    overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stuck exactly when rate x factor > 120: a known, deterministic boundary."""
    o = overrides or {}
    stuck = o[RATE] * o.get(FACTOR, 2.0) > 120
    return {"recovered:trigger": 0.0 if stuck else 1.0, "success_rate": 1.0, "tries_per_request": 1.0}


def noisy_point(data: dict[str, Any], *, seed: int, variant: str | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stuck with a probability rising with the load, decided by a hash of (seed, setting): reproducible anywhere."""
    o = overrides or {}
    key = json.dumps([seed, variant, sorted(o.items())], default=str).encode()
    u = int(hashlib.blake2b(key, digest_size=4).hexdigest(), 16) / 2**32
    p = min(1.0, max(0.0, (o[RATE] - 30) / 40))
    return {"recovered:trigger": 0.0 if u < p else 1.0}


# ---------------------------------------------------------------------------- the interval


@pytest.mark.parametrize(("k", "n"), [(0, 10), (5, 10), (10, 10), (3, 7), (1, 40)])
def test_cell_interval_is_the_wilson_interval(k: int, n: int) -> None:
    p, lo, hi = cell_interval(k, n)
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert p == pytest.approx(k / n)
    assert lo == pytest.approx(ref.low, abs=1e-12) and hi == pytest.approx(ref.high, abs=1e-12)


def test_known_counts_and_verdicts() -> None:
    _, lo, hi = cell_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(3.8415 / 13.8415, rel=1e-4)  # z^2 / (n + z^2)
    assert verdict_of(lo, hi) == "recovers"
    assert verdict_of(*cell_interval(10, 10)[1:]) == "stuck"
    assert verdict_of(*cell_interval(5, 10)[1:]) == "uncertain"
    assert verdict_of(float("nan"), float("nan")) == "not judged"


# ---------------------------------------------------------------------------- refinement


def _cell(pos: tuple[int, ...], stuck: bool) -> Cell:
    c = Cell(None, pos, {}, 0, 2)
    c.verdicts = {0: stuck, 1: stuck}
    return c


def test_midpoints_only_between_neighbours_that_disagree() -> None:
    axes = [Axis("x", (0.0, 1.0, 2.0), 4), Axis("y", (0.0, 1.0), 4)]
    cells = {(0, 0): _cell((0, 0), False), (4, 0): _cell((4, 0), False), (8, 0): _cell((8, 0), True),
             (0, 4): _cell((0, 4), False), (4, 4): _cell((4, 4), True), (8, 4): _cell((8, 4), True)}
    # x: (4,0)|(8,0) and (0,4)|(4,4) disagree; y: only the column x=4 disagrees
    assert boundary_midpoints(cells, axes) == [(2, 4), (4, 2), (6, 0)]
    cells[(6, 0)] = _cell((6, 0), True)
    cells[(7, 0)] = _cell((7, 0), False)
    new = boundary_midpoints(cells, axes)
    assert (6, 0) not in new and (7, 0) not in new  # existing cells are never added twice
    assert all(p[0] != 7 or p[1] != 0 for p in new)


def test_an_integer_axis_adds_no_midpoint_that_rounds_onto_a_neighbour() -> None:
    axis = Axis("workers", (1, 2), 4)
    cells = {(0,): _cell((0,), False), (4,): _cell((4,), True)}
    assert boundary_midpoints(cells, [axis]) == []
    assert Axis("rate", (30, 50), 4).value(1) == 35 and Axis("f", (1.5, 2.5), 2).value(1) == 2.0


def test_refinement_adds_cells_only_at_the_boundary_with_fewer_runs_than_the_full_grid() -> None:
    res = explore({"scenario": SCENARIO, "axes": {RATE: [30, 50, 70, 90], FACTOR: [1.0, 2.0, 3.0]},
                   "reps": 4, "refine": 2}, executor=SerialExecutor(), point_fn=threshold_point)
    cells = res.cells
    assert set(cells["round"]) == {0, 1, 2}
    # 0/4 or 4/4 stuck: every Wilson interval excludes 50 %, so no cell needs more replications
    assert (cells["runs"] == 4).all() and (cells["verdict"] != "uncertain").all()
    stuck = cells["p_stuck"] >= 0.5
    expected = (cells[RATE] * cells[FACTOR] > 120)
    assert (stuck == expected).all()
    # every added cell sits strictly between two cells of the previous rounds that disagree
    for _, d in cells[cells["round"] > 0].iterrows():
        earlier = cells[cells["round"] < d["round"]]
        between = False
        for a, b in ((RATE, FACTOR), (FACTOR, RATE)):
            line = earlier[earlier[b] == d[b]].sort_values(a)
            lower, upper = line[line[a] < d[a]], line[line[a] > d[a]]
            if len(lower) and len(upper):
                between |= bool((lower.iloc[-1][a] * lower.iloc[-1][b] > 120)
                                != (upper.iloc[0][a] * upper.iloc[0][b] > 120))
        assert between, d
    s = res.summary
    assert s["runs"] == cells["runs"].sum() < s["full_grid_runs"] / 3
    assert s["full_grid_runs"] == 13 * 9 * 4 and s["initial_runs"] == 48 and s["rounds_run"] == 2


def test_no_boundary_means_no_refinement() -> None:
    res = explore({"scenario": SCENARIO, "axes": {RATE: [10, 20, 30]}, "reps": 4, "refine": 3},
                  executor=SerialExecutor(), point_fn=threshold_point)
    assert len(res.cells) == 3 and res.summary["runs"] == 12 and res.summary["rounds_run"] == 0


def test_too_few_replications_to_decide_get_more() -> None:
    """0 of 3 stuck still leaves 50 % inside the Wilson interval (hi = 0.56): the cell is uncertain."""
    res = explore({"scenario": SCENARIO, "axes": {RATE: [10, 20]}, "reps": 3, "refine": 1},
                  executor=SerialExecutor(), point_fn=threshold_point)
    assert list(res.cells["runs"]) == [6, 6] and set(res.cells["verdict"]) == {"recovers"}


def test_uncertain_cells_get_more_replications_up_to_max_reps() -> None:
    res = explore({"scenario": SCENARIO, "axes": {RATE: [30, 50, 70]}, "reps": 4, "max_reps": 8,
                   "refine": 2, "refine_axes": []}, executor=SerialExecutor(), point_fn=noisy_point)
    cells = res.cells.set_index(RATE)
    assert len(cells) == 3  # no axis may be refined: only replications are added
    assert cells.loc[30, "runs"] == 4 and cells.loc[30, "stuck"] == 0  # p = 0: certain at once
    assert cells.loc[50, "runs"] == 8  # p = 0.5: uncertain, so it got the most replications


def test_same_cells_on_one_or_two_processes() -> None:
    spec = {"scenario": SCENARIO, "axes": {RATE: [30, 50, 70], FACTOR: [1.0, 3.0]}, "reps": 4, "refine": 2,
            "variants": ["naive", "token-bucket"]}
    one = explore(spec, executor=SerialExecutor(), point_fn=noisy_point)
    with ProcessExecutor(2) as ex:
        two = explore(spec, executor=ex, point_fn=noisy_point)
    pd.testing.assert_frame_equal(one.cells, two.cells)
    pd.testing.assert_frame_equal(one.runs.drop(columns="wall_time"), two.runs.drop(columns="wall_time"))


def test_common_random_numbers_every_cell_uses_the_same_seeds() -> None:
    res = explore({"scenario": SCENARIO, "axes": {RATE: [30, 70]}, "reps": 3},
                  executor=SerialExecutor(), point_fn=noisy_point)
    seeds = res.runs.groupby(RATE)["seed"].apply(list)
    assert seeds.loc[30] == seeds.loc[70] and len(set(seeds.loc[30])) == 3


# ---------------------------------------------------------------------------- the real scenario and the CLI


def test_a_real_map_recovers_at_low_load_and_sticks_at_high_load_and_trigger(tmp_path) -> None:
    out = tmp_path / "map"
    res = CliRunner().invoke(main, ["explore", SCENARIO, "--axis", f"{RATE}=25,65", "--axis", f"{FACTOR}=3",
                                    "--set", "duration=30", "-n", "3", "-j", "1", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    cells = pd.read_csv(out / "cells.csv").set_index(RATE)
    assert cells.loc[25, "p_stuck"] == 0 and cells.loc[25, "judged"] == 3
    assert cells.loc[65, "p_stuck"] > 0
    assert {p.name for p in out.iterdir()} == {"cells.csv", "cells.parquet", "runs.parquet", "summary.json",
                                               "map.png"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fault"] == "trigger" and summary["runs"] == 6 and summary["axes"][0]["path"] == RATE
    back = load_explore_result(out)
    assert list(back.cells["p_stuck"]) == list(cells["p_stuck"])
    assert (out / "map.png").read_bytes()[:4] == b"\x89PNG"
    assert "runs (0 with errors)" in res.output
    again = CliRunner().invoke(main, ["explore", SCENARIO, "--axis", f"{RATE}=25,65", "--axis", f"{FACTOR}=3",
                                      "--set", "duration=30", "-n", "3", "-j", "2", "-q", "-o", str(tmp_path / "j2")])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "j2" / "cells.csv").read_text() == (out / "cells.csv").read_text()  # any --jobs, same map


def test_dry_run_counts_runs_and_runs_nothing(tmp_path) -> None:
    out = tmp_path / "map"
    res = CliRunner().invoke(main, ["explore", "scenarios/explore/retry-storm.yaml", "-o", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "384 runs in the initial grid" in res.output and "full grid at that resolution" in res.output
    assert not out.exists()


BAD = [
    (["--axis", "clients.web.arrival.rate"], "--axis 'clients.web.arrival.rate': expected PATH=V1,V2"),
    (["--axis", "clients.web.nope=1,2"], "nope"),
    ([], "--axis: give at least one axis"),
    (["--axis", "a=1", "--axis", "b=1", "--axis", "c=1", "--axis", "d=1"], "axes: give 1 to 3 axes, got 4"),
    (["--axis", f"{RATE}=50,30"], "numbers must be in increasing order"),
    (["--axis", f"{RATE}=30,50", "--fault", "nope"], "fault: no fault named 'nope' (faults: trigger)"),
    (["--axis", f"{RATE}=30,50", "--refine", "9"], "--refine"),
    (["--axis", f"{RATE}=30,50", "--variant", "nope"], "unknown variant 'nope'"),
    (["--axis", f"{RATE}=30,50", "-n", "4", "--max-reps", "2"], "max_reps: must be >= reps (4)"),
    (["--axis", f"{RATE}=30,50", "--refine-axis", FACTOR], f"refine_axes: {FACTOR} is not an axis"),
]


@pytest.mark.parametrize(("extra", "expected"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2(tmp_path, extra: list[str], expected: str) -> None:
    res = CliRunner().invoke(main, ["explore", SCENARIO, *extra, "-j", "1", "-o", str(tmp_path / "m")])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error: "), res.output
    assert expected in res.output, res.output
    assert "Traceback" not in res.output


def test_a_scenario_without_a_fault_is_one_line(tmp_path) -> None:
    res = CliRunner().invoke(main, ["explore", "baseline", "--axis", "clients.web.arrival.rate=100,200",
                                    "--set", "faults=[]", "-o", str(tmp_path / "m")])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "has no fault" in res.output


def test_existing_results_need_overwrite(tmp_path) -> None:
    out = tmp_path / "m"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    res = CliRunner().invoke(main, ["explore", SCENARIO, "--axis", f"{RATE}=30", "-o", str(out)])
    assert res.exit_code == 2 and "use --overwrite" in res.output, res.output


def test_interrupt_keeps_the_finished_cells(tmp_path, monkeypatch) -> None:
    from simres.experiments import explore as mod

    calls = {"n": 0}

    def interrupting(self: Any, executor: Any, report: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            return real(self, executor, report)
        raise KeyboardInterrupt

    real = mod._Explorer.run
    monkeypatch.setattr(mod._Explorer, "run", interrupting)
    out = tmp_path / "m"
    with pytest.raises(mod.ExploreInterrupted) as e:
        explore({"scenario": SCENARIO, "axes": {RATE: [30, 50, 70, 90], FACTOR: [1.0, 3.0]}, "reps": 2,
                 "refine": 2}, executor=SerialExecutor(), point_fn=threshold_point, out=out)
    assert len(e.value.result.cells) == 8 and e.value.result.summary["interrupted"]
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True
    assert len(pd.read_csv(out / "cells.csv")) == 8


@pytest.mark.slow
def test_the_bundled_example_budget_shrinks_the_stuck_region(tmp_path) -> None:
    """scenarios/explore/retry-storm.yaml end to end (about a minute on 2 cores)."""
    out = tmp_path / "storm"
    res = CliRunner().invoke(main, ["explore", "scenarios/explore/retry-storm.yaml", "-j", "2", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    naive, budget = s["by_variant"]["naive"], s["by_variant"]["token-bucket"]
    assert budget["stuck"] < naive["stuck"]
    cells = pd.read_csv(out / "cells.csv")
    first = cells[cells["round"] == 0].pivot_table(index=["faults.0.duration", "faults.0.factor", RATE],
                                                  columns="variant", values="p_stuck")
    assert (first["token-bucket"] <= first["naive"] + 0.34).all()  # nowhere clearly worse with the budget
    assert first["naive"].mean() > 2 * first["token-bucket"].mean()
    assert (first.xs(30, level=RATE) == 0).all().all()  # 30 % load always recovers
    assert s["runs"] < s["full_grid_runs"] / 3
