"""Shared machinery for the scenario tests: replications with common random numbers and
window metrics computed from the run frames.

Each test module runs its scenario once per (variant, replicate) in a module-scoped
fixture, reduces every run to a flat row of numbers with a ``measure`` function (so the
frames are dropped at once and memory stays small), and the tests assert on that table.
Replicate seeds come from :func:`simres.rng.replication_seeds`, exactly as
``simres run NAME --all-variants --reps N`` uses them, so a test failure can be reproduced
from the command line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from simres.experiments.runs import RunResult, run
from simres.outcomes import SUCCESS_OUTCOMES
from simres.rng import replication_seeds
from simres.scenario.loading import load_scenario

Measure = Callable[[RunResult], Mapping[str, float]]


def replicate_frames(name: str, variants: Sequence[str], reps: int, measure: Measure, *,
                     overrides: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Run ``reps`` replications of each variant and return one row per run.

    Columns: ``variant``, ``replicate``, ``seed``, ``wall_time``, every summary key, and
    whatever ``measure(result)`` returns (computed while the frames are still in memory).
    """
    base = load_scenario(name, overrides=overrides)
    seeds = replication_seeds(base.seed, reps)
    rows = []
    for variant in variants:
        for i, seed in enumerate(seeds):
            res = run(base, seed=seed, variant=variant)
            row: dict[str, Any] = {"variant": variant, "replicate": i, "seed": seed,
                                   "wall_time": res.wall_time}
            row.update(res.summary)
            row.update(measure(res))
            rows.append(row)
    return pd.DataFrame(rows)


def of(df: pd.DataFrame, variant: str, column: str) -> np.ndarray:
    """The values of ``column`` for one variant, in replicate order."""
    part = df[df["variant"] == variant].sort_values("replicate")
    return part[column].to_numpy(dtype=float)


def in_window(requests: pd.DataFrame, t0: float, t1: float, **eq: str) -> pd.DataFrame:
    """Requests that start in ``[t0, t1)`` (and whose columns equal ``eq``, e.g. client=)."""
    mask = (requests["start"] >= t0) & (requests["start"] < t1)
    for col, value in eq.items():
        mask &= requests[col].astype(str) == value
    return requests[mask]


def success_share(requests: pd.DataFrame, t0: float, t1: float, **eq: str) -> float:
    """Share of the requests starting in ``[t0, t1)`` that succeeded (NaN if none)."""
    w = in_window(requests, t0, t1, **eq)
    if len(w) == 0:
        return float("nan")
    return float(w["outcome"].isin(SUCCESS_OUTCOMES).mean())


def outcome_share(requests: pd.DataFrame, outcome: str, t0: float, t1: float, **eq: str) -> float:
    """Share of the requests starting in ``[t0, t1)`` that ended with ``outcome``."""
    w = in_window(requests, t0, t1, **eq)
    return float((w["outcome"].astype(str) == outcome).mean()) if len(w) else float("nan")


def success_latency(requests: pd.DataFrame, t0: float, t1: float, q: float, **eq: str) -> float:
    """Quantile ``q`` of the latency of successful requests starting in ``[t0, t1)``."""
    w = in_window(requests, t0, t1, **eq)
    lat = w.loc[w["outcome"].isin(SUCCESS_OUTCOMES), "latency"]
    return float(lat.quantile(q)) if len(lat) else float("nan")


def client_tries(requests: pd.DataFrame, attempts: pd.DataFrame, t0: float, t1: float) -> float:
    """Client-level tries sent per request, for requests starting in ``[t0, t1)``."""
    w = in_window(requests, t0, t1)
    if len(w) == 0:
        return float("nan")
    a = attempts[attempts["request_id"].isin(w["request_id"]) & attempts["sent"]
                 & (attempts["depth"] == 0)]
    return len(a) / len(w)


def tries_started(attempts: pd.DataFrame, service: str, t0: float, t1: float) -> pd.DataFrame:
    """Tries sent to ``service`` that started in ``[t0, t1)``."""
    a = attempts
    return a[(a["service"].astype(str) == service) & a["sent"] & (a["start"] >= t0) & (a["start"] < t1)]


def arrivals_per_window(attempts: pd.DataFrame, service: str, t0: float, t1: float,
                        window: float) -> np.ndarray:
    """Tries sent to ``service`` per ``window`` seconds over ``[t0, t1)`` (empty windows included)."""
    a = tries_started(attempts, service, t0, t1)
    n = round((t1 - t0) / window)
    idx = np.floor((a["start"].to_numpy(dtype=float) - t0) / window).astype(int)
    return np.bincount(idx[(idx >= 0) & (idx < n)], minlength=n)


def fault_window(result: RunResult, fault: str) -> tuple[float, float]:
    """(start, end) of a fault from the events frame."""
    ev = result.events
    comp = ev["component"].astype(str)
    start = ev[(ev["kind"] == "fault_start") & (comp == fault)]["time"]
    end = ev[(ev["kind"] == "fault_end") & (comp == fault)]["time"]
    return float(start.iloc[0]), float(end.iloc[0]) if len(end) else float("nan")


def breaker_transitions(result: RunResult, callee: str) -> pd.DataFrame:
    """Breaker events on calls to ``callee``: time, component, old and new state."""
    ev = result.events
    br = ev[(ev["kind"] == "breaker") & ev["component"].astype(str).str.contains(f"->{callee}", regex=False)]
    states = br["detail"].astype(str).str.split(":", n=1).str[0].str.split("->", n=1)
    return pd.DataFrame({"time": br["time"].to_numpy(dtype=float),
                         "component": br["component"].astype(str).to_numpy(),
                         "old": states.str[0].to_numpy(), "new": states.str[1].to_numpy()})
