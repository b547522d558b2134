"""Notebook results: a comparison and a sweep are DataFrames that show as compact tables and ``.plot(kind)``.

The three-line flow (``import simres``; ``cmp = simres.compare(...)``; ``cmp.plot(...)``)
must need no import of the plots module, while everything that treated the results as
plain DataFrames keeps working.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest
from matplotlib.figure import Figure

import simres
from simres.errors import SimresError
from simres.experiments import results

SCENARIO = {
    "name": "tiny-cmp", "duration": 12, "warmup": 2, "drain": 2,
    "services": {"api": {"workers": 2, "service_time": {"kind": "exponential", "mean": 0.02}}},
    "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 40}, "timeout": 0.5,
                        "retry": {"max_attempts": 2}}},
    "faults": [{"name": "stall", "kind": "slowdown", "service": "api", "at": 5, "duration": 2, "factor": 6}],
    "variants": {"two-workers": {}, "four-workers": {"services.api.workers": 4},
                 "half-load": {"clients.web.arrival.rate": 20}},
    "controls": ["half-load"],
}


@pytest.fixture(scope="module")
def cmp() -> pd.DataFrame:
    return simres.compare(SCENARIO, reps=3, seed=5, executor=None)


@pytest.fixture(scope="module")
def swept() -> pd.DataFrame:
    grid = {"services.api.workers": [2, 3], "clients.web.timeout": [0.3, 0.6]}
    return simres.SweepResult(simres.sweep(SCENARIO, grid=grid, variants="all", reps=2, seed=5,
                                           executor=results_executor()))


def results_executor() -> Any:
    from simres.experiments.executors import SerialExecutor

    return SerialExecutor()


def test_a_comparison_is_still_the_tidy_frame(cmp: pd.DataFrame) -> None:
    assert isinstance(cmp, results.Comparison) and isinstance(cmp, pd.DataFrame)
    assert {"metric", "variant", "mean", "lo", "hi", "best", "p_value"} <= set(cmp.columns)
    part = cmp[cmp["metric"] == "success_rate"]
    assert type(part) is pd.DataFrame and len(part) == 3  # slices are plain frames
    assert type(cmp.copy()) is pd.DataFrame
    assert len(cmp.replications) == 9 and set(cmp.replications["variant"]) == set(SCENARIO["variants"])
    assert not cmp.loc[cmp["variant"] == "half-load", "best"].any()  # a control is never best


def test_a_comparison_shows_as_a_compact_table_with_units(cmp: pd.DataFrame) -> None:
    page = cmp._repr_html_()
    assert page.count("<tr>") <= 16  # metrics x variants, not one row per (metric, variant)
    assert all(v in page for v in SCENARIO["variants"]) and "3 replication(s) each" in page
    assert " ms" in page and " %" in page and "<b>" in page
    assert re.search(r"of \d+ metrics shown", page)
    assert "half-load: control, never best" in page
    row = re.search(r"recovered:stall</th>(.*?)</tr>", page)
    assert row and "[" in row.group(1) and "±" not in row.group(1)  # a share with its Wilson interval


def test_a_comparison_plots_without_importing_the_plots_module(cmp: pd.DataFrame) -> None:
    fig = cmp.plot("percentiles")
    assert isinstance(fig, Figure) and fig.axes
    assert cmp.plot() is not None  # the default kind
    assert "percentiles" in results.Comparison.kinds()
    ax = cmp.plot.bar(x="variant", y="mean")  # pandas' own plotting still works
    assert ax is not None
    ax = cmp.plot(kind="line", y="mean")
    assert ax is not None
    with pytest.raises(SimresError, match="kind: expected one of percentiles"):
        results.draw("comparison", cmp, "nope")


def test_a_sweep_is_still_the_tidy_frame_and_shows_one_row_per_configuration(swept: pd.DataFrame) -> None:
    assert isinstance(swept, results.SweepResult) and isinstance(swept, pd.DataFrame)
    assert len(swept) == 3 * 4 * 2 and swept.attrs["sweep"]
    assert type(swept[swept["variant"] == "two-workers"]) is pd.DataFrame
    assert swept.parameters == ["services.api.workers", "clients.web.timeout"]
    table = swept.configurations()
    assert len(table) == 3 * 4 and (table["reps"] == 2).all() and (table["errors"] == 0).all()
    page = swept._repr_html_()
    assert "12 configuration(s), 24 run(s)" in page and page.count("<tr>") == 13
    assert "workers" in page and "timeout" in page and " %" in page


def test_a_sweep_plots_its_figures(swept: pd.DataFrame) -> None:
    part = swept[swept["variant"] == "two-workers"]
    fig = results.SweepResult(part).plot("heatmap", x="workers", y="timeout", metric="success_rate")
    assert isinstance(fig, Figure)
    assert {"heatmap", "amplification", "pareto", "percentiles"} <= set(results.SweepResult.kinds())


def test_a_run_plots_its_figures() -> None:
    res = simres.run(SCENARIO, seed=2, variant="two-workers")
    assert isinstance(res.plot(), Figure)  # timeline
    assert isinstance(res.plot("ccdf"), Figure)
    assert "'timeline'" in res._repr_html_()
    with pytest.raises(SimresError, match="expected one of timeline, cdf, ccdf, herd"):
        res.plot("heatmap")


def test_without_the_registry_plot_says_what_to_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(results.PLOTTERS, "run", {})
    with pytest.raises(SimresError, match="import simres"):
        results.draw("run", object(), None)


def test_a_mean_is_shown_to_the_digit_its_interval_supports() -> None:
    from simres.metrics.display import format_interval

    assert format_interval("goodput", 13.45, 2.7) == "13.4 /s ± 2.7 /s"
    assert format_interval("latency_p99", 0.813, 0.243) == "810 ms ± 243 ms"
    assert format_interval("tries_per_request", 1.0113, 0.00024) == "1.011 ± 0.00024"  # never more digits
    assert format_interval("latency_p99", 1.5, 0.0) == "1.5 s"  # equal runs: no interval
    assert format_interval("recovered:trigger", 1.0, 0.28, lo=0.44, hi=1.0) == "100 % [44-100 %]"
