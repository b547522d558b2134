"""Figures that read at a glance: no overlapping labels, no cut titles, integer ticks, shared axes,
no line hidden unnoticed, and a topology of every bundled scenario.

Overlap and clipping are measured on the rendered figure (text extents in pixels), so these
tests see what a reader sees.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from simres.reporting import html as H
from simres.reporting import plots
from simres.scenario.loading import load_scenario

SCENARIOS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))


def _texts(fig: Figure) -> list[Text]:
    """Every text a reader sees: figure and axes texts, titles, axis and tick labels, legends."""
    FigureCanvasAgg(fig).draw()
    out: list[Text] = list(fig.texts)
    if fig._suptitle is not None:
        out.append(fig._suptitle)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        out += [*ax.texts, ax.title, ax._left_title, ax._right_title]
        if ax.axison:
            (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
            out += [ax.xaxis.label, ax.yaxis.label]
            out += [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]
            out += [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
        if ax.get_legend() is not None:
            out += ax.get_legend().get_texts()
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def _overlaps(texts: list[Text]) -> list[tuple[str, str]]:
    if not texts:
        return []
    fig = texts[0].get_figure(root=True)
    FigureCanvasAgg(fig).draw()
    r = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(r)) for t in texts]
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


def _inside(fig: Figure) -> list[str]:
    """Texts that stick out of the figure (a cut title, a label off the edge)."""
    texts = _texts(fig)
    r = fig.canvas.get_renderer()
    w, h = fig.bbox.width, fig.bbox.height
    return [t.get_text() for t in texts if (b := t.get_window_extent(r)).x0 < -1 or b.y0 < -1
            or b.x1 > w + 1 or b.y1 > h + 1]


def six_variants_reps() -> pd.DataFrame:
    # close values in neighbouring bars: upright labels ran into each other ("46.246.2")
    rows = []
    for i, v in enumerate(["naive", "backoff-jitter", "token-bucket", "cancel", "bounded-queue", "lower-load"]):
        for r in range(3):
            rows.append({"variant": v, "latency_p50": 0.0462 + 0.0001 * i + r * 1e-4,
                         "latency_p99": 0.466 + 0.001 * i, "latency_p999": 0.494 + 0.01 * i})
    return pd.DataFrame(rows)


def test_percentile_bar_labels_do_not_overlap() -> None:
    fig = plots.percentile_bars(six_variants_reps())
    labels = [t for t in _texts(fig) if t in fig.axes[0].texts]
    assert len(labels) == 18
    assert _overlaps(labels) == []
    assert _inside(fig) == []


def test_long_titles_wrap_instead_of_being_cut() -> None:
    df = pd.DataFrame({"variant": "", "clients.web.retry.max_attempts": [1, 2, 3, 4, 5] * 2,
                       "clients.web.retry.backoff.base": [0.1] * 5 + [0.2] * 5,
                       "tries_per_request": np.linspace(1, 3, 10)})
    fig = plots.amplification(df, x="max_attempts", where={"base": 0.1},
                              title="tries per request against max_attempts, mean and 95 % CI over three "
                                    "replications, with a title far too long for one line of this figure")
    assert "\n" in fig.axes[0].get_title()
    assert _inside(fig) == []


def test_integer_parameters_get_integer_ticks() -> None:
    df = pd.DataFrame({"variant": "", "clients.web.retry.max_attempts": [1, 2, 3, 4, 5],
                       "tries_per_request": [1.0, 1.4, 1.7, 2.0, 2.2]})
    ax = plots.amplification(df, x="max_attempts").axes[0]
    FigureCanvasAgg(ax.figure).draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_pareto_labels_are_numbers_with_a_key_and_never_overlap() -> None:
    # a dense front: many points close together, where full labels smeared into each other
    n = 10
    df = pd.DataFrame({"variant": "", "clients.web.retry.max_attempts": range(n),
                       "latency_p99": np.linspace(0.100, 0.104, n), "success_rate": np.linspace(0.90, 0.99, n)})
    fig = plots.pareto(df)
    numbers = [t for t in fig.axes[0].texts]
    assert [t.get_text() for t in numbers] == [str(k) for k in range(1, n + 1)]
    key = fig.axes[1].texts[0].get_text()
    assert "1  max_attempts=0" in key and f"{n}  max_attempts={n - 1}" in key
    assert _inside(fig) == []


def two_runs(load: dict[str, float]) -> dict[str, plots.TimelineScale | object]:
    rng = np.random.default_rng(1)

    class Run:
        def __init__(self, rate: float, slow: float):
            start = np.sort(rng.uniform(0, 20 if rate > 50 else 10, int(rate * 10)))
            self.requests = pd.DataFrame({"start": start, "latency": np.full(start.size, slow),
                                          "outcome": pd.Categorical(["ok"] * start.size)})
            t = np.arange(0, 20 if rate > 50 else 10, 1.0)
            self.timeline = pd.DataFrame({"time": t, "service": "api", "arrivals": np.full(t.size, rate)})
            self.events = pd.DataFrame({"time": [], "kind": [], "component": [], "value": []})

    return {v: Run(r, 0.01 if v == "a" else 1.0) for v, r in load.items()}


def test_timelines_of_a_report_share_their_time_axis_and_y_scales() -> None:
    runs = two_runs({"a": 100.0, "b": 20.0})
    scale = plots.timeline_scale(runs, window=1.0)
    figs = [plots.timeline(requests=r.requests, timeline=r.timeline, events=r.events, window=1.0, scale=scale)
            for r in runs.values()]
    for i in range(4):
        if i == 2:
            continue  # success rate: always 0-100 %
        assert figs[0].axes[i].get_ylim() == pytest.approx(figs[1].axes[i].get_ylim())
    assert figs[0].axes[-1].get_xlim() == pytest.approx((0, 20))
    assert figs[1].axes[-1].get_xlim() == pytest.approx((0, 20))
    alone = plots.timeline(requests=runs["b"].requests, timeline=runs["b"].timeline, events=runs["b"].events,
                           window=1.0)
    assert alone.axes[0].get_ylim()[1] < figs[1].axes[0].get_ylim()[1]  # on its own, its own scale


def test_the_headline_says_when_one_variant_hides_another() -> None:
    rng = np.random.default_rng(2)
    start = np.sort(rng.uniform(0, 30, 3000))
    stuck = pd.DataFrame({"start": start, "latency": 0.5, "outcome": pd.Categorical(
        np.where(start < 10, "ok", "timeout"))})
    fine = stuck.assign(outcome=pd.Categorical(["ok"] * len(start)))
    requests = {"naive": stuck, "backoff-jitter": stuck.copy(), "cancel": fine}
    reps = pd.DataFrame({"variant": list(requests), "latency_p50": [0.5] * 3, "latency_p99": [0.5] * 3,
                         "latency_p999": [0.5] * 3})
    events = pd.DataFrame({"time": [8.0, 12.0], "kind": ["fault_start", "fault_end"],
                           "component": ["trigger", "trigger"], "value": [0.0, 0.0], "detail": ["load", "load"]})
    fig = plots.headline_figure(requests=requests, reps=reps, events=events)
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines if not ln.get_label().startswith("_")}
    assert "backoff-jitter (same line as naive)" in lines and "cancel" in lines and "naive" in lines
    # the line underneath is wider, so the one on top leaves it visible as an outline
    assert lines["naive"].get_linewidth() > lines["backoff-jitter (same line as naive)"].get_linewidth()
    assert lines["naive"].get_markevery() != lines["backoff-jitter (same line as naive)"].get_markevery()


@pytest.mark.parametrize("name", SCENARIOS)
def test_topology_of_every_bundled_scenario(name: str) -> None:
    sc = load_scenario(name)
    fig = plots.topology(sc)
    texts = [t.get_text() for t in _texts(fig)]
    for svc in sc.services:
        assert svc in texts
    for client in sc.clients:
        assert f"client {client}" in texts
    assert _inside(fig) == [], name
    boxes = [t for t in fig.axes[0].texts if t.get_bbox_patch() is not None]  # the edge labels
    assert len(boxes) >= len(sc.clients)
    assert _overlaps(boxes) == [], name


def test_topology_shows_policies_faults_and_what_variants_change() -> None:
    sc = load_scenario("baseline")
    fig = plots.topology(sc, variants={"longer": {"services.api.handler.calls.0.timeout": 1.0},
                                       "more-db": {"services.db.workers": 16}})
    text = "\n".join(t.get_text() for t in fig.axes[0].texts).replace("\n  ", " ")
    db_call = next(c for c in sc.services["api"].handler.calls if c.to == "db")
    assert f"retry: {db_call.retry.max_attempts} tries" in text
    assert "varied by: longer" in text and "varied by: more-db" in text
    storm = plots.topology(load_scenario("retry-storm-metastable"))
    text = "\n".join(t.get_text() for t in storm.axes[0].texts).replace("\n  ", " ")
    assert "⚠ trigger: load ×2.5 15–19\u00a0s" in text
    assert "budget" not in text  # the scenario as written has none; token-bucket adds one
    assert "varied by: backoff-jitter, token-bucket" in text
    # layered: the client left of the api
    xs = {t.get_text(): t.get_position()[0] for t in storm.axes[0].texts}
    assert xs["client web"] < xs["api"]


def test_tables_are_sortable_by_an_inline_script() -> None:
    assert H.table(["a"], [["1"]]).startswith('<table class="sortable">')
    assert H.table(["a"], [["1"]], sortable=False).startswith("<table>")
    page = H.page("t", [H.table(["a"], [["1"]])], footer="f")
    assert page.count("<script>") == 1 and "addEventListener" in page and "http" not in page
