"""Mergeable summaries for long runs: exact counts and latency sketches, fed chunk by chunk.

``record: summary`` (and ``simres run --stream DIR``) keep no per-request frame in memory.
The recorder hands its columns over in chunks (:meth:`StreamSummary.add_requests`,
:meth:`StreamSummary.add_attempts`) and clears them; what stays is this module's state,
whose size depends on the number of clients, services and call sites, never on the
number of requests:

- **exact counts**: requests per (client population, outcome), measured or not, the tries
  of measured requests per call site (sent, first tries), the tries per service in the
  steady state, the successes within the SLO; sums and maxima of latency. Every count
  is an integer array; two summaries merge by adding them (:meth:`StreamSummary.merge`).
- **latency percentiles**: one DDSketch (DataDog's ``ddsketch``, Masson et al., VLDB 2019)
  per client population and population ("success", "all"), merged per client, per
  priority and overall when the summary is computed. Its guarantee: every quantile it
  returns is within a relative error of :data:`ALPHA` (1 %) of the order statistic of
  rank ``q·(n−1)`` (rounded down). numpy's default, which the full summary uses,
  interpolates between that order statistic and the next, so the two agree to within
  ``ALPHA`` wherever neighbouring order statistics are close (every percentile of a run
  with many requests; a p99.9 over a few hundred values can differ by more).

What needs the whole frame is not computed and is listed in :data:`UNAVAILABLE`; asking
a summary-mode summary for such a key raises :class:`UnavailableMetric` (never a NaN).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

from simres.errors import SimresError
from simres.metrics._common import EPS, QUANTILES, n_windows, ratio, window_index
from simres.metrics.streaming_recovery import StreamRecovery
from simres.outcomes import ATTEMPT_OUTCOMES, PRIORITIES, REQUEST_OUTCOMES, SUCCESS_OUTCOMES, UNFINISHED

ALPHA = 0.01
"""Relative accuracy of the latency sketches: a percentile is within 1 % of the true order statistic."""

UNAVAILABLE: tuple[str, ...] = ("work_per_success",)
"""Summary keys (globs) that ``record: summary`` does not compute: the try tree
(``work_per_success``) needs the whole frame. Compute it from the frames ``--stream``
wrote (:func:`simres.metrics.summary.summarize`)."""


def is_unavailable(key: str) -> bool:
    """Whether ``key`` is a metric that summary mode cannot compute."""
    return any(fnmatch.fnmatchcase(key, p) for p in UNAVAILABLE)


class UnavailableMetric(SimresError, KeyError):
    """A summary key that ``record: summary`` does not compute (see :data:`UNAVAILABLE`)."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0]) if self.args else ""


class StreamedSummary(dict[str, float]):
    """The summary dict of a summary-mode run: a missing key that only the full frames
    could give raises :class:`UnavailableMetric` naming it, instead of a bare KeyError."""

    def __missing__(self, key: str) -> float:
        if is_unavailable(key):
            raise UnavailableMetric(f"{key}: not available with record: summary (it needs the whole frame); "
                                    "run with record: full, or compute it from the frames --stream wrote")
        raise KeyError(key)


_SUCCESS = np.array([False] + [o in SUCCESS_OUTCOMES for o in REQUEST_OUTCOMES])
"""By request outcome code + 1 (code -1: an attempt-only outcome, which the frame shows as NaN)."""
_UNFINISHED = REQUEST_OUTCOMES.index(UNFINISHED) + 1
_N_OUT = len(REQUEST_OUTCOMES) + 1  # -1 shifted to 0
_TIMEOUT_CODE = ATTEMPT_OUTCOMES.index("timeout")


class LatencySketch:
    """A DDSketch of latencies plus their exact count, sum and maximum.

    Values are added a chunk at a time: each is mapped to its sketch bucket with numpy
    (the mapping's formula, ``ceil(log(v) / log(gamma))``) and every bucket gets its
    count in one call of the public ``DDSketch.add(value, weight)`` with the bucket's
    representative value, so a chunk of a million latencies costs a few hundred calls.
    """

    __slots__ = ("count", "max", "sketch", "sum")

    mapping = LogarithmicMapping(ALPHA)
    _log_gamma = math.log1p(2 * ALPHA / (1 - ALPHA))

    def __init__(self) -> None:
        self.sketch = DDSketch(ALPHA)
        self.count = 0
        self.sum = 0.0
        self.max = -math.inf

    def add_many(self, values: np.ndarray) -> None:
        """Add an array of latencies (finite, >= 0)."""
        if values.size == 0:
            return
        self.count += int(values.size)
        self.sum += float(values.sum())
        self.max = max(self.max, float(values.max()))
        tiny = values <= self.mapping.min_possible
        if tiny.any():
            self.sketch.add(0.0, float(tiny.sum()))
        pos = values[~tiny]
        if pos.size:
            keys, counts = np.unique(np.ceil(np.log(pos) / self._log_gamma).astype(np.int64), return_counts=True)
            for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
                self.sketch.add(self.mapping.value(k), float(c))

    def merge(self, other: LatencySketch) -> None:
        """Add ``other``'s values (the sketch merge is exact: bucket counts add)."""
        self.sketch.merge(other.sketch)
        self.count += other.count
        self.sum += other.sum
        self.max = max(self.max, other.max)

    def stats(self) -> dict[str, float]:
        """mean, p50, p90, p99, p999 and max (NaN when empty), as ``latency_percentiles``."""
        if self.count == 0:
            return {"mean": np.nan, **{name: np.nan for name, _ in QUANTILES}, "max": np.nan}
        out = {"mean": self.sum / self.count}
        for name, q in QUANTILES:
            out[name] = float(self.sketch.get_quantile_value(q))
        out["max"] = self.max
        return out


def _merged(sketches: Iterable[LatencySketch]) -> LatencySketch:
    out = LatencySketch()
    for s in sketches:
        out.merge(s)
    return out


def _grow(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` with at least ``n`` rows (zeros appended)."""
    if a.shape[0] >= n:
        return a
    return np.concatenate([a, np.zeros((n - a.shape[0], *a.shape[1:]), dtype=a.dtype)])


class StreamSummary:
    """The mergeable state behind a summary-mode summary (see the module docstring).

    Codes are the recorder's: a request's *group* (client, target, priority), an
    attempt's call *site* (caller, service, depth); ``groups`` and ``sites`` map them to
    names when the summary is computed.
    """

    def __init__(self, *, warmup: float, duration: float, slo: float | None = None,
                 timeline_step: float = 1.0) -> None:
        self.warmup = warmup
        self.duration = duration
        self.slo = slo
        self.timeline_step = timeline_step
        self.first_measured_id: int | None = 0 if warmup <= 0 else None
        """Request ids are handed out in start order: the first id of a request started at
        or after ``warmup`` (None before the run gets there: no try yet is of a measured request)."""
        self.req_counts = np.zeros((0, _N_OUT), dtype=np.int64)  # [group, outcome+1], measured
        self.seen_groups = np.zeros(0, dtype=bool)  # any request row, measured or not
        self.slo_ok = 0
        self.success: dict[int, LatencySketch] = {}
        self.finished: dict[int, LatencySketch] = {}
        self.members: set[tuple[int, int]] = set()  # (group, member) pairs seen
        self.site_sent = np.zeros(0, dtype=np.int64)  # tries sent, of measured requests
        self.site_first = np.zeros(0, dtype=np.int64)  # first tries, of measured requests
        self.site_steady = np.zeros(0, dtype=np.int64)  # tries sent starting in [warmup, duration)
        self.seen_sites = np.zeros(0, dtype=bool)
        self.timeouts: dict[tuple[float, int], int] = {}  # (timeline bucket, site) -> timed-out tries
        self.herds: dict[float, np.ndarray] | None = None
        """Sent tries per (service, 0.1 s window) on each herd grid, keyed by the grid's start:
        ``warmup`` (peak-to-mean) and each fault's scheduled end (see :meth:`count_herds`)."""
        self._site_service = np.zeros(0, dtype=np.int64)
        self._site_service_of: Callable[[], Sequence[int]] | None = None
        self.recovery: StreamRecovery | None = None
        """The recovery verdict's and stable_at_end's inputs (see :meth:`judge_recovery`)."""
        self._herd_step = 0.1

    def count_herds(self, site_service: Callable[[], Sequence[int]], n_services: int, fault_ends: Iterable[float],
                    *, window: float = 0.1, period: float = 10.0) -> None:
        """Count sent tries per service in ``window`` s windows, as :func:`simres.metrics.herd.herd_stats` bins them.

        Grids: ``[warmup, duration)`` (``peak_to_mean``) and, for each fault end the
        scenario schedules, ``[end, min(end + period, duration))`` (the herd after it),
        each anchored at its own start so every window is the frame's window. Memory is
        one integer per service and window: it grows with the run's length, not its load.
        ``site_service()`` gives the service index of every recorder site code so far (it is
        asked again when a new site appears: call sites may be created as the run goes).
        """
        self._site_service_of = site_service
        self._site_service = np.asarray(site_service(), dtype=np.int64)
        grids = {float(self.warmup): n_windows(self.warmup, self.duration, window)}
        for end in fault_ends:
            t1 = min(end + period, self.duration)
            if math.isfinite(end) and t1 - end >= window - EPS:
                grids[float(end)] = n_windows(end, t1, window)
        self._herd_step = window
        self.herds = {t0: np.zeros((n_services, n), dtype=np.int32) for t0, n in grids.items()}

    def judge_recovery(self, faults: Sequence[tuple[float, float]], *, window: float = 1.0,
                       hold: float = 5.0) -> None:
        """Accumulate what ``recovered:*``, ``relapsed:*``, ``recovery_time:*`` and ``stable_at_end``
        need (:mod:`simres.metrics.streaming_recovery`); ``faults`` is the schedule, ``(start, end)``."""
        self.recovery = StreamRecovery(warmup=self.warmup, t_end=self.duration, faults=faults, window=window,
                                       hold=hold)

    # ------------------------------------------------------------------ ingest

    def add_requests(self, group: np.ndarray, member: np.ndarray, start: np.ndarray, end: np.ndarray,
                     outcome: np.ndarray) -> None:
        """One chunk of request rows (the recorder's codes)."""
        if group.size == 0:
            return
        if self.recovery is not None:  # every request row (the baseline and the drain too), by start time
            o = outcome.astype(np.int64) + 1
            ok_all = _SUCCESS[o]
            lat = np.where(ok_all & ~np.isnan(end) & (o != _UNFINISHED), end - start, np.nan)
            self.recovery.add(start, ok_all, lat)
        g = group.astype(np.int64)
        n_groups = int(g.max()) + 1
        self.req_counts = _grow(self.req_counts, n_groups)
        self.seen_groups = _grow(self.seen_groups, n_groups)
        self.seen_groups[np.unique(g)] = True
        for pair in np.unique(g * (1 << 32) + member.astype(np.int64)).tolist():
            self.members.add((pair >> 32, pair & 0xFFFFFFFF))
        measured = (start >= self.warmup) & (start < self.duration)
        g, start, end, out = g[measured], start[measured], end[measured], outcome.astype(np.int64)[measured] + 1
        np.add.at(self.req_counts, (g, out), 1)
        latency = end - start
        ok = _SUCCESS[out]
        finished = ~np.isnan(end) & (out != _UNFINISHED)
        if self.slo is not None:
            with np.errstate(invalid="ignore"):
                self.slo_ok += int((ok & (latency <= self.slo)).sum())
        for code in np.unique(g).tolist():
            mine = g == code
            self.success.setdefault(code, LatencySketch()).add_many(latency[mine & ok & finished])
            self.finished.setdefault(code, LatencySketch()).add_many(latency[mine & finished])

    def add_attempts(self, req: np.ndarray, site: np.ndarray, attempt: np.ndarray, start: np.ndarray,
                     end: np.ndarray, outcome: np.ndarray, sent: np.ndarray) -> None:
        """One chunk of attempt rows (the recorder's codes)."""
        if site.size == 0:
            return
        s = site.astype(np.int64)
        n_sites = int(s.max()) + 1
        for name in ("site_sent", "site_first", "site_steady", "seen_sites"):
            setattr(self, name, _grow(getattr(self, name), n_sites))
        self.seen_sites[np.unique(s)] = True
        sent = sent.astype(bool)
        steady = sent & (start >= self.warmup) & (start < self.duration)
        self.site_steady += np.bincount(s[steady], minlength=self.site_steady.size)
        if self.herds is not None and sent.any():
            if n_sites > self._site_service.size and self._site_service_of is not None:
                self._site_service = np.asarray(self._site_service_of(), dtype=np.int64)
            svc = self._site_service[s[sent]]
            t = start[sent]
            for t0, counts in self.herds.items():
                n = counts.shape[1]
                idx = window_index(t, t0, self._herd_step, n)
                keep = idx >= 0
                if keep.any():
                    np.add.at(counts, (svc[keep], idx[keep]), 1)
        if self.first_measured_id is not None:
            measured = req >= self.first_measured_id
            self.site_sent += np.bincount(s[measured & sent], minlength=self.site_sent.size)
            self.site_first += np.bincount(s[measured & (attempt == 1)], minlength=self.site_first.size)
        timed_out = outcome == _TIMEOUT_CODE
        if timed_out.any():
            step = self.timeline_step
            bucket = np.floor(end[timed_out] / step) * step  # as the timeline frame bins them
            keys, counts = np.unique(np.stack([bucket, s[timed_out].astype(float)]), axis=1, return_counts=True)
            for (b, code), c in zip(keys.T.tolist(), counts.tolist(), strict=True):
                key = (b, int(code))
                self.timeouts[key] = self.timeouts.get(key, 0) + c

    def merge(self, other: StreamSummary) -> None:
        """Add another summary's counts and sketches (same codes, e.g. the same world)."""
        for name in ("req_counts", "seen_groups", "site_sent", "site_first", "site_steady", "seen_sites"):
            a, b = getattr(self, name), getattr(other, name)
            n = max(a.shape[0], b.shape[0])
            a, b = _grow(a, n), _grow(b, n)
            setattr(self, name, (a | b) if a.dtype == bool else a + b)
        self.slo_ok += other.slo_ok
        if self.herds is not None and other.herds is not None:
            for t0, counts in other.herds.items():
                self.herds[t0] += counts
        for mine, theirs in ((self.success, other.success), (self.finished, other.finished)):
            for code, sk in theirs.items():
                mine.setdefault(code, LatencySketch()).merge(sk)
        self.members |= other.members
        for key, c in other.timeouts.items():
            self.timeouts[key] = self.timeouts.get(key, 0) + c

    # ------------------------------------------------------------------ results

    def timeout_counts(self, site_services: Mapping[int, str], upto: float = math.inf) -> pd.Series:
        """Timed-out tries per (timeline bucket, service name), as the timeline's ``timeouts``
        join wants, for the buckets starting at or before ``upto``; those are removed here, so
        the counts kept stay as few as the buckets not yet compacted."""
        acc: dict[tuple[float, str], int] = {}
        done = [key for key in self.timeouts if key[0] <= upto]
        for b, code in done:
            key = (b, site_services[code])
            acc[key] = acc.get(key, 0) + self.timeouts.pop((b, code))
        return pd.Series(acc, dtype=np.int64)

    def summary(self, *, groups: list[tuple[str, str, str]], sites: list[tuple[str, str, int]],
                timeline: pd.DataFrame, events: pd.DataFrame,
                breaker_links: set[str] | None = None,
                service_names: Sequence[str] | None = None) -> StreamedSummary:
        """The summary keys this state can give (every key of ``summarize`` but :data:`UNAVAILABLE`),
        with the same names, formulas and NaN rules.

        Args:
            groups: group code -> (client, target, priority), from the recorder.
            sites: site code -> (caller, service, depth), from the recorder.
            timeline, events: the run's (small) timeline and events frames.
            breaker_links: as :func:`simres.metrics.summary.summarize`.
            service_names: the service of each index :meth:`count_herds` was given (the
                peak-to-mean and herd keys need it).
        """
        from simres.metrics.summary import RATE_KEYS, _autoscale, _breakers
        from simres.metrics.utilization import service_load

        span = self.duration - self.warmup
        out = StreamedSummary()
        counts = self.req_counts
        per_out = counts.sum(axis=0)
        n = int(per_out.sum())
        ok = int(per_out[_SUCCESS].sum())
        out["count"] = float(n)
        out["ok"] = float(ok)
        out["success_rate"] = ok / n if n else np.nan
        out["goodput"] = ok / span
        finished = sum(sk.count for sk in self.finished.values())
        out["throughput"] = finished / span
        for prefix, sketches in (("latency", self.success), ("latency_all", self.finished)):
            for stat, v in _merged(sketches.values()).stats().items():
                out[f"{prefix}_{stat}"] = v
        if self.slo is not None:
            out["slo_attainment"] = float(ratio(self.slo_ok, n))
        for key, outcome in RATE_KEYS.items():
            out[key] = float(ratio(per_out[REQUEST_OUTCOMES.index(outcome) + 1], n)) if n else np.nan
        seen = [g for g in range(len(self.seen_groups)) if self.seen_groups[g]]
        for by, col in (("priority", 2), ("client", 0)):
            labels = list(PRIORITIES) if by == "priority" else sorted({groups[g][0] for g in seen})
            for label in labels:
                mine = [g for g in range(counts.shape[0]) if groups[g][col] == label]
                c = counts[mine].sum(axis=0) if mine else np.zeros(_N_OUT, dtype=np.int64)
                total = int(c.sum())
                out[f"success_rate:{by}={label}"] = float(ratio(c[_SUCCESS].sum(), total))
                out[f"latency_p99:{by}={label}"] = _merged(self.success[g] for g in mine
                                                           if g in self.success).stats()["p99"]
                if by == "priority":
                    for outcome in ("shed", "rejected", "throttled"):
                        out[f"{outcome}_rate:{by}={label}"] = float(
                            ratio(c[REQUEST_OUTCOMES.index(outcome) + 1], total))
        used = [s for s in range(len(self.seen_sites)) if self.seen_sites[s]]
        depth0 = sum(int(self.site_sent[s]) for s in used if sites[s][2] == 0)
        sent = int(self.site_sent.sum())
        out["tries_per_request"] = depth0 / n if n else np.nan
        out["tries_per_success"] = sent / ok if ok else np.nan
        tl_services = [str(c) for c in timeline["service"].cat.categories] if len(timeline) else []
        services = sorted({sites[s][1] for s in used} | set(tl_services))
        load = service_load(timeline, t0=self.warmup, t1=self.duration).reindex(services)
        for svc in services:
            mine = [s for s in used if sites[s][1] == svc]
            calls = sum(int(self.site_first[s]) for s in mine)
            tries = sum(int(self.site_sent[s]) for s in mine)
            out[f"amplification:{svc}"] = float(ratio(tries, calls)) if mine else np.nan
            out[f"tries_per_s:{svc}"] = sum(int(self.site_steady[s]) for s in mine) / span
            out[f"utilization:{svc}"] = float(load.at[svc, "utilization"])
            out[f"queue_len:{svc}"] = float(load.at[svc, "queue_len"])
        # breakers: the links and the members per client are all the frames are used for
        tiny_requests = pd.DataFrame({
            "client": pd.Categorical([groups[g][0] for g, _ in sorted(self.members)]),
            "member": np.array([m for _, m in sorted(self.members)], dtype=np.int32),
        })
        tiny_attempts = pd.DataFrame({
            "caller": pd.Categorical([sites[s][0] for s in used]),
            "service": pd.Categorical([sites[s][1] for s in used]),
        })
        _breakers(out, tiny_requests, tiny_attempts, events, warmup=self.warmup, duration=self.duration,
                  breaker_links=breaker_links)
        if self.recovery is not None:
            out["stable_at_end"] = self.recovery.stable_at_end()
            for row in self.recovery.recovery(events):
                fault, recovered = row["fault"], row["recovered"]
                out[f"recovered:{fault}"] = np.nan if recovered is None else float(bool(recovered))
                out[f"relapsed:{fault}"] = np.nan if recovered is None else float(row["status"] == "relapsed")
                out[f"recovery_time:{fault}"] = float(row["recovery_time"])  # type: ignore[arg-type]
        if self.herds is not None and service_names is not None:
            self._herd_keys(out, services, sorted({sites[s][1] for s in used}), service_names, events)
        _autoscale(out, timeline, events, warmup=self.warmup, duration=self.duration)
        return out

    def _herd_keys(self, out: dict[str, float], services: list[str], seen: list[str],
                   service_names: Sequence[str], events: pd.DataFrame) -> None:
        """``peak_to_mean:<svc>`` and the post-fault ``herd_*`` keys, as the full summary gives them."""
        from simres.metrics.faults import fault_intervals
        from simres.metrics.herd import _stats

        assert self.herds is not None
        index = {name: i for i, name in enumerate(service_names)}
        steady = self.herds[float(self.warmup)]
        for svc in services:
            if svc in seen:
                row = steady[index[svc]][None, :]
                ptm = _stats(row, window=self._herd_step, top_share=0.1)["peak_to_mean"][0]
                out[f"peak_to_mean:{svc}"] = float(ptm)
            else:
                out[f"peak_to_mean:{svc}"] = np.nan
        faults = fault_intervals(events)
        if len(faults) == 0:
            return
        for fault, end in zip(faults["fault"], faults["end"].astype(float), strict=True):
            counts = self.herds.get(float(end)) if math.isfinite(end) else None
            if counts is None:
                continue
            rows = np.stack([counts[index[svc]] for svc in seen]) if seen else counts[:0]
            stats = _stats(rows, window=self._herd_step, top_share=0.1)
            for i, svc in enumerate(seen):
                out[f"herd_peak_to_mean:{svc}@{fault}"] = float(stats["peak_to_mean"][i])
                out[f"herd_synchrony:{svc}@{fault}"] = float(stats["synchrony"][i])

    def hedge_summary(self, events: pd.DataFrame) -> dict[str, float]:
        """:func:`simres.metrics.hedging.hedge_summary` from the events frame and the counts.

        The measured requests are those that start in ``[warmup, duration)``: request ids
        grow with start time (one counter for every client) and no request starts after
        ``duration``, so they are the ids from :attr:`first_measured_id` on, and their
        number is the count of requests summarised.
        """
        n = int(self.req_counts.sum())
        first = self.first_measured_id
        kinds = events["kind"].astype(object).to_numpy()
        values = events["value"].to_numpy(dtype=float)

        def count(kind: str) -> float:
            v = values[kinds == kind]
            return float((v >= first).sum()) if first is not None and len(v) else 0.0

        sent, won = count("hedge"), count("hedge_won")
        return {
            "hedges_sent": sent,
            "hedges_won": won,
            "hedge_win_share": won / sent if sent else float("nan"),
            "hedge_extra_load": sent / n if n else float("nan"),
        }


__all__ = ["ALPHA", "UNAVAILABLE", "LatencySketch", "StreamSummary", "StreamedSummary", "UnavailableMetric",
           "is_unavailable"]
