"""Figures from hand-built frames: the right lines, axes, values and styles; nothing simulates."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from simres.reporting import plots
from simres.reporting.plots import Palette, PlotError

T95_2 = 4.302652729911275  # Student t, 97.5 % quantile, 2 degrees of freedom


def requests_frame(latencies: list[float] | np.ndarray, *, start: np.ndarray | None = None,
                   outcome: str = "ok") -> pd.DataFrame:
    lat = np.asarray(latencies, dtype=float)
    st = np.arange(lat.size, dtype=float) * 0.01 if start is None else np.asarray(start, dtype=float)
    return pd.DataFrame({"request_id": np.arange(lat.size), "client": "web", "start": st, "end": st + lat,
                         "latency": lat, "outcome": outcome, "tries": 1})


def labelled_lines(ax) -> list:
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def events_frame(rows: list[tuple[float, str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["time", "kind", "component", "detail", "value"])


@pytest.fixture
def three_variants() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(7)
    return {v: requests_frame(rng.exponential(scale, 400)) for v, scale in
            (("naive", 0.05), ("full-jitter", 0.02), ("budget", 0.01))}


# ---------------------------------------------------------------------------- styles


def test_palette_gives_each_variant_a_distinct_fixed_style() -> None:
    pal = Palette(["a", "b", "c"])
    assert [pal[v].color for v in "abc"] == list(plots.OKABE_ITO[:3])
    assert len({pal[v].linestyle for v in "abc"}) == 3
    assert len({pal[v].hatch for v in "abc"}) == 3
    assert Palette(["a", "b", "c"])["b"] == pal["b"]
    with pytest.raises(PlotError, match="no style for variant 'zz'"):
        pal["zz"]
    with pytest.raises(PlotError, match="unique"):
        Palette(["a", "a"])


def test_a_variant_keeps_its_colour_across_figures(three_variants: dict[str, pd.DataFrame]) -> None:
    pal = Palette(["budget", "naive", "full-jitter"])  # not the data's order
    cdf = plots.latency_cdf(three_variants, palette=pal)
    reps = pd.DataFrame({"variant": ["naive", "full-jitter", "budget"], "latency_p50": [0.03, 0.02, 0.01],
                         "latency_p99": [0.3, 0.2, 0.1], "latency_p999": [0.5, 0.3, 0.2]})
    bars = plots.percentile_bars(reps, palette=pal)
    line_colour = {ln.get_label().split(" (")[0]: to_hex(ln.get_color()) for ln in labelled_lines(cdf.axes[0])}
    bar_colour = {c.get_label(): to_hex(c.patches[0].get_facecolor()) for c in bars.axes[0].containers
                  if hasattr(c, "patches")}
    for v in ("naive", "full-jitter", "budget"):
        assert line_colour[v] == bar_colour[v] == pal[v].color.lower()
    with pytest.raises(PlotError, match="no style for variant"):
        plots.latency_cdf(three_variants, palette=Palette(["naive"]))


# ---------------------------------------------------------------------------- latency


def test_cdf_has_one_line_per_variant_ending_at_one(three_variants: dict[str, pd.DataFrame]) -> None:
    fig = plots.latency_cdf(three_variants)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    lines = labelled_lines(ax)
    assert [ln.get_label() for ln in lines] == ["naive (n=400)", "full-jitter (n=400)", "budget (n=400)"]
    for ln in lines:
        y = ln.get_ydata()
        assert y[-1] == pytest.approx(1.0) and np.all(np.diff(y) >= 0)
    assert ax.get_xscale() == "log"
    assert "ms" in ax.get_xlabel()


def test_ccdf_is_log_scale_and_reaches_one_over_n(three_variants: dict[str, pd.DataFrame]) -> None:
    ax = plots.latency_ccdf(three_variants).axes[0]
    assert ax.get_yscale() == "log"
    lines = labelled_lines(ax)
    assert len(lines) == 3
    y = lines[0].get_ydata()
    assert y[0] == pytest.approx(1.0) and y[-1] == pytest.approx(1 / 400)
    x = lines[0].get_xdata()
    assert x[-1] == pytest.approx(three_variants["naive"]["latency"].max() * 1000)


def test_a_concatenated_frame_with_a_variant_column_equals_a_mapping(three_variants) -> None:
    concat = pd.concat([f.assign(variant=v) for v, f in three_variants.items()], ignore_index=True)
    a = labelled_lines(plots.latency_ccdf(concat).axes[0])
    b = labelled_lines(plots.latency_ccdf(three_variants).axes[0])
    assert [ln.get_label() for ln in a] == [ln.get_label() for ln in b]
    for la, lb in zip(a, b):
        np.testing.assert_allclose(la.get_xydata(), lb.get_xydata())


def test_failed_requests_are_left_out_of_the_success_population() -> None:
    ok = requests_frame([0.01, 0.02])
    bad = requests_frame([5.0, 5.0], outcome="timeout")
    line = labelled_lines(plots.latency_cdf({"x": pd.concat([ok, bad])}).axes[0])[0]
    assert line.get_label() == "x (n=2)" and line.get_xdata().max() == pytest.approx(20.0)


def test_percentile_bars_show_means_and_t_intervals() -> None:
    reps = pd.DataFrame({"variant": ["a"] * 3 + ["b"] * 3, "replicate": [0, 1, 2] * 2,
                         "latency_p50": [0.01] * 6, "latency_p99": [0.1, 0.2, 0.3, 0.05, 0.05, 0.05],
                         "latency_p999": [0.4, 0.5, 0.6, 0.1, 0.1, 0.1]})
    ax = plots.percentile_bars(reps).axes[0]
    heights = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers if hasattr(c, "patches")}
    assert heights["a"] == pytest.approx([10.0, 200.0, 500.0])
    assert heights["b"] == pytest.approx([10.0, 50.0, 100.0])
    # The p99 error bar of a: mean 200 ms +- t * s / sqrt(3) with s = 100 ms.
    hw = T95_2 * 100.0 / np.sqrt(3)
    segments = [seg for coll in ax.collections for seg in coll.get_segments()]
    spans = sorted(round(float(abs(s[1][1] - s[0][1])), 6) for s in segments)
    assert round(2 * hw, 6) in spans
    with pytest.raises(PlotError, match="unknown metric 'latency_p42'"):
        plots.percentile_bars(reps, metrics=["latency_p42"])


# ---------------------------------------------------------------------------- over time


def one_run(with_breaker: bool = True) -> dict[str, pd.DataFrame]:
    start = np.linspace(0.0, 9.99, 1000)
    lat = np.where((start >= 3) & (start < 5), 0.5, 0.01)
    outcome = np.where((start >= 3) & (start < 5), "timeout", "ok")
    requests = requests_frame(lat, start=start).assign(outcome=outcome)
    timeline = pd.DataFrame({"time": np.repeat(np.arange(10.0), 2), "service": ["api", "db"] * 10,
                             "arrivals": np.tile([100, 120], 10)})
    rows = [(3.0, "fault_start", "db-down", "crash", 2.0), (5.0, "fault_end", "db-down", "crash", 2.0)]
    if with_breaker:
        rows += [(3.5, "breaker", "api->db", "closed->open: failure_rate", 1.0),
                 (6.0, "breaker", "api->db", "open->half_open: timer", 2.0),
                 (6.5, "breaker", "api->db", "half_open->closed: probe", 0.0)]
    return {"requests": requests, "timeline": timeline, "events": events_frame(rows)}


def test_timeline_draws_load_goodput_success_p99_faults_and_breakers() -> None:
    fig = plots.timeline(**one_run(), warmup=1.0, title="naive")
    axes = fig.axes
    assert len(axes) == 5
    load = {ln.get_label(): ln for ln in labelled_lines(axes[0])}
    assert set(load) == {"offered load", "goodput"}
    np.testing.assert_allclose(load["offered load"].get_ydata(), 100.0)  # 1000 requests over 10 s
    goodput = load["goodput"].get_ydata()
    assert goodput[3] == 0 and goodput[4] == 0 and goodput[6] == pytest.approx(100.0)
    assert {ln.get_label() for ln in labelled_lines(axes[1])} == {"api", "db"}
    success = axes[2].get_lines()[0].get_ydata()
    assert success[0] == pytest.approx(100.0) and success[3] == 0.0
    p99 = axes[3].get_lines()[0].get_ydata()
    assert p99[0] == pytest.approx(10.0) and np.isnan(p99[3])  # only timeouts started at 3-4 s
    assert axes[3].get_yscale() == "linear"  # 10 ms throughout: no decades to span
    # The fault is shaded on every panel, from 3 s to 5 s.
    for ax in axes:
        spans = [p for p in ax.patches if p.get_x() == pytest.approx(3.0) and p.get_width() == pytest.approx(2.0)]
        assert spans, "fault window not shaded"
    spans = sorted((round(float(v[:, 0].min()), 3), round(float(v[:, 0].max()), 3))
                   for c in axes[4].collections for v in (p.vertices for p in c.get_paths()))
    assert spans == [(3.5, 6.0), (6.0, 6.5)]  # open, then half-open, then closed (not drawn)
    assert [t.get_text() for t in axes[4].get_yticklabels()] == ["api->db"]


def test_timeline_without_breakers_has_four_panels() -> None:
    assert len(plots.timeline(**one_run(with_breaker=False)).axes) == 4


def test_herd_counts_arrivals_in_100ms_windows_around_the_fault_end() -> None:
    end = 5.0
    steady = np.arange(0.0, 10.0, 0.01)  # 100 tries/s at "db" throughout
    burst = np.full(50, end + 0.02)       # 50 tries land in the window right after the end

    def attempts(extra: np.ndarray) -> pd.DataFrame:
        st = np.concatenate([steady, extra])
        return pd.DataFrame({"service": ["db"] * st.size, "start": st, "sent": True})

    frames = {"sync": attempts(burst), "jitter": attempts(np.array([]))}
    events = events_frame([(1.0, "fault_start", "p", "partition", 4.0), (end, "fault_end", "p", "partition", 4.0)])
    ax = plots.herd(frames, events=events, before=1.0, after=2.0).axes[0]
    lines = {ln.get_label(): ln for ln in labelled_lines(ax)}
    assert set(lines) == {"sync", "jitter"}
    x, y = lines["sync"].get_xdata(), lines["sync"].get_ydata()
    at_end = int(np.argmin(np.abs(x - 0.0)))
    assert y[at_end] == pytest.approx((10 + 50) / 0.1)
    assert np.nanmax(lines["jitter"].get_ydata()) == pytest.approx(100.0, rel=0.11)
    assert "db" in ax.get_ylabel()
    with pytest.raises(PlotError, match="unknown or never-ending fault 'nope'"):
        plots.herd(frames, events=events, fault="nope")
    with pytest.raises(PlotError, match="no fault ended"):
        plots.herd(frames, events=events.iloc[:1])
    with pytest.raises(PlotError, match="unknown service 'web'"):
        plots.herd(frames, events=events, service="web")


# ---------------------------------------------------------------------------- sweeps


P1, P2 = "clients.web.retry.max_attempts", "clients.web.retry.backoff.base"


@pytest.fixture
def sweep_frame() -> pd.DataFrame:
    rows = []
    for v in ("naive", "jitter"):
        for a in (1, 2, 3):
            for b in (0.01, 0.1):
                for r in range(3):
                    tries = a * (1.5 if v == "naive" else 1.0) + r * 0.1
                    rows.append({"run_id": f"{v}{a}{b}{r}", "variant": v, "replicate": r, "seed": r, P1: a, P2: b,
                                 "tries_per_request": tries, "latency_p99": a * b + r * 0.001,
                                 "success_rate": 1 - 0.1 / a, "error": None, "wall_time": 0.1})
    return pd.DataFrame(rows)


def test_amplification_plots_mean_and_ci_per_variant(sweep_frame: pd.DataFrame) -> None:
    fig = plots.amplification(sweep_frame, x="max_attempts", where={"base": 0.1})
    lines = {c.get_label(): c.lines[0] for c in fig.axes[0].containers}
    assert set(lines) == {"naive", "jitter"}
    np.testing.assert_allclose(lines["naive"].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(lines["naive"].get_ydata(), np.array([1, 2, 3]) * 1.5 + 0.1)
    assert fig.axes[0].get_xlabel() == P1
    # a parameter not on the x axis splits the lines (one per variant and value), never pooled
    split = {c.get_label(): c.lines[0] for c in plots.amplification(sweep_frame, x="max_attempts").axes[0].containers}
    assert set(split) == {f"{v}, base={b}" for v in ("naive", "jitter") for b in ("0.01", "0.1")}
    np.testing.assert_allclose(split["naive, base=0.1"].get_ydata(), np.array([1, 2, 3]) * 1.5 + 0.1)
    with pytest.raises(PlotError, match=r"'max_attempt' \(did you mean 'clients.web.retry.max_attempts'"):
        plots.amplification(sweep_frame, x="max_attempt")


def test_heatmap_has_one_cell_per_design_point(sweep_frame: pd.DataFrame) -> None:
    fig = plots.heatmap(sweep_frame, x="max_attempts", y="base", metric="latency_p99")
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2  # one panel per variant, shared scale
    grid = images[0].get_array()
    assert grid.shape == (2, 3)  # rows: base values, columns: max_attempts values
    expected = np.array([[a * b + 0.001 for a in (1, 2, 3)] for b in (0.01, 0.1)]) * 1000
    np.testing.assert_allclose(np.asarray(grid), expected)
    assert images[0].get_clim() == images[1].get_clim()
    with pytest.raises(PlotError, match="unknown metric 'nope'"):
        plots.heatmap(sweep_frame, x="max_attempts", y="base", metric="nope")


def test_pareto_front_picks_exactly_the_non_dominated_points() -> None:
    # Lower x is better, higher y is better.
    x = [1.0, 2.0, 0.5, 3.0, 1.5, np.nan, 1.0]
    y = [0.9, 0.95, 0.5, 0.9, 0.8, 1.0, 0.9]
    front = plots.pareto_front(x, y, minimize_x=True, minimize_y=False)
    assert front.tolist() == [True, True, True, False, False, False, True]
    assert plots.pareto_front([1, 2], [1, 2]).tolist() == [True, False]


def test_pareto_figure_fills_only_front_points() -> None:
    df = pd.DataFrame({"variant": "", P1: [1, 2, 3, 4, 5], "latency_p99": [0.1, 0.2, 0.05, 0.3, 0.2],
                       "success_rate": [0.9, 0.95, 0.5, 0.9, 0.99]})
    pts = plots.pareto_points(df)
    assert pts.loc[pts["front"], P1].tolist() == [1, 3, 5]
    ax = plots.pareto(df).axes[0]
    filled = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_facecolors())]
    xs = sorted(float(o[0]) for c in filled for o in c.get_offsets())
    assert xs == pytest.approx([50.0, 100.0, 200.0])
    labels = [t.get_text() for a in ax.figure.axes for t in a.texts]
    assert any("max_attempts=5" in t for t in labels) and not any("max_attempts=4" in t for t in labels)


# ---------------------------------------------------------------------------- saving


def test_saving_is_deterministic_and_leaves_no_pyplot_figure(tmp_path, three_variants) -> None:
    before = plt.get_fignums()
    small = {v: f.iloc[:50] for v, f in three_variants.items()}
    for fmt in ("png", "svg"):
        a = plots.figure_bytes(plots.latency_cdf(small, log_x=False), fmt, dpi=50)
        b = plots.figure_bytes(plots.latency_cdf(small, log_x=False), fmt, dpi=50)
        assert a == b
    assert plt.get_fignums() == before
    assert a.startswith(b"<?xml") and b"<dc:date>" not in a
    with pytest.raises(PlotError, match=r"\.png, \.svg or \.pdf"):
        plots.save_figure(plots.latency_cdf(small), tmp_path / "cdf.txt")


def test_headline_figure_has_two_panels(tmp_path, three_variants) -> None:
    reps = pd.DataFrame({"variant": list(three_variants), "latency_p50": [0.03, 0.02, 0.01],
                         "latency_p99": [0.3, 0.2, 0.1], "latency_p999": [0.5, 0.3, 0.2]})
    fig = plots.headline_figure(requests=three_variants, reps=reps)
    assert len(fig.axes) == 2 and fig.axes[0].get_yscale() == "log"
    path = plots.save_headline_figure(tmp_path / "headline.png", requests=three_variants, reps=reps, dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_headline_of_a_replica_scenario_shows_read_staleness(three_variants) -> None:
    """With one replica service, the right panel is the staleness of its reads (in ms), not latency."""
    reps = pd.DataFrame({"variant": list(three_variants), "latency_p50": [0.03, 0.02, 0.01],
                         "latency_p99": [0.3, 0.2, 0.1], "latency_p999": [0.5, 0.3, 0.2],
                         "read_staleness_p90:r": [6.0, 0.03, 0.03], "read_staleness_p99:r": [27.5, 0.08, 2.6],
                         "read_staleness_max:r": [29.9, 0.8, 4.8]})
    right = plots.headline_figure(requests=three_variants, reps=reps).axes[1]
    assert right.get_title().startswith("Read staleness at r")
    assert [t.get_text() for t in right.get_xticklabels()] == ["p90", "p99", "max"]
    heights = sorted(round(p.get_height()) for p in right.patches)
    assert heights[-1] == 29900  # seconds drawn in ms


def test_topology_names_the_replication_stream_in_both_boxes() -> None:
    from simres.scenario.loading import load_scenario

    fig = plots.topology(load_scenario("replica-partition-cap"))
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "replica of accounts" in texts and "available (AP)" in texts
    assert "write log → accounts-replica" in texts
    cp = plots.topology(load_scenario("replica-partition-cap", variant="consistent"))
    assert "consistent (CP, ≤ 1\u00a0s)" in " ".join(t.get_text() for t in cp.axes[0].texts)
