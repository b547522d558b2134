"""A hung sweep point becomes an error row after its wall-clock limit, on every executor."""

from __future__ import annotations

import ctypes
import time
from typing import Any

import pytest
from click.testing import CliRunner

from simres.experiments.executors import DaskExecutor, ProcessExecutor, SerialExecutor
from simres.experiments.replications import run_point
from simres.experiments.sweeping import sweep
from simres.experiments.timeouts import PointTimeout, default_point_timeout, limited

from .test_sweep import tiny

GRID = {"services.api.workers": [1, 2, 3]}
HANG = {"services.api.workers": 2}


def hanging_point(data: dict[str, Any], *, seed: int, variant: str | None,
                  overrides: dict[str, Any]) -> dict[str, Any]:
    """run_point, except that 2 workers spin forever (a busy loop, like a sampler that never ends)."""
    if overrides == HANG:
        while True:
            pass
    return run_point(data, seed=seed, variant=variant, overrides=overrides)


def stuck_in_c_point(data: dict[str, Any], *, seed: int, variant: str | None,
                     overrides: dict[str, Any]) -> dict[str, Any]:
    """Blocks in C (no bytecode runs, so no asynchronous exception lands): only a kill stops it."""
    if overrides == HANG:
        ctypes.CDLL(None).sleep(3600)
    return run_point(data, seed=seed, variant=variant, overrides=overrides)


def _check(df: Any) -> None:
    assert len(df) == 3
    hung = df[df["services.api.workers"] == 2]
    assert hung["error"].iloc[0].startswith("PointTimeout: the point ran longer than its 1 s wall-clock limit")
    assert df[df["services.api.workers"] != 2]["error"].isna().all()


@pytest.mark.timeout(60)
def test_hung_point_is_an_error_row_serial() -> None:
    t0 = time.perf_counter()
    df = sweep(tiny(), grid=GRID, executor=SerialExecutor(), point_fn=hanging_point, point_timeout=1)
    _check(df)
    assert time.perf_counter() - t0 < 20


@pytest.mark.timeout(90)
def test_hung_point_is_an_error_row_processes() -> None:
    with ProcessExecutor(2) as ex:
        df = sweep(tiny(), grid=GRID, executor=ex, point_fn=hanging_point, point_timeout=1)
    _check(df)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_point_stuck_in_c_kills_its_worker_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from simres.experiments import timeouts

    monkeypatch.setattr(timeouts, "GRACE", 1.0)  # read in the parent only; workers keep 10 s
    with ProcessExecutor(2) as ex:
        df = sweep(tiny(), grid=GRID, executor=ex, point_fn=stuck_in_c_point, point_timeout=1)
    hung = df[df["services.api.workers"] == 2]
    assert "worker process died" in hung["error"].iloc[0]
    assert df[df["services.api.workers"] != 2]["error"].isna().all()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_hung_point_is_an_error_row_dask() -> None:
    pytest.importorskip("distributed")
    with DaskExecutor("local", workers=2) as ex:
        df = sweep(tiny(), grid=GRID, executor=ex, point_fn=hanging_point, point_timeout=1)
    _check(df)


@pytest.mark.timeout(90)
def test_resume_skips_timed_out_points_unless_asked(tmp_path) -> None:
    out = tmp_path / "r.parquet"
    sweep(tiny(), grid=GRID, executor=SerialExecutor(), point_fn=hanging_point, point_timeout=1, out=out)
    calls: list[float] = []
    t0 = time.perf_counter()
    df = sweep(tiny(), grid=GRID, executor=SerialExecutor(), point_fn=hanging_point, point_timeout=1, out=out,
               resume=True, progress=lambda done, total: calls.append(done))
    assert time.perf_counter() - t0 < 1.0 and df["error"].notna().sum() == 1
    df = sweep(tiny(), grid=GRID, executor=SerialExecutor(), point_fn=hanging_point, point_timeout=1, out=out,
               resume=True, retry_errors=True)
    assert df["error"].notna().sum() == 1  # re-run, and timed out again


def test_limited_returns_and_raises() -> None:
    assert limited(5, lambda x: x + 1, 1) == 2
    assert limited(None, lambda: 3) == 3
    with pytest.raises(PointTimeout, match=r"its 0\.2 s wall-clock limit"):
        limited(0.2, lambda: [None for _ in iter(int, 1)])


def test_default_point_timeout_grows_with_the_scenario() -> None:
    from simres.scenario.loading import load_scenario

    small = load_scenario("baseline")
    big = load_scenario("baseline", overrides={"duration": 1e6})
    assert default_point_timeout(small) == 300.0
    assert 300.0 < default_point_timeout(big) <= 6 * 3600


def test_cli_point_timeout_flag() -> None:
    from simres.cli import main

    result = CliRunner().invoke(main, ["sweep", "baseline", "--grid", "services.db.workers=1,2", "--out", "x",
                                       "--dry-run", "--point-timeout", "7"])
    assert result.exit_code == 0 and "(point timeout 7 s)" in result.output
    result = CliRunner().invoke(main, ["sweep", "baseline", "--grid", "services.db.workers=1,2", "--out", "x",
                                       "--dry-run", "--point-timeout", "-1"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
