"""Event-sourced replication: a primary's write log streamed to read replicas (``services.S.replica``).

The primary (:class:`LogInstance`) appends every request it completes successfully to its
service's :class:`WriteLog`, at that instant. Each replica instance (:class:`ReplicaInstance`)
has a :class:`Stream` from the primary: the writes arrive in order, each after the link's
latency plus the configured ``delay``, and the replica's consumer applies them one at a time
(``apply_time`` each). Arrival and apply times are computed when a write is committed (an
in-order stream is ``arrive_k = max(arrive_{k-1}, commit_k + d_k)``, a serial consumer is
``done_k = max(done_{k-1}, arrive_k) + apply_k``), so a write costs no SimPy event. Only a
stall does: a message the link loses (a partition, random loss) stops the stream until a
reconnect probe gets through, then the backlog flows. Heartbeats (the primary's log position,
every ``heartbeat`` seconds) let an idle replica learn that it is current.

A read is a request the replica completes. Its *staleness* is how long ago the oldest write
the replica has not applied was committed (0 if it has them all): the t-visibility of
Bailis et al., "Probabilistically Bounded Staleness" (VLDB 2012). A *read-your-writes*
violation is a read by a session whose own last write the replica has not applied (Terry et
al., "Session Guarantees for Weakly Consistent Replicated Data", 1994). A ``consistent``
replica refuses a read when the newest commit or heartbeat it has applied is older than
``max_staleness``: what it can vouch for, not the true staleness it cannot see.

Counters are kept per timeline bucket and joined into the timeline after the run
(:func:`add_replica_columns`); reads are kept as compact arrays for the summary keys
(:func:`replica_keys`). A scenario without replicas has the same frames and pays nothing.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import pandas as pd
from simpy import Environment, Event
from simpy.events import Timeout

from simres.model.job import Job
from simres.model.network import Link
from simres.model.service import Instance
from simres.outcomes import REJECTED, SUCCESS_OUTCOMES
from simres.rng import stream
from simres.scenario.services import ReplicaConfig

_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def _session_of(sessions: int | None) -> Callable[[int], int]:
    """Session key of a request id: the request itself, or one of N sessions (a fixed hash, no draw,
    so a session's requests are the same in every variant)."""
    if sessions is None:
        return lambda req_id: req_id
    n = sessions
    return lambda req_id: (((req_id * _GOLDEN) & _MASK) >> 32) % n


class WriteLog:
    """One primary service's log: the commit time of every write, and each session's last write."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.commits = array("d")
        """Commit time of write k at index k - 1 (offsets start at 1)."""
        self.sessions: dict[int | None, tuple[Callable[[int], int], dict[int, int]]] = {}
        """Per ``sessions`` setting of its replicas: the session of a request id, and the offset of
        each session's last write."""
        self.streams: list[Stream] = []

    def tracker(self, sessions: int | None) -> tuple[Callable[[int], int], dict[int, int]]:
        """The session map for one ``sessions`` setting (made on first use)."""
        if sessions not in self.sessions:
            self.sessions[sessions] = (_session_of(sessions), {})
        return self.sessions[sessions]

    @property
    def length(self) -> int:
        """Writes committed so far (the log's head offset)."""
        return len(self.commits)

    def append(self, now: float, req_id: int) -> None:
        """A write is committed now: log it and push it down every stream."""
        self.commits.append(now)
        k = len(self.commits)
        for session, last in self.sessions.values():
            last[session(req_id)] = k
        for s in self.streams:
            s.push(k, now)


class Stream:
    """The primary's in-order stream to one replica instance, and that replica's consumer state."""

    def __init__(self, env: Environment, log: WriteLog, link: Link, cfg: ReplicaConfig, *, node: str,
                 seed: int, step: float) -> None:
        self.env = env
        self.log = log
        self.link = link
        self.cfg = cfg
        self.node = node
        self.step = step
        self.session, self.session_last = log.tracker(None if cfg.sessions == "request" else cfg.sessions)
        key = f"replica:{log.service}->{node}"
        self.delay = cfg.delay.sampler(stream(seed, key, "delay"))
        self.apply = cfg.apply_time.sampler(stream(seed, key, "apply"))
        self.arrived = 0.0
        """When the last message sent down the stream arrives (messages never overtake)."""
        self.done = 0.0
        """When the consumer finishes applying the last write it has received."""
        self.pending: deque[tuple[float, int, float]] = deque()
        """(when, offset, as of): at ``when`` the replica has applied ``offset`` writes and is
        current as of ``as of`` (a write's commit time, or a heartbeat's send time)."""
        self.applied = 0
        self.fresh = 0.0
        """The newest commit or heartbeat time the replica has applied (it starts in sync at 0)."""
        self.stalled_from = 0
        """First offset not yet sent because the stream is stalled (0: not stalled)."""
        self.stalled = False
        # per-bucket counters, joined into the timeline after the run
        self.reads: dict[int, int] = {}
        self.stale: dict[int, int] = {}
        self.refused: dict[int, int] = {}
        self.ryw: dict[int, int] = {}
        self.lag: dict[int, float] = {}
        self.lag_events: dict[int, int] = {}
        # one entry per served read, for the summary keys
        self.read_times = array("d")
        self.read_staleness = array("d")
        self.read_ryw = array("b")
        """Per read: 1 a read-your-writes violation, 0 a read by a session that had written and saw it,
        -1 a read by a session with no earlier write."""
        self.refusal_times = array("d")

    # -- the stream --------------------------------------------------------------------

    def _send(self, sent: float) -> float | None:
        """Arrival time of a message sent now down the stream, or None if the link loses it."""
        d = self.link.delay()
        if d is None:
            return None
        at = sent + d + self.delay()
        if at < self.arrived:
            at = self.arrived  # in order: behind the previous message
        self.arrived = at
        return at

    def push(self, k: int, committed: float) -> None:
        """Write ``k`` was committed now: send it, or keep it for the reconnect if the stream is stalled."""
        if self.stalled:
            return
        at = self._send(committed)
        if at is None:
            self._stall(k)
            return
        self._deliver(at, k, committed)

    def _deliver(self, at: float, k: int, as_of: float) -> None:
        start = at if at > self.done else self.done
        self.done = start + self.apply()
        self.pending.append((self.done, k, as_of))

    def _stall(self, first: int) -> None:
        self.stalled = True
        self.stalled_from = first
        self.env.process(self._reconnect())

    def _reconnect(self) -> Generator[Event, Any, None]:
        """Probe every ``reconnect`` seconds; when a probe gets through, the backlog flows in order."""
        while True:
            yield Timeout(self.env, self.cfg.reconnect)
            now = self.env.now
            at = self._send(now)
            if at is None:
                continue
            commits = self.log.commits
            for k in range(self.stalled_from, len(commits) + 1):
                self._deliver(at, k, commits[k - 1])
            self.stalled = False
            self.stalled_from = 0
            self._heartbeat_at(at, now)
            return

    def _heartbeat_at(self, at: float, sent: float) -> None:
        """A heartbeat sent at ``sent`` arrives at ``at``: once the writes before it are applied, the
        replica knows it was current as of ``sent``."""
        when = at if at > self.done else self.done
        self.pending.append((when, self.log.length, sent))

    def heartbeats(self) -> Generator[Event, Any, None]:
        """The primary's heartbeat on this stream (skipped while it is stalled: nothing gets through)."""
        every = self.cfg.heartbeat
        while True:
            yield Timeout(self.env, every)
            if self.stalled:
                continue
            now = self.env.now
            at = self._send(now)
            if at is None:
                self._stall(self.log.length + 1)
                continue
            self._heartbeat_at(at, now)

    # -- the replica's state -------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply everything the consumer has finished by ``now``."""
        p = self.pending
        while p and p[0][0] <= now:
            _, k, as_of = p.popleft()
            if k > self.applied:
                self.applied = k
            if as_of > self.fresh:
                self.fresh = as_of

    def staleness(self, now: float) -> float:
        """True staleness now: the age of the oldest committed write not applied (0 if none)."""
        commits = self.log.commits
        return now - commits[self.applied] if self.applied < len(commits) else 0.0

    def refuses(self, now: float) -> bool:
        """mode consistent: whether the replica refuses a read now (it cannot vouch for max_staleness)."""
        self.advance(now)
        if now - self.fresh <= self.cfg.max_staleness:  # type: ignore[operator]
            return False
        self.refusal_times.append(now)
        b = int(now / self.step)
        self.refused[b] = self.refused.get(b, 0) + 1
        return True

    def read(self, now: float, req_id: int) -> None:
        """A read is served now: its staleness and whether it sees its session's own last write."""
        self.advance(now)
        st = self.staleness(now)
        b = int(now / self.step)
        self.reads[b] = self.reads.get(b, 0) + 1
        if st > 0:
            self.stale[b] = self.stale.get(b, 0) + 1
        own = self.session_last.get(self.session(req_id), 0)
        if own and own > self.applied:
            self.ryw[b] = self.ryw.get(b, 0) + 1
            flag = 1
        else:
            flag = 0 if own else -1
        self.read_times.append(now)
        self.read_staleness.append(st)
        self.read_ryw.append(flag)

    def sample(self, b: int) -> None:
        """Lag at the end of bucket ``b`` (the timeline's sampling instant)."""
        now = self.env.now
        self.advance(now)
        self.lag[b] = self.staleness(now)
        self.lag_events[b] = self.log.length - self.applied


class LogInstance(Instance):
    """A primary's instance: every request it completes successfully is a write to the log."""

    __slots__ = ("write_log",)
    observed = True

    def _complete(self, job: Job, outcome: str) -> None:
        if outcome in SUCCESS_OUTCOMES:
            self.write_log.append(self.env.now, job.req_id)
        Instance._complete(self, job, outcome)


class ReplicaInstance(Instance):
    """A replica's instance: reads are served from the state its stream has applied."""

    __slots__ = ("stream",)
    observed = True

    def submit(self, job: Job) -> None:
        if self.stream.cfg.mode == "consistent" and not self.down and self.stream.refuses(self.env.now):
            self.arrivals += 1
            self.rejected += 1
            job.reply(REJECTED)
            return
        Instance.submit(self, job)

    def _complete(self, job: Job, outcome: str) -> None:
        if outcome in SUCCESS_OUTCOMES:
            self.stream.read(self.env.now, job.req_id)
        Instance._complete(self, job, outcome)


class Replication:
    """Every log and stream of a run, wired by the world; samples the lag each timeline step."""

    def __init__(self, env: Environment, step: float) -> None:
        self.env = env
        self.step = step
        self.logs: dict[str, WriteLog] = {}
        self.streams: dict[str, list[Stream]] = {}
        """Each replica service's streams, one per instance."""

    def start(self) -> None:
        """Start the heartbeats and the lag sampler (when the run starts)."""
        for streams in self.streams.values():
            for s in streams:
                self.env.process(s.heartbeats())
        self.env.process(self._sampler())

    def _sampler(self) -> Generator[Event, Any, None]:
        b = 0
        while True:
            yield Timeout(self.env, self.step)
            for streams in self.streams.values():
                for s in streams:
                    s.sample(b)
            b += 1


REPLICA_COLUMNS = ("reads", "stale_reads", "reads_refused", "ryw_violations", "replication_lag",
                   "replication_lag_writes")
"""The timeline columns a scenario with replicas gets (NaN on the rows of other services)."""


def add_replica_columns(tl: pd.DataFrame, replication: Replication, step: float) -> None:
    """Per timeline row of a replica service: its reads, stale reads, refused reads and
    read-your-writes violations in the bucket (summed over its instances), and the
    replication lag at the bucket's end (the worst instance's, in seconds and in writes)."""
    services = tl["service"].astype(str).to_numpy()
    buckets = np.rint(tl["time"].to_numpy(dtype=float) / step).astype(np.int64)
    cols = {name: np.full(len(tl), np.nan) for name in REPLICA_COLUMNS}
    for svc, streams in replication.streams.items():
        rows = np.flatnonzero(services == svc)
        bs = [int(b) for b in buckets[rows]]
        for name, attr in (("reads", "reads"), ("stale_reads", "stale"), ("reads_refused", "refused"),
                           ("ryw_violations", "ryw")):
            cols[name][rows] = [sum(getattr(s, attr).get(b, 0) for s in streams) for b in bs]
        for name, attr in (("replication_lag", "lag"), ("replication_lag_writes", "lag_events")):
            cols[name][rows] = [max(getattr(s, attr).get(b, np.nan) for s in streams) for b in bs]
    for name in REPLICA_COLUMNS:
        tl[name] = cols[name]


def replica_keys(out: dict[str, float], replication: Replication, *, warmup: float, duration: float) -> None:
    """Summary keys per replica service over the reads served in ``[warmup, duration)``:
    ``read_staleness_{mean,p50,p90,p99,max}:<svc>`` (seconds, every read counted, fresh ones
    as 0), ``stale_read_rate:<svc>`` (reads that missed a committed write),
    ``read_refused_rate:<svc>`` (reads refused as too stale, of reads served or refused),
    ``ryw_violation_rate:<svc>`` (of reads by sessions that had written) and
    ``replication_lag_max:<svc>`` (the worst lag sampled at a bucket end, seconds)."""
    for svc, streams in replication.streams.items():
        t = np.concatenate([np.frombuffer(s.read_times, dtype=float) for s in streams])
        st = np.concatenate([np.frombuffer(s.read_staleness, dtype=float) for s in streams])
        ryw = np.concatenate([np.frombuffer(s.read_ryw, dtype=np.int8) for s in streams])
        refused = np.concatenate([np.frombuffer(s.refusal_times, dtype=float) for s in streams])
        keep = (t >= warmup) & (t < duration)
        st, ryw = st[keep], ryw[keep]
        n_refused = int(((refused >= warmup) & (refused < duration)).sum())
        n = len(st)
        nan = float("nan")
        if n:
            out[f"read_staleness_mean:{svc}"] = float(st.mean())
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
                out[f"read_staleness_{name}:{svc}"] = float(np.quantile(st, q))
            out[f"read_staleness_max:{svc}"] = float(st.max())
            out[f"stale_read_rate:{svc}"] = float((st > 0).mean())
        else:
            for name in ("mean", "p50", "p90", "p99", "max"):
                out[f"read_staleness_{name}:{svc}"] = nan
            out[f"stale_read_rate:{svc}"] = nan
        out[f"read_refused_rate:{svc}"] = n_refused / (n + n_refused) if n + n_refused else nan
        wrote = ryw >= 0
        out[f"ryw_violation_rate:{svc}"] = float((ryw[wrote] == 1).mean()) if wrote.any() else nan
        step = replication.step
        lags = [v for s in streams for b, v in s.lag.items() if warmup <= b * step < duration]
        out[f"replication_lag_max:{svc}"] = float(max(lags)) if lags else nan
