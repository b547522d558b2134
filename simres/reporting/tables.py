"""The HTML tables of a report: variants side by side with intervals, and recovery shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from simres.experiments.replications import HEADLINE, compare_frame
from simres.reporting import html as H
from simres.reporting import plots
from simres.reporting.plots import variant_label
from simres.reporting.verdicts import recovery_by_variant, replication_count

TABLE_EXTRA = ("latency_all_p99", "error_rate", "timeout_rate", "slo_attainment")
TABLE_PREFIXES = ("amplification:", "herd_peak_to_mean:", "utilization:", "breaker_open_share:")


MAX_TABLE_ROWS = 200




def _table_metrics(cmp: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(cmp["metric"]))
    main = [m for m in (*HEADLINE, *TABLE_EXTRA) if m in present]
    main += [m for m in present if m.startswith(TABLE_PREFIXES) and m not in main]
    return main


def comparison_table(reps_df: pd.DataFrame, *, metrics: Sequence[str] | None = None,
                     confidence: float = 0.95, controls: Sequence[str] = ()) -> str:
    """HTML table: one row per metric, one column per variant, mean ± CI half-width.

    The best variant of each metric with a direction is bold (none for descriptive
    metrics, controls, or when all variants are equal); ``~`` marks a variant not
    significantly different from the best (paired t-test). All-NaN metrics are left out.
    """
    cmp = compare_frame(reps_df, metrics=metrics, confidence=confidence, controls=controls)
    variants = list(dict.fromkeys(reps_df["variant"].fillna("").astype(str)))
    return _comparison_html(cmp, variants, list(metrics) if metrics is not None else None, controls)


def _comparison_html(cmp: pd.DataFrame, variants: Sequence[str], order: Sequence[str] | None,
                     controls: Sequence[str] = ()) -> str:
    cells = {(r.metric, r.variant): r for r in cmp.itertuples(index=False)}
    rows = []
    for m in order if order is not None else list(dict.fromkeys(cmp["metric"])):
        found = [cells.get((m, v)) for v in variants]
        if not any(r is not None and math.isfinite(r.mean) for r in found):
            continue
        scale, label = plots.metric_scale(m)
        unit = f' <span class="note">({H.esc(label.rsplit("(", 1)[-1])}</span>' if label.endswith(")") else ""
        row = [f"<code>{H.esc(m)}</code>{unit}"]
        # compare_frame names no best for a descriptive metric or when all variants are equal
        marked = any(r is not None and r.best for r in found)
        for r in found:
            if r is None or not math.isfinite(r.mean):
                row.append("-")
                continue
            text = plots.format_number(r.mean * scale)
            if math.isfinite(r.halfwidth):
                hw = r.halfwidth if r.halfwidth > 1e-9 * abs(r.mean) else 0.0  # float noise, not spread
                text += f" ± {plots.format_number(hw * scale)}"
            if marked and r.best:
                text = f"<strong>{H.esc(text)}</strong>"
            elif marked and r.variant not in controls:
                text = H.esc(text) + (" ~" if not r.significant and math.isfinite(r.p_value) else "")
            else:
                text = H.esc(text)
            row.append(text)
        rows.append(row)
    heads = [H.esc(variant_label(v)) + (' <span class="note">(control)</span>' if v in controls else "")
             for v in variants]
    return H.table(["metric", *heads], rows)


def _comparison_parts(df: pd.DataFrame, *, confidence: float, controls: Sequence[str] = ()) -> list[str]:
    """The comparison table (headline metrics), its legend, all metrics folded, and the recovery table."""
    cmp = compare_frame(df, confidence=confidence, controls=controls)
    variants = list(dict.fromkeys(df["variant"]))
    n = replication_count(df)
    control = (" Controls (a different workload, not a policy) are shown but never marked." if controls else "")
    parts = [_comparison_html(cmp, variants, _table_metrics(cmp), controls),
             f'<p class="note">Mean ± half-width of the {confidence:.0%} Student-t interval over {n} '
             "replication(s). Bold: best variant on a metric with a direction (none when all are equal; "
             "utilisation, counts, throughput and queue lengths describe load and are never marked); "
             "~: not significantly different from the best (paired t-test across replications with the same "
             f"seeds).{control} Latencies count successful requests only unless named <code>latency_all_*</code> "
             "(every finished request, a failure at the time its client gave up).</p>",
             H.details("All metrics", _comparison_html(cmp, variants, None, controls))]
    rec = recovery_table(df, confidence=confidence)
    if rec:
        parts += ["<h3>Recovery after each fault</h3>", rec]
    return parts


def recovery_table(reps_df: pd.DataFrame, *, confidence: float = 0.95) -> str | None:
    """HTML table of :func:`simres.experiments.replications.recovery_verdicts`, or None without faults."""
    rec = recovery_by_variant(reps_df, confidence=confidence)
    if rec.empty:
        return None
    rows = []
    for r in rec.itertuples(index=False):
        share = "-" if r.n == 0 else f"{r.not_recovered} of {r.n} ({r.lo * 100:.0f}–{r.hi * 100:.0f} %)"
        t = [f"{x:.1f} s" if math.isfinite(x) else "-" for x in (r.recovery_time_p50, r.recovery_time_max)]
        rows.append([r.fault, variant_label(str(r.variant)), share, *t])
    return H.text_table(["fault", "variant", f"did not recover ({confidence:.0%} Wilson CI)",
                         "median recovery time", "max recovery time"], rows, text_columns=2)
