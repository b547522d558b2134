"""Latency distributions per variant: CDF, tail (CCDF) and percentile bars with intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from simres.metrics.latency import latency_values
from simres.metrics.stats import mean_ci
from simres.reporting.plots._base import (
    Palette,
    _by_variant,
    _check_metric,
    _clean_results,
    _figure,
    _log,
    _need_columns,
    _palette,
    _styled,
    format_number,
    metric_name,
    metric_scale,
    set_suptitle,
    set_title,
    variant_label,
)


def _thin(n: int, keep: int = 1500) -> np.ndarray:
    """Indices into a sorted array of ``n`` values that keep the shape of both body and tail."""
    if n <= 2 * keep:
        return np.arange(n)
    body = np.linspace(0, n - 1, keep)
    tail = n - np.geomspace(1, n, keep)
    return np.unique(np.clip(np.rint(np.concatenate([body, tail])), 0, n - 1).astype(np.int64))


def _draw_distribution(ax: Axes, per_variant: Mapping[str, pd.DataFrame], pal: Palette, *, ccdf: bool,
                       population: str, log_x: bool) -> None:
    for v, frame in per_variant.items():
        _need_columns(frame, ("latency", "outcome"), f"requests[{v!r}]")
        lat = np.sort(latency_values(frame, population=population)) * 1000.0  # type: ignore[arg-type]
        if log_x:
            lat = lat[lat > 0]
        n = lat.size
        idx = _thin(n)
        x = lat[idx]
        y = (n - idx) / n if ccdf else (idx + 1) / n
        ax.plot(x, y, drawstyle="steps-post", label=f"{variant_label(v)} (n={n})", **pal[v].line())
    if ccdf:
        _log(ax, "y")
        for q, name in ((1e-2, "p99"), (1e-3, "p99.9")):
            ax.axhline(q, color="0.5", linewidth=0.7, linestyle=(0, (2, 2)), label=f"_{name}")
            ax.annotate(name, (1.0, q), xycoords=("axes fraction", "data"), ha="right", va="bottom",
                        fontsize=7, color="0.35")
        ax.set_ylabel("share of requests slower than x")
    else:
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("share of requests faster than x")
    if log_x:
        _log(ax, "x")
    who = "successful requests" if population == "success" else "finished requests"
    ax.set_xlabel(f"latency of {who} (ms)")
    ax.legend(loc="lower right" if not ccdf else "lower left")


@_styled
def latency_cdf(requests: Mapping[str, pd.DataFrame] | pd.DataFrame, *, population: str = "success",
                palette: Palette | None = None, log_x: bool = True, title: str | None = None) -> Figure:
    """Empirical latency CDF, one line per variant.

    Args:
        requests: per-variant requests frames (a mapping, or one frame with a ``variant`` column).
        population: ``"success"`` (successful requests) or ``"all"`` (every finished request).
        palette: variant styles shared with the other figures of a report.
        log_x: log-scale latency axis (zero latencies are then left out).
        title: figure title.
    """
    per = _by_variant(requests, "requests")
    fig = _figure(6.4, 4.0)
    ax = fig.subplots()
    _draw_distribution(ax, per, _palette(palette, list(per)), ccdf=False, population=population, log_x=log_x)
    set_title(ax, title or "Latency distribution")
    return fig


@_styled
def latency_ccdf(requests: Mapping[str, pd.DataFrame] | pd.DataFrame, *, population: str = "success",
                 palette: Palette | None = None, log_x: bool = True, title: str | None = None) -> Figure:
    """Latency tail: the share of requests slower than x (log scale), one line per variant.

    Arguments as :func:`latency_cdf`; dotted guides mark the p99 and p99.9 levels.
    """
    per = _by_variant(requests, "requests")
    fig = _figure(6.4, 4.0)
    ax = fig.subplots()
    _draw_distribution(ax, per, _palette(palette, list(per)), ccdf=True, population=population, log_x=log_x)
    set_title(ax, title or "Latency tail (CCDF)")
    return fig

PERCENTILES: tuple[str, ...] = ("latency_p50", "latency_p99", "latency_p999")


def _draw_bars(ax: Axes, reps: pd.DataFrame, metrics: Sequence[str], pal: Palette, variants: Sequence[str],
               *, confidence: float, log_y: bool | None) -> None:
    scale, _ = metric_scale(metrics[0])
    nv = len(variants)
    width = 0.8 / nv
    upright = nv > 2
    highs = []
    lows = []
    for j, v in enumerate(variants):
        rows = reps.loc[reps["variant"] == v]
        cis = [mean_ci(rows[m].to_numpy(dtype=float), confidence=confidence) for m in metrics]
        means = np.array([c.mean for c in cis]) * scale
        err = np.array([c.halfwidth for c in cis]) * scale
        xs = np.arange(len(metrics)) - 0.4 + width * (j + 0.5)
        st = pal[v]
        bars = ax.bar(xs, np.nan_to_num(means), width, color=st.color, hatch=st.hatch, edgecolor="black",
                      linewidth=0.6, label=variant_label(v),
                      yerr=np.where(np.isfinite(err), err, 0.0), capsize=3, error_kw={"elinewidth": 0.9})
        for rect, m, e in zip(bars, means, err):
            # upright labels above narrow bars would run into their neighbours' ("46.246.2")
            ax.annotate(format_number(m), (rect.get_x() + rect.get_width() / 2, m + (e if math.isfinite(e) else 0.0)),
                        xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                        fontsize=6.5 if upright else 7, rotation=90 if upright else 0)
        finite = means[np.isfinite(means) & (means > 0)]
        highs.extend(finite + np.nan_to_num(err[np.isfinite(means) & (means > 0)]))
        lows.extend(finite)
    ax.set_xticks(np.arange(len(metrics)), [metric_name(m).replace(" latency", "").replace(
        " of all finished requests", "") for m in metrics])  # the title says which requests
    use_log = log_y if log_y is not None else bool(lows and max(lows) / min(lows) > 20)
    if use_log and lows:
        _log(ax, "y")
        ax.set_ylim(min(lows) / 2, max(highs) * (8 if upright else 3))
    elif highs:
        ax.set_ylim(0, max(highs) * (1.3 if upright else 1.15))
    ax.grid(axis="x", visible=False)


@_styled
def percentile_bars(reps: pd.DataFrame, *, metrics: Sequence[str] = PERCENTILES, confidence: float = 0.95,
                    palette: Palette | None = None, log_y: bool | None = None,
                    title: str | None = None) -> Figure:
    """Latency percentiles per variant: mean over replications with a confidence interval.

    Args:
        reps: a replications frame (``variant`` plus metric columns, one row per replication);
            a single row per variant draws bars without intervals.
        metrics: the percentile columns (latencies, drawn in ms).
        confidence: level of the Student-t interval of the error bars.
        palette: variant styles.
        log_y: log-scale values; by default when they span more than a factor of 20.
        title: figure title.
    """
    df = _clean_results(reps, "reps")
    for m in metrics:
        _check_metric(df, m, "metrics")
    from simres.reporting.plots._axes import sweep_axes

    axes = sweep_axes(df)
    if axes:  # a sweep: one group of bars per configuration, never replications of different designs pooled
        return _configuration_bars(df, list(metrics), axes, confidence=confidence, log_y=log_y, title=title)
    variants = list(dict.fromkeys(df["variant"]))
    pal = _palette(palette, variants)
    fig = _figure(6.4, 4.0)
    ax = fig.subplots()
    _draw_bars(ax, df, list(metrics), pal, variants, confidence=confidence, log_y=log_y)
    n = int(df.groupby("variant").size().min())
    scale_label = metric_scale(metrics[0])[1]
    ax.set_ylabel("latency (ms)" if metrics[0].startswith("latency") else scale_label)
    ci = f"mean and {confidence:.0%} CI over {n} replications" if n > 1 else "one run per variant"
    set_title(ax, title or f"Latency percentiles ({ci})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


MAX_CONFIGURATIONS = 40
"""Configurations (variant x design point) a sweep's percentile figure draws at most."""

_PERCENTILE_SHADES = ("#9ecae1", "#3182bd", "#08306b")
_PERCENTILE_HATCHES = ("", "//", "..")


def _configuration_bars(df: pd.DataFrame, metrics: list[str], axes: Sequence[object], *, confidence: float,
                        log_y: bool | None, title: str | None) -> Figure:
    """Percentiles per configuration of a sweep: one row per variant x design point, a bar per percentile.

    Horizontal, so the configuration labels read left to right and the value labels sit at
    the bars' ends, where they cannot run into each other. A sampled axis is binned into
    three ranges (its label says so).
    """
    from simres.reporting.plots._axes import split_levels, too_many

    df, splits, _ = split_levels(df, list(axes))  # type: ignore[arg-type]
    variants = list(dict.fromkeys(df["variant"]))
    configs = [(v, s) for v in variants for s in splits if ((df["variant"] == v) & (df["_split"] == s)).any()]
    if len(configs) > MAX_CONFIGURATIONS:
        raise too_many("percentiles", len(configs), MAX_CONFIGURATIONS, list(axes), df)  # type: ignore[arg-type]
    scale, _ = metric_scale(metrics[0])
    k = len(metrics)
    height = 0.8 / k
    fig = _figure(7.6, 0.15 * k * len(configs) + 1.2)
    ax = fig.subplots()
    lows: list[float] = []
    highs: list[float] = []
    ns: list[int] = []
    labels = []
    for i, (v, s) in enumerate(configs):
        rows = df.loc[(df["variant"] == v) & (df["_split"] == s)]
        ns.append(len(rows))
        labels.append(", ".join(t for t in (variant_label(v) if (v or len(variants) > 1) else "", s) if t))
        for j, m in enumerate(metrics):
            ci = mean_ci(rows[m].to_numpy(dtype=float), confidence=confidence)
            mean, hw = ci.mean * scale, ci.halfwidth * scale
            y = i - 0.4 + height * (j + 0.5)
            ax.barh(y, mean if math.isfinite(mean) else 0.0, height, color=_PERCENTILE_SHADES[j % 3],
                    hatch=_PERCENTILE_HATCHES[j % 3], edgecolor="black", linewidth=0.5,
                    xerr=hw if math.isfinite(hw) else None, capsize=2, error_kw={"elinewidth": 0.8},
                    label=metric_name(m).replace(" latency", "").replace(" of all finished requests", "")
                    if i == 0 else None)
            if math.isfinite(mean):
                ax.annotate(format_number(mean), (mean + (hw if math.isfinite(hw) else 0.0), y), xytext=(3, 0),
                            textcoords="offset points", va="center", ha="left", fontsize=6.5)
                if mean > 0:
                    lows.append(mean)
                    highs.append(mean + (hw if math.isfinite(hw) else 0.0))
    ax.set_yticks(range(len(configs)), labels)
    ax.set_ylim(len(configs) - 0.5, -0.5)
    use_log = log_y if log_y is not None else bool(lows and max(lows) / min(lows) > 20)
    if use_log and lows:
        _log(ax, "x")
        ax.set_xlim(min(lows) / 2, max(highs) * 4)
    elif highs:
        ax.set_xlim(0, max(highs) * 1.18)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("latency (ms)" if metrics[0].startswith("latency") else metric_scale(metrics[0])[1])
    n = min(ns)
    ci_text = f"mean and {confidence:.0%} CI over {n} replications each" if n > 1 else "one run each"
    set_suptitle(fig, title or f"Latency percentiles per configuration, {len(configs)} configurations ({ci_text})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    return fig
