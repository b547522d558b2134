"""The one-row summary of a run: every headline metric as a flat ``dict[str, float]``.

Keys are stable names; a metric of one service, client, priority, breaker link or fault
is ``"metric:name"`` (``utilization:api``, ``success_rate:priority=critical``,
``recovered:db_partition``, ``herd_peak_to_mean:api@db_partition``). docs/metrics.md
lists every key with its formula. A value that is undefined for the run (no successes,
no fault...) is NaN, never a made-up 0.

Steady-state metrics cover the requests that *start* in ``[warmup, duration)`` and the
tries on their behalf; per-second rates divide by ``duration - warmup``. Recovery and
herd metrics are anchored at the faults instead and look at all requests and tries.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from simres.metrics._common import (
    QUANTILES,
    MetricsError,
    factorize,
    finished_mask,
    in_interval,
    labels_of,
    priority_labels,
    success_mask,
)
from simres.metrics.amplification import attempts_of, retry_amplification, work_per_success
from simres.metrics.breaker import breaker_events, breaker_link_shares
from simres.metrics.herd import herd_after_faults, herd_stats
from simres.metrics.latency import latency_by, latency_percentiles
from simres.metrics.rates import (
    outcome_shares,
    outcome_shares_by,
    slo_attainment,
    tries_per_second,
)
from simres.metrics.recovery import recovery, stable_at_end
from simres.metrics.utilization import service_load

RATE_KEYS: dict[str, str] = {
    "error_rate": "error",
    "timeout_rate": "timeout",
    "connect_timeout_rate": "connect_timeout",
    "connection_rate": "connection",
    "rejected_rate": "rejected",
    "shed_rate": "shed",
    "throttled_rate": "throttled",
    "breaker_open_rate": "breaker_open",
    "bulkhead_full_rate": "bulkhead_full",
    "unfinished_rate": "unfinished",
    "degraded_rate": "degraded",
}
"""Summary key -> the request outcome whose share it is."""

HERD_WINDOW = 0.1
"""Window (s) of the arrival counts behind the peak-to-mean and herd keys."""
HERD_PERIOD = 10.0
"""Seconds after a fault's end that the ``herd_*`` keys look at."""
RECOVERY_WINDOW = 1.0
"""Window (s) of the success-rate / p99 series behind the recovery keys."""
RECOVERY_HOLD = 5.0
"""Seconds a recovery must hold to count (``recovery`` defaults otherwise)."""


def summarize(requests: pd.DataFrame, attempts: pd.DataFrame, timeline: pd.DataFrame,
              events: pd.DataFrame, *, warmup: float, duration: float,
              slo: float | None = None, breaker_links: set[str] | None = None) -> dict[str, float]:
    """Summarise one run as a flat dict of floats (see the module docstring and docs/metrics.md).

    Args:
        requests, attempts, timeline, events: the run's frames (columns in docs/metrics.md).
        warmup: start of the steady-state window (s); earlier requests are excluded.
        duration: end of the run's arrivals (s); the steady state is ``[warmup, duration)``.
        slo: latency target (s) for ``slo_attainment``; omitted from the dict when None.
        breaker_links: the ``caller->callee`` links that have a breaker; only they get breaker
            keys. None = every link seen in ``attempts`` (for frames without a scenario).
    """
    if not (np.isfinite(warmup) and np.isfinite(duration) and 0 <= warmup < duration):
        raise MetricsError(f"warmup: must satisfy 0 <= warmup < duration, got warmup={warmup!r}, "
                           f"duration={duration!r}")
    span = duration - warmup
    out: dict[str, float] = {}
    measured = requests.loc[in_interval(requests["start"], warmup, duration)]
    ok = success_mask(measured["outcome"])
    n = len(measured)
    out["count"] = float(n)
    out["ok"] = float(ok.sum())
    out["success_rate"] = float(ok.sum() / n) if n else np.nan
    out["goodput"] = float(ok.sum() / span)
    out["throughput"] = float(finished_mask(measured).sum() / span)
    lat = latency_percentiles(measured, population="success")
    lat_all = latency_percentiles(measured, population="all")
    for stat in ("mean", *(name for name, _ in QUANTILES), "max"):
        out[f"latency_{stat}"] = lat[stat]
    for stat in ("mean", *(name for name, _ in QUANTILES), "max"):
        out[f"latency_all_{stat}"] = lat_all[stat]
    if slo is not None:
        out["slo_attainment"] = slo_attainment(measured, target=slo)

    shares = outcome_shares(measured)
    for key, outcome in RATE_KEYS.items():
        out[key] = shares[outcome]
    _per_group(out, requests, measured)

    own = attempts_of(attempts, measured)
    sent = own["sent"].to_numpy(dtype=bool)
    depth0 = own["depth"].to_numpy(dtype=np.int64) == 0
    out["tries_per_request"] = float((sent & depth0).sum() / n) if n else np.nan
    out["tries_per_success"] = float(sent.sum() / ok.sum()) if ok.sum() else np.nan
    out["work_per_success"] = work_per_success(measured, own) if "parent_try" in own.columns else np.nan
    _per_service(out, attempts, own, timeline, warmup=warmup, duration=duration)
    _breakers(out, requests, attempts, events, warmup=warmup, duration=duration,
              breaker_links=breaker_links)
    _faults(out, requests, attempts, events, warmup=warmup, duration=duration)
    if "cache_lookups" in timeline.columns:
        cache_keys(out, timeline, warmup=warmup, duration=duration)
    _autoscale(out, timeline, events, warmup=warmup, duration=duration)
    if len(events):
        starts = requests["start"].to_numpy(dtype=float)
        window = requests["request_id"].to_numpy(dtype=float)[(starts >= warmup) & (starts < duration)]
        saga_keys(out, timeline, events, lambda ids: np.isin(ids, window))
    return out


SAGA_ENDS = ("saga_completed", "saga_compensated", "saga_inconsistent")
"""The events that end a saga (see :mod:`simres.model.saga`)."""


def saga_keys(out: dict[str, float], timeline: pd.DataFrame, events: pd.DataFrame,
              in_window: Callable[[np.ndarray], np.ndarray]) -> None:
    """``sagas_completed``/``_compensated``/``_inconsistent`` (shares of the sagas whose request
    started in ``[warmup, duration)``, a saga still running at the end in none of the three) and
    ``saga_partial_time_p50``/``_p99``: from the first step's success (``saga_partial``) to the
    saga's end, or to the run's end for an inconsistent or unfinished saga; 0 when no step succeeded.
    Only for runs with saga events. ``in_window(ids)`` tells which request ids started in that
    window (from the requests frame, or, in summary mode, from the first id at ``warmup``:
    ids are handed out in start order)."""
    if not len(events):
        return
    kinds = events["kind"].astype(str).to_numpy()
    is_end = np.isin(kinds, SAGA_ENDS)
    is_partial = kinds == "saga_partial"
    if not (is_end.any() or is_partial.any()):
        return
    rid = events["value"].to_numpy(dtype=float)
    times = events["time"].to_numpy(dtype=float)
    saga_ids = np.unique(rid[is_end | is_partial])
    measured = set(saga_ids[in_window(saga_ids)].tolist())
    n = len(measured)
    end_kind = {r: k for r, k in zip(rid[is_end].tolist(), kinds[is_end].tolist(), strict=True)}
    end_time = {r: t for r, t in zip(rid[is_end].tolist(), times[is_end].tolist(), strict=True)}
    partial_at = {r: t for r, t in zip(rid[is_partial].tolist(), times[is_partial].tolist(), strict=True)}
    tl = np.unique(timeline["time"].to_numpy(dtype=float)) if len(timeline) else np.array([])
    run_end = float(tl[-1] + (tl[-1] - tl[-2])) if len(tl) > 1 else float(times.max())
    run_end = max(run_end, float(times.max()))
    for key in SAGA_ENDS:
        count = sum(1 for r in measured if end_kind.get(r) == key)
        out["sagas_" + key.removeprefix("saga_")] = float(count / n) if n else np.nan
    partial = []
    for r in measured:
        t0 = partial_at.get(r)
        if t0 is None:
            partial.append(0.0)
            continue
        kind = end_kind.get(r)
        t1 = end_time[r] if kind in ("saga_completed", "saga_compensated") else run_end
        partial.append(t1 - t0)
    arr = np.asarray(partial, dtype=float)
    out["saga_partial_time_p50"] = float(np.quantile(arr, 0.5)) if n else np.nan
    out["saga_partial_time_p99"] = float(np.quantile(arr, 0.99)) if n else np.nan


def cache_keys(out: dict[str, float], timeline: pd.DataFrame, *, warmup: float, duration: float) -> None:
    """``cache_hit_ratio:<svc>`` and ``cache_backend_load:<svc>`` (backend calls per lookup) over the
    timeline buckets that start in ``[warmup, duration)``, for each service with a cache (the
    ``cache_*`` timeline columns); also used by ``record: summary`` runs."""
    t = timeline["time"].to_numpy(dtype=float)
    rows = timeline.loc[(t >= warmup) & (t < duration) & timeline["cache_lookups"].notna().to_numpy()]
    if rows.empty:
        return
    sums = rows.groupby(rows["service"].astype(str))[["cache_lookups", "cache_hits", "cache_backend"]].sum()
    for svc, (lookups, hits, backend) in sums.iterrows():
        out[f"cache_hit_ratio:{svc}"] = float(hits / lookups) if lookups else np.nan
        out[f"cache_backend_load:{svc}"] = float(backend / lookups) if lookups else np.nan


def _autoscale(out: dict[str, float], timeline: pd.DataFrame, events: pd.DataFrame, *,
               warmup: float, duration: float) -> None:
    """Per autoscaled service (one with ``scale`` events): ``instances_mean``/``instances_max``
    (ready instances over the timeline buckets in ``[warmup, duration)``) and
    ``scale_events`` (decisions in that window that changed the desired count)."""
    if "ready" not in timeline.columns or not len(events):
        return
    scale = events[events["kind"].astype(str) == "scale"]
    if not len(scale):
        return
    t = timeline["time"].to_numpy(dtype=float)
    window = (t >= warmup) & (t < duration)
    services = timeline["service"].astype(str).to_numpy()
    for svc, ev in scale.groupby(scale["component"].astype(str), observed=True, sort=True):
        rows = window & (services == svc)
        ready = timeline["ready"].to_numpy(dtype=float)[rows]
        out[f"instances_mean:{svc}"] = float(ready.mean()) if len(ready) else np.nan
        out[f"instances_max:{svc}"] = float(ready.max()) if len(ready) else np.nan
        desired = ev["value"].to_numpy(dtype=float)
        times = ev["time"].to_numpy(dtype=float)
        first = timeline.loc[services == svc, "desired"].to_numpy(dtype=float)
        before = np.concatenate([[first[0] if len(first) else np.nan], desired[:-1]])
        changed = (desired != before) & (times >= warmup) & (times < duration)
        out[f"scale_events:{svc}"] = float(changed.sum())


def _per_group(out: dict[str, float], requests: pd.DataFrame, measured: pd.DataFrame) -> None:
    """``success_rate``/``latency_p99`` (and ``shed_rate`` per priority) per priority and client."""
    for by in ("priority", "client"):
        labels = priority_labels(requests[by]) if by == "priority" else labels_of(requests[by])
        shares = outcome_shares_by(measured, by=by).reindex(labels)
        p99 = latency_by(measured, by=by)["p99"].reindex(labels)
        for label in labels:
            out[f"success_rate:{by}={label}"] = float(shares.at[label, "success_rate"])
            out[f"latency_p99:{by}={label}"] = float(p99.at[label])
            if by == "priority":
                for outcome in ("shed", "rejected", "throttled"):
                    out[f"{outcome}_rate:{by}={label}"] = float(shares.at[label, outcome])


def _per_service(out: dict[str, float], attempts: pd.DataFrame, own: pd.DataFrame,
                 timeline: pd.DataFrame, *, warmup: float, duration: float) -> None:
    """Amplification, tries/s, peak-to-mean, utilisation and queue length per service."""
    services = sorted(set(labels_of(attempts["service"])) | set(labels_of(timeline["service"])))
    amp = retry_amplification(own)["amplification"].reindex(services)
    tps = tries_per_second(attempts, t0=warmup, t1=duration).reindex(services).fillna(0.0)
    herd = herd_stats(attempts, t0=warmup, t1=duration, window=HERD_WINDOW).reindex(services)
    load = service_load(timeline, t0=warmup, t1=duration).reindex(services)
    for svc in services:
        out[f"amplification:{svc}"] = float(amp.at[svc])
        out[f"tries_per_s:{svc}"] = float(tps.at[svc])
        out[f"peak_to_mean:{svc}"] = float(herd.at[svc, "peak_to_mean"])
        out[f"utilization:{svc}"] = float(load.at[svc, "utilization"])
        out[f"queue_len:{svc}"] = float(load.at[svc, "queue_len"])


def _breakers(out: dict[str, float], requests: pd.DataFrame, attempts: pd.DataFrame,
              events: pd.DataFrame, *, warmup: float, duration: float,
              breaker_links: set[str] | None = None) -> None:
    """Open share and transition count per link ``caller->callee``.

    Every caller->callee pair in ``attempts`` gets the keys, 0.0 when no breaker on it ever
    moved (or it has none): a replication whose breaker never tripped must read 0, not
    NaN, or averaging over replications would keep only the ones that tripped.
    """
    keys = {link: (0.0, 0.0, 0.0) for link in _call_links(attempts)
            if breaker_links is None or link in breaker_links}
    br = breaker_events(events)
    if len(br) == 0:
        _put_breakers(out, keys)
        return
    members: dict[str, int] = {}
    comps = pd.Series(labels_of(br["component"]), dtype=object)
    per_member = comps[comps.str.contains("#", regex=False)]
    if len(per_member):
        # Per-member breakers that never tripped are absent from events; count them via
        # the client population's members seen in requests.
        n_members = requests.groupby(requests["client"].astype(object), observed=True)[
            "member"].nunique()
        for link in per_member.str.split("#", n=1).str[0].unique():
            caller = link.split("->", 1)[0]
            if caller in n_members.index:
                members[link] = int(n_members.at[caller])
    links = breaker_link_shares(events, t0=warmup, t_end=duration, members=members)
    for link in links.index:
        if breaker_links is None or link in breaker_links:
            keys[link] = (float(links.at[link, "open"]), float(links.at[link, "half_open"]),
                          float(links.at[link, "transitions"]))
    _put_breakers(out, keys)


def _put_breakers(out: dict[str, float], keys: dict[str, tuple[float, float, float]]) -> None:
    """Write the breaker keys in link order."""
    for link in sorted(keys):
        (out[f"breaker_open_share:{link}"], out[f"breaker_half_open_share:{link}"],
         out[f"breaker_transitions:{link}"]) = keys[link]


def _call_links(attempts: pd.DataFrame) -> list[str]:
    """The distinct ``caller->service`` pairs of ``attempts`` (vectorised over codes)."""
    caller, callers = factorize(attempts["caller"])
    service, services = factorize(attempts["service"])
    valid = (caller >= 0) & (service >= 0)
    pairs = np.unique(caller[valid] * max(len(services), 1) + service[valid])
    return [f"{callers[p // len(services)]}->{services[p % len(services)]}" for p in pairs]


def _faults(out: dict[str, float], requests: pd.DataFrame, attempts: pd.DataFrame,
            events: pd.DataFrame, *, warmup: float, duration: float) -> None:
    """Recovery verdict/time per fault and post-fault herd metrics per service and fault."""
    rec = recovery(requests, events, t_end=duration, warmup=warmup, window=RECOVERY_WINDOW,
                   hold=RECOVERY_HOLD)
    out["stable_at_end"] = stable_at_end(requests, events, t_end=duration, warmup=warmup, hold=RECOVERY_HOLD)
    for fault, recovered, time, status in zip(rec["fault"], rec["recovered"], rec["recovery_time"],
                                              rec["status"], strict=True):
        out[f"recovered:{fault}"] = np.nan if pd.isna(recovered) else float(bool(recovered))
        out[f"relapsed:{fault}"] = np.nan if pd.isna(recovered) else float(status == "relapsed")
        out[f"recovery_time:{fault}"] = float(time)
    if len(rec) == 0:
        return
    herd = herd_after_faults(attempts, events, period=HERD_PERIOD, window=HERD_WINDOW,
                             t_end=duration)
    for fault, svc, ptm, sync in zip(herd["fault"], herd["service"], herd["peak_to_mean"],
                                     herd["synchrony"], strict=True):
        out[f"herd_peak_to_mean:{svc}@{fault}"] = float(ptm)
        out[f"herd_synchrony:{svc}@{fault}"] = float(sync)
