"""``simres tune``: bad input, determinism for any executor, resume, racing, robust tuning, and the done-when
check against a grid sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

import simres
from simres.cli import main
from simres.experiments.executors import ProcessExecutor, SerialExecutor
from simres.experiments.tuning import study_digest, tune

HEDGE = {"max_attempts": 2, "delay": 0.05}
SMALL = {
    "scenario": "hedging-tail-latency",
    "params": {"clients.web.hedge.delay": {"low": 0.002, "high": 0.2, "log": True}},
    "overrides": {"duration": 8, "clients.web.hedge": HEDGE},
    "minimize": ["latency_all_p99"],
    "trials": 6, "reps": 4, "min_reps": 2, "batch": 3,
}


BAD = [
    (["--param", "clients.web.timeout=1:"], "--param 'clients.web.timeout=1:': expected PATH=LO:HI"),
    (["--param", "clients.web.timeout"], "--param 'clients.web.timeout': expected PATH=LO:HI"),
    (["--param", "clients.web.timeout=2:1"], "--param clients.web.timeout: low must be < high"),
    (["--param", "clients.web.timeout=5"], "needs a range LO:HI or at least two choices"),
    (["--param", "clients.web.timout=0.1:2"], "clients.web.timout: unknown field (did you mean 'timeout'?)"),
    (["--param", "clients.web.timeout=0.1:2", "--minimize", "utilization:api"], "describes load"),
    (["--param", "clients.web.timeout=0.1:2", "--minimize", "success_rate"], "use --maximize"),
    (["--param", "clients.web.timeout=0.1:2", "--subject-to", "success_rate => 0.9"],
     "--subject-to 'success_rate => 0.9': expected METRIC OP NUMBER"),
    (["--param", "clients.web.timeout=0.1:2", "--across", "normal,nope"], "across: unknown variant 'nope'"),
    (["--param", "clients.web.timeout=0.1:2", "--weights", "1,2"], "weights: only with aggregate: mean"),
]


@pytest.mark.parametrize(("extra", "expected"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2(tmp_path, extra: list[str], expected: str) -> None:
    res = CliRunner().invoke(main, ["tune", "baseline", *extra, "-j", "1", "-o", str(tmp_path / "t")])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error: "), res.output
    assert expected in res.output, res.output
    assert "Traceback" not in res.output


def test_unknown_metric_is_one_line_exit_2_and_leaves_no_study(tmp_path) -> None:
    out = tmp_path / "t"
    res = CliRunner().invoke(main, ["tune", "brooker-retries-independent-failures", "--set", "duration=2",
                                    "--param", "clients.clients.timeout=0.1:1", "--minimize", "latency_p98",
                                    "-n", "2", "--trials", "1", "-j", "1", "-q", "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == ["error: metric 'latency_p98': not in a run's summary "
                                               "(did you mean 'latency_p99'?)"], res.output
    assert not (out / "study.db").exists()


def test_an_existing_study_needs_resume(tmp_path) -> None:
    tune({**SMALL, "trials": 1, "reps": 2}, executor=SerialExecutor(), out=tmp_path / "t")
    with pytest.raises(simres.errors.SweepError, match="holds a study already; use --resume"):
        tune({**SMALL, "trials": 1, "reps": 2}, executor=SerialExecutor(), out=tmp_path / "t")
    with pytest.raises(simres.errors.SweepError, match="--resume: reps differs from the study's"):
        tune({**SMALL, "trials": 2, "reps": 3}, executor=SerialExecutor(), out=tmp_path / "t", resume=True)


def test_same_seed_same_trials_and_best_on_one_or_two_workers(tmp_path) -> None:
    serial = tune(SMALL, executor=SerialExecutor(), out=tmp_path / "a")
    with ProcessExecutor(2) as ex:
        parallel = tune(SMALL, executor=ex, out=tmp_path / "b")
    assert study_digest(serial) == study_digest(parallel)
    assert serial.choice is not None and parallel.choice is not None
    assert serial.choice.winner == parallel.choice.winner
    assert serial.sims == parallel.sims
    other = tune({**SMALL, "seed": 7}, executor=SerialExecutor())
    assert study_digest(other) != study_digest(serial)


def test_a_dask_cluster_gives_the_same_study_as_one_process(tmp_path) -> None:
    """The same trials, intervals and best on a Dask LocalCluster, through its address as
    `--dask tcp://HOST:8786` connects (the CLI's `--dask local` builds the same executor)."""
    from simres.experiments.executors import DaskExecutor

    small = {**SMALL, "trials": 3, "batch": 3}
    serial = tune(small, executor=SerialExecutor(), out=tmp_path / "a")
    with DaskExecutor("local", workers=2) as cluster, DaskExecutor(cluster.client.scheduler.address) as remote:
        on_dask = tune(small, executor=remote, out=tmp_path / "b")
    assert study_digest(serial) == study_digest(on_dask)
    assert serial.sims == on_dask.sims and serial.choice is not None
    assert on_dask.choice is not None and serial.choice.winner == on_dask.choice.winner


def test_resume_continues_without_redoing_trials(tmp_path, monkeypatch) -> None:
    whole = tune(SMALL, executor=SerialExecutor(), out=tmp_path / "whole")
    first = tune({**SMALL, "trials": 3}, executor=SerialExecutor(), out=tmp_path / "t")
    rest = tune(SMALL, executor=SerialExecutor(), out=tmp_path / "t", resume=True)
    assert study_digest(rest) == study_digest(whole)
    assert first.sims_run + rest.sims_run == whole.sims  # no simulation ran twice
    again = tune(SMALL, executor=SerialExecutor(), out=tmp_path / "t", resume=True)
    assert again.sims_run == 0 and study_digest(again) == study_digest(whole)

    # interrupted in the middle of a batch: the finished simulations are kept, the rest run on resume
    import simres.experiments.tuning as tuning

    real, calls = tuning._tune_task, []

    def flaky(shared, task):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(shared, task)

    monkeypatch.setattr(tuning, "_tune_task", flaky)
    with pytest.raises(KeyboardInterrupt):
        tune(SMALL, executor=SerialExecutor(), out=tmp_path / "i")
    monkeypatch.setattr(tuning, "_tune_task", real)
    resumed = tune(SMALL, executor=SerialExecutor(), out=tmp_path / "i", resume=True)
    assert study_digest(resumed) == study_digest(whole)
    assert resumed.sims_run == whole.sims - 6


def test_racing_uses_fewer_simulations_than_fixed_reps(tmp_path) -> None:
    res = tune(SMALL, executor=SerialExecutor(), out=tmp_path / "t")
    states = res.trials["state"].value_counts()
    assert states.get("raced out", 0) >= 1
    assert res.sims < res.fixed_sims
    print(f"racing: {res.sims} simulations, {res.fixed_sims} at fixed replications")
    assert f"{res.sims} simulations" in str(res)
    for name in ("study.db", "trials.parquet", "trials.csv", "runs.parquet", "best.yaml"):
        assert (tmp_path / "t" / name).exists(), name
    best = simres.load_scenario(tmp_path / "t" / "best.yaml")  # a scenario file other commands accept
    assert best.clients["web"].hedge.delay == res.choice.winner["clients.web.hedge.delay"]
    assert "--set clients.web.hedge.delay=" in res.choice.command


# ---------------------------------------------------------------------------- robust tuning

# One api with constant 0.1 s requests except a share that is slower; the members differ in the
# clients' timeout. A "risky" service time (30 % at 0.3 s) serves every request within the long
# timeout and only 70 % within the short one; a "steady" one (18 % at 1 s) serves 82 % in both.
# On the mean over the two members risky wins (0.85 vs 0.82), in the worst member steady does.
ROBUST = {
    "name": "robust-case", "duration": 30, "warmup": 0, "drain": 2, "seed": 3,
    "services": {"api": {"workers": 10000, "service_time": {"kind": "constant", "value": 0.1}}},
    "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 200}, "timeout": 0.35}},
    "variants": {"short-timeout": {"clients.web.timeout": 0.15}, "long-timeout": {}},
}
RISKY = {"kind": "mixture", "components": [{"weight": 0.7, "dist": {"kind": "constant", "value": 0.1}},
                                           {"weight": 0.3, "dist": {"kind": "constant", "value": 0.3}}]}
STEADY = {"kind": "mixture", "components": [{"weight": 0.82, "dist": {"kind": "constant", "value": 0.1}},
                                            {"weight": 0.18, "dist": {"kind": "constant", "value": 1.0}}]}


@pytest.mark.parametrize(("aggregate", "winner"), [("worst", STEADY), ("mean", RISKY)])
def test_robust_aggregate_picks_the_worst_case_winner(aggregate: str, winner: dict) -> None:
    spec = {"scenario": ROBUST, "params": {"services.api.service_time": {"choices": [RISKY, STEADY]}},
            "maximize": ["success_rate"], "across": ["short-timeout", "long-timeout"], "aggregate": aggregate,
            "trials": 10, "reps": 3, "batch": 2}
    res = tune(spec, executor=SerialExecutor())
    assert res.choice is not None
    assert res.choice.winner["services.api.service_time"] == winner
    assert list(res.by_member["member"]) == ["robust-case[short-timeout]", "robust-case[long-timeout]"]
    # the space has two settings: once both are measured, asking more would only repeat them
    assert len(res.trials) < 10 and res.runs["trial"].nunique() == 2
    assert "the chosen setting in each member" in str(res)


# ---------------------------------------------------------------------------- done when


def test_tune_finds_the_grid_best_with_a_third_of_the_simulations(tmp_path) -> None:
    """A 12 x 2 grid of hedge delay x hedge attempts on hedging-tail-latency has a clear best (the shortest
    delay, three attempts); tune, searching the continuous delay range, finds a setting statistically
    indistinguishable from it (paired over the same replication seeds) with at most a third of the
    grid's simulations."""
    from simres.metrics.stats import paired_difference

    fixed = {"duration": 15, "clients.web.hedge": HEDGE}
    delays = [float(f"{x:.3g}") for x in np.geomspace(0.002, 0.2, 12)]
    reps = 6
    with ProcessExecutor(2) as ex:
        grid = simres.sweep("hedging-tail-latency", grid={"clients.web.hedge.delay": delays,
                                                          "clients.web.hedge.max_attempts": [2, 3]},
                            overrides=fixed, reps=reps, executor=ex)
        res = tune({"scenario": "hedging-tail-latency", "overrides": fixed, "minimize": ["latency_all_p99"],
                    "params": {"clients.web.hedge.delay": {"low": 0.002, "high": 0.2, "log": True},
                               "clients.web.hedge.max_attempts": {"choices": [2, 3]}},
                    "trials": 12, "reps": reps, "min_reps": 2, "batch": 4}, executor=ex, out=tmp_path / "t")
    grid_sims = len(grid)
    gbest = simres.best(grid, minimize="latency_all_p99")
    g = gbest.table.iloc[0]
    w = res.choice.table.iloc[0]
    print(f"\ngrid: {grid_sims} simulations, best {gbest.winner}: latency_all_p99 {g['latency_all_p99_mean']:.4g} "
          f"[{g['latency_all_p99_lo']:.4g}, {g['latency_all_p99_hi']:.4g}]")
    print(f"tune: {res.sims} simulations, best {res.choice.winner}: latency_all_p99 {w['latency_all_p99_mean']:.4g} "
          f"[{w['latency_all_p99_lo']:.4g}, {w['latency_all_p99_hi']:.4g}]")
    assert grid_sims == 12 * 2 * reps
    assert res.sims * 3 <= grid_sims
    # the same seeds: the tuned winner's replicates pair with the grid best's
    key = dict(res.choice.winner)
    runs = res.runs
    mine = runs[(runs["clients.web.hedge.delay"] == key["clients.web.hedge.delay"])
                & (runs["clients.web.hedge.max_attempts"] == key["clients.web.hedge.max_attempts"])]
    mine = mine.sort_values("replicate")
    cell = grid[(grid["clients.web.hedge.delay"] == gbest.winner["clients.web.hedge.delay"])
                & (grid["clients.web.hedge.max_attempts"] == gbest.winner["clients.web.hedge.max_attempts"])]
    cell = cell.sort_values("replicate")
    assert list(mine["seed"]) == list(cell["seed"])
    d = paired_difference(mine["latency_all_p99"].to_numpy(float), cell["latency_all_p99"].to_numpy(float))
    assert not (d.lo > 0), f"tune's winner is significantly worse than the grid's best: {d}"
    assert math.isfinite(d.mean)


# ---------------------------------------------------------------------------- ties, several objectives, the CLI

FAST = ["brooker-retries-independent-failures", "--set", "duration=2", "--set",
        "clients.clients.retry={max_attempts: 2, retry_on: [error], backoff: {kind: none}, jitter: none}"]


def test_a_tie_is_reported_as_a_tie_from_the_cli(tmp_path) -> None:
    """Client timeouts the calls never reach: every setting gives identical results in every replicate,
    racing cannot stop any of them, and the output says they tie instead of crowning one."""
    out = tmp_path / "t"
    res = CliRunner().invoke(main, ["tune", *FAST, "--param", "clients.clients.timeout=5,10",
                                    "--maximize", "success_rate", "-n", "3", "--trials", "6", "-j", "1", "-q",
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 settings are statistically indistinguishable from the best mean" in res.output, res.output
    assert "chosen among them by rule" in res.output
    assert "simulations" in res.output.splitlines()[0]
    assert "--set clients.clients.timeout=" in res.output
    assert simres.load_scenario(out / "best.yaml").clients["clients"].timeout in (5, 10)
    again = CliRunner().invoke(main, ["tune", *FAST, "--param", "clients.clients.timeout=5,10",
                                      "--maximize", "success_rate", "-n", "3", "--trials", "6", "-j", "1", "-q",
                                      "-o", str(out)])
    assert again.exit_code == 2 and "use --resume" in again.output


def test_several_objectives_give_a_pareto_front_and_no_best(tmp_path) -> None:
    spec = {"scenario": "brooker-retries-independent-failures", "overrides": {"duration": 2},
            "params": {"clients.clients.retry": {"choices": [None, {"max_attempts": 2, "retry_on": ["error"]},
                                                             {"max_attempts": 4, "retry_on": ["error"]}]}},
            "maximize": ["success_rate"], "minimize": ["tries_per_request"], "trials": 6, "reps": 3, "batch": 3}
    res = tune(spec, executor=SerialExecutor(), out=tmp_path / "t")
    assert res.choice is None and res.front is not None
    # more retries: more success and more load; every setting measured is a trade-off
    assert len(res.front) == res.runs["trial"].nunique() >= 2
    assert f"Pareto front ({len(res.front)} settings" in str(res)
    assert not (tmp_path / "t" / "best.yaml").exists()


def test_no_effect_needs_two_values_that_share_the_other_parameters() -> None:
    """A tuned or sampled design has no two settings that differ in one parameter only: no verdict."""
    import pandas as pd

    from simres.experiments.choosing import no_effect

    ok = pd.DataFrame({"a": [1.0, 1.0, 2.0, 2.0], "b": [1, 1, 2, 2], "replicate": [0, 1, 0, 1],
                       "variant": "", "success_rate": [0.5, 0.6, 0.9, 0.8]})
    assert no_effect(ok, ["a", "b"], "success_rate") == ()
