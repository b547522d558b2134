"""The one picture of a comparison, for a README or a slide."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from simres.metrics.faults import fault_intervals
from simres.reporting.plots._base import (
    Palette,
    _by_variant,
    _check_metric,
    _clean_results,
    _figure,
    _palette,
    _styled,
    save_figure,
    set_suptitle,
    set_title,
)
from simres.reporting.plots.latency import PERCENTILES, _draw_bars, _draw_distribution
from simres.reporting.plots.timeseries import _draw_over_time

ALL_PERCENTILES: tuple[str, ...] = ("latency_all_p50", "latency_all_p99", "latency_all_p999")
"""The headline's percentiles: every finished request, a failure at the time its client gave up."""


@_styled
def headline_figure(*, requests: Mapping[str, pd.DataFrame] | pd.DataFrame, reps: pd.DataFrame,
                    events: pd.DataFrame | None = None, window: float = 1.0, palette: Palette | None = None,
                    title: str | None = None) -> Figure:
    """The one picture of a comparison: behaviour over time (or the latency tail) and percentiles.

    Left: success rate per variant over time with fault windows shaded when ``events``
    holds a fault, otherwise the latency CCDF. Right: p50 / p99 / p99.9 per variant with
    confidence intervals from ``reps``, of all finished requests (a failure at the time its
    client gave up) when ``reps`` has them, so a variant that fails fast never looks fast;
    when the scenario has one replica service, the p90 / p99 / max staleness of its reads
    instead (the trade against the success rate on the left).
    """
    per = _by_variant(requests, "requests")
    df = _clean_results(reps, "reps")
    metrics = ALL_PERCENTILES if all(m in df.columns and df[m].notna().any() for m in ALL_PERCENTILES) \
        else PERCENTILES
    for m in metrics:
        _check_metric(df, m, "reps")
    variants = list(dict.fromkeys([*per, *df["variant"]]))
    pal = _palette(palette, variants)
    fig = _figure(11.0, 4.0)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.5, 1.0]})
    has_faults = events is not None and len(events) > 0 and len(fault_intervals(events)) > 0
    if has_faults:
        _draw_over_time(left, per, pal, events=events, metric="success_rate", window=window, legend="below")
        set_title(left, "Success rate over time (requests by start)")
    else:
        _draw_distribution(left, per, pal, ccdf=True, population="success", log_x=True)
        set_title(left, "Latency tail (CCDF)")
    n = int(df.groupby("variant").size().min())
    ci = f"\n(mean, 95% CI, {n} rep.)" if n > 1 else ""
    replicas = sorted({c.split(":", 1)[1] for c in df.columns
                       if c.startswith("read_staleness_p99:") and df[c].notna().any()})
    if len(replicas) == 1:
        # A scenario about consistency: what its reads missed says more than their latency.
        # p50 is 0 when most reads are fresh: p90, p99 and max
        stale = [f"read_staleness_{q}:{replicas[0]}" for q in ("p90", "p99", "max")]
        _draw_bars(right, df, stale, pal, list(dict.fromkeys(df["variant"])), confidence=0.95, log_y=None)
        right.set_xticks(range(len(stale)), ["p90", "p99", "max"])
        right.set_ylabel("staleness of reads (ms)")
        set_title(right, f"Read staleness at {replicas[0]}, every read{ci}")
    else:
        _draw_bars(right, df, metrics, pal, list(dict.fromkeys(df["variant"])), confidence=0.95, log_y=None)
        right.set_ylabel("latency (ms)")
        what = "all requests, failures at give-up" if metrics is ALL_PERCENTILES else "successful requests"
        set_title(right, f"Latency percentiles, {what}" + ci)
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if title:
        set_suptitle(fig, title)
    return fig


def save_headline_figure(path: str | os.PathLike[str], *, requests: Mapping[str, pd.DataFrame] | pd.DataFrame,
                         reps: pd.DataFrame, events: pd.DataFrame | None = None, title: str | None = None,
                         dpi: int = 110) -> Path:
    """Build :func:`headline_figure` and write it to ``path`` (png/svg/pdf, deterministic)."""
    fig = headline_figure(requests=requests, reps=reps, events=events, title=title)
    return save_figure(fig, path, dpi=dpi)
