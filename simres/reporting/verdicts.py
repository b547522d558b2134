"""Verdicts: the numbers of a comparison or a sweep turned into plain sentences.

Every sentence is computed from the frame it is given (which variant is best, by how much,
whether the paired difference is significant, how many replications stayed failed), so a
report never carries a hand-written claim.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import pandas as pd

from simres.errors import SimresError
from simres.experiments.choosing import parse_constraint
from simres.experiments.replications import recovery_verdicts
from simres.metrics.directions import direction
from simres.metrics.stats import PairedDifference, paired_difference
from simres.reporting import plots
from simres.reporting.mechanisms import mechanisms
from simres.reporting.plots import variant_label
from simres.scenario.objectives import Objective

VERDICT_METRICS = ("success_rate", "latency_all_p99", "tries_per_request")
"""Metrics a comparison verdict talks about by default, in this order: whether users were
served, how long every request took (a failure at the time its client gave up), the work."""


class VerdictError(SimresError, ValueError):
    """A verdict was asked of a frame that cannot give one (names the input)."""


def format_metric(metric: str, value: float) -> str:
    """A metric value with its unit: ``144 ms`` (``2.5 s`` from a second up), ``34.9 %``, ``1.31``."""
    if value is None or not math.isfinite(value):
        return "-"
    scale, _ = plots.metric_scale(metric)
    if metric.split(":", 1)[0].startswith(plots.DURATIONS):
        ms = float(f"{value * scale:.3g}")  # 0.9996 s rounds to 1000 ms: say "1 s", never "1e+03 ms"
        return f"{plots.format_number(ms)} ms" if ms < 1000 else f"{plots.format_number(value)} s"
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


def _paired(df: pd.DataFrame, metric: str, a: str, b: str, confidence: float) -> PairedDifference | None:
    x = df.loc[df["variant"] == a].sort_values("replicate")[metric].to_numpy(dtype=float)
    y = df.loc[df["variant"] == b].sort_values("replicate")[metric].to_numpy(dtype=float)
    if len(x) != len(y) or len(x) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return paired_difference(x, y, confidence=confidence)


def _change(metric: str, value: float, ref: float) -> str:
    """``+62.8 percentage points`` for shares, ``-33 %`` otherwise (against ``ref``)."""
    if plots.is_share(metric):
        return f"{(value - ref) * 100:+.1f} percentage points"
    if ref == 0:
        return "from 0"
    rel = (value - ref) / abs(ref) * 100
    return f"{rel:+.0f} %" if abs(rel) >= 1 else "less than 1 %"


def _better(metric: str, a: float, b: float) -> bool:
    """Whether ``a`` is better than ``b`` on ``metric`` (by its registered direction)."""
    way = direction(metric)
    return (a < b) if way == "lower" else (a > b) if way == "higher" else False


def _objective_text(objective: Objective) -> str:
    def one(m: str) -> str:
        way = direction(m)
        word = {"higher": "the highest", "lower": "the lowest"}.get(way or "", "")
        name = plots.metric_name(m)
        note = " (a failed request counts at the time its client gave up)" if m.startswith("latency_all") else ""
        return f"{word} {name}{note}".strip()

    text = ", then ".join(one(m) for m in objective.metrics)
    if objective.subject_to:
        text += ", subject to " + " and ".join(objective.subject_to)
    return text


def verdicts(reps_df: pd.DataFrame, *, reference: str | None = None, confidence: float = 0.95,
             objective: Objective | None = None, controls: Sequence[str] = (),
             events: Mapping[str, pd.DataFrame] | None = None,
             queues: Mapping[str, Mapping[str, int]] | None = None) -> list[str]:
    """Plain-text sentences that sum up a replications frame, computed from its numbers.

    The first sentence states the objective (default: the highest success rate, then the
    lowest p99 latency of all requests), the one reference every comparison is made
    against (default: the first variant that is not a control) and the controls, which are
    shown but never ranked. Then: the variant that is best on the objective, with the
    variants indistinguishable from it; one sentence per metric comparing every ranked
    variant with the reference ("indistinguishable" when the paired interval covers 0,
    and never praising the latency of a variant that fails more); the controls' numbers;
    mechanisms read off the frames (retries that never fired, breakers held open after a
    fault, a budget that ran dry, a bounded queue that never filled; ``events`` maps a variant to
    one run's events frame, ``queues`` a variant to its bounded queues);
    and, for every fault, how many replications of each variant did not recover.
    """
    if "variant" not in reps_df.columns or reps_df.empty:
        raise VerdictError("reps: expected a replications frame with a 'variant' column and at least one row")
    objective = objective or Objective()
    df = reps_df.copy()
    df["variant"] = df["variant"].fillna("").astype(str)
    order = list(dict.fromkeys(df["variant"]))
    controls = [c for c in controls if c in order]
    ranked = [v for v in order if v not in controls]
    if reference is not None and reference not in order:
        raise VerdictError(f"reference: '{reference}' is not one of the compared variants ({', '.join(order)})")
    if reference is not None and reference in controls:
        raise VerdictError(f"reference: '{reference}' is a control; a control is never ranked")
    n = replication_count(df)
    metrics = [m for m in dict.fromkeys([*objective.metrics, *VERDICT_METRICS])
               if m in df.columns and df[m].notna().any() and direction(m) is not None]
    if "tries_per_request" in metrics and not (df["tries_per_request"] > 1.0 + 1e-9).any():
        metrics.remove("tries_per_request")
    out: list[str] = []
    if len(ranked) < 2:
        for v in order:
            vals = ", ".join(f"{plots.metric_name(m)} {format_metric(m, df.loc[df.variant == v, m].mean())}"
                             for m in metrics)
            if vals:
                out.append(f"{variant_label(v)}{' (control)' if v in controls else ''}: {vals}.")
        out.extend(recovery_sentences(df, confidence=confidence, controls=controls))
        return out
    ref = reference if reference is not None else ranked[0]
    head = f"Objective: {_objective_text(objective)}. Every comparison is against {variant_label(ref)}"
    head += " (the reference)." if reference is not None else " (the reference: the first variant)."
    if controls:
        head += (f" {_join([variant_label(c) for c in controls])} "
                 f"{'is a control' if len(controls) == 1 else 'are controls'}: shown, never ranked.")
    out.append(head)
    winner = _objective_winner(df, ranked, objective, confidence, n)
    if winner:
        out.append(winner)
    for metric in metrics:
        s = _versus_sentence(df, metric, ranked, ref, n, confidence)
        if s:
            out.append(s)
    caution = _latency_caution(df, ranked, confidence)
    if caution:
        out.append(caution)
    for c in controls:
        vals = "; ".join(f"{plots.metric_name(m)} {format_metric(m, df.loc[df.variant == c, m].mean())}"
                         for m in metrics)
        out.append(f"Control {variant_label(c)} (a different workload, not ranked): {vals}.")
    out.extend(mechanisms(df, events=events, queues=queues))
    out.extend(recovery_sentences(df, confidence=confidence, controls=controls))
    return out


def _join(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _objective_winner(df: pd.DataFrame, ranked: Sequence[str], objective: Objective, confidence: float,
                      n: int) -> str | None:
    """Lexicographic: the best on the primary, then among those indistinguishable from it, the next metric.

    Only variants that meet every ``subject_to`` constraint on their mean over the
    replications (as ``simres best`` does by default) can win; the others are named.
    """
    cands = list(ranked)
    steps: list[str] = []
    if objective.subject_to:
        failing: list[str] = []
        for text in objective.subject_to:
            c = parse_constraint(text)
            if c.metric not in df.columns:
                return f"Best on the objective: none; the constraint {c} names a metric these runs do not have."
            means = df.groupby("variant")[c.metric].mean()
            bad = [v for v in cands if not c.holds(float(means.get(v, float("nan"))))]
            failing += [f"{variant_label(v)} ({plots.metric_name(c.metric)} {format_metric(c.metric, means.get(v))})"
                        for v in bad]
            cands = [v for v in cands if v not in bad]
        if not cands:
            return (f"Best on the objective: none; no variant meets {' and '.join(objective.subject_to)}: "
                    + "; ".join(failing) + ".")
        if failing:
            steps.append(f"{_join(failing)} {'fails' if len(failing) == 1 else 'fail'} "
                         f"{' and '.join(objective.subject_to)}")
    decided: str | None = None
    for m in objective.metrics:
        if m not in df.columns or direction(m) is None or not df[m].notna().any():
            continue
        means = df.groupby("variant")[m].mean().reindex(cands).dropna()
        if means.empty:
            continue
        top = str(means.idxmin() if direction(m) == "lower" else means.idxmax())
        tied = [v for v in means.index if v != top and not _distinct(df, m, v, top, confidence, n)]
        if tied:
            group = [v for v in cands if v in {top, *tied}]
            same = means[group].nunique() == 1
            vals = f"{format_metric(m, means[top])} each" if same else ", ".join(
                f"{variant_label(v)} {format_metric(m, means[v])}" for v in group)
            who = "all of them" if len(group) == len(ranked) else _join([variant_label(v) for v in group])
            steps.append(f"{who} {'are' if len(group) > 1 else 'is'} indistinguishable on "
                         f"{plots.metric_name(m)} ({vals})")
            cands = group
        else:
            cands, decided = [top], m
            break
    if decided is None:
        return (f"Best on the objective: none; {_join([variant_label(v) for v in cands])} cannot be told apart "
                f"over {n} replications: " + "; ".join(steps) + ".")
    best = cands[0]
    value = format_metric(decided, df.loc[df.variant == best, decided].mean())
    if not steps:
        return f"Best on the objective: {variant_label(best)} ({plots.metric_name(decided)} {value})."
    return (f"Best on the objective: {variant_label(best)}: " + "; ".join(steps)
            + f"; of these it has the best {plots.metric_name(decided)} ({value}).")


def _distinct(df: pd.DataFrame, metric: str, a: str, b: str, confidence: float, n: int) -> bool:
    d = _paired(df, metric, a, b, confidence)
    if d is None or not math.isfinite(d.p_value):
        ma, mb = df.loc[df.variant == a, metric].mean(), df.loc[df.variant == b, metric].mean()
        return n < 2 and ma != mb
    return d.p_value < 1 - confidence


def _versus_sentence(df: pd.DataFrame, metric: str, ranked: Sequence[str], ref: str, n: int,
                     confidence: float) -> str | None:
    """Every ranked variant against the reference on one metric, best first."""
    means = df.groupby("variant")[metric].mean()
    if ref not in means or not math.isfinite(means[ref]):
        return None
    r = float(means[ref])
    name = plots.metric_name(metric)
    others = [v for v in ranked if v != ref and v in means and math.isfinite(means[v])]
    if not others:
        return None
    low = direction(metric) == "lower"
    others.sort(key=lambda v: means[v] if low else -means[v])
    succ = df.groupby("variant")["success_rate"].mean() if "success_rate" in df.columns else None
    better, same, worse = [], [], []
    for v in others:
        m = float(means[v])
        txt = f"{variant_label(v)} {format_metric(metric, m)} ({_change(metric, m, r)})"
        if not _distinct(df, metric, v, ref, confidence, n):
            same.append(f"{variant_label(v)} ({format_metric(metric, m)})")
        elif _better(metric, m, r):
            if (metric.startswith("latency") and succ is not None
                    and _distinct(df, "success_rate", v, ref, confidence, n) and succ[v] < succ[ref]):
                txt += (f", but it fails more (success rate {format_metric('success_rate', succ[v])} against "
                        f"{format_metric('success_rate', succ[ref])}), so this is no gain")
                worse.append(txt)
            else:
                better.append(txt)
        else:
            worse.append(txt)
    parts = []
    if better:
        parts.append(f"better: {'; '.join(better)}")
    if worse:
        parts.append(f"worse: {'; '.join(worse)}")
    if same:
        parts.append(f"indistinguishable from it: {', '.join(same)}")
    test = (f"paired t-test over {n} replications at the {confidence:.0%} level" if n >= 2
            else "one replication, so no significance test")
    return (f"{name[:1].upper()}{name[1:]} against {variant_label(ref)} ({format_metric(metric, r)}; "
            f"{test}): " + "; ".join(parts) + ".")


def _latency_caution(df: pd.DataFrame, ranked: Sequence[str], confidence: float) -> str | None:
    """When the lowest p99 of successful requests belongs to a variant that fails more, say so."""
    if not {"latency_p99", "success_rate"} <= set(df.columns):
        return None
    means = df.loc[df["variant"].isin(ranked)].groupby("variant")[["latency_p99", "success_rate"]].mean()
    means = means.dropna()
    if len(means) < 2:
        return None
    fast, safe = means["latency_p99"].idxmin(), means["success_rate"].idxmax()
    if fast == safe or not means.loc[fast, "success_rate"] < means.loc[safe, "success_rate"]:
        return None
    return (f"Not a gain: {variant_label(fast)} has the lowest p99 latency of successful requests "
            f"({format_metric('latency_p99', means.loc[fast, 'latency_p99'])}, against "
            f"{format_metric('latency_p99', means.loc[safe, 'latency_p99'])} for {variant_label(safe)}), but it "
            f"fails more: success rate {format_metric('success_rate', means.loc[fast, 'success_rate'])} against "
            f"{format_metric('success_rate', means.loc[safe, 'success_rate'])}. A latency of successes alone "
            "leaves the failures out.")


def recovery_by_variant(reps_df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """:func:`~simres.experiments.replications.recovery_verdicts`, faults in column order, variants in order."""
    rec = recovery_verdicts(reps_df, confidence=confidence)
    if rec.empty:
        return rec
    variants = list(dict.fromkeys(reps_df["variant"].fillna("").astype(str)))
    faults = list(dict.fromkeys(rec["fault"]))
    key = rec["fault"].map(faults.index) * len(variants) + rec["variant"].map(variants.index)
    return rec.iloc[key.to_numpy().argsort(kind="stable")].reset_index(drop=True)


def recovery_sentences(reps_df: pd.DataFrame, *, confidence: float = 0.95,
                       controls: Sequence[str] = ()) -> list[str]:
    """One sentence per fault: how many replications of each variant did not recover."""
    rec = recovery_by_variant(reps_df, confidence=confidence)
    out = []
    for fault, part in rec.groupby("fault", sort=False):
        parts = []
        for r in part.itertuples(index=False):
            v = variant_label(str(r.variant)) + (" (control)" if str(r.variant) in controls else "")
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
    """Sentences naming a sweep's best design points and its Pareto front, computed from the numbers.

    Success comes first (the default objective); latency is that of all finished requests
    when the results have it (``latency_all_p99``), and a fast point that fails more than
    the most successful one is said to be no gain.
    """
    df = results.copy()
    df["variant"] = df["variant"].fillna("").astype(str) if "variant" in df.columns else ""
    metrics = sweep_metrics(df)
    if "latency_p99" not in metrics or "success_rate" not in metrics:
        return ["The results hold no latency_p99 and success_rate columns to judge design points by."]
    lat = "latency_all_p99" if "latency_all_p99" in df.columns and df["latency_all_p99"].notna().any() \
        else "latency_p99"
    pts = plots.pareto_points(df, latency=lat)
    params = pts.attrs["parameters"]
    multi = pts["variant"].nunique() > 1
    lname = plots.metric_name(lat)

    def where(row: pd.Series) -> str:
        parts = [f"{p.rsplit('.', 1)[-1]}={row[p]}" for p in params]
        if multi:
            parts.insert(0, f"variant {variant_label(str(row['variant']))}")
        return ", ".join(parts) or "the single design point"

    out = []
    fast = pts.loc[pts[lat].idxmin()]
    safe = pts.loc[pts["success_rate"].idxmax()]
    out.append(f"Highest success rate: {format_metric('success_rate', safe['success_rate'])} at {where(safe)} "
               f"({lname} {format_metric(lat, safe[lat])}).")
    line = (f"Lowest {lname}: {format_metric(lat, fast[lat])} at {where(fast)} "
            f"(success rate {format_metric('success_rate', fast['success_rate'])})")
    if fast["success_rate"] < safe["success_rate"]:
        line += ", but it fails more than the most successful point, so its latency alone is no gain"
    out.append(line + ".")
    front = pts.loc[pts["front"]].sort_values(lat, kind="stable")
    listed = "; ".join(where(r) for _, r in front.head(5).iterrows())
    more = f" and {len(front) - 5} more" if len(front) > 5 else ""
    out.append(f"{len(front)} of {len(pts)} design points are on the Pareto front of {lname} and success rate "
               f"(no other point is better on both): {listed}{more}.")
    if "tries_per_request" in metrics:
        tries = df.groupby(["variant", *params], dropna=False)["tries_per_request"].mean()
        if tries.max() > tries.min():
            key = tries.idxmax()
            pt = pd.Series(dict(zip(["variant", *params], key if isinstance(key, tuple) else (key,))))
            out.append(f"Retry amplification ranges from {plots.format_number(tries.min())} to "
                       f"{plots.format_number(tries.max())} tries per request (highest at {where(pt)}).")
    return out
