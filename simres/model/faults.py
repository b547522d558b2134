"""Fault processes: change the world at scheduled times and change it back.

Every fault is applied by one small process: wait until ``at``, apply, record a
``fault_start`` event, wait ``duration``, revert, record ``fault_end``. Faults compose:
each one adds or removes its own effect (a partition counter, a latency term, a
slowdown factor, removed workers, an error probability), so overlapping faults of any
kinds stack and unwind correctly.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from simpy import Environment, Event
from simpy.events import Timeout

from simres.metrics.recorder import Recorder
from simres.scenario.faults import (
    CacheCrashFault,
    CacheFlushFault,
    CapacityFault,
    ChaosFault,
    CrashFault,
    ErrorsFault,
    LatencyFault,
    LoadFault,
    PartitionFault,
    SlowdownFault,
)

if TYPE_CHECKING:
    from simres.model.cache import Cache
    from simres.model.client import ClientPopulation
    from simres.model.network import Network
    from simres.model.service import Instance, Service

Action = Callable[[], None]


def fault_name(fault: Any, index: int) -> str:
    """The label of a fault in events and metrics."""
    return fault.name or f"{fault.kind}#{index}"


class FaultInjector:
    """Builds the apply/revert actions of each fault and schedules them."""

    def __init__(self, env: Environment, recorder: Recorder, network: Network,
                 services: dict[str, Service], clients: dict[str, ClientPopulation],
                 caches: list[Cache] | None = None):
        self.env = env
        self.caches = caches or []
        self.recorder = recorder
        self.network = network
        self.services = services
        self.clients = clients

    def schedule(self, faults: list[Any]) -> None:
        """Start one process per fault."""
        for i, f in enumerate(faults):
            apply, revert = self._actions(f)
            self.env.process(self._run(fault_name(f, i), f, apply, revert))

    def _run(self, name: str, f: Any, apply: Action, revert: Action) -> Generator[Event, Any, None]:
        yield Timeout(self.env, f.at)
        apply()
        self.recorder.event(self.env.now, "fault_start", name, f.kind, f.duration or float("nan"))
        if self.recorder.log is not None:
            self.recorder.log.emit("fault_start", self.env.now, name, kind=f.kind, duration=f.duration,
                                   service=getattr(f, "service", None))
        if f.duration is None:
            return
        yield Timeout(self.env, f.duration)
        revert()
        self.recorder.event(self.env.now, "fault_end", name, f.kind, f.duration)
        if self.recorder.log is not None:
            self.recorder.log.emit("fault_end", self.env.now, name, kind=f.kind, duration=f.duration,
                                   service=getattr(f, "service", None))

    def _instances(self, service: str, instance: int | None) -> list[Instance]:
        insts = self.services[service].instances
        return insts if instance is None else [insts[instance]]

    def _actions(self, f: Any) -> tuple[Action, Action]:
        if isinstance(f, PartitionFault):
            links = self.network.find(f.from_, f.to, both_ways=not f.one_way)

            def part_on() -> None:
                for lk in links:
                    lk.blocked += 1

            def part_off() -> None:
                for lk in links:
                    lk.blocked -= 1

            return part_on, part_off
        if isinstance(f, LatencyFault):
            links = self.network.find(f.from_, f.to, both_ways=not f.one_way)

            def lat_on() -> None:
                for lk in links:
                    lk.add += f.add
                    lk.mult *= f.multiply

            def lat_off() -> None:
                for lk in links:
                    lk.add -= f.add
                    lk.mult /= f.multiply

            return lat_on, lat_off
        if isinstance(f, SlowdownFault):
            insts = self._instances(f.service, f.instance)

            def slow_on() -> None:
                for inst in insts:
                    inst.slow *= f.factor

            def slow_off() -> None:
                for inst in insts:
                    inst.slow /= f.factor

            return slow_on, slow_off
        if isinstance(f, CapacityFault):
            insts = self._instances(f.service, f.instance)
            removed: dict[int, int] = {}

            def cap_on() -> None:
                for inst in insts:
                    take = min(f.remove, inst.workers - 1)
                    removed[id(inst)] = take
                    inst.set_workers(inst.workers - take)

            def cap_off() -> None:
                for inst in insts:
                    inst.set_workers(inst.workers + removed.pop(id(inst), 0))

            return cap_on, cap_off
        if isinstance(f, CrashFault):
            insts = self._instances(f.service, f.instance)
            cold = f.cold_start

            def crash_on() -> None:
                for inst in insts:
                    inst.crash(blackhole=f.mode == "blackhole")

            def crash_off() -> None:
                for inst in insts:
                    inst.restart()
                    if cold is not None:
                        inst.cold_factor *= cold.factor
                        self.env.process(self._end_cold(inst, cold.factor, cold.duration))

            return crash_on, crash_off
        if isinstance(f, ErrorsFault):
            insts = self._instances(f.service, f.instance)

            def err_on() -> None:
                for inst in insts:
                    inst.set_error_override(f.probability)

            def err_off() -> None:
                for inst in insts:
                    inst.set_error_override(f.probability, remove=True)

            return err_on, err_off
        if isinstance(f, LoadFault):
            pop = self.clients[f.client]

            def load_on() -> None:
                pop.load_factor *= f.factor

            def load_off() -> None:
                pop.load_factor /= f.factor

            return load_on, load_off
        if isinstance(f, ChaosFault):
            insts = self._instances(f.service, f.instance)
            total = f.mix.timeout + f.mix.error + f.mix.connection
            spec = (f.rate, f.mix.timeout / total, f.mix.error / total)

            def chaos_on() -> None:
                for inst in insts:
                    inst.push_chaos(spec)

            def chaos_off() -> None:
                for inst in insts:
                    inst.pop_chaos(spec)

            return chaos_on, chaos_off
        if isinstance(f, CacheFlushFault | CacheCrashFault):
            return self._cache_actions(f)
        raise TypeError(f"unknown fault kind {type(f).__name__}")  # pragma: no cover

    def _cache_actions(self, f: CacheFlushFault | CacheCrashFault) -> tuple[Action, Action]:
        """cache_flush empties the targeted caches; cache_crash also makes them miss until it ends.
        Each records a ``cache_flush`` or ``cache_crash`` event per cache with the entries lost."""
        caches = [c for c in self.caches if c.service == f.service and (f.call is None or c.call == f.call)]
        rec, env = self.recorder, self.env

        if isinstance(f, CacheFlushFault):
            def flush_on() -> None:
                for c in caches:
                    rec.event(env.now, "cache_flush", c.component, f.kind, float(c.flush()))

            return flush_on, flush_on  # never reverted: a flush has no duration

        store = f.store

        def crash_on() -> None:
            for c in caches:
                rec.event(env.now, "cache_crash", c.component, f.kind, float(c.crash(store)))

        def crash_off() -> None:
            for c in caches:
                c.restart(store)
                rec.event(env.now, "cache_restart", c.component, f.kind, float(len(c.entries)))

        return crash_on, crash_off

    def _end_cold(self, inst: Instance, factor: float, duration: float) -> Generator[Event, Any, None]:
        yield Timeout(self.env, duration)
        inst.cold_factor /= factor


def max_load_factor(faults: list[Any], client: str) -> float:
    """Upper bound of a client's load multiplier over the run (for thinning)."""
    bound = 1.0
    for f in faults:
        if isinstance(f, LoadFault) and f.client == client and f.factor > 1:
            bound *= f.factor
    return bound


def min_load_factor(faults: list[Any], client: str) -> float:
    """Lower bound of a client's load multiplier over the run (below 1: traffic is thinned)."""
    bound = 1.0
    for f in faults:
        if isinstance(f, LoadFault) and f.client == client and f.factor < 1:
            bound *= f.factor
    return bound


def surge_start(faults: list[Any], client: str) -> float:
    """When the first load fault with factor > 1 on ``client`` starts (inf if none does)."""
    return min((f.at for f in faults if isinstance(f, LoadFault) and f.client == client and f.factor > 1),
               default=float("inf"))
