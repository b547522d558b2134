"""Figures over time: one run's timeline, variants side by side over time, thundering herds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from simres.metrics.faults import fault_intervals
from simres.metrics.herd import arrival_counts, herd_stats
from simres.metrics.latency import latency_over_time
from simres.reporting.plots._base import (
    FAULT_SHADE,
    LINESTYLES,
    OKABE_ITO,
    Palette,
    PlotError,
    VariantStyle,
    _by_variant,
    _figure,
    _log,
    _log_if_wide,
    _need_columns,
    _palette,
    _styled,
    metric_name,
    set_suptitle,
    set_title,
    variant_label,
)

BREAKER_COLOURS = {1: ("0.2", ""), 2: ("0.75", "////")}
"""Face colour and hatch of the breaker band for the open (1) and half-open (2) states."""


def _shade_faults(axes: Sequence[Axes], events: pd.DataFrame | None, t_end: float, *, label_ax: Axes) -> None:
    if events is None or len(events) == 0:
        return
    faults = fault_intervals(events)
    for f in faults.itertuples(index=False):
        end = f.end if math.isfinite(f.end) else t_end
        for ax in axes:
            ax.axvspan(f.start, end, color=FAULT_SHADE, zorder=0, linewidth=0)
        label_ax.annotate(f"{f.fault} ({f.kind})", (f.start, 1.0), xycoords=("data", "axes fraction"),
                          xytext=(2, -2), textcoords="offset points", ha="left", va="top", fontsize=7,
                          color="0.25")


def _window_of(timeline_frame: pd.DataFrame | None, default: float = 1.0) -> float:
    if timeline_frame is None or len(timeline_frame) == 0:
        return default
    t = np.unique(timeline_frame["time"].to_numpy(dtype=float))
    d = np.diff(t)
    return float(d.min()) if d.size else default


@_styled
def variants_over_time(requests: Mapping[str, pd.DataFrame] | pd.DataFrame, *,
                       events: pd.DataFrame | None = None, metric: str = "success_rate", window: float = 1.0,
                       palette: Palette | None = None, title: str | None = None) -> Figure:
    """One per-window request metric over time, one line per variant, fault windows shaded.

    ``metric`` is a column of :func:`simres.metrics.latency_over_time`: ``success_rate``,
    ``goodput``, ``p50`` or ``p99`` (requests binned by start time). ``events`` (of any one
    variant: faults are scheduled the same in all) shades the faults.
    """
    per = _by_variant(requests, "requests")
    if metric not in ("success_rate", "goodput", "p50", "p99"):
        raise PlotError(f"metric: expected success_rate, goodput, p50 or p99, got {metric!r}")
    pal = _palette(palette, list(per))
    fig = _figure(6.4, 3.6)
    ax = fig.subplots()
    _draw_over_time(ax, per, pal, events=events, metric=metric, window=window)
    set_title(ax, title or f"{metric_name(metric)} over time")
    return fig


def _coinciding(series: Mapping[str, np.ndarray], tolerance: float) -> dict[str, str]:
    """For each variant whose line lies on an earlier variant's everywhere (within ``tolerance``), that variant."""
    out: dict[str, str] = {}
    names = list(series)
    for i, v in enumerate(names):
        for w in names[:i]:
            a, b = series[v], series[w]
            if a.shape == b.shape and a.size:
                both = np.isfinite(a) & np.isfinite(b)
                if (np.isfinite(a) == np.isfinite(b)).all() and both.any() \
                        and float(np.max(np.abs(a[both] - b[both]))) <= tolerance:
                    out[v] = out.get(w, w)
                    break
    return out


def _draw_over_time(ax: Axes, per: Mapping[str, pd.DataFrame], pal: Palette, *, events: pd.DataFrame | None,
                    metric: str, window: float, legend: str = "best") -> None:
    """Lines per variant over time. No line hides another unnoticed: lines drawn first are wider (so a
    later line on top leaves them as an outline), markers sit at a different phase per variant, and a
    variant whose line coincides with an earlier one says so in the legend (``= naive``)."""
    t_end = 0.0
    drawn: list[float] = []
    scale = 1000.0 if metric in ("p50", "p99") else (100.0 if metric == "success_rate" else 1.0)
    frames = {}
    for v, frame in per.items():
        _need_columns(frame, ("start", "latency", "outcome"), f"requests[{v!r}]")
        if len(frame):
            frames[v] = latency_over_time(frame, window=window)
    series = {v: ot[metric].to_numpy(dtype=float) * scale for v, ot in frames.items()}
    tol = 0.5 if metric == "success_rate" else 0.0
    same = _coinciding(series, tol) if metric == "success_rate" else _coinciding(series, 0.0)
    k = len(frames)
    for i, (v, ot) in enumerate(frames.items()):
        st = pal[v]
        drawn.extend(series[v])
        step = max(1, len(ot) // 15, k)  # at least one phase per variant
        width = 1.3 + 2.2 * (k - 1 - i) / max(k - 1, 1) if k > 1 else 1.6
        label = variant_label(v) + (f" (same line as {variant_label(same[v])})" if v in same else "")
        ax.plot(ot["time"] + window / 2, series[v], label=label, marker=st.marker, markersize=4,
                markevery=((i * step) // k, step), linewidth=width, zorder=2 + i * 0.01,
                **st.line())
        t_end = max(t_end, float(ot["time"].max()) + window)
    _shade_faults([ax], events, t_end, label_ax=ax)
    ax.set_xlabel("time (s)")
    ax.set_ylabel({"success_rate": "success rate (%)", "goodput": "goodput (req/s)", "p50": "p50 latency (ms)",
                   "p99": "p99 latency (ms)"}[metric])
    if metric in ("p50", "p99"):
        _log_if_wide(ax, "y", drawn)
    if metric == "success_rate":
        ax.set_ylim(-3, 112)  # a band above 100 % for the fault labels, clear of the lines
        ax.set_yticks([0, 20, 40, 60, 80, 100])
    if legend == "below":
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(3, max(k, 1)), frameon=False,
                  fontsize=7.5)
    else:
        ax.legend(loc=legend)


def _breaker_rows(events: pd.DataFrame, max_rows: int) -> dict[str, list[tuple[float, int]]]:
    """Per breaker (or per link when there are too many): ``[(time, state), ...]`` from t = 0."""
    br = events.loc[events["kind"].astype(str) == "breaker"].sort_values("time", kind="stable")
    comps = br["component"].astype(str)
    if comps.nunique() <= max_rows:
        out: dict[str, list[tuple[float, int]]] = {}
        for t, c, s in zip(br["time"].astype(float), comps, br["value"].astype(int)):
            out.setdefault(c, [(0.0, 0)]).append((t, s))
        return dict(sorted(out.items()))
    # Too many breakers (per instance / per member): one row per link, its worst state.
    rank = {0: 0, 2: 1, 1: 2}
    unrank = {0: 0, 1: 2, 2: 1}
    state: dict[str, dict[str, int]] = {}
    agg: dict[str, list[tuple[float, int]]] = {}
    for t, c, s in zip(br["time"].astype(float), comps, br["value"].astype(int)):
        caller, _, callee = c.partition("->")
        link = f"{caller.split('/')[0]}->{callee.split('#')[0]} (any)"
        state.setdefault(link, {})[c] = rank.get(s, 0)
        worst = unrank[max(state[link].values())]
        rows = agg.setdefault(link, [(0.0, 0)])
        if rows[-1][1] != worst:
            rows.append((t, worst))
    return dict(sorted(agg.items()))


def _draw_breakers(ax: Axes, events: pd.DataFrame, t_end: float, max_rows: int = 12) -> None:
    rows = _breaker_rows(events, max_rows)
    for i, (_name, trans) in enumerate(rows.items()):
        for (t0, s), (t1, _) in zip(trans, [*trans[1:], (t_end, 0)]):
            if s in BREAKER_COLOURS and t1 > t0:
                face, hatch = BREAKER_COLOURS[s]
                ax.broken_barh([(t0, t1 - t0)], (i - 0.4, 0.8), facecolor=face, hatch=hatch,
                               edgecolor="0.2", linewidth=0.3)
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.legend(handles=[Patch(facecolor="white", edgecolor="0.2", label="closed"),
                       Patch(facecolor=BREAKER_COLOURS[1][0], edgecolor="0.2", label="open"),
                       Patch(facecolor=BREAKER_COLOURS[2][0], hatch=BREAKER_COLOURS[2][1], edgecolor="0.2",
                             label="half-open")],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)


@dataclass(frozen=True)
class TimelineScale:
    """Axis limits shared by the timelines of several runs, so they compare at a glance.

    ``t_end`` is the right edge of the time axis; ``rate`` and ``tries`` the top of the
    requests/s and tries/s panels; ``p99`` the (low, high) of the p99 panel, on a log scale
    when ``p99_log``.
    """

    t_end: float
    rate: float
    tries: float
    p99: tuple[float, float]
    p99_log: bool


def _timeline_end(requests: pd.DataFrame, timeline: pd.DataFrame, step: float) -> tuple[float, int]:
    t_tl = float(timeline["time"].max()) + step if len(timeline) else 0.0
    t_rq = (math.floor(float(np.nanmax(requests["start"].to_numpy(dtype=float))) / step) + 1) * step \
        if len(requests) else 0.0
    t_end = max(t_tl, t_rq, step)
    n = max(1, math.ceil(t_end / step - 1e-9))
    return n * step, n


def _offered(requests: pd.DataFrame, step: float, n: int) -> np.ndarray:
    if not len(requests):
        return np.zeros(n)
    idx = np.clip((requests["start"].to_numpy(dtype=float) // step).astype(np.int64), 0, n - 1)
    return np.bincount(idx, minlength=n) / step


def timeline_scale(runs: Mapping[str, Any], *, window: float | None = None) -> TimelineScale:
    """The common :class:`TimelineScale` of several runs (objects with ``requests`` and ``timeline``)."""
    ends, rates, tries, p99s = [], [0.0], [0.0], []
    for r in runs.values():
        step = float(window) if window is not None else _window_of(r.timeline)
        t_end, n = _timeline_end(r.requests, r.timeline, step)
        ends.append(t_end)
        rates.append(float(_offered(r.requests, step, n).max(initial=0.0)))
        if len(r.requests):
            ot = latency_over_time(r.requests, window=step, t0=0.0, t1=t_end)
            rates.append(float(np.nanmax(ot["goodput"].to_numpy(dtype=float), initial=0.0)))
            p = ot["p99"].to_numpy(dtype=float) * 1000
            p99s.extend(p[np.isfinite(p) & (p > 0)])
        if len(r.timeline):
            tries.append(float(r.timeline["arrivals"].to_numpy(dtype=float).max(initial=0.0)) / step)
    lo, hi = (float(min(p99s)), float(max(p99s))) if p99s else (1.0, 10.0)
    log = hi / lo > 20
    pad = (lo / 1.5, hi * 1.5) if log else (0.0, hi * 1.08)
    return TimelineScale(t_end=max(ends, default=1.0), rate=max(rates) * 1.08 or 1.0,
                         tries=max(tries) * 1.08 or 1.0, p99=pad, p99_log=log)


@_styled
def timeline(*, requests: pd.DataFrame, timeline: pd.DataFrame, events: pd.DataFrame,
             window: float | None = None, warmup: float | None = None, style: VariantStyle | None = None,
             scale: TimelineScale | None = None, title: str | None = None) -> Figure:
    """One run over time: load, arrivals per service, goodput, success rate and p99.

    Panels (shared time axis): offered load (client requests started per second) with
    goodput; tries arriving at each service per second; success rate; p99 latency of the
    requests started in each window (log scale); if a service has an admission limit, its
    limit over time beside the requests it holds; and, if any breaker changed state, a band
    per breaker showing when it was open or half-open. Fault windows are shaded grey.

    Args:
        requests, timeline, events: the frames of one run (``RunResult`` or a run directory).
        window: bucket width in seconds; by default the timeline's step.
        warmup: draw a dotted line where steady-state measurement starts.
        style: the variant's style, so the run's own series match the other figures.
        scale: axis limits shared with other runs' timelines (:func:`timeline_scale`), so a
            report's timelines have the same time axis and y scales.
        title: figure title.
    """
    _need_columns(requests, ("start", "latency", "outcome"), "requests")
    _need_columns(timeline, ("time", "service", "arrivals"), "timeline")
    _need_columns(events, ("time", "kind", "component", "value"), "events")
    step = float(window) if window is not None else _window_of(timeline)
    if not step > 0:
        raise PlotError(f"window: must be > 0, got {window!r}")
    t_end, n = _timeline_end(requests, timeline, step)
    x_end = max(t_end, scale.t_end) if scale is not None else t_end
    has_breakers = bool((events["kind"].astype(str) == "breaker").any()) if len(events) else False
    has_limits = "limit" in timeline.columns and bool(timeline["limit"].notna().any())
    heights = [1.0, 1.0, 0.8, 0.9] + ([0.8] if has_limits else []) + ([0.5] if has_breakers else [])
    fig = _figure(7.2, 7.0 + 0.8 * has_breakers + 1.1 * has_limits)
    axes = fig.subplots(len(heights), 1, sharex=True, gridspec_kw={"height_ratios": heights})
    main = style.line() if style is not None else {"color": "black", "linestyle": "-"}
    centres = (np.arange(n) + 0.5) * step

    ax = axes[0]
    offered = _offered(requests, step, n)
    ot = latency_over_time(requests, window=step, t0=0.0, t1=t_end) if len(requests) else None
    ax.plot(centres, offered, color="0.45", linestyle="--", label="offered load")
    if ot is not None:
        ax.plot(centres, ot["goodput"].to_numpy(), label="goodput", **main)
    ax.set_ylabel("requests/s")
    ax.legend(loc="lower left", fontsize=7)
    if scale is not None:
        ax.set_ylim(0, scale.rate)

    ax = axes[1]
    tl = timeline.copy()
    tl["service"] = tl["service"].astype(str)
    for i, (svc, part) in enumerate(sorted(tl.groupby("service", sort=False), key=lambda kv: kv[0])):
        part = part.sort_values("time")
        ax.plot(part["time"].to_numpy(dtype=float) + step / 2, part["arrivals"].to_numpy(dtype=float) / step,
                color=OKABE_ITO[(i + 2) % len(OKABE_ITO)], linestyle=LINESTYLES[i % len(LINESTYLES)], label=svc)
    ax.set_ylabel("tries/s arriving")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False, title="service")
    if scale is not None:
        ax.set_ylim(0, scale.tries)

    ax = axes[2]
    if ot is not None:
        ax.plot(centres, ot["success_rate"].to_numpy() * 100, marker=".", markersize=3, **main)
    ax.set_ylim(-2, 102)
    ax.set_ylabel("success (%)")

    ax = axes[3]
    if ot is not None:
        ax.plot(centres, ot["p99"].to_numpy() * 1000, marker=".", markersize=3, **main)
        if scale is None:
            _log_if_wide(ax, "y", ot["p99"].to_numpy() * 1000)
    if scale is not None:
        if scale.p99_log:
            _log(ax, "y")
        ax.set_ylim(*scale.p99)
    ax.set_ylabel("p99 (ms)")

    if has_limits:
        _draw_limits(axes[4], timeline, step)
    if has_breakers:
        _draw_breakers(axes[-1], events, t_end)
    _shade_faults(list(axes), events, t_end, label_ax=axes[0])
    if warmup:
        for a in axes:
            a.axvline(warmup, color="0.5", linestyle=":", linewidth=0.8)
    axes[-1].set_xlim(0, x_end)
    axes[-1].set_xlabel("time (s)")
    set_suptitle(fig, title or "Timeline")
    return fig


def _draw_limits(ax: Axes, timeline: pd.DataFrame, step: float) -> None:
    """Each limited service's concurrency limit (summed over its instances, a step line) and
    the requests it holds (queued or in service), so refusals show where the two meet."""
    tl = timeline[timeline["limit"].notna()].copy()
    tl["service"] = tl["service"].astype(str)
    for i, (svc, part) in enumerate(sorted(tl.groupby("service", sort=False), key=lambda kv: kv[0])):
        part = part.sort_values("time")
        t = part["time"].to_numpy(dtype=float) + step
        colour = OKABE_ITO[(i + 2) % len(OKABE_ITO)]
        ax.step(t, part["limit"].to_numpy(dtype=float), where="pre", color=colour, label=f"{svc} limit")
        ax.plot(t, part["inflight"].to_numpy(dtype=float), color=colour, linestyle=":", linewidth=1.0,
                label=f"{svc} held")
    ax.set_ylabel("concurrency")
    values = np.concatenate([tl["limit"].to_numpy(dtype=float), tl["inflight"].to_numpy(dtype=float)])
    _log_if_wide(ax, "y", values)  # an unconstrained limit can sit far above what is held
    if ax.get_yscale() == "linear":
        ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)


def _pick_fault(events: pd.DataFrame, fault: str | None) -> tuple[str, float]:
    faults = fault_intervals(events) if len(events) else fault_intervals(pd.DataFrame())
    ended = faults.loc[np.isfinite(faults["end"].to_numpy(dtype=float))]
    if fault is None:
        if ended.empty:
            raise PlotError("events: no fault ended during the run; the herd plot is anchored at a fault's end")
        return str(ended["fault"].iloc[0]), float(ended["end"].iloc[0])
    row = ended.loc[ended["fault"].astype(str) == fault]
    if row.empty:
        raise PlotError(f"fault: unknown or never-ending fault '{fault}'; ended faults: "
                        f"{', '.join(ended['fault'].astype(str)) or 'none'}")
    return fault, float(row["end"].iloc[0])


@_styled
def herd(attempts: Mapping[str, pd.DataFrame] | pd.DataFrame, *, events: pd.DataFrame,
         service: str | None = None, fault: str | None = None, before: float = 5.0, after: float = 10.0,
         window: float = 0.1, palette: Palette | None = None, title: str | None = None) -> Figure:
    """Arrival rate at one service in small windows around the end of a fault, per variant.

    A synchronised retry wave (every client's backoff expiring together) shows as a spike
    right after the fault ends; jittered backoff spreads it out.

    Args:
        attempts: per-variant attempts frames (mapping or a frame with a ``variant`` column).
        events: the events of one run (faults are scheduled the same in every variant); if it
            has a ``variant`` column, the first variant's rows are used.
        service: the service; by default the one whose arrivals are burstiest (highest
            peak-to-mean) in the ``after`` seconds of the first variant.
        fault: the fault's name (as in ``recovered:<fault>``); by default the first that ended.
        before, after: seconds shown before and after the fault's end.
        window: arrival-count window in seconds (rate = count / window).
        palette: variant styles.
        title: figure title.
    """
    per = _by_variant(attempts, "attempts")
    ev = next(iter(_by_variant(events, "events").values()))
    name, end = _pick_fault(ev, fault)
    if not (window > 0 and before >= 0 and after > 0):
        raise PlotError(f"window/before/after: need window > 0, before >= 0, after > 0, got "
                        f"{window}, {before}, {after}")
    t0 = max(0.0, end - before)
    t1 = end + after
    for v, frame in per.items():
        _need_columns(frame, ("service", "start", "sent"), f"attempts[{v!r}]")
    services = sorted({str(s) for f in per.values() for s in f["service"].astype(str).unique()})
    if service is None:
        first = next(iter(per.values()))
        stats = herd_stats(first, t0=end, t1=t1, window=window)["peak_to_mean"].dropna()
        if stats.empty:
            raise PlotError(f"attempts: no tries were sent in the {after} s after {name} ended")
        service = str(stats.sort_values(ascending=False, kind="stable").index[0])
    elif service not in services:
        raise PlotError(f"service: unknown service '{service}', expected one of: {', '.join(services)}")
    pal = _palette(palette, list(per))
    fig = _figure(6.4, 3.8)
    ax = fig.subplots()
    for v, frame in per.items():
        counts = arrival_counts(frame, t0=t0, t1=t1, window=window)
        c = counts[service].to_numpy(dtype=float) if service in counts.columns else np.zeros(len(counts))
        x = counts.index.to_numpy(dtype=float) - end
        ax.plot(np.append(x, x[-1] + window) if x.size else x, np.append(c, c[-1]) / window if c.size else c,
                drawstyle="steps-post", label=variant_label(v), **pal[v].line())
    ax.axvline(0.0, color="0.3", linewidth=0.9, linestyle=(0, (4, 2)))
    ax.annotate(f"{name} ends", (0.0, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3),
                textcoords="offset points", ha="left", va="top", fontsize=7, color="0.25")
    ax.axvspan(t0 - end, 0.0, color=FAULT_SHADE, zorder=0, linewidth=0)
    ax.set_xlabel(f"time since {name} ended (s)")
    ax.set_ylabel(f"tries/s arriving at {service} ({window * 1000:.0f} ms windows)")
    set_title(ax, title or f"Thundering herd at {service} after {name}")
    ax.legend(loc="upper right")
    return fig
