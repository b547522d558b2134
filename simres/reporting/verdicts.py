"""Verdicts: the numbers of a comparison or a sweep turned into plain sentences.

Every sentence is computed from the frame it is given (which variant is best, by how much,
whether the paired difference is significant, how many replications stayed failed), so a
report never carries a hand-written claim.
"""

from __future__ import annotations

import math

import pandas as pd

from simres.errors import SimresError
from simres.experiments.replications import compare_frame, lower_is_better, recovery_verdicts
from simres.reporting import plots
from simres.reporting.plots import variant_label

VERDICT_METRICS = ("success_rate", "latency_p99", "tries_per_request")
"""In verdict order: whether users were served comes before how fast the served ones were."""
"""Metrics a comparison verdict talks about, in this order."""


class VerdictError(SimresError, ValueError):
    """A verdict was asked of a frame that cannot give one (names the input)."""


def format_metric(metric: str, value: float) -> str:
    """A metric value with its unit: ``144 ms`` (``2.5 s`` from a second up), ``34.9 %``, ``1.31``."""
    if value is None or not math.isfinite(value):
        return "-"
    scale, _ = plots.metric_scale(metric)
    if metric.split(":", 1)[0].startswith("latency"):
        return f"{plots.format_number(value * scale)} ms" if value < 1 else f"{plots.format_number(value)} s"
    if plots.is_share(metric):
        v = value * 100
        return f"{v:.2f} %" if 99 < v < 100 or 0 < v < 1 else f"{v:.1f} %"
    return plots.format_number(value)


def replication_count(reps_df: pd.DataFrame) -> int:
    """The fewest replications any variant of ``reps_df`` has."""
    variants = reps_df["variant"].fillna("").astype(str)
    return int(reps_df.groupby(variants).size().min())


def _significance(p_value: float, n: int, confidence: float) -> str:
    if n < 2:
        return "one replication per variant, so no significance test"
    if not math.isfinite(p_value):
        return "no significance test possible"
    verdict = "significant" if p_value < 1 - confidence else f"not significant at the {confidence:.0%} level"
    return f"paired t-test over {n} replications: p = {p_value:.2g}, {verdict}"


def _metric_sentence(metric: str, part: pd.DataFrame, n: int, *, reference: str | None,
                     confidence: float) -> str | None:
    """One sentence comparing the best variant with the reference (or the worst) on ``metric``."""
    part = part.loc[part["mean"].notna()]
    if part.empty:
        return None
    name = plots.metric_name(metric)
    if len(part) == 1:
        r = part.iloc[0]
        ci = "" if not math.isfinite(r["halfwidth"]) else (
            f" ({confidence:.0%} CI {format_metric(metric, r['lo'])} to {format_metric(metric, r['hi'])})")
        return f"{variant_label(r['variant'])}: {name} {format_metric(metric, r['mean'])}{ci}."
    low = lower_is_better(metric)
    best = part.loc[part["best"]].iloc[0]
    others = part.loc[part["variant"] != best["variant"]]
    if reference is not None and reference in set(others["variant"]):
        ref = others.loc[others["variant"] == reference].iloc[0]
    else:
        ref = others.loc[others["mean"].idxmax() if low else others["mean"].idxmin()]
    b, r = float(best["mean"]), float(ref["mean"])
    bl, rl = variant_label(best["variant"]), variant_label(ref["variant"])
    if part["mean"].nunique() == 1:
        return f"All {len(part)} variants have the same {name} ({format_metric(metric, b)})."
    if b == r:
        return f"{bl} and {rl} have the same {name} ({format_metric(metric, b)})."
    values = f"{format_metric(metric, b)} against {format_metric(metric, r)}"
    if plots.is_share(metric):
        change = f"{abs(b - r) * 100:.1f} percentage points"
        verb = "cut" if low else "raised"
        head = f"{bl} {verb} {name} by {change} against {rl}"
    elif r != 0:
        rel = abs(b - r) / abs(r) * 100
        pct = f"{rel:.0f} %" if rel >= 1 else "less than 1 %"
        head = f"{bl} {'cut' if low else 'raised'} {name} by {pct} against {rl}"
    else:
        head = f"{bl} has the {'lowest' if low else 'highest'} {name}"
    sig = _significance(float(ref["p_value"]), n, confidence)
    sentence = f"{head} ({values}; {sig})."
    close = part.loc[(part["variant"] != best["variant"]) & part["p_value"].notna() & ~part["significant"]]
    if len(part) > 2 and len(close):
        names = ", ".join(variant_label(v) for v in close["variant"])
        sentence += f" Not significantly different from {bl} on {name}: {names}."
    return sentence


def verdicts(reps_df: pd.DataFrame, *, reference: str | None = None, confidence: float = 0.95) -> list[str]:
    """Plain-text sentences that sum up a replications frame, computed from its numbers.

    For p99 latency, success rate and (when some variant retried) tries per request: the
    best variant, its change against ``reference`` (default: the worst variant on that
    metric) and whether the paired difference is significant. Then, for every fault, how
    many replications of each variant did not recover.
    """
    if "variant" not in reps_df.columns or reps_df.empty:
        raise VerdictError("reps: expected a replications frame with a 'variant' column and at least one row")
    df = reps_df.copy()
    df["variant"] = df["variant"].fillna("").astype(str)
    n = replication_count(df)
    metrics = [m for m in VERDICT_METRICS if m in df.columns and df[m].notna().any()]
    if "tries_per_request" in metrics and not (df["tries_per_request"] > 1.0 + 1e-9).any():
        metrics.remove("tries_per_request")
    out: list[str] = []
    if metrics:
        cmp = compare_frame(df, metrics=metrics, confidence=confidence)
        for metric in metrics:
            s = _metric_sentence(metric, cmp.loc[cmp["metric"] == metric], n, reference=reference,
                                 confidence=confidence)
            if s:
                out.append(s)
            if metric == "latency_p99" and "success_rate" in metrics and df["variant"].nunique() > 1:
                caution = _latency_caution(df)
                if caution:
                    out.append(caution)
    out.extend(recovery_sentences(df, confidence=confidence))
    return out


def _latency_caution(df: pd.DataFrame) -> str | None:
    """A warning when the fastest variant is fast because it fails (p99 is of successes only)."""
    means = df.groupby("variant")[["latency_p99", "success_rate"]].mean()
    fast, safe = means["latency_p99"].idxmin(), means["success_rate"].idxmax()
    if fast == safe or not means.loc[fast, "success_rate"] < means.loc[safe, "success_rate"]:
        return None
    return (f"Caution: p99 latency counts successful requests only, and {variant_label(fast)} "
            f"succeeds less often ({format_metric('success_rate', means.loc[fast, 'success_rate'])}"
            f" against {format_metric('success_rate', means.loc[safe, 'success_rate'])} "
            f"for {variant_label(safe)}).")


def recovery_by_variant(reps_df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """:func:`~simres.experiments.replications.recovery_verdicts`, faults in column order, variants in order."""
    rec = recovery_verdicts(reps_df, confidence=confidence)
    if rec.empty:
        return rec
    variants = list(dict.fromkeys(reps_df["variant"].fillna("").astype(str)))
    faults = list(dict.fromkeys(rec["fault"]))
    key = rec["fault"].map(faults.index) * len(variants) + rec["variant"].map(variants.index)
    return rec.iloc[key.to_numpy().argsort(kind="stable")].reset_index(drop=True)


def recovery_sentences(reps_df: pd.DataFrame, *, confidence: float = 0.95) -> list[str]:
    """One sentence per fault: how many replications of each variant did not recover."""
    rec = recovery_by_variant(reps_df, confidence=confidence)
    out = []
    for fault, part in rec.groupby("fault", sort=False):
        parts = []
        for r in part.itertuples(index=False):
            v = variant_label(str(r.variant))
            t50 = r.recovery_time_p50
            median = f", median recovery time {t50:.1f} s" if math.isfinite(t50) else ""
            if r.n == 0:
                parts.append(f"{v} could not be judged (the fault ended too close to the end of the run)")
            elif r.not_recovered == 0:
                every = "its only replication" if r.n == 1 else f"all {r.n} replications"
                parts.append(f"{v} recovered in {every}{median}")
            else:
                parts.append(f"{v} did not recover in {r.not_recovered} of {r.n} replications"
                             + (f" (the others: {median[2:]})" if r.not_recovered < r.n and median else ""))
        out.append(f"After {fault}: " + "; ".join(parts) + ".")
    return out



def sweep_metrics(results: pd.DataFrame) -> list[str]:
    """The headline metrics a sweep frame has values for."""
    return [m for m in ("latency_p99", "success_rate", "tries_per_request", "goodput")
            if m in results.columns and results[m].notna().any()]


def sweep_verdicts(results: pd.DataFrame) -> list[str]:
    """Sentences naming a sweep's best design points and its Pareto front, computed from the numbers."""
    df = results.copy()
    df["variant"] = df["variant"].fillna("").astype(str) if "variant" in df.columns else ""
    metrics = sweep_metrics(df)
    if "latency_p99" not in metrics or "success_rate" not in metrics:
        return ["The results hold no latency_p99 and success_rate columns to judge design points by."]
    pts = plots.pareto_points(df)
    params = pts.attrs["parameters"]
    multi = pts["variant"].nunique() > 1

    def where(row: pd.Series) -> str:
        parts = [f"{p.rsplit('.', 1)[-1]}={row[p]}" for p in params]
        if multi:
            parts.insert(0, f"variant {variant_label(str(row['variant']))}")
        return ", ".join(parts) or "the single design point"

    out = []
    fast = pts.loc[pts["latency_p99"].idxmin()]
    safe = pts.loc[pts["success_rate"].idxmax()]
    out.append(f"Lowest p99 latency: {format_metric('latency_p99', fast['latency_p99'])} at {where(fast)} "
               f"(success rate {format_metric('success_rate', fast['success_rate'])}).")
    out.append(f"Highest success rate: {format_metric('success_rate', safe['success_rate'])} at {where(safe)} "
               f"(p99 latency {format_metric('latency_p99', safe['latency_p99'])}).")
    front = pts.loc[pts["front"]].sort_values("latency_p99", kind="stable")
    listed = "; ".join(where(r) for _, r in front.head(5).iterrows())
    more = f" and {len(front) - 5} more" if len(front) > 5 else ""
    out.append(f"{len(front)} of {len(pts)} design points are on the Pareto front of p99 latency and success rate "
               f"(no other point is better on both): {listed}{more}.")
    if "tries_per_request" in metrics:
        tries = df.groupby(["variant", *params], dropna=False)["tries_per_request"].mean()
        if tries.max() > tries.min():
            key = tries.idxmax()
            pt = pd.Series(dict(zip(["variant", *params], key if isinstance(key, tuple) else (key,))))
            out.append(f"Retry amplification ranges from {plots.format_number(tries.min())} to "
                       f"{plots.format_number(tries.max())} tries per request (highest at {where(pt)}).")
    return out
