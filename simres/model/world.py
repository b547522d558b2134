"""Build a SimPy world from a scenario and run it.

``build(scenario, seed)`` wires every component and random stream; ``World.run()`` runs
to ``duration + drain`` (optionally reporting progress) and returns the recorder.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from simpy import Event
from simpy.events import URGENT, Timeout

from simres.metrics.recorder import Recorder
from simres.model.autoscale import ServiceAutoscaler
from simres.model.cache import Cache, CachedSite, add_cache_columns
from simres.model.client import ClientPopulation, record_unfinished
from simres.model.driver import CallSite, SharedState, watch_limit
from simres.model.engine import Engine
from simres.model.faults import FaultInjector, max_load_factor, min_load_factor, surge_start
from simres.model.network import Network
from simres.model.outlier import OutlierCallSite
from simres.model.replication import (
    LogInstance,
    ReplicaInstance,
    Replication,
    Stream,
    WriteLog,
    add_replica_columns,
)
from simres.model.service import Service
from simres.outcomes import TIMEOUT
from simres.rng import stream
from simres.scenario.schema import Scenario

Progress = Callable[[float, float], None]


class World:
    """Everything one run needs: the environment, the components and the recorder."""

    def __init__(self, scenario: Scenario, seed: int):
        self.scenario = scenario
        self.seed = seed
        self.env = Engine()
        self.recorder = Recorder()
        self.network = Network(scenario.network, seed)
        self.shared = SharedState()
        self.ids = itertools.count()
        self.open_requests: dict[int, tuple[Any, ...]] = {}
        env = self.env
        replicas = {n: c.replica for n, c in scenario.services.items() if c.replica is not None}
        primaries = {r.of for r in replicas.values()}
        self.services = {
            name: Service(env, name, cfg, seed,
                          LogInstance if name in primaries else ReplicaInstance if name in replicas else None)
            for name, cfg in scenario.services.items()
        }
        self.replication: Replication | None = self._replication(replicas) if replicas else None
        self.recorder.replication = self.replication
        for name, cfg in scenario.services.items():
            if cfg.autoscale is not None:
                self.services[name].autoscale = ServiceAutoscaler(env, self.recorder, self.services[name],
                                                                  cfg.autoscale)
        if self.recorder.autoscaled:
            self.recorder.fixed_instances = {name: cfg.instances for name, cfg in scenario.services.items()
                                             if cfg.autoscale is None}
        for svc in self.services.values():
            for inst in svc.instances:
                if inst.limiter is not None:
                    watch_limit(env, self.recorder, inst.limiter, inst.node)
        self.caches: list[Cache] = []
        """Every cache in front of a downstream call, one per calling service and call."""
        self.recorder.caches = self.caches
        # downstream call sites, one per (instance, call)
        for name, cfg in scenario.services.items():
            targets = [call.to for call in cfg.handler.calls]
            caches: dict[int, Cache] = {}
            for i, call in enumerate(cfg.handler.calls):
                if call.cache is not None:
                    repeat = f"@{i}" if targets.count(call.to) > 1 else ""
                    caches[i] = Cache(env, call.cache, service=name, call=call.key,
                                      component=f"{name}->{call.to}{repeat}", seed=seed,
                                      step=scenario.timeline_step)
                    self.caches.append(caches[i])
            for inst in self.services[name].instances:
                targets = [call.to for call in cfg.handler.calls]
                for i, call in enumerate(cfg.handler.calls):
                    member = inst.index if cfg.instances > 1 else None
                    repeat = f"@{i}" if targets.count(call.to) > 1 else ""
                    site = self._site(caller=name, caller_node=inst.node, member=member,
                                      target=call.to, policy=call, depth=1, repeat=repeat)
                    fb = None
                    if not call.critical:
                        fb = call.fallback.latency.sampler(
                            stream(seed, f"service:{inst.node}", f"fallback:{call.to}{repeat}"))
                    cache = caches.get(i)
                    inst.add_call(site if cache is None else CachedSite(cache, site),  # type: ignore[arg-type]
                                  call.critical, fb)
        self.clients: dict[str, ClientPopulation] = {}
        for name, c in scenario.clients.items():
            sites = [
                self._site(caller=name, caller_node=name, member=m if c.count > 1 else None,
                           target=c.target, policy=c, depth=0, throttle=c.throttle,
                           node_key=f"{name}#{m}" if c.count > 1 else None)
                for m in range(c.count)
            ]
            sagas = None
            if c.saga is not None:
                # One call site per member, step and compensation: policies keep state per step.
                sagas = [
                    [(step.name,
                      self._site(caller=name, caller_node=name, member=m if c.count > 1 else None,
                                 target=step.to, policy=step, depth=0,
                                 node_key=f"{name}#{m}" if c.count > 1 else None, repeat=f"@{step.name}"),
                      None if step.compensate is None else
                      self._site(caller=name, caller_node=name, member=m if c.count > 1 else None,
                                 target=step.compensate.to, policy=step.compensate, depth=0,
                                 node_key=f"{name}#{m}" if c.count > 1 else None, repeat=f"@{step.name}~undo"))
                     for step in c.saga.steps]
                    for m in range(c.count)
                ]
            self.clients[name] = ClientPopulation(
                env=env, name=name, cfg=c, sites=sites, recorder=self.recorder, ids=self.ids, sagas=sagas,
                seed=seed, end=scenario.duration, max_load_factor=max_load_factor(scenario.faults, name),
                open_requests=self.open_requests, min_load_factor=min_load_factor(scenario.faults, name),
                surge_start=surge_start(scenario.faults, name),
            )
        self.faults = FaultInjector(env, self.recorder, self.network, self.services, self.clients,
                                    caches=self.caches)

    def _replication(self, replicas: dict[str, Any]) -> Replication:
        """One write log per primary; one stream per replica instance, over its own network link
        ``<primary>/0 -> <replica>/i`` (so partition and latency faults between them act on it)."""
        rep = Replication(self.env, self.scenario.timeline_step)
        for name, r in replicas.items():
            log = rep.logs.get(r.of)
            if log is None:
                log = rep.logs[r.of] = WriteLog(r.of)
                for inst in self.services[r.of].instances:
                    inst.write_log = log  # type: ignore[attr-defined]
            streams = []
            for inst in self.services[name].instances:
                link = self.network.link(f"{r.of}/0", inst.node, key=f"replication:{r.of}->{inst.node}")
                s = Stream(self.env, log, link, r, node=inst.node, seed=self.seed, step=self.scenario.timeline_step)
                inst.stream = s  # type: ignore[attr-defined]
                log.streams.append(s)
                streams.append(s)
            rep.streams[name] = streams
        return rep

    def attach_log(self, log: Any) -> None:
        """Send every decision of this run to ``log`` (a
        :class:`~simres.metrics.decisions.DecisionLog`): the recorder carries it to the call
        sites, breakers, faults and detectors; each instance gets it for its admission
        decisions. Before :meth:`run`; the frames are the same with or without it."""
        self.recorder.log = log
        for svc in self.services.values():
            for inst in svc.instances:
                inst.log = log

    def _site(self, *, caller: str, caller_node: str, member: int | None, target: str, policy: Any,
              depth: int, throttle: Any = None, node_key: str | None = None, repeat: str = "") -> CallSite:
        cls = OutlierCallSite if getattr(policy, "outlier_detection", None) is not None else CallSite
        return cls(
            env=self.env, recorder=self.recorder, caller=caller, caller_node=caller_node, member=member,
            target=self.services[target], policy=policy, depth=depth, network=self.network,
            seed=self.seed, shared=self.shared, throttle_cfg=throttle, node_key=node_key, repeat=repeat,
        )

    def run(self, progress: Progress | None = None, chunks: int = 50,
            between: Callable[[], None] | None = None) -> Recorder:
        """Run to the end of the drain period; ``progress(now, end)`` and ``between()`` (the
        summary mode's flush check) are called between chunks of ``end / chunks`` simulated
        seconds. Stopping and resuming SimPy changes no event's order: the frames are the same."""
        sc = self.scenario
        for pop in self.clients.values():
            pop.start()
        self.faults.schedule(list(sc.faults))
        _TimelineSampler(self)
        if self.replication is not None:
            self.replication.start()
        for svc in self.services.values():
            if svc.autoscale is not None:
                svc.autoscale.start()
        end = sc.end_time
        if progress is None and between is None:
            self.env.run(until=end)
        else:
            for i in range(1, chunks + 1):
                self.env.run(until=end * i / chunks)
                if progress is not None:
                    progress(self.env.now, end)
                if between is not None:
                    between()
        record_unfinished(self.recorder, self.open_requests)
        return self.recorder

    def capacity_seconds(self) -> dict[str, float]:
        """Worker-seconds of the ready instances of each autoscaled service up to now."""
        now = self.env.now
        return {n: s.autoscale.capacity_time(now) for n, s in self.services.items() if s.autoscale is not None}

    def busy_seconds(self) -> dict[str, float]:
        """Worker-seconds of busy time per service over the whole run."""
        now = self.env.now
        return {n: sum(i.utilization_time(now) for i in s.instances) for n, s in self.services.items()}


class _TimelineSampler:
    """Sample every service's state at the end of each timeline bucket.

    Counters are cumulative on each instance and differenced here, so the per-request path
    only increments integers. Runs on Timeout callbacks (a run of 10^5 simulated seconds
    has 10^5 buckets): the same events, made at the same points, as the process it
    replaces, which started with an urgent event (its initialisation) and then, at each
    bucket's end, sampled and made the next bucket's Timeout.
    """

    __slots__ = ("append", "env", "groups", "k", "last", "scaled", "step")

    def __init__(self, world: World) -> None:
        env = self.env = world.env
        self.step = world.scenario.timeline_step
        self.append = world.recorder.timeline_rows.append
        self.groups = [(name, svc.instances) for name, svc in world.services.items()]
        self.scaled = {name: svc.autoscale for name, svc in world.services.items() if svc.autoscale is not None}
        self.last = {name: (0, 0, 0, 0, 0, 0) for name, _ in self.groups}
        self.k = 0
        start = Event(env)  # where the process's initialisation event was (urgent, now)
        start.callbacks.append(self._arm)
        start._ok = True
        start._value = None
        env.schedule(start, URGENT)

    def _arm(self, _ev: Event) -> None:
        Timeout(self.env, self.step).callbacks.append(self._sample)

    def _sample(self, _ev: Event) -> None:
        t = self.k * self.step
        self.k += 1
        append, scaled, last = self.append, self.scaled, self.last
        for name, insts in self.groups:
            if len(insts) == 1:
                i = insts[0]
                a, c, e, r, s, x = i.arrivals, i.completions, i.errors, i.rejected, i.shed, i.cancelled
                q, b, w = len(i.queue), i.busy, i.workers
            else:
                a = c = e = r = s = x = q = b = w = 0
                for i in insts:
                    a += i.arrivals
                    c += i.completions
                    e += i.errors
                    r += i.rejected
                    s += i.shed
                    x += i.cancelled
                    q += len(i.queue)
                    b += i.busy
                    w += i.workers
            if scaled and name in scaled:
                w = _serving_workers(scaled[name].ready, insts)
            la, lc, le, lr, ls, lx = last[name]
            last[name] = (a, c, e, r, s, x)
            dc, de = c - lc, e - le
            append((t, name, a - la, dc, dc - min(dc, de), de, 0, r - lr, s - ls, x - lx, q, b, q + b, w))
        self._arm(_ev)


def _serving_workers(ready: list[int], insts: list[Any]) -> int:
    """An autoscaled service's workers in service: its ready instances' and those of the
    instances still draining (out of the balancers, holding work); not the starting or idle
    ones of the pool, so ``utilization`` is over the capacity actually there."""
    on = set(ready)
    return sum(i.workers for k, i in enumerate(insts) if k in on or i.busy or i.queue)


def build(scenario: Scenario, seed: int | None = None) -> World:
    """Create the world for one run of ``scenario`` (``seed`` defaults to the scenario's)."""
    return World(scenario, scenario.seed if seed is None else int(seed))


def _timeline_rows(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """The sampler's rows as a frame: ``DataFrame.from_records`` column by column.

    from_records converts every value through an object array; numpy converts a column of
    Python numbers at once, to the dtype from_records infers (int64, or float64 for the
    times), and the service names go through pandas as from_records sends them. A run of
    10^5 buckets builds its timeline several times faster.
    """
    names = list(Recorder.TIMELINE_COLUMNS)
    if not rows:
        return pd.DataFrame.from_records(rows, columns=names)
    cols = list(zip(*rows, strict=True))
    data: dict[str, Any] = {name: _numbers(col) for name, col in zip(names, cols, strict=True) if name != "service"}
    data["service"] = list(cols[1])  # a list: pandas infers the string dtype from_records gives
    return pd.DataFrame({name: data[name] for name in names})


def _numbers(col: tuple[Any, ...]) -> np.ndarray:
    """A column of Python ints (int64) or floats (float64), as from_records types it; a
    typed array converts ten times faster than ``np.array`` does. Anything else: numpy."""
    kind = type(col[0])
    if kind is int or kind is float:
        try:
            return np.frombuffer(array("q" if kind is int else "d", col), dtype=np.int64 if kind is int else float)
        except (TypeError, OverflowError):  # mixed ints and floats, or huge ints
            pass
    return np.array(col)


def timeline_rows_frame(recorder: Recorder, before: float) -> pd.DataFrame:
    """The timeline rows of buckets starting before ``before`` as a frame of machine numbers
    (about a third of the memory of the tuples), removed from the recorder in place so the
    sampler's cached ``append`` stays valid. Summary mode compacts the timeline this way as
    the run goes; the caller joins their timeouts (:func:`join_timeouts`)."""
    rows = recorder.timeline_rows
    n = 0
    while n < len(rows) and rows[n][0] < before:  # rows are in time order
        n += 1
    df = _timeline_rows(rows[:n])
    del rows[:n]
    return df


def join_timeouts(tl: pd.DataFrame, counts: pd.Series | None) -> None:
    """Set ``tl["timeouts"]`` from caller-side timeout counts by (bucket time, service name)."""
    if counts is not None and len(counts) and len(tl):
        key = pd.MultiIndex.from_arrays([tl["time"].to_numpy(), tl["service"].astype(str).to_numpy()])
        tl["timeouts"] = counts.reindex(key, fill_value=0).to_numpy().astype(np.int64)


def timeline_frame(recorder: Recorder, attempts: pd.DataFrame | None, step: float,
                   timeouts: pd.Series | None = None, earlier: list[pd.DataFrame] | None = None) -> pd.DataFrame:
    """The timeline frame, with caller-side timeouts per service added from the attempts
    (or, in summary mode, from ``timeouts``: counts by (bucket time, service) accumulated
    chunk by chunk with the same binning). ``earlier``: rows already compacted by
    :func:`timeline_rows_frame` (their timeouts joined), in order."""
    tl = _timeline_rows(recorder.timeline_rows)
    if tl.empty and not earlier:
        return tl
    counts = timeouts
    if attempts is not None:
        to = attempts[attempts["outcome"] == TIMEOUT]
        if len(to):
            bucket = np.floor(to["end"].to_numpy() / step) * step
            counts = pd.DataFrame({"time": bucket, "service": to["service"].astype(str).to_numpy()}).value_counts()
    join_timeouts(tl, counts)
    if earlier:
        tl = pd.concat([*earlier, tl], ignore_index=True) if len(tl) else pd.concat(earlier, ignore_index=True)
    tl["service"] = pd.Categorical(tl["service"])
    _add_limits(tl, recorder, step)
    if recorder.ejection_sites:
        tl["ejected"] = ejected_column(recorder, tl, step)
    if recorder.caches:
        add_cache_columns(tl, recorder.caches, step)
    if recorder.replication is not None:
        add_replica_columns(tl, recorder.replication, step)
    if recorder.autoscaled:
        _add_instance_counts(tl, recorder, step)
    return tl


def _add_instance_counts(tl: pd.DataFrame, recorder: Recorder, step: float) -> None:
    """``desired`` and ``ready`` columns when some service autoscales: its counts at the end of
    each bucket, from its ``scale`` (desired) and ``instance_ready``/``instance_drained``
    (ready) events; a service without autoscale shows its fixed instance count."""
    start = recorder.autoscaled
    desired: dict[str, list[tuple[float, float]]] = {s: [(0.0, float(d))] for s, (d, _) in start.items()}
    ready: dict[str, list[tuple[float, float]]] = {s: [(0.0, float(r))] for s, (_, r) in start.items()}
    last_d = {s: float(d) for s, (d, _) in start.items()}
    last_r = {s: float(r) for s, (_, r) in start.items()}
    for t, kind, comp, value in zip(recorder.e_time, recorder.e_kind, recorder.e_component, recorder.e_value,
                                    strict=True):
        if comp not in start:
            continue
        if kind == "scale":
            desired[comp].append((t, value - last_d[comp]))
            last_d[comp] = value
        elif kind == "instance_ready" or kind == "instance_drained":
            ready[comp].append((t, value - last_r[comp]))
            last_r[comp] = value
    fixed = recorder.fixed_instances
    services = tl["service"].astype(str).to_numpy()
    base = np.array([fixed.get(s, 0) for s in services], dtype=float)
    d = _levels_at_bucket_ends(tl, step, desired, np.nan)
    r = _levels_at_bucket_ends(tl, step, ready, np.nan)
    tl["desired"] = np.where(np.isnan(d), base, d).astype(np.int64)
    tl["ready"] = np.where(np.isnan(r), base, r).astype(np.int64)


def _levels_at_bucket_ends(tl: pd.DataFrame, step: float, changes: dict[str, list[tuple[float, float]]],
                           missing: float) -> np.ndarray:
    """Per timeline row, the level of its service's step series at the end of the row's bucket
    (the sampler's time is the bucket's start): the sum of the ``(time, delta)`` changes up to
    then. Services without changes get ``missing``."""
    out = np.full(len(tl), missing)
    services = tl["service"].astype(str).to_numpy()
    ends = tl["time"].to_numpy(dtype=float) + step
    for service, series in changes.items():
        series.sort(key=lambda c: c[0])  # stable: same-time changes keep their order
        times = np.array([c[0] for c in series])
        level = np.cumsum([c[1] for c in series])
        rows = np.flatnonzero(services == service)
        k = np.searchsorted(times, ends[rows], side="right")
        out[rows] = np.where(k > 0, level[np.maximum(k - 1, 0)], 0)
    return out


def _add_limits(tl: pd.DataFrame, recorder: Recorder, step: float) -> None:
    """A ``limit`` column when some service has an admission limit: the sum of its instances'
    limits at the end of each bucket, from the ``limit`` events (NaN for services without one).

    Built from the events after the run, so a scenario without limits has the same frame
    as before and the per-request path pays nothing. Each event replaces its instance's
    limit, so it changes the service's sum by the difference.
    """
    changes: dict[str, list[tuple[float, float]]] = {}
    last: dict[str, float] = {}
    for t, kind, comp, value in zip(recorder.e_time, recorder.e_kind, recorder.e_component, recorder.e_value,
                                    strict=True):
        if kind == "limit" and "->" not in comp and "/" in comp:  # an instance's limit, not a call site's
            changes.setdefault(comp.rsplit("/", 1)[0], []).append((t, value - last.get(comp, 0.0)))
            last[comp] = value
    if changes:
        tl["limit"] = _levels_at_bucket_ends(tl, step, changes, np.nan)


def ejected_column(recorder: Recorder, tl: pd.DataFrame, step: float) -> np.ndarray:
    """Instances out of their callers' balancers at the end of each timeline row, summed over
    the callers of its service (an instance ejected by two callers counts twice): the count
    of ``ejected`` minus ``unejected`` events of the call sites with outlier ejection."""
    sites = recorder.ejection_sites
    changes: dict[str, list[tuple[float, float]]] = {}
    for t, kind, comp in zip(recorder.e_time, recorder.e_kind, recorder.e_component, strict=True):
        if kind == "ejected" or kind == "unejected":
            service = sites.get(comp)
            if service is not None:
                changes.setdefault(service, []).append((t, 1 if kind == "ejected" else -1))
    return _levels_at_bucket_ends(tl, step, changes, 0).astype(np.int64)
