"""Every ``simres plot`` kind on every shipped sweep file, and every plot example of docs/reports.md.

The examples are parsed out of the docs, so a documented command that stops working (or an
example that needs a column no documented sweep produces) fails here.
"""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

from simres.cli import main
from simres.cli.report import plot_files
from simres.reporting import plots
from simres.reporting.plots._axes import sweep_axes
from simres.reporting.sources import load_results

ROOT = Path(__file__).resolve().parents[1]
SWEEP_FILES = sorted((ROOT / "scenarios" / "sweeps").glob("*.yaml"))
DOCS = ROOT / "docs" / "reports.md"


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    """Each shipped sweep file, run once with one replicate (its design unchanged)."""
    out = {}
    for f in SWEEP_FILES:
        dest = tmp_path_factory.mktemp("sweep") / f"{f.stem}.parquet"
        result = CliRunner().invoke(main, ["sweep", str(f), "--out", str(dest), "--reps", "1", "--jobs", "1",
                                           "--quiet"])
        assert result.exit_code == 0, result.output
        out[f] = dest
    return out


def _drawn(fig: Figure) -> None:
    """The figure has data on it and renders to a PNG."""
    assert any(ax.lines or ax.collections or ax.patches or ax.images for ax in fig.axes)
    assert plots.figure_bytes(fig, "png", dpi=30)[:4] == b"\x89PNG"


@pytest.mark.parametrize("sweep_file", SWEEP_FILES, ids=lambda p: p.stem)
def test_every_sweep_kind_draws_every_shipped_sweep_without_where(sweep_file: Path,
                                                                  swept: dict[Path, Path]) -> None:
    src = str(swept[sweep_file])
    axes = sweep_axes(load_results(src))
    assert axes, "a shipped sweep varies something"
    for axis in axes:  # any member of an axis names it, so the last one of each
        _drawn(plot_files("amplification", [src], x=axis.params[-1]))
    for a, b in itertools.combinations(axes, 2):
        _drawn(plot_files("heatmap", [src], x=a.params[-1], y=b.params[-1]))
    _drawn(plot_files("pareto", [src]))
    _drawn(plot_files("pareto", [src], metric="tries_per_request"))
    _drawn(plot_files("percentiles", [src]))


def test_zipped_parameters_are_one_axis_and_a_sampled_float_needs_no_exact_where(swept: dict[Path, Path]) -> None:
    src = swept[ROOT / "scenarios" / "sweeps" / "baseline-capacity.yaml"]
    df = load_results(src)
    labels = {a.label for a in sweep_axes(df)}
    assert "instances / workers" in labels  # zip: the same total db workers, spread differently
    fig = plots.heatmap(df, x="max_attempts", y="instances")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["1 / 8", "2 / 4", "4 / 2"]
    assert len([a for a in fig.axes if a.get_images()]) == 2  # a panel per sampled timeout
    timeouts = sorted(df["services.api.handler.calls.0.timeout"].unique())
    short = plots.format_number(timeouts[0])  # as the figure prints it
    one = plots.heatmap(df, x="max_attempts", y="workers", where={"timeout": float(short)})
    assert len([a for a in one.axes if a.get_images()]) == 1
    with pytest.raises(plots.PlotError, match="one axis"):
        plots.heatmap(df, x="instances", y="workers")


def test_percentiles_of_a_sweep_are_grouped_by_configuration(swept: dict[Path, Path]) -> None:
    df = load_results(swept[ROOT / "scenarios" / "sweeps" / "baseline-capacity.yaml"])
    fig = plots.percentile_bars(df)
    ax = fig.axes[0]
    configs = df.groupby([p for a in sweep_axes(df) for p in a.params]).ngroups
    assert len(ax.get_yticklabels()) == configs == 18
    assert f"{configs} configurations" in fig.get_suptitle()
    assert "54" not in fig.get_suptitle()


def _doc_commands() -> list[str]:
    """The ``simres`` command lines of the sh blocks of docs/reports.md."""
    blocks = re.findall(r"```sh\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    lines = [ln.split("#", 1)[0].strip() for b in blocks for ln in b.splitlines()]
    return [ln for ln in lines if ln.startswith("simres ")]


def test_docs_have_an_example_of_every_plot_kind() -> None:
    from simres.cli.report import PLOT_KINDS

    kinds = {shlex.split(c)[shlex.split(c).index("--kind") + 1] for c in _doc_commands() if c.startswith("simres plot")}
    assert kinds == set(PLOT_KINDS)


def test_every_plot_example_in_the_docs_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             swept: dict[Path, Path]) -> None:
    commands = _doc_commands()
    plotted = [c for c in commands if c.startswith("simres plot")]
    needed = {a for c in plotted for a in shlex.split(c)[2:] if "/" in a and not a.startswith("-")}
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for c in commands:  # the documented commands that write what the plot examples read
        argv = shlex.split(c)[1:]
        out = argv[argv.index("--out") + 1] if "--out" in argv else None
        if argv[0] not in ("run", "sweep") or out not in needed:
            continue
        if argv[0] == "sweep":
            f = (ROOT / argv[1]).resolve()
            assert f in swept, f"{c}: the docs sweep a file that is not shipped"
            shutil.copytree(swept[f], out) if swept[f].is_dir() else shutil.copy(swept[f], out)
            continue
        result = runner.invoke(main, [*argv, "--quiet"])
        assert result.exit_code == 0, f"{c}\n{result.output}"
    assert plotted
    for c in plotted:
        result = runner.invoke(main, shlex.split(c)[1:])
        assert result.exit_code == 0, f"{c}\n{result.output}"
        out = Path(shlex.split(c)[shlex.split(c).index("--out") + 1])
        assert out.stat().st_size > 1000, c


def sampled_frame() -> pd.DataFrame:
    """A Latin-hypercube-like sweep: 24 sampled timeouts (floats) crossed with max_attempts 1, 3."""
    rng = np.random.default_rng(5)
    timeouts = np.exp(rng.uniform(np.log(0.05), np.log(0.5), 24))
    rows = [{"variant": "", "services.api.handler.calls.0.retry.max_attempts": a,
             "services.api.handler.calls.0.timeout": t, "replicate": 0,
             "latency_p99": t * a, "success_rate": 1 - 0.01 / (t * a), "tries_per_request": 1 + a * 0.1 / t}
            for a in (1, 3) for t in timeouts]
    return pd.DataFrame(rows)


def test_a_sampled_float_is_binned_on_a_heatmap_and_continuous_on_a_line() -> None:
    df = sampled_frame()
    (attempts, timeout) = sweep_axes(df)
    assert timeout.continuous and not attempts.continuous
    heat = plots.heatmap(df, x="max_attempts", y="timeout")
    ylabels = [t.get_text() for t in heat.axes[0].get_yticklabels()]
    assert 2 <= len(ylabels) <= 6 and all("–" in t for t in ylabels)  # ranges, not 24 raw values
    line = plots.amplification(df, x="timeout")
    xs = sorted(x for c in line.axes[0].containers for x in c.lines[0].get_xdata())
    assert len(xs) == 48  # every sampled point at its own value
    split = plots.amplification(df, x="max_attempts")  # the sampled axis splits into 3 ranges
    assert len(split.axes[0].containers) == 3
    assert all("timeout=" in c.get_label() and "–" in c.get_label() for c in split.axes[0].containers)
