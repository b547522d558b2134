"""The call driver: the one place where a remote call happens.

A :class:`CallSite` is one caller's logical calls to one service under one policy stack.
It asks the (pure) policies and acts on their answers with SimPy events, in this
order, outermost first:

    deadline -> retry loop -> adaptive throttle -> client rate limiter -> circuit breaker
    -> concurrency limit -> bulkhead -> per-try timeout -> network -> remote queue and work
    (-> network back)

A call's ``order`` may move the breaker, the limit or the bulkhead outside the retry loop
(``deadline -> breaker -> retry loop -> ...``): that layer then admits the logical call
once and hears its final outcome (:meth:`CallSite._outer_enter`, :meth:`CallSite._outer_leave`).

and the retry budget is consulted between a failed try and the next one. Every try,
including one rejected locally, becomes a row of the ``attempts`` frame; every decision
that changes state becomes an event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from heapq import heappush
from typing import TYPE_CHECKING, Any

import numpy as np
from simpy import Environment, Event
from simpy.events import NORMAL, PENDING, Timeout

from simres.metrics.recorder import ATTEMPT_CODES, ATTEMPT_ROW, Recorder
from simres.model.engine import Fired, new
from simres.model.hedging import HedgedCall, hedged_process
from simres.model.job import READ, WRITE, Job, PhasedJob
from simres.model.rate_gate import RateGate
from simres.model.service import Service
from simres.outcomes import (
    BREAKER_OPEN,
    BULKHEAD_FULL,
    CONNECT_TIMEOUT,
    CONNECTION,
    DEGRADED,
    OK,
    REJECTED,
    SHED,
    THROTTLED,
    TIMEOUT,
)
from simres.policies.breaker import WAIT
from simres.policies.limits import to_nanos
from simres.rng import stream, uniform_sampler

if TYPE_CHECKING:
    from simres.model.network import Link
    from simres.policies import Bulkhead, CircuitBreaker, ConcurrencyLimiter, RetryBudget
    from simres.policies.hedging import HedgePolicy
    from simres.policies.throttle import AdaptiveThrottle
    from simres.scenario.services import CallPolicy

INF = float("inf")
NAN = float("nan")
_BREAKER_CODE = {"closed": 0.0, "open": 1.0, "half_open": 2.0}
_TIME_DRIVEN = frozenset({"open_elapsed", "half_open_timeout"})
"""Breaker transitions decided by the clock, not by a try's result (no try ids in the log)."""
_ATTEMPT_ROW = ATTEMPT_ROW.pack
_UNAVAILABLE = frozenset({CONNECTION, REJECTED, SHED})
"""Outcomes a client-side limit samples as drops (gRPC UNAVAILABLE: the server refused)."""


def watch_limit(env: Environment, recorder: Recorder, limiter: ConcurrencyLimiter, component: str) -> None:
    """Record ``limiter``'s limit over time as ``limit`` events of ``component``: the initial
    value now (detail ``initial``), then one event per change."""
    event = recorder.event
    event(env.now, "limit", component, "initial", float(limiter.limit))

    def on_change(limit: int) -> None:
        event(env.now, "limit", component, "", float(limit))

    limiter.on_change = on_change
    if limiter.timed:  # Envoy's controller: serve its timers with SimPy timeouts
        algo: Any = limiter.algorithm

        def arm(name: str, generation: int, due_ns: int) -> None:
            delay = max(0.0, due_ns / 1e9 - env.now)
            env.timeout(delay).callbacks.append(
                lambda _ev: limiter.fire(name, generation, due_ns))

        algo.arm = arm
        algo.start(to_nanos(env.now))


def budget_fields(budget: Any) -> dict[str, Any]:
    """A retry budget's balance as decision-log fields: its kind, ``balance`` (tokens, retries
    left in a ratio budget's window, or free retry slots) and the counters the kind has."""
    fields: dict[str, Any] = {"budget": type(budget).__name__, "balance": float(budget.tokens)}
    for name in ("active", "active_retries", "retries_granted", "retries_denied"):
        v = getattr(budget, name, None)
        if isinstance(v, (int, float)):
            fields[name] = v
    return fields


class SharedState:
    """Policy state shared across call sites when a policy's ``scope`` is ``shared``."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], Any] = {}

    def get(self, key: tuple[str, str], make: Any) -> Any:
        """The object under ``key``, created by ``make()`` on first use."""
        obj = self._objects.get(key)
        if obj is None:
            obj = self._objects[key] = make()
        return obj


class CallSite:
    """One caller's logical calls to ``target`` with one policy stack (see module doc)."""

    __slots__ = (
        "_add_row",
        "_code",
        "_full_pick",
        "_instances",
        "_lbu",
        "_next_try",
        "_rr",
        "_throttling",
        "_wheel",
        "_wheel_armed",
        "back_links",
        "breaker",
        "budget",
        "bulkhead",
        "callbacks",
        "caller",
        "component",
        "connect_timeout",
        "deadline",
        "depth",
        "env",
        "hedge",
        "limiter",
        "out_links",
        "outer",
        "outstanding",
        "pick",
        "rate_limiter",
        "read_timeout",
        "recorder",
        "retry",
        "rng",
        "simple",
        "target",
        "throttle",
        "timeout",
        "u",
    )

    def __init__(
        self,
        *,
        env: Environment,
        recorder: Recorder,
        caller: str,
        caller_node: str,
        member: int | None,
        target: Service,
        policy: CallPolicy,
        depth: int,
        network: Any,
        seed: int,
        shared: SharedState,
        throttle_cfg: Any = None,
        node_key: str | None = None,
        repeat: str = "",
    ):
        self.env = env
        self.recorder = recorder
        self.caller = caller
        self.target = target
        self.depth = depth
        # "caller->callee", plus "#member" for one member of a client population or one
        # instance of a calling service: metrics group breakers by the part before '#'.
        suffix = f"#{member}" if member is not None else ""
        self.component = f"{caller}->{target.name}{suffix}"
        self.timeout = policy.timeout
        self.deadline = policy.deadline
        self.connect_timeout: float | None = getattr(policy, "connect_timeout", None)
        self.read_timeout: float | None = getattr(policy, "read_timeout", None)
        """Connect and read timeouts: a try with either is a :class:`~simres.model.job.PhasedJob`."""
        self.retry = policy.retry
        # Every stream is keyed by the site's full identity: ``node_key`` names the calling
        # member (``web#3``: members of a population share their node name ``web``), and
        # ``repeat`` tells apart two calls of one handler to the same target (``@1``).
        node = (node_key or caller_node) + repeat
        ident = f"call:{self.component}{repeat}"
        self.out_links: list[Link] = [network.link(caller_node, inst.node, f"{node}->{inst.node}")
                                      for inst in target.instances]
        self.back_links: list[Link] = [network.link(inst.node, caller_node, f"{inst.node}->{node}")
                                       for inst in target.instances]
        self.rng: np.random.Generator = stream(seed, ident, "retry")
        self.outstanding = [0] * len(target.instances)
        self._wheel: deque[tuple[float, Job]] = deque()
        """The per-try timers of this site's tries, as (due, job) in start order (see :meth:`_sweep`)."""
        self._wheel_armed = False
        """Tries this caller has in flight to each instance (what a least-request balancer sees)."""
        self._lbu = uniform_sampler(stream(seed, ident, "load_balancer"))
        n = len(target.instances)
        self._rr = int(self._lbu() * n)  # each caller starts its rotation somewhere else
        self.pick = self._balancer(target.load_balancer, n)
        self._full_pick = self.pick
        """The balancer over every instance (``pick`` is re-pointed at a subset when the
        target autoscales and not all its instances are ready)."""
        if target.autoscale is not None:
            target.autoscale.watchers.append(self._on_ready)
            self._on_ready()
        self.u = uniform_sampler(stream(seed, ident, "decisions"))
        edge = f"{caller}->{target.name}"

        def scoped(cfg: Any, kind: str, make: Any) -> Any:
            if cfg is None:
                return None
            if getattr(cfg, "scope", "per_client") == "shared":
                return shared.get((kind, edge), make)
            return make()

        hedge_cfg = getattr(policy, "hedge", None)
        self.hedge: HedgePolicy | None = hedge_cfg.build() if hedge_cfg is not None else None
        """Hedged requests (see :mod:`simres.model.hedging`); a hedge's budget is the retry budget's slot."""
        budget_cfg = (policy.retry.budget if policy.retry is not None
                      else hedge_cfg.budget if hedge_cfg is not None else None)
        self.budget: RetryBudget | None = scoped(budget_cfg, "budget", lambda: budget_cfg.build())
        component = self.component if getattr(policy.breaker, "scope", "") != "shared" else edge
        self.breaker: CircuitBreaker | None = scoped(
            policy.breaker, "breaker",
            lambda: policy.breaker.build(listener=self._breaker_listener(component),
                                         rng=stream(seed, f"breaker:{component}{repeat}", "open_for")),
        )
        self.bulkhead: Bulkhead | None = scoped(policy.bulkhead, "bulkhead", lambda: policy.bulkhead.build())
        limit_cfg = getattr(policy, "limit", None)
        lcomp = self.component if getattr(limit_cfg, "scope", "") != "shared" else edge
        self.limiter: ConcurrencyLimiter | None = scoped(
            limit_cfg, "limit",
            lambda: limit_cfg.build(rng=uniform_sampler(stream(seed, f"limit:{lcomp}{repeat}", "probe"))),
        )
        if self.limiter is not None and self.limiter.on_change is None:
            watch_limit(env, recorder, self.limiter, lcomp)
        self.throttle: AdaptiveThrottle | None = scoped(throttle_cfg, "throttle", lambda: throttle_cfg.build())
        rl_cfg = policy.retry.rate_limiter if policy.retry is not None else None
        rcomp = self.component if getattr(rl_cfg, "scope", "") != "shared" else edge
        self.rate_limiter: RateGate | None = scoped(
            rl_cfg, "rate_limiter",
            lambda: RateGate(env, rl_cfg, uniform_sampler(stream(seed, f"rate_limit:{rcomp}{repeat}", "race"))))
        """botocore adaptive mode's token bucket: once enabled, every try waits for a token."""
        self._throttling = frozenset(policy.retry.throttling_outcomes) if policy.retry is not None else frozenset()
        self.simple = (
            self.timeout is None and self.deadline is None and self.retry is None and self.breaker is None
            and self.connect_timeout is None and self.read_timeout is None
            and self.bulkhead is None and self.throttle is None and self.limiter is None and self.hedge is None
        )
        """No policy at all: a request can be driven by callbacks alone (a client's ``_fast_request``)."""
        self.outer: frozenset[str] = getattr(policy, "outside_retry", frozenset())
        """The layers (breaker, limit, bulkhead) that wrap the whole logical call instead of each try."""
        self.callbacks = self.bulkhead is None and self.limiter is None and not self.outer
        """No bulkhead, limit or reordered stack: a logical call can run on callbacks (see :meth:`new_call`)."""
        a = recorder
        self._next_try = recorder.next_try
        self._instances = target.instances
        """The target's instances (the service's own list, bound once)."""
        self._code = a.site(caller, target.name, depth)
        """This site's code in the recorder (its caller, service and depth)."""
        self._add_row = recorder.add_attempt_row
        """Appends one packed attempt row (see :meth:`_record`)."""

    def _balancer(self, kind: str, n: int) -> Any:
        """The pick function for ``kind`` over ``n`` instances."""
        if n == 1:
            return lambda: 0
        u = self._lbu
        if kind == "round_robin":
            return self._round_robin
        if kind == "random":
            return lambda: int(u() * n)
        if kind == "least_outstanding":
            return self._least_outstanding
        return self._power_of_two

    def _on_ready(self) -> None:
        """The target's ready instances changed: pick among them only."""
        ready = self.target.autoscale.ready
        if len(ready) == len(self.outstanding):
            self._rr %= len(self.outstanding)
            self.pick = self._full_pick
        else:
            self.pick = self._subset(self.target.load_balancer, list(ready))

    def _subset(self, kind: str, hosts: list[int]) -> Any:
        """The pick function for ``kind`` over the instances ``hosts`` only (Envoy's balancers
        pick among the healthy hosts; round robin keeps counting through the subset)."""
        k = len(hosts)
        if k == 1:
            only = hosts[0]
            return lambda: only
        u = self._lbu
        out = self.outstanding
        if kind == "random":
            return lambda: hosts[int(u() * k)]
        if kind == "round_robin":
            def round_robin() -> int:
                i = self._rr
                self._rr = i + 1
                return hosts[i % k]
            return round_robin
        if kind == "least_outstanding":
            def least() -> int:
                best = min(out[h] for h in hosts)
                ties = [h for h in hosts if out[h] == best]
                return ties[0] if len(ties) == 1 else ties[int(u() * len(ties))]
            return least

        def power_of_two() -> int:
            a = int(u() * k)
            b = int(u() * (k - 1))
            if b >= a:
                b += 1
            ha, hb = hosts[a], hosts[b]
            return ha if out[ha] <= out[hb] else hb
        return power_of_two

    def _round_robin(self) -> int:
        i = self._rr
        self._rr = (i + 1) % len(self.outstanding)
        return i

    def _least_outstanding(self) -> int:
        out = self.outstanding
        best = min(out)
        ties = [i for i, o in enumerate(out) if o == best]
        return ties[0] if len(ties) == 1 else ties[int(self._lbu() * len(ties))]

    def _power_of_two(self) -> int:
        out = self.outstanding
        n = len(out)
        a = int(self._lbu() * n)
        b = int(self._lbu() * (n - 1))
        if b >= a:
            b += 1
        return a if out[a] <= out[b] else b

    def _breaker_listener(self, component: str) -> Any:
        rec = self.recorder

        def on_transition(now: float, old: str, new: str, reason: str) -> None:
            rec.event(now, "breaker", component, f"{old}->{new}: {reason}", _BREAKER_CODE.get(new, -1.0))
            log = rec.log
            if log is not None:
                ids = log.context  # the try whose result is being judged; none for a time-driven move
                extra = ({"req": ids[0], "try": ids[1], "parent": ids[2]}
                         if ids is not None and reason not in _TIME_DRIVEN else {})
                log.emit("breaker", now, component, old=old, new=new, reason=reason,
                         **self.breaker.evidence(now, new, reason), **extra)  # type: ignore[union-attr]

        return on_transition

    def _log_try(self, log: Any, req_id: int, attempt: int, job: Job, parent: int, shown: str,
                 t0: float, t1: float) -> None:
        """Decision log: this try's ids become the context a breaker transition it causes
        carries, and a failed try is a ``try_failed`` line (the evidence ``explain`` shows)."""
        log.context = (req_id, job.try_id, parent)
        if shown is not OK and shown is not DEGRADED:
            log.emit("try_failed", t1, self.component, req=req_id, attempt=attempt, outcome=shown,
                     instance=self.target.instances[job.idx].node, duration=t1 - t0,
                     **{"try": job.try_id, "parent": parent})

    def _log_retry(self, log: Any, t1: float, req_id: int, attempt: int, job: Job, parent: int,
                   outcome: str, delay: float | None, deadline_at: float) -> None:
        """Decision log: the retry decision after a failed try (scheduled with its delay, or
        given up: the policy said no, or the delay would pass the deadline)."""
        ids = {"req": req_id, "try": job.try_id, "parent": parent, "attempt": attempt, "outcome": outcome}
        if delay is None:
            log.emit("retry_given_up", t1, self.component, why="policy", **ids)
        elif t1 + delay >= deadline_at:
            log.emit("retry_given_up", t1, self.component, why="deadline", delay=delay,
                     deadline=deadline_at, **ids)
        else:
            log.emit("retry_scheduled", t1, self.component, delay=delay, next_attempt=attempt + 1,
                     retry_at=t1 + delay, **ids)

    def _log_budget(self, log: Any, t1: float, granted: bool, req_id: int, attempt: int, outcome: str,
                    what: str = "retry") -> None:
        """Decision log: the retry budget's answer with its balance after it."""
        log.emit("budget_granted" if granted else "budget_denied", t1, self.component, req=req_id,
                 attempt=attempt, outcome=outcome, what=what, **budget_fields(self.budget))

    def _limit_end(self, token: tuple[int, int], outcome: str, now: float) -> None:
        """One sample for the client-side limit, as Netflix's gRPC client interceptor reports it:
        a success for OK, a drop for UNAVAILABLE (refused: connection, rejected, shed), and no
        sample for any other status (an error reply, a timeout)."""
        limiter = self.limiter
        assert limiter is not None
        if outcome is OK or outcome is DEGRADED:
            limiter.success_s(token, now)
        elif outcome in _UNAVAILABLE:
            limiter.dropped_s(token, now)
        else:
            limiter.ignore(token)

    def _rate_response(self, now: float, outcome: str) -> None:
        """botocore's ``needs-retry`` hook for a try that was sent: its response updates the
        client rate limiter; a throttling one is a ``rate_limit`` event (value: the new fill rate)."""
        gate = self.rate_limiter
        assert gate is not None
        throttled = outcome in self._throttling
        gate.response(now, throttled)
        if throttled:
            rl = gate.limiter
            scope = self.component if rl.cfg.scope != "shared" else self.component.split("#", 1)[0]
            self.recorder.event(now, "rate_limit", scope, outcome, rl.fill_rate)
            if self.recorder.log is not None:
                ids = self.recorder.log.context
                self.recorder.log.emit("rate_limit", now, scope, outcome=outcome, fill_rate=rl.fill_rate,
                                       req=ids[0] if ids else None, **{"try": ids[1] if ids else None})

    def _record(self, req_id: int, attempt: int, inst: int, start: float, end: float,
                outcome: str, sent: bool, wait: float, try_id: int, parent: int, served: float) -> None:
        self._add_row(_ATTEMPT_ROW(req_id, attempt, self._code, inst, start, end, ATTEMPT_CODES[outcome], sent, wait,
                                   try_id, parent, served))  # one packed row (see Recorder._unstage)

    def new_call(self, req_id: int, priority: str, done: Any, parent_deadline: float = INF,
                 parent: int = -1) -> Call | HedgedCall:
        """A logical call driven by callbacks; ``done(call)`` runs when it ends.

        Only for call sites with ``callbacks`` set (no bulkhead). The caller may set
        ``call.tag`` before :meth:`Call.start`; ``done`` reads ``call.outcome`` and
        ``call.attempt`` (tries made). Same decisions, draws, events and rows as :meth:`call`.
        A site with ``hedge`` makes a :class:`~simres.model.hedging.HedgedCall` instead.
        """
        if self.hedge is not None:
            return HedgedCall(self, req_id, priority, done, parent_deadline, parent)
        return Call(self, req_id, priority, done, parent_deadline, parent)

    def call(self, req_id: int, priority: str, parent_deadline: float = INF, parent: int = -1
             ) -> Generator[Event, Any, tuple[str, int]]:
        """Make one logical call; returns (final outcome, tries made).

        ``parent`` is the try whose handler makes this call (-1 for a client's call): every
        try of this call records it, so a request's tries form a tree.
        """
        if self.hedge is not None:
            return (yield from hedged_process(self, req_id, priority, parent_deadline, parent))
        env = self.env
        now = env.now
        deadline_at = parent_deadline
        if self.deadline is not None and now + self.deadline < deadline_at:
            deadline_at = now + self.deadline
        rc = self.retry.new_call() if self.retry is not None else None
        budget = self.budget
        breaker = self.breaker
        bulkhead = self.bulkhead
        throttle = self.throttle
        limiter = self.limiter
        rl = self.rate_limiter
        if budget is not None:
            budget.on_request(now)
        outer = self.outer
        opermit = otoken = None
        if outer:  # `order`: these layers admit the logical call once and hear its final outcome
            breaker = None if "breaker" in outer else breaker
            limiter = None if "limit" in outer else limiter
            bulkhead = None if "bulkhead" in outer else bulkhead
            refused, opermit, otoken = yield from self._outer_enter(req_id, deadline_at, parent)
            if refused is not None:
                return refused, 1
        attempt = 0
        wait = 0.0
        retry_cost: float | None = None  # what the budget charged for the retry under way
        outcome = TIMEOUT
        while True:
            t0 = env.now
            if t0 >= deadline_at:
                break  # a try is never started after the deadline (e.g. a parent's propagated one)
            attempt += 1
            if rc is not None:
                rc.on_try()
            # -- local gates: throttle, breaker, bulkhead -------------------------------
            if throttle is not None and throttle.should_reject(t0, self.u()):
                throttle.record_rejection(t0)
                outcome = self._reject(req_id, attempt, t0, THROTTLED, "throttled", retry_cost, wait, parent)
                break
            if rl is not None and rl.enabled:
                granted_ev = Event(env)
                if not rl.ask(deadline_at, granted_ev.succeed):
                    asked = t0
                    granted = yield granted_ev
                    t0 = env.now
                    if not granted:
                        outcome = self._reject(req_id, attempt, asked, THROTTLED, "rate_limit_expired",
                                               retry_cost, wait, parent)
                        break
                    wait += t0 - asked
            refused, permit, ltoken, t0 = yield from self._gates(req_id, attempt, t0, deadline_at, breaker,
                                                                 limiter, bulkhead, retry_cost, wait, parent)
            if refused is not None:
                outcome = refused
                break
            # -- the try --------------------------------------------------------------
            if budget is not None:
                budget.on_try_start(t0, attempt > 1)
            shown, job, idx = yield from self._try(req_id, priority, deadline_at, parent=parent)
            outcome = CONNECTION if shown is CONNECT_TIMEOUT else shown  # what the policies judge
            t1 = env.now
            log = self.recorder.log
            if log is not None:
                self._log_try(log, req_id, attempt, job, parent, shown, t0, t1)
            if bulkhead is not None:
                waiter = bulkhead.leave(t1)
                if waiter is not None:
                    waiter.succeed()
            if ltoken is not None:
                self._limit_end(ltoken, outcome, t1)
            if breaker is not None:
                breaker.on_result(t1, permit, outcome, t1 - t0)
            if throttle is not None:
                throttle.record_outcome(t1, outcome)
            if rl is not None:
                self._rate_response(t1, outcome)
            if budget is not None:
                budget.on_try_end(t1, outcome, attempt > 1, retry_cost)
            self._record(req_id, attempt, idx, t0, t1, shown, True, wait, job.try_id, parent, job.served)
            if outcome is OK or outcome is DEGRADED or rc is None:
                outcome = shown
                break
            # -- retry decision: policy, then the deadline, then the budget --------------
            delay = rc.next_delay(outcome, self.rng, job.retry_after)
            if log is not None:
                self._log_retry(log, t1, req_id, attempt, job, parent, outcome, delay, deadline_at)
            if delay is None or t1 + delay >= deadline_at:
                outcome = shown
                break
            if budget is not None:
                # priced by the try's own outcome: a connect timeout costs a timeout's tokens (botocore 2.0)
                if not budget.try_acquire_retry(t1, shown):
                    self.recorder.event(t1, "budget_denied", self.component, outcome, float(req_id))
                    if log is not None:
                        self._log_budget(log, t1, False, req_id, attempt, outcome)
                    outcome = shown
                    break
                retry_cost = getattr(budget, "last_cost", None)
                if log is not None:
                    self._log_budget(log, t1, True, req_id, attempt, outcome)
            if delay > 0:
                yield Timeout(env, delay)
            wait = delay
            outcome = shown  # the call's outcome if the deadline ends it before the next try
        if outer:
            self._outer_leave(now, opermit, otoken, CONNECTION if outcome is CONNECT_TIMEOUT else outcome)
        return outcome, attempt

    def _outer_enter(self, req_id: int, deadline_at: float, parent: int
                     ) -> Generator[Event, Any, tuple[str | None, Any, Any]]:
        """Admit a logical call through the layers ``order`` put outside the retry loop.

        The same gates, in the same order, as a try passes inside the loop (breaker, limit,
        bulkhead: :meth:`_gates`), but once for the whole call. Returns ``(None, breaker
        permit, limit token)``, or ``(outcome, None, None)`` when a layer refused the call:
        then it is recorded as one unsent try, as a refused first try is.
        """
        outer = self.outer
        refused, permit, token, _ = yield from self._gates(
            req_id, 1, self.env.now, deadline_at, self.breaker if "breaker" in outer else None,
            self.limiter if "limit" in outer else None, self.bulkhead if "bulkhead" in outer else None,
            None, 0.0, parent)
        return (refused, None, None) if refused is not None else (None, permit, token)

    def _gates(self, req_id: int, attempt: int, t0: float, deadline_at: float, breaker: Any, limiter: Any,
               bulkhead: Any, retry_cost: float | None, wait: float, parent: int
               ) -> Generator[Event, Any, tuple[str | None, Any, Any, float]]:
        """The breaker, the concurrency limit and the bulkhead (each None when not on this side
        of the retry loop), in that order: ``(None, permit, limit token, t0)`` when all admit
        (``t0`` moved on if the breaker made the try wait for a half-open verdict), or
        ``(outcome, None, None, t0)`` when one refused (the try is recorded as refused and
        what the earlier gates granted is given back)."""
        env = self.env
        permit = None
        if breaker is not None:
            permit = breaker.allow(t0, True)
            while permit == WAIT:  # half_open_waits: wait for the probe's verdict, then ask again
                woken = Event(env)
                breaker.wait(woken.succeed)
                yield woken
                t0 = env.now
                permit = breaker.allow(t0, True) if t0 < deadline_at else None
            if permit is None:
                return self._reject(req_id, attempt, t0, BREAKER_OPEN, None, retry_cost, wait, parent), None, None, t0
        ltoken = None
        if limiter is not None:
            ltoken = limiter.acquire_s(t0)
            if ltoken is None:
                if breaker is not None:
                    breaker.release(permit)
                return (self._reject(req_id, attempt, t0, BULKHEAD_FULL, "limit_rejected", retry_cost, wait, parent),
                        None, None, t0)
        if bulkhead is not None:
            decision = bulkhead.try_enter(t0)
            if decision != "admit":
                admitted = False
                if decision == "wait":
                    admitted = yield from self._bulkhead_wait(bulkhead, deadline_at)
                if not admitted:
                    if breaker is not None:
                        breaker.release(permit)
                    if ltoken is not None:
                        limiter.ignore(ltoken)
                    return (self._reject(req_id, attempt, t0, BULKHEAD_FULL, "bulkhead_rejected", retry_cost, wait,
                                         parent), None, None, t0)
        return None, permit, ltoken, t0

    def _outer_leave(self, start: float, permit: Any, token: Any, outcome: str) -> None:
        """The logical call is over: the outer layers hear its final outcome, innermost first,
        as the per-try layers hear a try's (a breaker outside the retry counts one verdict
        per call, over the call's whole duration)."""
        t1 = self.env.now
        outer = self.outer
        if "bulkhead" in outer:
            waiter = self.bulkhead.leave(t1)  # type: ignore[union-attr]
            if waiter is not None:
                waiter.succeed()
        if token is not None:
            self._limit_end(token, outcome, t1)
        if "breaker" in outer:
            self.breaker.on_result(t1, permit, outcome, t1 - start)  # type: ignore[union-attr]

    def _reject(self, req_id: int, attempt: int, t0: float, outcome: str, event: str | None,
                retry_cost: float | None, wait: float, parent: int) -> str:
        """A try refused locally (throttle, breaker, bulkhead): it still ends for the budget,
        so a concurrency budget's count of active retries stays balanced; it is recorded
        as an unsent attempt (and as an event where the kind has one)."""
        now = self.env.now
        if self.budget is not None:
            self.budget.on_try_end(now, outcome, attempt > 1, retry_cost, sent=False)
        if event is not None:
            self.recorder.event(now, event, self.component, "", float(req_id))
        try_id = self.recorder.next_try()
        log = self.recorder.log
        if log is not None:
            self._log_reject(log, now, req_id, attempt, try_id, parent, outcome, event)
        self._record(req_id, attempt, -1, t0, now, outcome, False, wait, try_id, parent, NAN)
        return outcome

    def _log_reject(self, log: Any, now: float, req_id: int, attempt: int, try_id: int, parent: int,
                    outcome: str, why: str | None) -> None:
        """Decision log: a try refused locally, with the state of the layer that refused it."""
        fields: dict[str, Any] = {"req": req_id, "try": try_id, "parent": parent, "attempt": attempt,
                                  "outcome": outcome, "why": why or outcome}
        if outcome is BREAKER_OPEN and self.breaker is not None:
            b = self.breaker
            fields.update(state=b.state, open_until=b.open_until if b.state == "open" else None)
        elif why == "bulkhead_rejected" and self.bulkhead is not None:
            bh = self.bulkhead
            fields.update(limit=bh.config.max_concurrent, in_flight=bh.active, waiting=bh.waiting,
                          queue_size=bh.config.queue_size)
        elif why == "limit_rejected" and self.limiter is not None:
            lim = self.limiter
            fields["limit"] = float(lim.limit)
            fields["in_flight"] = lim.inflight
        elif why == "throttled" and self.throttle is not None:
            fields["reject_probability"] = self.throttle.reject_probability(now)
        log.emit("rejected", now, self.component, **fields)

    def _send(self, job: Job, idx: int) -> None:
        """Put a job on the network towards instance ``idx`` (or lose it); it is outstanding
        for this caller until the try ends (reply or timeout)."""
        self.outstanding[idx] += 1
        lk = self.out_links[idx]
        if lk.blocked or lk.loss:
            d = lk.delay()
            if d is None:
                return
        elif lk.sample is None:
            d = lk.add  # Link.delay() inlined for a link that cannot lose the message
        else:
            d = lk.sample() * lk.mult + lk.add
        inst = self._instances[idx]
        if d > 0:
            env = self.env
            ev = new(Fired)  # Timeout(env, d, job) with inst.deliver as its callback, made inline
            ev.callbacks = [inst.deliver]
            ev._value = job
            heappush(env._queue, (env._now + d, NORMAL, next(env._eid), ev))  # type: ignore[attr-defined]
        else:
            inst.submit(job)

    def _start_try(self, req_id: int, priority: str, deadline_at: float, parent: int = -1,
                   op: int = 0, version: int = 0) -> Job:
        """Start one try: pick an instance, arm the per-try timer (capped by the deadline) and
        send. Returns the job, which fires with the reply or TIMEOUT; whoever waits on it
        takes the try off ``outstanding[job.idx]`` when it does.

        ``op``/``version`` make it a read or a conditional write against an occ_row service.
        """
        env = self.env
        idx = self.pick()
        now = env._now  # type: ignore[attr-defined]
        limit = deadline_at - now
        if self.timeout is not None and self.timeout < limit:
            limit = self.timeout
        ct, rt = self.connect_timeout, self.read_timeout
        if ct is None and rt is None:
            job = Job(env, req_id, priority, now + limit, self.back_links[idx], self._next_try(), parent)
        else:
            job = PhasedJob(env, req_id, priority, now + limit, self.back_links[idx], self._next_try(),
                            parent, now + ct if ct is not None else INF, rt if rt is not None else INF)
        if op:  # a new Job is a plain call (op 0, version 0)
            job.op = op
            job.version = version
        job.idx = idx
        if limit < INF:
            if limit == self.timeout:  # every such try's timer is due `timeout` after its start: one queue
                due = now + limit
                self._wheel.append((due, job))
                if not self._wheel_armed:
                    self._arm_wheel(due)
            else:  # capped by a deadline: a timer of its own
                Timeout(env, limit).callbacks.append(job.expire)
        if ct is not None and ct < limit:  # after the per-try timer: at a tie the try timed out
            Timeout(env, ct).callbacks.append(job.connect_expire)  # type: ignore[attr-defined]
        self._send(job, idx)
        return job

    def _arm_wheel(self, due: float) -> None:
        """Schedule the sweep of the per-try timers at the absolute time ``due``.

        An already-triggered event pushed at ``due`` itself (``env.schedule`` takes a delay,
        and ``now + (due - now)`` may round off ``due``), so a timer fires at exactly the
        instant a Timeout made at the try's start would have.
        """
        env = self.env
        ev = Event(env)
        ev._ok = True
        ev._value = None
        heappush(env._queue, (due, NORMAL, next(env._eid), ev))  # type: ignore[attr-defined]
        ev.callbacks.append(self._sweep)
        self._wheel_armed = True

    def _sweep(self, _ev: Event) -> None:
        """Fire the per-try timers that are due, then arm for the next try still waiting.

        With a per-try timeout every try needs a timer, and most tries are answered long
        before it. SimPy cannot cancel a scheduled event, so one Timeout per try is an event
        per try that fires for nothing. The site's timers are instead one queue, ordered
        because every one is due ``timeout`` after its try's start: a sweep expires the due
        tries still waiting and skips the answered ones, and the next sweep is armed for the
        first try still waiting. The tries time out at the same instants as with a timer
        each; only answered tries' timers are gone.
        """
        now = self.env.now
        wheel = self._wheel
        while wheel:
            due, job = wheel[0]
            if due > now:
                if job._value is not PENDING:  # answered (or its reply is on the way): no timer needed
                    wheel.popleft()
                    continue
                self._arm_wheel(due)
                return
            wheel.popleft()
            job.expire(None)  # type: ignore[arg-type]
        self._wheel_armed = False

    def _try(self, req_id: int, priority: str, deadline_at: float, op: int = 0, version: int = 0,
             parent: int = -1) -> Generator[Event, Any, tuple[str, Job, int]]:
        """One try (:meth:`_start_try`) waited for in a process. Returns (outcome, job, instance index)."""
        job = self._start_try(req_id, priority, deadline_at, parent, op, version)
        outcome = yield job
        self.outstanding[job.idx] -= 1
        return outcome, job, job.idx

    def read_then_write(self, req_id: int, priority: str) -> Generator[Event, Any, tuple[str, int]]:
        """Read the row's version, then write conditionally; on conflict back off and start over.

        This is the client of the AWS "Exponential Backoff And Jitter" experiment. Each
        (read, write) round is one try: the attempts frame gets one row per write, so
        ``tries`` counts write attempts (the experiment's "work"). The retry policy gives
        the number of rounds and the waits; a per-try timeout applies to each message.
        """
        env = self.env
        rc = self.retry.new_call() if self.retry is not None else None
        deadline_at = env.now + self.deadline if self.deadline is not None else INF
        attempt = 0
        wait = 0.0
        outcome = TIMEOUT
        while env.now < deadline_at:
            attempt += 1
            if rc is not None:
                rc.on_try()
            t0 = env.now
            outcome, job, idx = yield from self._try(req_id, priority, deadline_at, READ)
            if outcome is OK:
                outcome, job, idx = yield from self._try(req_id, priority, deadline_at, WRITE, job.version)
            self._record(req_id, attempt, idx, t0, env.now, outcome, True, wait, job.try_id, -1, job.served)
            if outcome is OK or rc is None:
                break
            delay = rc.next_delay(CONNECTION if outcome is CONNECT_TIMEOUT else outcome, self.rng, None)
            if delay is None or env.now + delay >= deadline_at:
                break
            if delay > 0:
                yield Timeout(env, delay)
            wait = delay
        return outcome, attempt

    def _bulkhead_wait(self, bulkhead: Bulkhead, deadline_at: float) -> Generator[Event, Any, bool]:
        """Wait FIFO for a bulkhead slot, up to its max wait and the deadline."""
        env = self.env
        token = Event(env)
        bulkhead.enqueue(env.now, token)
        limit = deadline_at - env.now
        mw = bulkhead.max_wait
        if mw is not None and mw < limit:
            limit = mw
        if limit < INF:
            timer = Timeout(env, limit)
            yield token | timer
        else:
            yield token
        if token.triggered:
            return True
        bulkhead.abandon(token)
        return False


class Call:
    """One logical call run on callbacks: the loop of :meth:`CallSite.call` as a state machine.

    SimPy resumes a process inside the callbacks of the event it waits on; this object is
    resumed at the same points (the reply, the backoff timeout), so the order of events,
    draws, policy calls and records is the same as the process's, without a generator per
    call. The retry state is built on the first failure only (most calls never need it).
    It handles every gate that answers at once (throttle, breaker, budget); a call site
    with a bulkhead, whose gate may wait, uses :meth:`CallSite.call`.
    """

    __slots__ = ("asked", "attempt", "deadline_at", "done", "outcome", "parent", "permit", "priority", "rc",
                 "req_id", "retry_cost", "site", "t0", "tag", "wait")

    def __init__(self, site: CallSite, req_id: int, priority: str, done: Any, parent_deadline: float,
                 parent: int) -> None:
        self.site = site
        self.req_id = req_id
        self.priority = priority
        self.done = done
        self.deadline_at = parent_deadline
        self.parent = parent
        self.attempt = 0
        self.wait = 0.0
        self.retry_cost: float | None = None  # what the budget charged for the retry under way
        self.outcome = TIMEOUT
        self.rc: Any = None
        self.permit: Any = None
        self.t0 = 0.0
        self.asked = 0.0
        """When the try under way asked the client rate limiter for a token."""
        self.tag: Any = None
        """Free for the caller (the client keeps the member and start time here)."""

    def start(self) -> None:
        """Begin the call now (the top of :meth:`CallSite.call`)."""
        site = self.site
        now = site.env._now
        if site.deadline is not None and now + site.deadline < self.deadline_at:
            self.deadline_at = now + site.deadline
        if site.budget is not None:
            site.budget.on_request(now)
        self._next()

    def _next(self, _ev: Event | None = None) -> None:
        """The next try: local gates, then the try itself (or the end of the call)."""
        site = self.site
        t0 = site.env._now
        if t0 >= self.deadline_at:
            self.done(self)  # a try is never started after the deadline
            return
        self.attempt = attempt = self.attempt + 1
        throttle = site.throttle
        if throttle is not None and throttle.should_reject(t0, site.u()):
            throttle.record_rejection(t0)
            self.outcome = site._reject(self.req_id, attempt, t0, THROTTLED, "throttled", self.retry_cost,
                                        self.wait, self.parent)
            self.done(self)
            return
        rl = site.rate_limiter
        if rl is not None and rl.enabled and not rl.ask(self.deadline_at, self._granted):
            self.asked = t0  # resume in _granted with the token
            return
        if site.breaker is not None:
            self._admit(t0)
            return
        # _admit(t0) without a breaker, inlined (the common case)
        if site.budget is not None:
            site.budget.on_try_start(t0, attempt > 1)
        self.t0 = t0
        site._start_try(self.req_id, self.priority, self.deadline_at, self.parent).callbacks.append(self._reply)

    def _granted(self, granted: bool) -> None:
        """The client rate limiter's answer for a try that waited: a token (go on to the
        breaker), or the deadline passed first (the try is refused locally as throttled)."""
        site = self.site
        now = site.env._now
        if not granted:
            self.outcome = site._reject(self.req_id, self.attempt, self.asked, THROTTLED, "rate_limit_expired",
                                        self.retry_cost, self.wait, self.parent)
            self.done(self)
            return
        self.wait += now - self.asked
        self._admit(now)

    def _admit(self, t0: float) -> None:
        """The breaker's gate, then the try (the part of :meth:`_next` after the rate gates)."""
        site = self.site
        attempt = self.attempt
        breaker = site.breaker
        if breaker is not None:
            self.permit = breaker.allow(t0, True)
            if self.permit == WAIT:  # half_open_waits: resume in _woken after the verdict
                woken = Event(site.env)
                woken.callbacks.append(self._woken)
                breaker.wait(woken.succeed)
                return
            if self.permit is None:
                self.outcome = site._reject(self.req_id, attempt, t0, BREAKER_OPEN, None, self.retry_cost,
                                            self.wait, self.parent)
                self.done(self)
                return
        if site.budget is not None:
            site.budget.on_try_start(t0, attempt > 1)
        self.t0 = t0
        site._start_try(self.req_id, self.priority, self.deadline_at, self.parent).callbacks.append(self._reply)


    def _woken(self, _ev: Event) -> None:
        """The half-open verdict is in: ask the breaker again (the throttle already let
        this try through); past the deadline the try is refused as breaker_open."""
        site = self.site
        t0 = site.env._now
        breaker = site.breaker
        self.permit = breaker.allow(t0, True) if t0 < self.deadline_at else None  # type: ignore[union-attr]
        if self.permit == WAIT:
            woken = Event(site.env)
            woken.callbacks.append(self._woken)
            breaker.wait(woken.succeed)  # type: ignore[union-attr]
            return
        if self.permit is None:
            self.outcome = site._reject(self.req_id, self.attempt, t0, BREAKER_OPEN, None, self.retry_cost,
                                        self.wait, self.parent)
            self.done(self)
            return
        if site.budget is not None:
            site.budget.on_try_start(t0, self.attempt > 1)
        self.t0 = t0
        site._start_try(self.req_id, self.priority, self.deadline_at, self.parent).callbacks.append(self._reply)

    def _reply(self, job: Job) -> None:
        """The try ended (reply or timer): tell the policies, record it, decide on a retry."""
        site = self.site
        site.outstanding[job.idx] -= 1
        shown = self.outcome = job._value
        outcome = CONNECTION if shown is CONNECT_TIMEOUT else shown  # what the policies judge
        t1 = site.env._now
        attempt = self.attempt
        log = site.recorder.log
        if log is not None:
            site._log_try(log, self.req_id, attempt, job, self.parent, shown, self.t0, t1)
        if site.breaker is not None:
            site.breaker.on_result(t1, self.permit, outcome, t1 - self.t0)
        if site.throttle is not None:
            site.throttle.record_outcome(t1, outcome)
        if site.rate_limiter is not None:
            site._rate_response(t1, outcome)
        budget = site.budget
        if budget is not None:
            budget.on_try_end(t1, outcome, attempt > 1, self.retry_cost)
        site._record(self.req_id, attempt, job.idx, self.t0, t1, shown, True, self.wait, job.try_id,
                     self.parent, job.served)
        if outcome is OK or outcome is DEGRADED or site.retry is None:
            self.done(self)
            return
        # -- retry decision: policy, then the deadline, then the budget --------------
        rc = self.rc
        if rc is None:
            rc = self.rc = site.retry.new_call()  # the first failure of this call
        rc.attempts = attempt
        delay = rc.next_delay(outcome, site.rng, job.retry_after)
        if log is not None:
            site._log_retry(log, t1, self.req_id, attempt, job, self.parent, outcome, delay, self.deadline_at)
        if delay is None or t1 + delay >= self.deadline_at:
            self.done(self)
            return
        if budget is not None:
            # priced by the try's own outcome: a connect timeout costs a timeout's tokens (botocore 2.0)
            if not budget.try_acquire_retry(t1, shown):
                site.recorder.event(t1, "budget_denied", site.component, outcome, float(self.req_id))
                if log is not None:
                    site._log_budget(log, t1, False, self.req_id, attempt, outcome)
                self.done(self)
                return
            self.retry_cost = getattr(budget, "last_cost", None)
            if log is not None:
                site._log_budget(log, t1, True, self.req_id, attempt, outcome)
        self.wait = delay
        if delay > 0:
            Timeout(site.env, delay).callbacks.append(self._next)
        else:
            self._next()
