"""Autoscaling in the model: a pool of ``max`` instances, of which the ready ones get traffic.

:class:`ServiceAutoscaler` runs one service's autoscaler (``simres.policies.autoscale``):
every ``sync_period`` it measures the metric over the ready instances, asks the pure
decision object for the desired count, and acts on it:

- **scale up**: instances out of service (lowest index first) start; each becomes ready
  ``startup_delay`` seconds later, then serves ``cold_start.factor`` times slower for
  ``cold_start.duration``;
- **scale down**: starting instances are cancelled first (the newest first), then ready
  ones (highest index first) are drained: they leave every caller's balancer at once and
  finish the requests they hold.

The callers' balancers follow the ready set: each call site to the service registers in
``watchers`` and re-points its ``pick`` when the set changes. A service without autoscale has
no :class:`ServiceAutoscaler` and its sites pay nothing.

Events (component the service name): ``scale`` per decision (value the desired count, detail
``desired D, ready R, <metric> M``), ``instance_ready`` and ``instance_drained`` per instance
(value the ready count after it). The timeline's ``desired`` and ``ready`` columns are built
from them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from simpy import Environment, Event
from simpy.events import Timeout

from simres.policies.autoscale import AutoscaleConfig

if TYPE_CHECKING:
    from simres.metrics.recorder import Recorder
    from simres.model.service import Instance, Service


class ServiceAutoscaler:
    """One service's instance pool and its autoscaler."""

    def __init__(self, env: Environment, recorder: Recorder, service: Service, cfg: AutoscaleConfig) -> None:
        self.env = env
        self.recorder = recorder
        self.service = service
        self.cfg = cfg
        self.policy = cfg.build()
        n = len(service.instances)
        self.ready: list[int] = list(range(cfg.min))
        """Indexes of the ready instances, in index order (the callers' balancers pick among them)."""
        self.starting: dict[int, int] = {}
        """Instances starting: index -> start ticket (a cancelled start's timer finds another ticket)."""
        self._tickets = 0
        self.desired = cfg.min
        self.watchers: list[Callable[[], None]] = []
        """Each caller's re-pick, called when the ready set changes."""
        self._busy = [0.0] * n
        self._cap = 0.0
        """Worker-seconds of the ready instances up to ``_cap_at``."""
        self._cap_at = 0.0
        self._at = 0.0
        recorder.autoscaled[service.name] = (cfg.min, cfg.min)

    def start(self) -> None:
        """Start the sync loop."""
        self.env.process(self._loop())

    def _loop(self) -> Generator[Event, Any, None]:
        env = self.env
        insts = self.service.instances
        self._busy = [i.utilization_time(env.now) for i in insts]
        self._at = env.now
        while True:
            yield Timeout(env, self.cfg.sync_period)
            self.sync()

    def metric(self) -> float:
        """The metric over the ready instances (utilisation since the last sync, in-flight now,
        or the mean queue length for step scaling); 0 with none ready."""
        now = self.env.now
        insts = self.service.instances
        busy = [i.utilization_time(now) for i in insts]
        span = now - self._at
        prev = self._busy
        self._busy, self._at = busy, now
        ready = self.ready
        if not ready:
            return 0.0
        cfg = self.cfg
        if cfg.kind == "step":
            return sum(len(insts[k].queue) for k in ready) / len(ready)
        if cfg.metric == "inflight":
            return sum(insts[k].inflight for k in ready) / len(ready)
        workers = sum(insts[k].workers for k in ready)
        if span <= 0 or workers == 0:
            return 0.0
        return sum(busy[k] - prev[k] for k in ready) / (workers * span)

    def sync(self) -> None:
        """One decision: measure, decide, act, record."""
        now = self.env.now
        m = self.metric()
        desired = self.policy.decide(now, self.desired, len(self.ready), m)
        self.desired = desired
        self._act()
        name = "queue" if self.cfg.kind == "step" else self.cfg.metric
        self.recorder.event(now, "scale", self.service.name,
                            f"desired {desired}, ready {len(self.ready)}, {name} {m:.4g}", float(desired))
        log = self.recorder.log
        if log is not None:
            log.emit("scale", now, self.service.name, desired=desired, ready=len(self.ready), metric=name, value=m)

    def _act(self) -> None:
        """Start or stop instances until ready + starting equals the desired count."""
        have = len(self.ready) + len(self.starting)
        insts = self.service.instances
        if have < self.desired:
            busy = set(self.ready) | set(self.starting)
            free = [k for k in range(len(insts)) if k not in busy]
            for k in free[: self.desired - have]:
                self._tickets += 1
                self.starting[k] = self._tickets
                Timeout(self.env, self.cfg.startup_delay, (k, self._tickets)).callbacks.append(self._started)
        elif have > self.desired:
            extra = have - self.desired
            for k in sorted(self.starting, key=self.starting.__getitem__, reverse=True)[:extra]:
                del self.starting[k]
                extra -= 1
            if extra > 0:
                self._cap, self._cap_at = self.capacity_time(self.env.now), self.env.now
                for k in sorted(self.ready, reverse=True)[:extra]:
                    self.ready.remove(k)
                    self._instance_event("instance_drained", insts[k].node)
                self._changed()

    def _started(self, ev: Event) -> None:
        k, ticket = ev._value
        if self.starting.get(k) != ticket:
            return  # cancelled by a scale-down meanwhile
        del self.starting[k]
        self._cap, self._cap_at = self.capacity_time(self.env.now), self.env.now
        self.ready.append(k)
        self.ready.sort()
        inst = self.service.instances[k]
        cold = self.cfg.cold_start
        if cold is not None:
            inst.cold_factor *= cold.factor
            Timeout(self.env, cold.duration, inst).callbacks.append(self._warm)
        self._instance_event("instance_ready", inst.node)
        self._changed()

    def _instance_event(self, kind: str, node: str) -> None:
        """An instance joined or left the balancers: an event, and a decision-log line."""
        rec = self.recorder
        rec.event(self.env.now, kind, self.service.name, node, float(len(self.ready)))
        if rec.log is not None:
            rec.log.emit(kind, self.env.now, self.service.name, instance=node, ready=len(self.ready))

    def _warm(self, ev: Event) -> None:
        inst: Instance = ev._value
        assert self.cfg.cold_start is not None
        inst.cold_factor /= self.cfg.cold_start.factor

    def capacity_time(self, now: float) -> float:
        """Worker-seconds of the ready instances up to ``now`` (what ``utilization`` divides by)."""
        insts = self.service.instances
        return self._cap + (now - self._cap_at) * sum(insts[k].workers for k in self.ready)

    def _changed(self) -> None:
        for watch in self.watchers:
            watch()
