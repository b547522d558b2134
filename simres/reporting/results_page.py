"""The report of a results frame: saved replications (``simres run --reps N --out DIR``) or a sweep.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from simres.reporting import html as H
from simres.reporting import plots
from simres.reporting._page import _Figures, _footer
from simres.reporting.plots import variant_label
from simres.reporting.scenario_page import _yaml_value
from simres.reporting.sources import ReportError
from simres.reporting.tables import MAX_TABLE_ROWS, _comparison_parts
from simres.reporting.verdicts import replication_count, sweep_metrics, sweep_verdicts, verdicts

# ---------------------------------------------------------------------------- results report


def results_report(results: pd.DataFrame, *, title: str | None = None, reference: str | None = None,
                   figure_format: str = "png", dpi: int = 100, confidence: float = 0.95,
                   generated: str | None = None) -> str:
    """The HTML report of a results frame: a sweep (swept parameter columns) or replications.

    Replications (no parameter column) get the comparison table, verdict and percentile
    bars. A sweep gets its design points with intervals, one figure per parameter (one
    parameter) or heatmaps (two), the Pareto front, and a verdict naming the best points.
    """
    if not isinstance(results, pd.DataFrame) or results.empty:
        raise ReportError("results: expected a non-empty DataFrame")
    figs = _Figures(figure_format, dpi)
    df = results.copy()
    df["variant"] = df["variant"].fillna("").astype(str) if "variant" in df.columns else ""
    meta = results.attrs.get("sweep") or {}
    if title:
        name = title
    elif meta.get("scenario_name"):
        name = str(meta["scenario_name"])
    elif "scenario" in df.columns and df["scenario"].nunique() == 1:
        name = str(df["scenario"].iloc[0])
    else:
        name = "results"
    params = plots.sweep_parameters(df)
    failed = df.loc[df["error"].notna() & (df["error"].astype(str) != "")] if "error" in df.columns else df.iloc[:0]
    ok = df.drop(index=failed.index)
    if ok.empty:
        raise ReportError(f"results: every one of the {len(df)} runs failed; first error: {failed['error'].iloc[0]}")
    body = [f"<h1>{H.esc(name)}</h1>"]
    topo = _topology(figs, meta, df, params)
    if not params:
        body += _replications_body(ok, figs, reference=reference, confidence=confidence, topology=topo)
    else:
        body += _sweep_body(ok, params, figs, confidence=confidence, topology=topo)
        if meta:
            body.append(H.section("Sweep settings", _sweep_settings(meta)))
    if len(failed):
        body.append(H.section("Failed runs", H.esc(f"{len(failed)} of {len(df)} runs failed and are left out; "
                                                   f"first error: {failed['error'].iloc[0]}")))
    return H.page(f"simres report: {name}", body, footer=_footer(generated))


def _topology(figs: _Figures, meta: Mapping[str, Any], df: pd.DataFrame, params: list[str]) -> str:
    """The topology figure of the scenario behind the results, when it can still be found; else nothing.

    A sweep records its scenario (path and name); replications name theirs in the
    ``scenario`` column, found when it is a bundled name. Swept parameters are shown as
    "varied by: the sweep" on the calls and services they change.
    """
    from simres.errors import SimresError
    from simres.scenario.loading import load_scenario

    candidates = [meta.get("scenario"), meta.get("scenario_name")]
    if "scenario" in df.columns and df["scenario"].nunique() == 1:
        candidates.append(str(df["scenario"].iloc[0]))
    sc = None
    for c in candidates:
        if not c:
            continue
        try:
            sc = load_scenario(str(c), overrides=meta.get("overrides") or None)
            break
        except (SimresError, OSError, ValueError):
            continue
    if sc is None:
        return ""
    variants = {**{str(k): dict(v) for k, v in (meta.get("variant_overrides") or {}).items()}}
    if params:
        variants["the sweep"] = {p: None for p in params}
    return figs.html(lambda: plots.topology(sc, variants=variants), alt="topology of the scenario",
                     caption="The scenario behind these results: calls with their policies, faults in red; "
                             "what the sweep and the variants change is named on it.")


def _top(verdict: str, topology: str) -> str:
    """The first screen: the verdict beside the topology (when known)."""
    if not topology:
        return H.section("Verdict", verdict, anchor="verdict")
    return "\n".join(['<section id="verdict">', '<div class="first">', f"<div>\n<h2>Verdict</h2>\n{verdict}\n</div>",
                      f"<div>\n{topology}\n</div>", "</div>", "</section>"])


def _replications_body(df: pd.DataFrame, figs: _Figures, *, reference: str | None, confidence: float,
                       topology: str = "") -> list[str]:
    n = replication_count(df)
    order = list(dict.fromkeys(df["variant"]))
    pal = plots.Palette(order)
    body = [f'<p class="subtitle">{H.esc(f"{len(order)} variant(s), {n} replication(s) each.")}</p>',
            _top(H.bullets([H.esc(s) for s in verdicts(df, reference=reference, confidence=confidence)],
                           cls="verdict"), topology)]
    parts = _comparison_parts(df, confidence=confidence)
    body.append(H.section("Comparison", *parts))
    body.append(H.section("Figures", figs.html(lambda: plots.percentile_bars(df, palette=pal),
                                               alt="latency percentiles",
                                               caption="Latency percentiles per variant (mean, 95 % CI).")))
    return body


def _sweep_body(df: pd.DataFrame, params: list[str], figs: _Figures, *, confidence: float,
                topology: str = "") -> list[str]:
    metrics = sweep_metrics(df)
    varying = [p for p in params if df[p].nunique(dropna=False) > 1]
    keys = ["variant", *varying]
    points = df.groupby(keys, dropna=False).ngroups if keys else 1
    n = int(df.groupby(keys, dropna=False).size().min())
    order = list(dict.fromkeys(df["variant"]))
    pal = plots.Palette(order)
    from simres.reporting.plots._axes import sweep_axes

    zipped = [a.label for a in sweep_axes(df) if len(a.params) > 1]
    together = f" ({'; '.join(zipped)} zipped: varied together)" if zipped else ""
    subtitle = (f"A sweep of {len(varying)} parameter(s){together}: {points} design point(s), {n} replicate(s) "
                "each or more.")
    body = [f'<p class="subtitle">{H.esc(subtitle)}</p>',
            _top(H.bullets([H.esc(s) for s in sweep_verdicts(df)], cls="verdict"), topology)]
    ptab = [[p, ", ".join(map(str, sorted(df[p].dropna().unique().tolist(), key=_sort_key)))] for p in params]
    body.append(H.section("Swept parameters", H.text_table(["parameter", "values"], ptab, text_columns=2,
                                                           sortable=False)))
    body.append(H.section("Design points", _points_table(df, keys, metrics, confidence)))
    out: list[str] = []
    show_variants = len(order) > 1
    axes = sweep_axes(df)  # zipped parameters are one axis
    if len(axes) == 1:
        x = axes[0].params[0]
        for m in metrics:
            out.append(figs.html(lambda m=m: plots.amplification(df, x=x, metric=m, palette=pal),
                                 alt=f"{m} against {axes[0].label}",
                                 caption=f"{plots.metric_name(m)} against {axes[0].label}: mean and {confidence:.0%} "
                                         "CI over replicates" + (", per variant." if show_variants else ".")))
    elif len(axes) >= 2:
        xa, ya = axes[0], axes[1]
        rest = "; one panel per value of " + ", ".join(a.label for a in axes[2:]) if len(axes) > 2 else ""
        for m in metrics:
            out.append(figs.html(lambda m=m: plots.heatmap(df, x=xa.params[0], y=ya.params[0], metric=m),
                                 alt=f"heatmap of {m}",
                                 caption=f"Mean {plots.metric_name(m)} over {xa.label} and {ya.label}{rest}."))
    if {"latency_p99", "success_rate"} <= set(metrics):
        out.append(figs.html(lambda: plots.pareto(df, palette=pal), alt="Pareto front",
                             caption="p99 latency against success rate per design point; filled points are on "
                                     "the Pareto front (no other point is better on both)."))
    if {"latency_p99", "tries_per_request"} <= set(metrics):
        out.append(figs.html(lambda: plots.pareto(df, other="tries_per_request", palette=pal),
                             alt="Pareto front against load",
                             caption="p99 latency against tries per request (extra load) per design point."))
    body.append(H.section("Figures", *out))
    return body


def _sweep_settings(meta: Mapping[str, Any]) -> str:
    """The sweep's recorded settings: scenario, fixed overrides, variants, seed and replicates."""
    rows = [["scenario", H.esc(meta.get("scenario", "-"))], ["root seed", H.esc(meta.get("seed", "-"))],
            ["replicates", H.esc(meta.get("reps", "-"))]]
    for key, value in (meta.get("overrides") or {}).items():
        rows.append(["fixed override", f"<code>{H.esc(key)} = {H.esc(_yaml_value(value))}</code>"])
    for v, ov in (meta.get("variant_overrides") or {}).items():
        text = "<br>".join(f"<code>{H.esc(k)} = {H.esc(_yaml_value(x))}</code>" for k, x in ov.items())
        rows.append([f"variant {H.esc(variant_label(v))}", text or "the scenario as written"])
    return H.table(["setting", "value"], rows, text_columns=2, sortable=False)


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else (1, str(v))


def _points_table(df: pd.DataFrame, keys: list[str], metrics: list[str], confidence: float) -> str:
    from simres.metrics.stats import mean_ci

    show = [k for k in keys if k != "variant" or df["variant"].nunique() > 1]
    rows = []
    groups = df.groupby(keys, dropna=False, sort=True) if keys else [((), df)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        lookup = dict(zip(keys, key))
        row = [H.esc(variant_label(str(lookup[k])) if k == "variant" else lookup[k]) for k in show]
        row.append(str(len(part)))
        for m in metrics:
            ci = mean_ci(part[m].to_numpy(dtype=float), confidence=confidence)
            scale, _ = plots.metric_scale(m)
            text = plots.format_number(ci.mean * scale)
            if math.isfinite(ci.halfwidth):
                text += f" ± {plots.format_number(ci.halfwidth * scale)}"
            row.append(H.esc(text))
        rows.append(row)
    note = ""
    if len(rows) > MAX_TABLE_ROWS:
        note = f'<p class="note">First {MAX_TABLE_ROWS} of {len(rows)} design points.</p>'
        rows = rows[:MAX_TABLE_ROWS]
    header = [H.esc(k if k == "variant" else k.rsplit(".", 1)[-1]) for k in show] + ["runs"]
    header += [H.esc(plots.metric_scale(m)[1]) for m in metrics]
    return H.table(header, rows, text_columns=len(show)) + note
