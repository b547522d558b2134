"""Figures of a sweep: a metric against one parameter, heatmaps over two, Pareto fronts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from simres.metrics.directions import direction, lower_is_better
from simres.metrics.stats import mean_ci
from simres.reporting.plots._base import (
    Palette,
    PlotError,
    _check_metric,
    _clean_results,
    _figure,
    _log,
    _palette,
    _resolve_param,
    _select,
    _short,
    _sorted_values,
    _styled,
    format_number,
    metric_name,
    metric_scale,
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


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


@_styled
def amplification(results: pd.DataFrame, *, x: str, metric: str = "tries_per_request",
                  where: Mapping[str, Any] | None = None, confidence: float = 0.95, log_x: bool = False,
                  palette: Palette | None = None, title: str | None = None) -> Figure:
    """A metric (retry amplification by default) against one swept parameter, per variant.

    Each point is the mean over replicates with its Student-t interval as an error bar.
    ``x`` is a parameter column (full dotted path or its last segment); every other swept
    parameter must be fixed, by the sweep or with ``where``.
    """
    df = _clean_results(results)
    xcol = _resolve_param(df, x, "x")
    _check_metric(df, metric)
    df = _select(df, where, [xcol], "amplification")
    variants = list(dict.fromkeys(df["variant"]))
    pal = _palette(palette, variants)
    pts = _points(df, ["variant", xcol], [metric], confidence)
    scale, label = metric_scale(metric)
    numeric = _numeric(df[xcol])
    cats = _sorted_values(df[xcol]) if not numeric else []
    fig = _figure(6.4, 4.0)
    ax = fig.subplots()
    for v in variants:
        p = pts.loc[pts["variant"] == v]
        xs = p[xcol].to_numpy(dtype=float) if numeric else np.array([cats.index(c) for c in p[xcol]], float)
        hw = p[f"{metric}_hw"].to_numpy(dtype=float) * scale
        st = pal[v]
        ax.errorbar(xs, p[metric].to_numpy(dtype=float) * scale, yerr=np.where(np.isfinite(hw), hw, 0.0),
                    color=st.color, linestyle=st.linestyle, marker=st.marker, capsize=3, markersize=5,
                    label=variant_label(v))
    if not numeric:
        ax.set_xticks(range(len(cats)), [str(c) for c in cats])
    elif log_x:
        _log(ax, "x")
    ax.set_xlabel(xcol)
    ax.set_ylabel(label)
    n = int(pts["n"].min())
    fixed = "".join(f", {_short(k)}={v}" for k, v in (where or {}).items())
    ax.set_title(title or f"{metric_name(metric)} against {_short(xcol)} "
                          f"(mean, {confidence:.0%} CI, {n} rep.{fixed})")
    if len(variants) > 1 or variants != [""]:
        ax.legend()
    return fig


@_styled
def heatmap(results: pd.DataFrame, *, x: str, y: str, metric: str = "latency_p99",
            where: Mapping[str, Any] | None = None, cmap: str = "viridis", title: str | None = None) -> Figure:
    """Mean of ``metric`` over two swept parameters; one panel per variant, one colour scale.

    Cells are annotated with their value (readable in grey); a design point that was not
    run, or whose runs all failed, is blank.
    """
    df = _clean_results(results)
    xcol = _resolve_param(df, x, "x")
    ycol = _resolve_param(df, y, "y")
    if xcol == ycol:
        raise PlotError(f"y: must differ from x, both are {xcol}")
    _check_metric(df, metric)
    df = _select(df, where, [xcol, ycol], "heatmap")
    variants = list(dict.fromkeys(df["variant"]))
    xs = _sorted_values(df[xcol])
    ys = _sorted_values(df[ycol])
    scale, label = metric_scale(metric)
    grids = {}
    for v in variants:
        table = df.loc[df["variant"] == v].groupby([ycol, xcol])[metric].mean().unstack(xcol)
        grids[v] = table.reindex(index=ys, columns=xs).to_numpy(dtype=float) * scale
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    ncols = min(len(variants), 3)
    nrows = math.ceil(len(variants) / ncols)
    fig = _figure(min(4.2 * ncols + 1.0, 14.0), 3.6 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    image = None
    for ax, v in zip(axes, variants):
        g = grids[v]
        image = ax.imshow(g, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        for (i, j), val in np.ndenumerate(g):
            if math.isfinite(val):
                r, gg, b, _ = image.cmap(image.norm(val))
                dark = 0.299 * r + 0.587 * gg + 0.114 * b < 0.5
                ax.text(j, i, format_number(val), ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
        ax.set_xticks(range(len(xs)), [str(s) for s in xs])
        ax.set_yticks(range(len(ys)), [str(s) for s in ys])
        ax.set_xlabel(_short(xcol))
        ax.set_ylabel(_short(ycol))
        ax.grid(False)
        if v or len(variants) > 1:
            ax.set_title(variant_label(v))
    for ax in axes[len(variants):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes[:len(variants)]), label=label, shrink=0.9)
    fig.suptitle(title or f"{metric_name(metric)} over {_short(xcol)} x {_short(ycol)}")
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
    parts = [f"{_short(p)}={row[p]}" for p in params]
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
    fig = _figure(6.8, 4.6)
    ax = fig.subplots()
    for v in variants:
        sel = (pts["variant"] == v).to_numpy()
        st = pal[v]
        for on in (False, True):
            m = sel & (front == on)
            if m.any():
                ax.scatter(pts.loc[m, latency] * lx, pts.loc[m, other] * oy, marker=st.marker, s=42 if on else 30,
                           facecolors=st.color if on else "none", edgecolors="black" if on else st.color,
                           linewidths=0.9, zorder=3 if on else 2,
                           label=variant_label(v) if (on or not (sel & front).any()) else None)
    fp = pts.loc[front].sort_values(latency, kind="stable")
    if len(fp) > 1:
        ax.plot(fp[latency] * lx, fp[other] * oy, color="0.35", linestyle=(0, (3, 2)), linewidth=0.9,
                drawstyle="steps-post" if not lower_is_better(other) else "steps-pre", label="Pareto front", zorder=1)
    multi = len(variants) > 1
    # Points drawn at the same place (to 4 significant digits) share one label.
    spots: dict[tuple[str, str], list[pd.Series]] = {}
    for _, row in fp.iterrows():
        spots.setdefault((f"{row[latency]:.4g}", f"{row[other]:.4g}"), []).append(row)
    for rows in list(spots.values())[:max_labels]:
        row = rows[0]
        text = _point_label(row, params, multi) + (f" (+{len(rows) - 1} same)" if len(rows) > 1 else "")
        ax.annotate(text, (row[latency] * lx, row[other] * oy), xytext=(4, 3), textcoords="offset points",
                    fontsize=6.5, color="0.15")
    ax.set_xlabel(f"{lxlabel} (lower is better)")
    ax.set_ylabel(f"{oylabel} ({'lower' if lower_is_better(other) else 'higher'} is better)")
    ax.set_title(title or f"Pareto front: {metric_name(latency)} vs {metric_name(other)} "
                          f"({int(front.sum())} of {len(pts)} points)")
    ax.legend(loc="best")
    return fig
