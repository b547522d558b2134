"""Warm workers: forked from a preloaded forkserver, sent the scenario once, shared by every stage of a command.

Results stay identical to a serial run whatever the start method; a worker never imports
matplotlib; the shared scenario is read once per worker, not with every point; and one
command (``report``, ``compare``) makes one executor that all its stages use.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from simres.experiments import executors
from simres.experiments.executors import ProcessExecutor, SerialExecutor
from simres.experiments.replications import replicate, run_point
from simres.experiments.sweeping import sweep

from .test_sweep import GRID, tiny, without_wall

forkserver = pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                                reason="no forkserver on this OS")


def probe_point(data: dict[str, Any], *, seed: int, variant: str | None,
                overrides: dict[str, Any]) -> dict[str, Any]:
    """What the worker had loaded before this point ran, then run_point."""
    loaded = {"simpy_before": float("simpy" in sys.modules), "pid": float(os.getpid())}
    row = run_point(data, seed=seed, variant=variant, overrides=overrides)
    row.update(loaded, matplotlib=float("matplotlib" in sys.modules), loads=float(executors.SHARED_LOADS))
    return row


@pytest.fixture(scope="module")
def forked() -> Iterator[ProcessExecutor]:
    with ProcessExecutor(2, start_method="forkserver") as ex:
        yield ex.start()
    assert not multiprocessing.active_children()


@forkserver
def test_linux_default_is_a_forkserver() -> None:
    if sys.platform.startswith("linux"):
        assert ProcessExecutor(2).start_method == "forkserver"


@forkserver
def test_forkserver_workers_give_the_serial_frame_and_replications(forked: ProcessExecutor, tmp_path: Path) -> None:
    kw: dict[str, Any] = {"grid": GRID, "variants": [None, "fast"]}
    serial = sweep(tiny(), executor=SerialExecutor(), **kw)
    df = sweep(tiny(), executor=forked, out=tmp_path / "r.parquet", **kw)
    pd.testing.assert_frame_equal(without_wall(df), without_wall(serial))
    a = replicate(tiny(), variants=[None, "fast"], reps=3, executor=forked)
    b = replicate(tiny(), variants=[None, "fast"], reps=3)
    pd.testing.assert_frame_equal(a.drop(columns="wall_time"), b.drop(columns="wall_time"))


@forkserver
def test_forkserver_workers_start_warm_without_matplotlib(forked: ProcessExecutor) -> None:
    df = sweep(tiny(), executor=forked, grid=GRID, point_fn=probe_point)
    assert df["error"].isna().all()
    assert (df["simpy_before"] == 1).all()  # preloaded by the server: not imported by the first point
    assert (df["matplotlib"] == 0).all()


def test_the_scenario_is_read_once_per_worker_not_sent_with_every_point() -> None:
    with ProcessExecutor(2) as ex:
        first = sweep(tiny(duration=2), executor=ex, grid=GRID, reps=3, point_fn=probe_point)
        again = sweep(tiny(duration=2), executor=ex, grid=GRID, reps=3, point_fn=probe_point)
        other = sweep(tiny(duration=3), executor=ex, grid=GRID, reps=3, point_fn=probe_point)
        assert len(ex._shared) == 2  # one file per distinct scenario
    for df, loads in ((first, 1), (again, 1), (other, 2)):
        assert df["error"].isna().all()
        # each worker read the shared scenario once (a second sweep of it: not again), whatever it ran
        assert df.groupby("pid")["loads"].max().max() == loads
    assert first["pid"].nunique() == 2
    # a point shipped to a worker (sweeping.Task) does not hold the scenario
    task = (probe_point, None, {"services.api.workers": 1}, 7, 300.0)
    assert len(pickle.dumps(task)) < 300 < len(pickle.dumps(tiny()))


class _Spy:
    """Counts executors made through make_executor and the calls each one runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[Any] = []
        self.calls: list[tuple[int, str]] = []
        real_make, real_as_completed = executors.make_executor, ProcessExecutor.as_completed
        spy = self

        def make(**kw: Any) -> Any:
            ex = real_make(**kw)
            spy.made.append(ex)
            return ex

        def as_completed(self: ProcessExecutor, fn: Any, items: Any, **kw: Any) -> Any:
            spy.calls.append((id(self), fn.__name__))
            return real_as_completed(self, fn, items, **kw)

        monkeypatch.setattr(executors, "make_executor", make)
        monkeypatch.setattr(ProcessExecutor, "as_completed", as_completed)


def test_report_runs_both_stages_on_one_executor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from simres.cli.report import report
    from simres.reporting.report import build_report

    sc = tiny(duration=5)
    sc["variants"] = {"one": {"services.api.workers": 1}, "two": {"services.api.workers": 2}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sc), encoding="utf-8")
    serial = build_report(sc, tmp_path / "serial", reps=2)
    spy = _Spy(monkeypatch)
    res = CliRunner().invoke(report, [str(path), "-o", str(tmp_path / "r"), "-n", "2", "-q", "-j", "2"])
    assert res.exit_code == 0, res.output
    assert len(spy.made) == 1
    ex = spy.made[0]
    # the replications, then one representative run per variant, on the same (warm) workers
    assert spy.calls == [(id(ex), "_task"), (id(ex), "_representative_run")]
    assert ex._pool is None  # closed at the end of the command
    assert (tmp_path / "r" / "index.html").read_bytes() == serial.read_bytes()


def test_validate_cases_share_one_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    from simres.cli.validate import validate

    spy = _Spy(monkeypatch)
    res = CliRunner().invoke(validate, ["--case", "erlang-b", "--case", "retry-p0.5", "--quick", "-n", "3",
                                        "-j", "2", "-q"])
    assert res.exit_code in (0, 1) and "checks passed" in res.output, res.output  # 3 reps: intervals may be wide
    assert len(spy.made) == 1 and spy.calls == [(id(spy.made[0]), "_replicate_one")]
