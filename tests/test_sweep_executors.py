"""Sweeps on other processes: local process pools and a real Dask LocalCluster.

The same sweep gives the same frame on every executor; a point whose worker dies becomes
an error row without blaming the points that shared its pool; an interrupted parallel
sweep leaves no process behind.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from simres.errors import SweepError
from simres.experiments.executors import DaskExecutor, ProcessExecutor, SerialExecutor
from simres.experiments.replications import replicate, run_point
from simres.experiments.store import load_results
from simres.experiments.sweeping import sweep

from .test_sweep import GRID, tiny, without_wall

pytest.importorskip("distributed")

KW: dict[str, Any] = {"grid": GRID, "variants": [None, "fast"]}
KILLER = {"services.api.workers": 3, "clients.web.timeout": 0.1}


def dying_point(data: dict[str, Any], *, seed: int, variant: str | None,
                overrides: dict[str, Any]) -> dict[str, Any]:
    """run_point, except that 3 workers kill the worker process (like a segfault or the OOM killer)."""
    if overrides == KILLER and seed == 1:
        os._exit(17)
    return run_point(data, seed=seed, variant=variant, overrides=overrides)


def pid_point(data: dict[str, Any], *, seed: int, variant: str | None,
              overrides: dict[str, Any]) -> dict[str, Any]:
    """run_point plus the id of the process that ran it."""
    row = run_point(data, seed=seed, variant=variant, overrides=overrides)
    row["pid"] = float(os.getpid())
    return row


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessExecutor]:
    with ProcessExecutor(2) as ex:
        yield ex
    assert not multiprocessing.active_children()


@pytest.fixture(scope="module")
def dask_local() -> Iterator[DaskExecutor]:
    with DaskExecutor("local", workers=2) as ex:
        yield ex


@pytest.fixture(scope="module")
def serial_frame() -> pd.DataFrame:
    return sweep(tiny(), executor=SerialExecutor(), **KW)


def test_processes_give_the_same_frame_as_serial(processes: ProcessExecutor, serial_frame: pd.DataFrame,
                                                 tmp_path: Path) -> None:
    df = sweep(tiny(), executor=processes, out=tmp_path / "r.parquet", **KW)
    pd.testing.assert_frame_equal(without_wall(df), without_wall(serial_frame))


def test_dask_local_cluster_gives_the_same_frame(dask_local: DaskExecutor, serial_frame: pd.DataFrame,
                                                 tmp_path: Path) -> None:
    # Through the scheduler's address, as `--dask tcp://HOST:8786` connects to a running cluster.
    with DaskExecutor(dask_local.client.scheduler.address) as remote:
        assert remote.workers == 2
        df = sweep(tiny(), executor=remote, out=tmp_path / "r.parquet", **KW)
    pd.testing.assert_frame_equal(without_wall(df), without_wall(serial_frame))


def test_a_killed_worker_becomes_an_error_row(processes: ProcessExecutor, dask_local: DaskExecutor,
                                              serial_frame: pd.DataFrame) -> None:
    expected = without_wall(serial_frame[serial_frame["variant"] == ""]).drop(columns="error")
    killer = ((expected["services.api.workers"] == 3) & (expected["clients.web.timeout"] == 0.1)
              & (expected["seed"] == 1))
    assert killer.sum() == 1
    for ex in (processes, dask_local):
        df = sweep(tiny(), executor=ex, point_fn=dying_point, grid=GRID)
        assert len(df) == len(expected)
        bad = df["error"].notna()
        assert bad.tolist() == killer.tolist(), ex  # only the killers, not their pool-mates
        assert df.loc[bad, "error"].str.startswith("WorkerDied: the worker process died").all()
        pd.testing.assert_frame_equal(without_wall(df)[~killer].drop(columns="error"), expected[~killer])


def test_hundred_points_run_in_parallel_and_best_finds_a_feasible_one(processes: ProcessExecutor,
                                                                        tmp_path: Path) -> None:
    from simres.experiments.choosing import best

    out = tmp_path / "r.parquet"
    grid = {"services.api.workers": [1, 2, 3, 4], "clients.web.timeout": [0.05, 0.1, 0.2, 0.5, 1.0]}
    df = sweep(tiny(duration=5), grid=grid, reps=5, executor=processes, out=out, point_fn=pid_point)
    assert len(df) == 100 and df["run_id"].is_unique and df["error"].isna().all()
    assert df["pid"].nunique() == 2  # both workers ran points
    pd.testing.assert_frame_equal(load_results(out), df)
    choice = best(out, minimize="latency_p99", subject_to=["success_rate >= 0.95"])
    means = df.groupby(list(grid))[["latency_p99", "success_rate"]].mean()
    feasible = means[means.success_rate >= 0.95]
    top = choice.table.loc[choice.table["rank"] == 1, list(grid)].iloc[0]
    assert tuple(top) == feasible.latency_p99.idxmin()
    # the choice is the best worst case among the settings indistinguishable from the best mean
    assert bool(choice.table.loc[0, "tied"]) and bool(choice.table.loc[0, "chosen"])
    assert choice.table.loc[0, "latency_p99_hi"] == choice.tied["latency_p99_hi"].min()
    assert means.loc[tuple(choice.winner.values()), "success_rate"] >= 0.95


def test_executors_plug_into_replicate(processes: ProcessExecutor) -> None:
    a = replicate(tiny(), variants=[None, "fast"], reps=3, executor=processes)
    b = replicate(tiny(), variants=[None, "fast"], reps=3)
    pd.testing.assert_frame_equal(a.drop(columns="wall_time"), b.drop(columns="wall_time"))
    with pytest.raises(ValueError, match="math domain error"):  # the worker's exception, re-raised
        list(processes.map(math.sqrt, [4.0, -1.0]))


def test_interrupting_a_parallel_sweep_keeps_rows_and_stops_workers(processes: ProcessExecutor,
                                                                     tmp_path: Path) -> None:
    # The interruption terminates the shared pool's workers; a later user would start new ones.
    out = tmp_path / "r.parquet"

    running: list[Any] = []

    def stop(done: int, total: int) -> None:
        if done == 4:
            running.extend(p for p in multiprocessing.active_children()
                           if p.name.startswith(("SpawnProcess", "ForkServerProcess", "ForkProcess")))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(tiny(), executor=processes, out=out, progress=stop, **KW)
    assert len(running) == 2 and not any(p.is_alive() for p in running)
    assert len(load_results(out)) == 4


def test_unreachable_dask_scheduler_is_one_line() -> None:
    with pytest.raises(SweepError, match=r"cannot connect to a scheduler at 'tcp://127\.0\.0\.1:9'"):
        DaskExecutor("tcp://127.0.0.1:9", connect_timeout=1).client  # noqa: B018
