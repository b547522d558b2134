"""The hedged-call driver: :class:`HedgedCall` acts on the decisions of a pure
:class:`~simres.policies.hedging.HedgePolicy`.

A call site with ``hedge:`` runs each logical call as a :class:`HedgedCall` (on callbacks,
like :class:`~simres.model.driver.Call`): the first try at once, then one more every
``delay`` from the latest send while no acceptable reply has come and attempts (and the
budget) allow. Each try passes the same local gates as a retry's (adaptive throttle,
circuit breaker; a half-open breaker that would make the try wait refuses it instead),
goes to the instance the caller's balancer picks, and has its own per-try timeout capped by
the overall deadline. Every try is one row of ``attempts`` (attempt numbers count up); the
``events`` frame gets ``hedge`` for each hedge sent (detail: why) and ``hedge_won`` when a
hedge, not the original, gives the winning reply (value: the request id).

When the call ends, each try still in flight is cancelled (``cancel_losers``): it is
recorded as ``cancelled`` at that moment, it no longer counts as outstanding for the
balancer, and its instance is told (:meth:`Instance.withdraw`), which drops it from the
queue or stops its own work if the service honours cancellation (``on_caller_gone:
cancel``). With ``cancel_losers: false`` the losers run on; their rows are recorded when
their replies come, after the call has ended.

Hedging draws no random numbers itself; the balancer's picks for hedges come from the call
site's own load-balancer stream, so other streams are unchanged.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from simpy import Event
from simpy.events import PENDING, Timeout

from simres.outcomes import BREAKER_OPEN, CANCELLED, CONNECT_TIMEOUT, CONNECTION, THROTTLED, TIMEOUT
from simres.policies.breaker import WAIT
from simres.policies.hedging import FATAL, HEDGE, WIN

if TYPE_CHECKING:
    from simres.model.driver import CallSite
    from simres.model.job import Job
    from simres.policies.hedging import HedgeCall

INF = float("inf")


class HedgedCall:
    """One hedged logical call on callbacks; ``done(call)`` runs once when it ends.

    The same interface as :class:`~simres.model.driver.Call`: ``start()``, ``tag`` for the
    caller, and ``outcome`` and ``attempt`` (tries made) for ``done``.
    """

    __slots__ = ("attempt", "deadline_at", "done", "finished", "gen", "hc", "last_send", "outcome",
                 "parent", "priority", "req_id", "site", "tag", "tries")

    def __init__(self, site: CallSite, req_id: int, priority: str, done: Any, parent_deadline: float,
                 parent: int) -> None:
        self.site = site
        self.req_id = req_id
        self.priority = priority
        self.done = done
        self.deadline_at = parent_deadline
        self.parent = parent
        self.attempt = 0
        self.outcome = TIMEOUT
        self.tag: Any = None
        """Free for the caller (the client keeps the member and start time here)."""
        self.finished = False
        self.gen = 0
        """Bumped by every send: a hedge timer armed before the latest send is stale."""
        self.last_send = 0.0
        self.tries: dict[Job, tuple[int, float, float, Any, float | None]] = {}
        """Tries in flight: job -> (attempt number, start, wait before it, breaker permit, budget cost)."""
        self.hc: HedgeCall = site.hedge.new_call()  # type: ignore[union-attr]

    # -- sending ------------------------------------------------------------------------

    def start(self) -> None:
        """Begin the call now: the deadline, the budget's request count, the first try."""
        site = self.site
        now = site.env.now
        if site.deadline is not None and now + site.deadline < self.deadline_at:
            self.deadline_at = now + site.deadline
        if site.budget is not None:
            site.budget.on_request(now)
        self.last_send = now
        if not self._send(""):
            self._finish()

    def _send(self, reason: str) -> bool:
        """Send the next try (a hedge unless it is the first); False if none was sent.

        ``reason`` is the ``hedge`` event's detail: ``delay`` (the timer), ``failure`` (a
        non-fatal failure), ``pushback`` or ``parallel`` (a delay of 0).
        """
        site = self.site
        hc = self.hc
        t0 = site.env.now
        if t0 >= self.deadline_at or not hc.may_send():
            return False  # never a try after the deadline
        first = hc.sent == 0
        cost: float | None = None
        budget = site.budget
        if not first and budget is not None:
            if not budget.try_acquire_retry(t0, "hedge"):
                site.recorder.event(t0, "budget_denied", site.component, "hedge", float(self.req_id))
                if site.recorder.log is not None:
                    site._log_budget(site.recorder.log, t0, False, self.req_id, self.attempt, "hedge", "hedge")
                hc.stop()
                return False
            cost = getattr(budget, "last_cost", None)
        self.attempt = attempt = self.attempt + 1
        wait = t0 - self.last_send if not first else 0.0
        hc.on_send()
        # -- local gates ----------------------------------------------------------------
        refused = None
        throttle = site.throttle
        if throttle is not None and throttle.should_reject(t0, site.u()):
            throttle.record_rejection(t0)
            refused = site._reject(self.req_id, attempt, t0, THROTTLED, "throttled", cost, wait, self.parent)
        permit = None
        if refused is None and site.breaker is not None:
            permit = site.breaker.allow(t0, True)
            if permit == WAIT or permit is None:
                if permit == WAIT:
                    permit = None
                refused = site._reject(self.req_id, attempt, t0, BREAKER_OPEN, None, cost, wait, self.parent)
        if refused is not None:
            hc.on_gone()
            hc.stop()  # a refused hedge ends hedging; the tries in flight go on
            if hc.in_flight == 0:
                self.outcome = refused
                return False
            return True
        if budget is not None:
            budget.on_try_start(t0, not first)
        if not first:
            site.recorder.event(t0, "hedge", site.component, reason, float(self.req_id))
        job = site._start_try(self.req_id, self.priority, self.deadline_at, self.parent)
        if not first and site.recorder.log is not None:
            site.recorder.log.emit("hedge", t0, site.component, req=self.req_id, parent=self.parent,
                                   attempt=attempt, reason=reason, in_flight=self.hc.in_flight,
                                   **{"try": job.try_id})
        self.tries[job] = (attempt, t0, wait, permit, cost)
        job.callbacks.append(self._reply)
        self.last_send = t0
        self.gen += 1
        self._arm()
        return True

    def _arm(self) -> None:
        """Schedule the next hedge by timer, from the send just made (if any is left)."""
        if not self.hc.may_send():
            return
        d = self.site.hedge.delay(self.site.env.now)  # type: ignore[union-attr]
        if d == INF:
            return
        if d == 0:
            self._send("parallel")  # gRPC hedgingDelay 0s / Polly Delay zero: all at once
            return
        Timeout(self.site.env, d, self.gen).callbacks.append(self._timer)

    def _timer(self, ev: Event) -> None:
        """A hedge timer fired: hedge if it is still current and the call still open (after
        the hedge's backoff, drawn now, when it has one: Envoy's soft per-try timeout)."""
        if self.finished or ev._value != self.gen:
            return
        if self.hc.backs_off:
            b = self.hc.backoff(self.site.rng)
            if b > 0:
                self.gen += 1
                Timeout(self.site.env, b, self.gen).callbacks.append(self._backed_off)
                return
        self._send("delay")

    def _backed_off(self, ev: Event) -> None:
        """The backoff after a hedge's delay is over: hedge if nothing superseded it."""
        if self.finished or ev._value != self.gen:
            return
        self._send("delay")

    def _pushback(self, ev: Event) -> None:
        if self.finished or ev._value != self.gen:
            return
        if not self._send("pushback") and self.hc.in_flight == 0:
            self._finish()

    # -- replies ------------------------------------------------------------------------

    def _reply(self, job: Job) -> None:
        """A try ended (reply or its timer): tell the policies, record it, decide."""
        site = self.site
        meta = self.tries.pop(job)
        attempt, t0, wait, permit, cost = meta
        site.outstanding[job.idx] -= 1
        shown = job._value
        outcome = CONNECTION if shown is CONNECT_TIMEOUT else shown  # what the policies judge
        t1 = site.env.now
        log = site.recorder.log
        if log is not None:
            site._log_try(log, self.req_id, attempt, job, self.parent, shown, t0, t1)
        if site.breaker is not None:
            site.breaker.on_result(t1, permit, outcome, t1 - t0)
        if site.throttle is not None:
            site.throttle.record_outcome(t1, outcome)
        if site.budget is not None:
            site.budget.on_try_end(t1, outcome, attempt > 1, cost)
        site.hedge.observe(outcome, t1 - t0)  # type: ignore[union-attr]
        site._record(self.req_id, attempt, job.idx, t0, t1, shown, True, wait, job.try_id, self.parent,
                     job.served)
        if self.finished:
            return  # a loser left running (cancel_losers: false)
        decision = self.hc.on_result(outcome, job.retry_after, site.rng)
        self.outcome = shown
        if decision == WIN:
            if attempt > 1:
                site.recorder.event(t1, "hedge_won", site.component, "", float(self.req_id))
                if log is not None:
                    log.emit("hedge_won", t1, site.component, req=self.req_id, parent=self.parent,
                             attempt=attempt, latency=t1 - t0, **{"try": job.try_id})
            self._finish()
        elif decision == FATAL:
            self._finish()
        elif decision == HEDGE:
            after = self.hc.hedge_after
            if after > 0:
                self.gen += 1  # the pushback replaces the pending timer
                Timeout(site.env, after, self.gen).callbacks.append(self._pushback)
            elif not self._send("failure") and self.hc.in_flight == 0:
                self._finish()
        elif self.hc.in_flight == 0:  # FAIL (WAIT has tries in flight)
            self._finish()

    def _finish(self) -> None:
        """End the call: cancel (or leave) the tries in flight, then ``done``."""
        self.finished = True
        site = self.site
        if site.hedge.config.cancel_losers:  # type: ignore[union-attr]
            now = site.env.now
            for job, (attempt, t0, wait, permit, cost) in self.tries.items():
                job.callbacks.remove(self._reply)
                site.outstanding[job.idx] -= 1
                if site.breaker is not None:
                    site.breaker.release(permit)
                if site.budget is not None:
                    site.budget.on_try_end(now, CANCELLED, attempt > 1, cost)
                site.hedge.observe(CANCELLED, now - t0)  # type: ignore[union-attr]
                site._record(self.req_id, attempt, job.idx, t0, now, CANCELLED, True, wait, job.try_id,
                             self.parent, job.served)
                self.hc.on_gone()
                if job._value is PENDING:
                    job.gone = True
                    site.target.instances[job.idx].withdraw(job)
            self.tries.clear()
        self.done(self)


def hedged_process(site: CallSite, req_id: int, priority: str, parent_deadline: float, parent: int
                   ) -> Generator[Event, Any, tuple[str, int]]:
    """A hedged call waited for in a process (the generator path of :meth:`CallSite.call`)."""
    ended = Event(site.env)
    call = HedgedCall(site, req_id, priority, lambda _c: ended.succeed(), parent_deadline, parent)
    call.start()
    yield ended
    return call.outcome, call.attempt
