"""Mechanisms read off the frames: why a variant did what it did, in a sentence each.

Each function looks for one pattern in a replications frame (and, where given, one run's
events per variant) and says it only when the numbers show it: retries that never fired,
retries that multiplied the load, breakers that stayed open after a fault ended, a retry
budget that ran dry. Nothing here is written by hand about a particular scenario.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from simres.metrics.faults import fault_intervals
from simres.reporting.plots import variant_label

_OPEN = 1.0  # the value of a breaker event whose new state is open (0 closed, 2 half-open)


def mechanisms(reps_df: pd.DataFrame, *, events: Mapping[str, pd.DataFrame] | None = None,
               queues: Mapping[str, Mapping[str, int]] | None = None) -> list[str]:
    """The mechanism sentences for a replications frame (``variant`` as text), in a fixed order.

    ``events`` maps a variant to one run's events frame; ``queues`` maps a variant to its
    bounded queues (service -> capacity per instance).
    """
    out = _retries(reps_df)
    for variant, bounded in (queues or {}).items():
        out += _queues(reps_df, str(variant), bounded)
    for variant, ev in (events or {}).items():
        if ev is None or ev.empty:
            continue
        out += _breakers_after_faults(str(variant), ev)
        out += _budget_dry(str(variant), ev)
    return out


def _retries(df: pd.DataFrame) -> list[str]:
    if "tries_per_request" not in df.columns:
        return []
    tries = df.groupby("variant", sort=False)["tries_per_request"]
    hi, mean = tries.max(), tries.mean()
    if not (hi > 1 + 1e-9).any():
        return ["No variant retried (at most 1 try per request in every replication)."]
    out = []
    never = [str(v) for v in mean.index if hi[v] <= 1 + 1e-9]
    if never:
        names = ", ".join(variant_label(v) for v in never)
        out.append(f"Retries never fired in {names} (at most 1 try per request in every replication).")
    storm = mean[mean >= 2.0].sort_values(ascending=False)
    if len(storm):
        listed = ", ".join(f"{variant_label(str(v))} {t:.2f}" for v, t in storm.items())
        out.append(f"Retries multiplied the offered load (tries per request): {listed}.")
    return out


def _queues(df: pd.DataFrame, variant: str, bounded: Mapping[str, int]) -> list[str]:
    """Whether a variant's bounded queues ever filled: any request rejected in any replication."""
    if "rejected_rate" not in df.columns or not bounded:
        return []
    rej = df.loc[df["variant"] == variant, "rejected_rate"].dropna()
    if rej.empty:
        return []
    where = ", ".join(f"{s} ({c} per instance)" for s, c in bounded.items())
    if (rej == 0).all():
        return [f"In {variant_label(variant)}, the bounded queue of {where} never filled: no request was "
                "rejected in any replication."]
    return [f"In {variant_label(variant)}, the bounded queue of {where} filled: {rej.mean() * 100:.1f} % of "
            "requests were rejected at once instead of waiting."]


def _breakers_after_faults(variant: str, events: pd.DataFrame) -> list[str]:
    """For each fault that ended: how long after its end some breaker of ``variant`` was still open."""
    br = events.loc[events["kind"] == "breaker"].sort_values("time", kind="stable")
    if br.empty:
        return []
    faults = fault_intervals(events)
    if faults.empty:
        return []
    out = []
    for f in faults.itertuples(index=False):
        end = float(f.end)
        if not math.isfinite(end):
            continue
        held = 0.0
        for _, part in br.groupby("component", sort=False):
            before = part.loc[part["time"] <= end]
            open_at_end = len(before) and float(before["value"].iloc[-1]) != 0.0
            after = part.loc[part["time"] > end]
            if not open_at_end and not (after["value"] == _OPEN).any():
                continue
            closes = after.loc[after["value"] == 0.0, "time"]
            last_close = float(closes.iloc[-1]) if len(closes) else math.inf
            if len(after) and float(after["value"].iloc[-1]) != 0.0:
                last_close = math.inf
            held = max(held, last_close - end)
        if held > 0:
            tail = "until the end of the run" if math.isinf(held) else f"{held:.1f} s after it ended"
            out.append(f"In {variant_label(variant)}'s run, breakers were still open {tail} ({f.fault}).")
    return out


def _budget_dry(variant: str, events: pd.DataFrame) -> list[str]:
    rows = events.loc[events["kind"] == "budget_denied"]
    if rows.empty:
        return []
    denied = rows["time"]
    hedges = int((rows["detail"].astype(object) == "hedge").sum())
    what = f"{len(denied)} retries denied" if not hedges else (
        f"{len(denied) - hedges} retries and {hedges} hedges denied")
    return [f"In {variant_label(variant)}'s run, the retry budget ran dry at t = {float(denied.min()):.1f} s "
            f"({what})."]
