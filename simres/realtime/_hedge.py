"""One hedged logical call's decisions on the wall clock, shared by the sync and asyncio drivers.

:class:`HedgeRun` drives the pure :class:`~simres.policies.hedging.HedgeCall` (one call's
state machine) and the call site's :class:`~simres.policies.hedging.HedgePolicy` (latency
window, current delay) exactly as the simulation's :class:`simres.model.hedging.HedgedCall`
does, with the stack's gates and budget: the first try at once, then one more every
``delay`` from the latest send while no acceptable reply has come and attempts and the budget
allow; a non-fatal failure sends the next hedge at once (or after a server pushback), a
fatal one ends the call; the first success wins. Each hedge after the first try must be
granted by the budget (``try_acquire_retry(now, "hedge")``); a refusal, or a local gate
(throttle, breaker, ``max_abandoned``) refusing a try, ends hedging and the tries in flight
go on. No try is sent after the deadline.

The drivers (:mod:`simres.realtime.resilient`) only start tries (threads or tasks), wait for
the next reply, timer or per-try expiry, and stop losers; every decision is taken here.
A try the classifier calls not retryable (``retryable`` False) is a fatal failure.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from simres.outcomes import CANCELLED, SUCCESS_OUTCOMES, TIMEOUT
from simres.policies.hedging import FATAL, HEDGE, WIN
from simres.realtime._stack import _Call
from simres.realtime.errors import AttemptTimeout, DeadlineExceeded

if TYPE_CHECKING:
    from simres.realtime._stack import PolicyStack, _Try

INF = float("inf")


class HedgeTry:
    """One try of a hedged call: its admission, when it was sent and when it times out."""

    __slots__ = ("attempt", "expires_at", "handle", "late", "number", "sent_at", "settled", "view")

    def __init__(self, attempt: _Try, view: _Call, number: int, sent_at: float, expires_at: float) -> None:
        self.attempt = attempt
        self.view = view
        """A per-try view of the call for the budget (``is_retry``, ``retry_cost``): hedges overlap."""
        self.number = number
        self.sent_at = sent_at
        self.expires_at = expires_at
        self.handle: Any = None
        """The driver's future (a thread) or task."""
        self.late = False
        """A loser left running (``cancel_losers: false``): its reply is settled when it comes."""
        self.settled = False


class HedgeRun:
    """The state of one hedged call: tries in flight, the next hedge's due time, the result."""

    def __init__(self, stack: PolicyStack) -> None:
        self.stack = stack
        self.call = stack._begin()  # the budget's request count and the deadline
        assert stack.hedge is not None
        self.policy = stack.hedge
        self.hc = stack.hedge.new_call()
        self.tries: list[HedgeTry] = []
        """Tries in flight, in send order."""
        self.next_at = INF
        """When the next hedge is due (timer or pushback); INF: none pending."""
        self.backing_off = False
        """The wait before the next send is already the final one (a backoff after the delay, or a
        pushback after a failure): send at ``next_at`` without backing off again."""
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.outcome = ""
        self.refused: Exception | None = None
        """A local gate refused a try with nothing else in flight: the call ends with it."""
        self.mutex = threading.Lock()
        """Guards ``late``/``settled`` between the caller and a loser's thread."""

    # -- sending ----------------------------------------------------------------------

    def start(self) -> list[HedgeTry]:
        """The first try (and, with a delay of 0, every hedge at once); the call may end here."""
        sent = self._send()
        if not sent and self.hc.in_flight == 0:
            self.done = True
        return sent

    def _send(self) -> list[HedgeTry]:
        """Send the next try, then arm the timer from it; a delay of 0 sends the next at once
        (the simulation's ``parallel`` hedges). Returns the tries to start (empty: none sent)."""
        out: list[HedgeTry] = []
        while True:
            t = self._send_one()
            if t is None:
                return out
            out.append(t)
            if not self.hc.may_send():
                return out
            with self.stack._lock:
                d = self.policy.delay(t.sent_at)
            if d == INF:
                return out
            if d > 0:
                self.next_at = t.sent_at + d
                return out
            # gRPC hedgingDelay 0s / Polly Delay zero: all at once

    def _send_one(self) -> HedgeTry | None:
        stack, hc, call = self.stack, self.hc, self.call
        self.next_at = INF  # a send replaces the pending timer (the simulation's generation bump)
        self.backing_off = False
        now = stack.clock.now()
        if (call.deadline_at is not None and now >= call.deadline_at) or not hc.may_send():
            return None  # never a try after the deadline
        view = _Call(None, call.deadline_at, call.req)
        if hc.sent > 0:
            with stack._lock:
                budget = stack.budget
                if budget is not None:
                    if not budget.try_acquire_retry(now, "hedge"):
                        hc.stop()  # gRPC: no further hedged requests
                        stack._event("budget_denied", call, what="hedge", attempt=hc.sent + 1, **stack._balance())
                        return None
                    view.retry_cost = getattr(budget, "last_cost", None)
            view.is_retry = True
        hc.on_send()
        attempt, _, local = stack._admit(view)
        if local is not None:
            hc.on_gone()
            hc.stop()  # a refused hedge ends hedging; the tries in flight go on
            if hc.in_flight == 0:
                self.refused = local
            return None
        assert attempt is not None
        if hc.sent > 1:  # the simulation's `hedge` decision: another try while the others run
            stack._event("hedge", call, attempt=hc.sent, in_flight=hc.in_flight)
        timeout = stack._try_timeout(view)
        t = HedgeTry(attempt, view, hc.sent, now, INF if timeout is None else now + max(timeout, 0.0))
        self.tries.append(t)
        return t

    def due(self) -> list[HedgeTry]:
        """Send the hedge whose time has come, if any; the call may end here (nothing in flight)."""
        if self.done or self.next_at > self.stack.clock.now():
            return []
        if self.hc.backs_off and not self.backing_off:  # the delay is over: back off first (Envoy)
            with self.stack._lock:
                b = self.hc.backoff(self.stack.rng)
            if b > 0:
                self.backing_off = True
                self.next_at = self.stack.clock.now() + b
                return []
        sent = self._send()
        if not sent and self.hc.in_flight == 0:
            self._end()
        return sent

    # -- waiting ----------------------------------------------------------------------

    def wait_time(self) -> float | None:
        """Seconds until the next hedge or per-try expiry (None: wait for a reply only)."""
        at = min([self.next_at, *(t.expires_at for t in self.tries)])
        return None if at == INF else max(0.0, at - self.stack.clock.now())

    def expired(self) -> list[HedgeTry]:
        """Tries in flight whose per-try timeout (capped by the deadline) has passed."""
        now = self.stack.clock.now()
        return [t for t in self.tries if t.expires_at <= now]

    # -- replies ----------------------------------------------------------------------

    def timed_out(self, t: HedgeTry) -> list[HedgeTry]:
        """``t`` passed its per-try timeout (the driver stopped waiting for it)."""
        return self.reply(t, None, AttemptTimeout("try timed out"), TIMEOUT)

    def reply(self, t: HedgeTry, value: Any, error: BaseException | None,
              outcome: str | None = None) -> list[HedgeTry]:
        """``t`` ended with ``value`` or ``error``: tell the policies, then decide.

        Returns the tries to start (a hedge after a non-fatal failure). Replies of tries no
        longer in flight (timed out, cancelled) are ignored.
        """
        if self.done or t not in self.tries:
            return []
        self.tries.remove(t)
        hint: float | None = None
        retryable = True
        if outcome is None:
            outcome, hint, retryable = self.stack._classify(error if error is not None else value)
        self._settle(t, outcome)
        with self.stack._lock:
            decision = self.hc.on_result(outcome, hint, self.stack.rng)
        if not retryable and outcome not in SUCCESS_OUTCOMES:
            decision = FATAL  # the classifier says this failure is not to be tried again
        self.value, self.error, self.outcome = value, error, outcome
        if decision == WIN and t.number > 1:
            self.stack._event("hedge_won", self.call, attempt=t.number,
                              latency=self.stack.clock.now() - t.sent_at)
        if decision in (WIN, FATAL):
            self._end()
            return []
        if decision == HEDGE:
            after = self.hc.hedge_after
            if after > 0:
                self.next_at = self.stack.clock.now() + after  # the pushback replaces the timer
                self.backing_off = True  # the pushback (and any backoff) is that wait: send when it is over
                return []
            sent = self._send()
            if not sent and self.hc.in_flight == 0:
                self._end()
            return sent
        if self.hc.in_flight == 0:  # FAIL (WAIT has tries in flight)
            self._end()
        return []

    def _settle(self, t: HedgeTry, outcome: str) -> None:
        """The try's outcome for the stack's policies and the latency window."""
        stack = self.stack
        stack._finish(t.view, t.attempt, outcome)
        now = stack.clock.now()
        with stack._lock:
            self.policy.observe(outcome, now - t.sent_at)

    def _end(self) -> None:
        self.done = True

    # -- losers -----------------------------------------------------------------------

    def losers(self, cancel: bool | None = None) -> list[HedgeTry]:
        """After the end: the tries still in flight, to be cancelled or left running.

        With ``cancel_losers`` (or ``cancel`` True: the caller itself was cancelled) each is
        settled as ``cancelled`` now (the breaker's permit is given back, the budget and the
        latency window see a cancelled try, as in the simulation); without, each is marked
        ``late`` and settled by :meth:`late` when it really ends.
        """
        self.done = True
        losers, self.tries = self.tries, []
        if cancel is None:
            cancel = self.policy.config.cancel_losers
        for t in losers:
            self.hc.on_gone()
            if cancel:
                with self.mutex:
                    t.settled = True
                self._settle(t, CANCELLED)
            else:
                with self.mutex:
                    t.late = True
        return losers

    def late(self, t: HedgeTry, value: Any, error: BaseException | None) -> None:
        """A loser left running ended: settle its outcome once (a timeout if it overran)."""
        with self.mutex:
            if t.settled:
                return
            t.settled = True
        if isinstance(error, asyncio.CancelledError):
            outcome = CANCELLED  # its event loop cancelled it (e.g. at shutdown)
        elif self.stack.clock.now() > t.expires_at:
            outcome = TIMEOUT  # it overran its per-try timeout
        else:
            outcome = self.stack._classify(error if error is not None else value)[0]
        self._settle(t, outcome)

    # -- the result -------------------------------------------------------------------

    def result(self) -> Any:
        """The call's result: the winning value, or raise what ended it.

        A winner that raised (an exception the classifier calls a success) is raised; a
        failing value is returned as it is; a local refusal with nothing in flight raises
        the gate's error; a timeout after the deadline raises :class:`DeadlineExceeded`.
        """
        if self.refused is not None:
            raise self.refused from self.error
        call = self.call
        if (self.outcome == TIMEOUT and call.deadline_at is not None
                and self.stack.clock.now() >= call.deadline_at):
            raise DeadlineExceeded(f"deadline of {self.stack.deadline} s passed") from self.error
        if self.error is not None:
            raise self.error
        return self.value
