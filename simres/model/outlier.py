"""Outlier ejection in the call driver: the detector decides, the call site acts.

:class:`OutlierCallSite` is a :class:`~simres.model.driver.CallSite` whose caller has
``outlier_detection`` (``simres.policies.outlier``). It changes the site in three places
only, so a site without outlier detection runs the plain class and pays nothing:

- **the balancer**: ``pick`` is re-pointed, whenever the detector's view changes, at the
  target's balancer over the instances the detector leaves in (all of them when none is
  out, or in panic), and tells the detector of each pick where it needs it (Linkerd's
  probation permit);
- **recording**: every sent try's outcome also goes to the detector, at the time it ended;
- **the timer**: the detector's wake-ups (Envoy's interval sweep, Linkerd's penalties) are
  plain SimPy timeouts.

Ejections, un-ejections and Linkerd's probations become events of the site (kind
``ejected``/``unejected``/``probation``/``probe_failed``, detail ``<instance>: <reason>``,
value the instance index); the recorder lists the site in ``ejection_sites`` so the timeline
gets its ``ejected`` column.
"""

from __future__ import annotations

from typing import Any

from simpy import Event
from simpy.events import Timeout

from simres.model.driver import CallSite
from simres.policies.outlier import OutlierConfig, OutlierDetector
from simres.rng import stream, uniform_sampler


class OutlierCallSite(CallSite):
    """A call site whose balancer skips the instances its outlier detector ejected."""

    __slots__ = ("_base_pick", "outlier")

    def __init__(self, *, policy: Any, seed: int, repeat: str = "", **kw: Any) -> None:
        super().__init__(policy=policy, seed=seed, repeat=repeat, **kw)
        self._base_pick = self._full_pick
        cfg: OutlierConfig = policy.outlier_detection
        self.outlier: OutlierDetector = self._detector(cfg, seed, f"call:{self.component}{repeat}")

    def _detector(self, cfg: OutlierConfig, seed: int, ident: str) -> OutlierDetector:
        """Build this site's detector (one per calling instance or client member, as each
        proxy keeps its own) with its events, its timer and its streams (keyed like the
        site's other streams: ``outlier`` for enforcement, ``outlier_jitter`` for jitter)."""
        env = self.env
        rec = self.recorder
        component = self.component
        target = self.target
        rec.ejection_sites[component] = target.name

        def listener(now: float, host: int, action: str, reason: str) -> None:
            rec.event(now, action, component, f"{target.instances[host].node}: {reason}", float(host))
            if rec.log is not None:
                rec.log.emit(action, now, component, instance=target.instances[host].node, reason=reason)

        det: OutlierDetector

        def wake(at: float) -> None:
            def fire(_ev: Event) -> None:
                det.on_timer(max(env.now, at))

            Timeout(env, max(0.0, at - env.now)).callbacks.append(fire)

        det = cfg.build(len(target.instances), rng=uniform_sampler(stream(seed, ident, "outlier")),
                        listener=listener, wake=wake,
                        jitter_rng=uniform_sampler(stream(seed, ident, "outlier_jitter")))
        det.on_change = self._repick
        det.start(env.now)
        self._repick(det)
        return det

    def _repick(self, det: OutlierDetector | None = None) -> None:
        """Point ``pick`` at the balancer over the instances the detector leaves in."""
        det = det if det is not None else self.outlier
        hosts = det.candidates()
        auto = self.target.autoscale
        if auto is not None and len(auto.ready) < len(self.outstanding):
            ready = auto.ready
            hosts = list(ready) if hosts is None else ([h for h in hosts if h in ready] or list(ready))
        if hosts is None:
            self._rr %= len(self.outstanding)
            inner = self._base_pick
        else:
            inner = self._subset(self.target.load_balancer, hosts)
        if not det.needs_pick:
            self.pick = inner
            return
        on_pick = det.on_pick

        def pick() -> int:
            idx = inner()
            on_pick(idx)
            return idx

        self.pick = pick

    def _on_ready(self) -> None:
        """The target's ready instances changed: re-pick (once the detector exists)."""
        if getattr(self, "outlier", None) is not None:
            self._repick()

    def _record(self, req_id: int, attempt: int, inst: int, start: float, end: float,
                outcome: str, sent: bool, wait: float, try_id: int, parent: int, served: float) -> None:
        """Record the try as every site does, then report a sent one to the detector."""
        CallSite._record(self, req_id, attempt, inst, start, end, outcome, sent, wait, try_id, parent, served)
        if sent:
            self.outlier.on_result(end, inst, outcome)
