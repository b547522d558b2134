"""Figures of a sweep: a metric against one parameter, heatmaps over two, Pareto fronts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from simres.metrics.directions import direction, lower_is_better
from simres.metrics.stats import mean_ci
from simres.reporting.plots._axes import (
    _value_text,
    add_levels,
    apply_where,
    others,
    resolve_axis,
    split_levels,
    too_many,
)
from simres.reporting.plots._base import (
    Palette,
    PlotError,
    _check_metric,
    _clean_results,
    _figure,
    _log,
    _palette,
    _select,
    _short,
    _sorted_values,
    _styled,
    format_number,
    metric_name,
    metric_scale,
    set_suptitle,
    set_title,
    sweep_parameters,
    variant_label,
)


def _points(df: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str], confidence: float) -> pd.DataFrame:
    """Mean and CI half-width of ``metrics`` per design point (``keys``), in sorted key order."""
    rows = []
    for key, part in df.groupby(list(keys), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(keys, key))
        row["n"] = len(part)
        for m in metrics:
            ci = mean_ci(part[m].to_numpy(dtype=float), confidence=confidence)
            row[m] = ci.mean
            row[f"{m}_hw"] = ci.halfwidth
        rows.append(row)
    return pd.DataFrame(rows)


def _tick(ticks: list[Any], value: Any) -> int:
    """Position of ``value`` among ``ticks``; a null is the null tick (``pd.NA`` never equals itself)."""
    if pd.isna(value):
        return next(i for i, t in enumerate(ticks) if pd.isna(t))
    return ticks.index(value)


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


MAX_SERIES = 12
"""Lines an amplification figure draws at most (variants x levels of the parameters it does not show)."""
MAX_PANELS = 9
"""Panels a heatmap draws at most (variants x levels of the parameters it does not show)."""


def _integer_axis(values: pd.Series) -> bool:
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    return bool(v.size) and bool(np.all(np.isclose(v, np.round(v))))


@_styled
def amplification(results: pd.DataFrame, *, x: str, metric: str = "tries_per_request",
                  where: Mapping[str, Any] | None = None, confidence: float = 0.95, log_x: bool = False,
                  palette: Palette | None = None, title: str | None = None) -> Figure:
    """A metric (retry amplification by default) against one swept axis, per variant.

    Each point is the mean over replicates with its Student-t interval as an error bar.
    ``x`` names a parameter (full dotted path or its last segment); zipped parameters are one
    axis (ticks ``1 / 8``), a sampled float is drawn on a continuous scale. Swept axes not on
    the x axis split the lines: one per variant and level (a sampled one binned into three
    ranges), up to :data:`MAX_SERIES`; fix others with ``where`` (a float matches at three
    significant digits).
    """
    df = _clean_results(results)
    _check_metric(df, metric)
    df = apply_where(df, where)
    axis = resolve_axis(df, x, "x")
    rest = others(df, [axis])
    df, splits, _ = split_levels(df, rest)
    variants = list(dict.fromkeys(df["variant"]))
    series = [(v, s) for v in variants for s in splits if ((df["variant"] == v) & (df["_split"] == s)).any()]
    if len(series) > MAX_SERIES:
        raise too_many("amplification", len(series), MAX_SERIES, rest, df)
    ticks: list[Any] = []
    labels: list[str] = []
    if axis.continuous:
        xkey, numeric = axis.params[0], True
    elif axis.numeric:
        xkey = axis.params[0]
        numeric = _numeric(df[xkey])
        if not numeric:
            ticks = _sorted_values(df[xkey])
            labels = [str(t) for t in ticks]
    else:  # zipped parameters: one tick per combination
        df, ticks, labels = add_levels(df, axis, nbins=6)
        xkey, numeric = axis.column, False
    if numeric and df[xkey].isna().any():
        # A null at some points (a field left unset there, e.g. an available replica's
        # max_staleness) has no place on a number line: one tick per value, null last.
        numeric = False
        ticks = [*_sorted_values(df[xkey]), pd.NA]
        labels = [_value_text(t) for t in ticks]
    pts = _points(df, ["variant", "_split", xkey], [metric], confidence)
    scale, label = metric_scale(metric)
    fig = _figure(6.4 if len(series) <= 4 else 8.4, 4.0)
    ax = fig.subplots()
    # one style per series: the variant's colour, and per split level its own marker and line style
    pal = _palette(palette, variants) if len(splits) == 1 else Palette([f"{v}\x00{s}" for v, s in series])
    for v, s in series:
        p = pts.loc[(pts["variant"] == v) & (pts["_split"] == s)]
        xs = p[xkey].to_numpy(dtype=float) if numeric else np.array([_tick(ticks, c) for c in p[xkey]], float)
        hw = p[f"{metric}_hw"].to_numpy(dtype=float) * scale
        st = pal[v] if len(splits) == 1 else pal[f"{v}\x00{s}"]
        name = ", ".join(t for t in (variant_label(v) if (v or len(variants) > 1) else "", s) if t)
        ax.errorbar(xs, p[metric].to_numpy(dtype=float) * scale, yerr=np.where(np.isfinite(hw), hw, 0.0),
                    color=st.color, linestyle=st.linestyle, marker=st.marker, capsize=3, markersize=5,
                    label=name or None)
    if not numeric:
        ax.set_xticks(range(len(ticks)), labels)
    elif log_x:
        _log(ax, "x")
    elif _integer_axis(df[xkey]):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(axis.label if len(axis.params) > 1 else axis.params[0])
    ax.set_ylabel(label)
    n = int(pts["n"].min())
    fixed = "".join(f", {_short(k)}={v}" for k, v in (where or {}).items())
    pooled = any(a.continuous for a in rest)  # a binned sampled axis pools its points in each range
    runs = f"{n} runs per point, sampled values binned" if pooled else f"{n} rep."
    set_title(ax, title or f"{metric_name(metric)} against {axis.label} "
                           f"(mean, {confidence:.0%} CI, {runs}{fixed})")
    if any(ln.get_label() and not ln.get_label().startswith("_") for ln in ax.containers):
        if len(series) > 4:  # beside the plot, not over the lines
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        else:
            ax.legend(fontsize=7)
    return fig


@_styled
def heatmap(results: pd.DataFrame, *, x: str, y: str, metric: str = "latency_p99",
            where: Mapping[str, Any] | None = None, cmap: str = "viridis", title: str | None = None) -> Figure:
    """Mean of ``metric`` over two swept axes; one panel per variant, one colour scale.

    Zipped parameters are one axis (naming any of them selects it); a sampled float axis is
    binned into up to six quantile ranges. Swept axes shown on neither give one panel per
    level (a sampled one binned into three ranges), up to :data:`MAX_PANELS`. Cells are
    annotated with their value (readable in grey); a design point that was not run, or
    whose runs all failed, is blank.
    """
    df = _clean_results(results)
    _check_metric(df, metric)
    df = apply_where(df, where)
    xa = resolve_axis(df, x, "x")
    ya = resolve_axis(df, y, "y")
    if set(xa.params) & set(ya.params):
        same = xa.params[0] if xa == ya else ", ".join(sorted(set(xa.params) & set(ya.params)))
        raise PlotError(f"y: must be another axis than x, both name {same}"
                        + (" (zipped parameters vary together: they are one axis)" if len(xa.params) > 1 else ""))
    rest = others(df, [xa, ya])
    df, splits, _ = split_levels(df, rest)
    df, xs, xlabels = add_levels(df, xa, nbins=6)
    df, ys, ylabels = add_levels(df, ya, nbins=6)
    xcol, ycol = xa.column, ya.column
    variants = list(dict.fromkeys(df["variant"]))
    panels = [(v, s) for v in variants for s in splits if ((df["variant"] == v) & (df["_split"] == s)).any()]
    if len(panels) > MAX_PANELS:
        raise too_many("heatmap", len(panels), MAX_PANELS, rest, df)
    scale, label = metric_scale(metric)
    grids = {}
    for v, s in panels:
        part = df.loc[(df["variant"] == v) & (df["_split"] == s)]
        table = part.groupby([ycol, xcol])[metric].mean().unstack(xcol)
        grids[(v, s)] = table.reindex(index=ys, columns=xs).to_numpy(dtype=float) * scale
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    width = min(max(4.2, 0.55 * len(xs) + 2.2) * ncols + 1.0, 14.0)
    fig = _figure(width, 3.2 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    image = None
    for ax, key in zip(axes, panels):
        g = grids[key]
        image = ax.imshow(g, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        for (i, j), val in np.ndenumerate(g):
            if math.isfinite(val):
                r, gg, b, _ = image.cmap(image.norm(val))
                dark = 0.299 * r + 0.587 * gg + 0.114 * b < 0.5
                ax.text(j, i, format_number(val), ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
        ax.set_xticks(range(len(xs)), xlabels, rotation=30 if xa.continuous or len(xa.params) > 1 else 0)
        ax.set_yticks(range(len(ys)), ylabels)
        ax.set_xlabel(xa.label)
        ax.set_ylabel(ya.label)
        ax.grid(False)
        v, s = key
        name = ", ".join(t for t in (variant_label(v) if (v or len(variants) > 1) else "", s) if t)
        if name:
            set_title(ax, name, fontsize=8)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes[:len(panels)]), label=label, shrink=0.9)
    fixed = "".join(f", {_short(k)}={v}" for k, v in (where or {}).items())
    set_suptitle(fig, title or f"{metric_name(metric)} over {xa.label} x {ya.label} (mean over replicates{fixed})")
    return fig


def pareto_front(xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray, *,
                 minimize_x: bool = True, minimize_y: bool = True) -> np.ndarray:
    """Boolean mask of the non-dominated points (NaN points are never on the front).

    A point is dominated when another is at least as good on both objectives and strictly
    better on one; equal points do not dominate each other.
    """
    x = np.asarray(xs, dtype=float) * (1 if minimize_x else -1)
    y = np.asarray(ys, dtype=float) * (1 if minimize_y else -1)
    if x.shape != y.shape:
        raise PlotError(f"pareto_front: xs and ys need the same length, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    xv, yv = x[ok], y[ok]
    le = (xv[None, :] <= xv[:, None]) & (yv[None, :] <= yv[:, None])
    lt = (xv[None, :] < xv[:, None]) | (yv[None, :] < yv[:, None])
    dominated = (le & lt).any(axis=1)
    out = np.zeros(x.shape, dtype=bool)
    out[np.flatnonzero(ok)[~dominated]] = True
    return out


def _point_label(row: Mapping[str, Any], params: Sequence[str], variants: bool) -> str:
    parts = [f"{_short(p)}={_value_text(row[p])}" for p in params]
    if variants:
        parts.insert(0, variant_label(str(row["variant"])))
    return ", ".join(parts)


def pareto_points(results: pd.DataFrame, *, latency: str = "latency_p99", other: str = "success_rate",
                  where: Mapping[str, Any] | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Design points of a sweep (variant x varying parameters, mean over replicates) with a ``front`` flag.

    Columns: ``variant``, the varying parameters, ``n``, the two metrics and their CI
    half-widths (``<metric>_hw``), and ``front`` (on the Pareto front: lower latency is
    better, ``other`` follows :func:`simres.metrics.directions.direction`; a descriptive
    metric such as utilisation has no better side, so it cannot make a front).
    """
    df = _clean_results(results)
    _check_metric(df, latency, "latency")
    _check_metric(df, other, "other")
    if direction(other) is None or direction(latency) != "lower":
        bad, got = ("other", other) if direction(other) is None else ("latency", latency)
        raise PlotError(f"{bad}: '{got}' has no better direction (see simres.metrics.directions), "
                        "so it cannot make a Pareto front")
    if where:
        df = _select(df, where, sweep_parameters(df), "pareto")
    params = [p for p in sweep_parameters(df) if df[p].nunique(dropna=False) > 1]
    pts = _points(df, ["variant", *params], [latency, other], confidence)
    pts["front"] = pareto_front(pts[latency], pts[other], minimize_x=True, minimize_y=lower_is_better(other))
    pts.attrs["parameters"] = params
    return pts


@_styled
def pareto(results: pd.DataFrame, *, latency: str = "latency_p99", other: str = "success_rate",
           where: Mapping[str, Any] | None = None, palette: Palette | None = None, max_labels: int = 12,
           title: str | None = None) -> Figure:
    """Latency against a second objective over a sweep's design points; the Pareto front highlighted.

    Each point is a design point of :func:`pareto_points` (variant x swept parameters, mean
    over replicates). Front points are filled with a black edge, joined and labelled with
    their parameters; the others are hollow.
    """
    pts = pareto_points(results, latency=latency, other=other, where=where)
    params = pts.attrs["parameters"]
    variants = list(dict.fromkeys(pts["variant"]))
    pal = _palette(palette, variants)
    front = pts["front"].to_numpy(dtype=bool)
    lx, lxlabel = metric_scale(latency)
    oy, oylabel = metric_scale(other)
    multi = len(variants) > 1
    fp = pts.loc[front].sort_values(latency, kind="stable")
    # Points drawn at the same place (to 4 significant digits) share one number and one key line.
    spots: dict[tuple[str, str], list[pd.Series]] = {}
    for _, row in fp.iterrows():
        spots.setdefault((f"{row[latency]:.4g}", f"{row[other]:.4g}"), []).append(row)
    labelled = list(spots.values())[:max_labels]
    key_lines = [f"{k}  " + _point_label(rows[0], params, multi) + (f" (+{len(rows) - 1} same)" if len(rows) > 1
                                                                    else "")
                 for k, rows in enumerate(labelled, start=1)]
    if len(spots) > max_labels:
        key_lines.append(f"... and {len(spots) - max_labels} more front point(s), see pareto_points()")
    key_h = 0.16 * len(key_lines) + 0.25
    fig = _figure(6.8, 4.4 + key_h)
    ax, key_ax = fig.subplots(2, 1, gridspec_kw={"height_ratios": [4.4, key_h]})
    for v in variants:
        sel = (pts["variant"] == v).to_numpy()
        st = pal[v]
        for on in (False, True):
            m = sel & (front == on)
            if m.any():
                ax.scatter(pts.loc[m, latency] * lx, pts.loc[m, other] * oy, marker=st.marker, s=42 if on else 30,
                           facecolors=st.color if on else "none", edgecolors="black" if on else st.color,
                           linewidths=0.9, zorder=3 if on else 2,
                           label=variant_label(v) if multi and (on or not (sel & front).any()) else None)
    if len(fp) > 1:
        ax.plot(fp[latency] * lx, fp[other] * oy, color="0.35", linestyle=(0, (3, 2)), linewidth=0.9,
                drawstyle="steps-post" if not lower_is_better(other) else "steps-pre", label="Pareto front", zorder=1)
    # A number beside each front point (short, so labels never smear into each other); the key below says
    # which design point it is. Neighbours alternate above and below their point.
    for k, rows in enumerate(labelled, start=1):
        row = rows[0]
        up = k % 2 == 1
        ax.annotate(str(k), (row[latency] * lx, row[other] * oy), xytext=(5, 5 if up else -5),
                    textcoords="offset points", va="bottom" if up else "top", fontsize=7.5, fontweight="bold",
                    color="0.1", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "0.6", "lw": 0.5},
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5}, zorder=4)
    key_ax.axis("off")
    key_ax.text(0.0, 1.0, "Front points:\n" + "\n".join(key_lines), transform=key_ax.transAxes, va="top",
                ha="left", fontsize=7, color="0.15", linespacing=1.25)
    ax.set_xlabel(f"{lxlabel} (lower is better)")
    ax.set_ylabel(f"{oylabel} ({'lower' if lower_is_better(other) else 'higher'} is better)")
    set_title(ax, title or f"Pareto front: {metric_name(latency)} vs {metric_name(other)} "
                          f"({int(front.sum())} of {len(pts)} points)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    return fig
