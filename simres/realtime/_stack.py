"""The policy stack's decisions on the wall clock: admit, finish, retry delay, deadline.

Every decision is taken under one lock and never while the protected call runs, so the
sync (thread) and asyncio drivers in :mod:`simres.realtime.resilient` share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, TypeVar

import numpy as np

from simres.clock import Clock, WallClock
from simres.errors import SimresError
from simres.outcomes import (
    BREAKER_OPEN,
    BULKHEAD_FULL,
    CANCELLED,
    CONNECT_TIMEOUT,
    CONNECTION,
    REJECTED,
    SHED,
    SUCCESS_OUTCOMES,
    THROTTLED,
    TIMEOUT,
)
from simres.policies.aws_adaptive import AdaptiveRateLimiter
from simres.policies.breaker import BreakerConfig, CircuitBreaker
from simres.policies.budget import RetryBudget
from simres.policies.bulkhead import ADMIT, WAIT, Bulkhead, BulkheadConfig
from simres.policies.hedging import HedgeConfig, HedgePolicy, check_hedge_stack
from simres.policies.limits import ConcurrencyLimiter, LimitConfig, to_nanos
from simres.policies.retry import RetryCall, RetryConfig
from simres.policies.throttle import AdaptiveThrottle, ThrottleConfig
from simres.realtime import events
from simres.realtime.classify import Classifier, default_classify
from simres.realtime.errors import (
    AbandonedCallsError,
    BreakerOpenError,
    BulkheadFullError,
    ConcurrencyLimitError,
    DeadlineExceeded,
    ThrottledError,
)

T = TypeVar("T")

_UNAVAILABLE = frozenset({CONNECTION, REJECTED, SHED})
"""Outcomes the concurrency limit samples as drops, as in the simulation's driver (Netflix's
gRPC client interceptor: UNAVAILABLE, the server refused); a timeout or an error reply gives
no sample (``onIgnore``)."""


# ---------------------------------------------------------------------------- waiters


class _ThreadWaiter:
    """A bulkhead waiter in a thread."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()

    def wake(self) -> None:
        self.event.set()


class _TaskWaiter:
    """A bulkhead waiter in an event loop (may be woken from any thread)."""

    __slots__ = ("future", "loop")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()

    def wake(self) -> None:
        def _set() -> None:
            if not self.future.done():
                self.future.set_result(None)
        self.loop.call_soon_threadsafe(_set)


class _Call:
    """Per logical call bookkeeping."""

    __slots__ = ("attempt", "deadline_at", "is_retry", "req", "retry", "retry_cost")

    def __init__(self, retry: RetryCall | None, deadline_at: float | None, req: int = 0) -> None:
        self.req = req
        """This guard's number for the call (the decision log's ``req``)."""
        self.attempt = 0
        """Tries asked for so far (the decision log's ``attempt``)."""
        self.retry = retry
        self.deadline_at = deadline_at
        self.is_retry = False
        self.retry_cost: float | None = None


class _Try:
    """What a try holds while it runs: the breaker permit and whether it has a slot.

    A try abandoned at its timeout while its call runs on in a thread is ``abandoned``;
    with ``bulkhead_counts="running"`` its slot is given back when the call really ends
    (``ended``), by whichever of the caller (``_finish``) and the thread comes last.
    """

    __slots__ = ("abandoned", "ended", "finished", "permit", "slot", "start", "token")

    def __init__(self, permit: int | None, slot: bool, start: float,
                 token: tuple[int, int] | None = None) -> None:
        self.permit = permit
        self.slot = slot
        self.start = start
        self.token = token
        """The concurrency limit's ``(start_ns, inflight)`` token, if there is a limit."""
        self.abandoned = False
        self.ended = False
        self.finished = False


# ---------------------------------------------------------------------------- Resilient


class PolicyStack:
    """The decisions of a policy stack on the wall clock, shared by the sync and asyncio entry points.

    Thread-safe: every policy decision is taken under one lock, held only for the
    decision (never while the protected call runs or while waiting).
    """

    def __init__(
        self, *,
        timeout: float | None = None,
        deadline: float | None = None,
        retry: RetryConfig | None = None,
        budget: RetryBudget | None = None,
        breaker: BreakerConfig | CircuitBreaker | None = None,
        bulkhead: BulkheadConfig | Bulkhead | None = None,
        throttle: ThrottleConfig | AdaptiveThrottle | None = None,
        limit: LimitConfig | ConcurrencyLimiter | None = None,
        hedge: HedgeConfig | HedgePolicy | None = None,
        rng: np.random.Generator | None = None,
        clock: Clock | None = None,
        classify: Classifier | None = None,
        timeout_via: Literal["thread", "argument", "both"] = "thread",
        bulkhead_counts: Literal["running", "tries"] = "running",
        max_abandoned: int | None = 32,
        breaker_serialize: bool = False,
        name: str = "resilient",
    ) -> None:
        self.name = name
        """The decision events' ``component`` (docs/observability.md, "Events from real calls")."""
        self._ids = itertools.count(1)
        self._ctx: tuple[int, int] | None = None
        for name_, value in (("timeout", timeout), ("deadline", deadline)):
            if value is not None and not value > 0:
                raise ValueError(f"{name_}: must be > 0 or None, got {value}")
        if timeout_via not in ("thread", "argument", "both"):
            raise ValueError(f"timeout_via: must be 'thread', 'argument' or 'both', got {timeout_via!r}")
        if bulkhead_counts not in ("running", "tries"):
            raise ValueError(f"bulkhead_counts: must be 'running' or 'tries', got {bulkhead_counts!r}")
        if max_abandoned is not None and (isinstance(max_abandoned, bool) or not isinstance(max_abandoned, int)
                                          or max_abandoned < 1):
            raise ValueError(f"max_abandoned: must be a whole number >= 1 or None, got {max_abandoned!r}")
        if not isinstance(breaker_serialize, bool):
            raise ValueError(f"breaker_serialize: must be True or False, got {breaker_serialize!r}")
        hedge_cfg = hedge.config if isinstance(hedge, HedgePolicy) else hedge
        problem = check_hedge_stack(hedge_cfg, retry=retry, bulkhead=bulkhead, limit=limit)
        if problem:
            raise ValueError(problem)  # the scenario schema's rule (CallPolicy._hedge_alone)
        if hedge_cfg is not None and breaker_serialize:
            raise ValueError("hedge: breaker_serialize runs one try at a time, hedged tries overlap; give one of them")
        self.hedge: HedgePolicy | None = hedge.build() if isinstance(hedge, HedgeConfig) else hedge
        """Hedged requests: the call site's latency window and delay (see :mod:`._hedge`)."""
        self.breaker_serialize = breaker_serialize
        """One try at a time, from admission to its outcome (pybreaker's ``call()``)."""
        self._serial = threading.RLock()
        self._aserial: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())
        self.bulkhead_counts = bulkhead_counts
        self.max_abandoned = max_abandoned
        self._abandoned = 0
        self.timeout = timeout
        self.deadline = deadline
        self.retry = retry
        self.rng = rng if rng is not None else np.random.default_rng()
        self.clock: Clock = clock if clock is not None else WallClock()
        self.classify: Classifier = classify if classify is not None else default_classify
        self.timeout_via = timeout_via
        budget_cfg = (retry.budget if retry is not None
                      else hedge_cfg.budget if hedge_cfg is not None else None)
        self.budget = budget if budget is not None else (
            budget_cfg.build() if budget_cfg is not None else None)
        """The retry budget; with ``hedge`` it must grant each hedge (as in the simulation)."""
        self.breaker = (breaker.build(rng=self.rng) if isinstance(breaker, BreakerConfig)
                        else breaker)
        if self.breaker is not None:
            self._watch_breaker(self.breaker)
        self.bulkhead = bulkhead.build() if isinstance(bulkhead, BulkheadConfig) else bulkhead
        self.throttle = throttle.build() if isinstance(throttle, ThrottleConfig) else throttle
        self.limiter = self._build_limiter(limit)
        """The client-side adaptive concurrency limit (Netflix concurrency-limits), or None."""
        self._lock = threading.Lock()
        self.rate_limiter = (AdaptiveRateLimiter(retry.rate_limiter, self.clock.now())
                             if retry is not None and retry.rate_limiter is not None else None)
        """botocore adaptive mode's client rate limiter (``retry.rate_limiter``): every try,
        the first included, waits for a token once a throttling outcome was seen."""
        self._throttling = frozenset(retry.throttling_outcomes) if retry is not None else frozenset()
        self._rate_cond = threading.Condition(self._lock)
        """botocore's ``_new_fill_rate_condition``: a rate change wakes one waiting thread."""

    def _build_limiter(self, limit: LimitConfig | ConcurrencyLimiter | None) -> ConcurrencyLimiter | None:
        """The limiter for ``limit``; Envoy's gradient controller is refused (a server's filter)."""
        if limit is None:
            return None
        kind = limit.kind if isinstance(limit, LimitConfig) else None
        timed = isinstance(limit, ConcurrencyLimiter) and limit.timed
        if kind == "envoy_gradient" or timed:
            raise ValueError("limit: envoy_gradient is Envoy's inbound (server-side) filter, not a client "
                             "limit; expected aimd, vegas, gradient2 or fixed")
        return limit.build(rng=self.rng) if isinstance(limit, LimitConfig) else limit

    def __repr__(self) -> str:
        return (f"Resilient(timeout={self.timeout!r}, deadline={self.deadline!r}, "
                f"retry={self.retry!r}, breaker={self.breaker!r}, bulkhead={self.bulkhead!r}, "
                f"throttle={self.throttle!r}, limit={self.limiter!r}, hedge={self.hedge!r})")

    @property
    def concurrency_limit(self) -> int | None:
        """The adaptive concurrency limit's current limit (None without ``limit=``)."""
        return self.limiter.limit if self.limiter is not None else None

    def _now_ns(self) -> int:
        """Now in integer nanoseconds for the limit: :func:`time.monotonic_ns` on the wall clock
        (the library's ``System.nanoTime``), else the injected clock's seconds converted."""
        if type(self.clock) is WallClock:
            return time.monotonic_ns()
        return to_nanos(self.clock.now())

    # ------------------------------------------------------------------ serialised tries

    @contextlib.contextmanager
    def _one_try(self) -> Iterator[None]:
        """With ``breaker_serialize``, hold the try lock (re-entrant, like pybreaker's RLock)."""
        if not self.breaker_serialize:
            yield
            return
        with self._serial:
            yield

    @contextlib.asynccontextmanager
    async def _one_atry(self) -> AsyncIterator[None]:
        """The asyncio form of :meth:`_one_try`: an ``asyncio.Lock`` per event loop."""
        if not self.breaker_serialize:
            yield
            return
        loop = asyncio.get_running_loop()
        lock = self._aserial.get(loop)
        if lock is None:
            lock = self._aserial[loop] = asyncio.Lock()
        async with lock:
            yield

    # ------------------------------------------------------------------ decisions

    def _watch_breaker(self, breaker: CircuitBreaker) -> None:
        """Report the breaker's transitions, with their evidence, as ``breaker`` events
        (after any listener it already had)."""
        before = breaker._listener

        def on_transition(now: float, old: str, new: str, reason: str) -> None:
            if before is not None:
                before(now, old, new, reason)
            if events.listening():
                fields: dict[str, Any] = {"old": old, "new": new, "reason": reason,
                                          **breaker.evidence(now, new, reason)}
                if self._ctx is not None:
                    fields.update(req=self._ctx[0], attempt=self._ctx[1])
                events.emit("breaker", self.name, fields)

        breaker._listener = on_transition

    def _event(self, event: str, call: _Call, **fields: Any) -> None:
        """One decision event of ``call`` (see :mod:`simres.realtime.events`), if anyone listens."""
        if events.listening():
            events.emit(event, self.name, {"req": call.req, "attempt": call.attempt, **fields})

    def _classify(self, value: Any) -> tuple[str, float | None, bool]:
        """(outcome, retry_after, retryable) from the classifier's 1-, 2- or 3-form answer."""
        got = self.classify(value)
        if isinstance(got, str):
            return got, None, True
        return got[0], got[1], bool(got[2]) if len(got) > 2 else True  # type: ignore[misc]

    def _begin(self) -> _Call:
        now = self.clock.now()
        with self._lock:
            if self.budget is not None:
                self.budget.on_request(now)
        retry = self.retry.new_call() if self.retry is not None else None
        return _Call(retry, None if self.deadline is None else now + self.deadline, next(self._ids))

    def _rate_wait(self, call: _Call) -> None:
        """``TokenBucket.acquire`` for a thread: block until a token is there (waking when it is
        due or when a response changes the rate); raises DeadlineExceeded if the call's
        deadline passes first."""
        rl = self.rate_limiter
        if rl is None:
            return
        with self._rate_cond:
            while True:
                now = self.clock.now()
                wait = self._rate_ask(rl, call, now)
                if wait == 0.0:
                    return
                self._rate_cond.wait(wait)

    async def _arate_wait(self, call: _Call) -> None:
        """The asyncio form of :meth:`_rate_wait`: sleep until the token is due and ask again."""
        rl = self.rate_limiter
        if rl is None:
            return
        while True:
            with self._lock:
                wait = self._rate_ask(rl, call, self.clock.now())
            if wait == 0.0:
                return
            await asyncio.sleep(wait)

    def _rate_ask(self, rl: AdaptiveRateLimiter, call: _Call, now: float) -> float:
        """Under the lock: 0.0 with a token taken, else how long to wait (capped by the deadline)."""
        wait = rl.acquire(now)
        if wait > 0.0 and call.deadline_at is not None:
            left = call.deadline_at - now
            if left <= 0:
                raise DeadlineExceeded(f"deadline of {self.deadline} s passed waiting for a rate-limit token")
            wait = min(wait, left)
        return wait

    def _admit(self, call: _Call) -> tuple[_Try | None, str, Exception | None]:
        """Throttle, breaker, concurrency limit, bulkhead: (try, bulkhead verdict, local error).

        The order is the simulation's; a try the limit refuses is a ``bulkhead_full`` outcome
        (the simulation's ``limit_rejected``), raised as :class:`ConcurrencyLimitError`.
        """
        now = self.clock.now()
        with self._lock:
            call.attempt += 1
            if call.retry is not None:
                call.retry.on_try()
            if self.max_abandoned is not None and self._abandoned >= self.max_abandoned:
                self._end_budget(now, call, BULKHEAD_FULL)
                return None, "", AbandonedCallsError(
                    f"{self._abandoned} timed-out calls are still running (max_abandoned={self.max_abandoned})")
            if self.throttle is not None and self.throttle.should_reject(now, self.rng.random()):
                self.throttle.record_rejection(now)
                self._end_budget(now, call, THROTTLED)
                self._event("rejected", call, outcome=THROTTLED, why="throttled",
                            reject_probability=self.throttle.reject_probability(now))
                return None, "", ThrottledError("adaptive throttle rejected the call")
            permit = None
            if self.breaker is not None:
                permit = self.breaker.allow(now)
                if permit is None:
                    self._end_budget(now, call, BREAKER_OPEN)
                    b = self.breaker
                    self._event("rejected", call, outcome=BREAKER_OPEN, why="breaker_open", state=b.state,
                                open_until=b.open_until if b.state == "open" else None)
                    return None, "", BreakerOpenError(
                        f"circuit breaker is {self.breaker.state}")
            token = None
            if self.limiter is not None:
                token = self.limiter.acquire(self._now_ns())
                if token is None:
                    self._reject_bulkhead(now, call, permit, None)
                    self._event("rejected", call, outcome=BULKHEAD_FULL, why="limit_rejected",
                                limit=float(self.limiter.limit), in_flight=self.limiter.inflight)
                    return None, "", ConcurrencyLimitError(
                        f"concurrency limit of {self.limiter.limit} reached ({self.limiter.inflight} in flight)")
            verdict = ADMIT
            if self.bulkhead is not None:
                verdict = self.bulkhead.try_enter(now)
                if verdict not in (ADMIT, WAIT):
                    self._reject_bulkhead(now, call, permit, token)
                    bh = self.bulkhead
                    self._event("rejected", call, outcome=BULKHEAD_FULL, why="bulkhead_rejected",
                                limit=bh.config.max_concurrent, in_flight=bh.active, waiting=bh.waiting)
                    return None, "", BulkheadFullError("bulkhead is full")
            if verdict == ADMIT and self.budget is not None:
                self.budget.on_try_start(now, call.is_retry)
            return _Try(permit, verdict == ADMIT, now, token), verdict, None

    def _reject_bulkhead(self, now: float, call: _Call, permit: int | None,
                         token: tuple[int, int] | None) -> None:
        """A try refused by the limit or the bulkhead: give back the permit and the limit's
        token (no sample, as the simulation's driver), and end it for the budget."""
        if self.breaker is not None and permit is not None:
            self.breaker.release(permit)
        if token is not None:
            self.limiter.ignore(token)  # type: ignore[union-attr]
        self._end_budget(now, call, BULKHEAD_FULL)

    def _end_budget(self, now: float, call: _Call, outcome: str, *, sent: bool = False) -> None:
        """The try ended for the budget; ``sent``: it got past the local gates (Envoy counts it)."""
        if self.budget is not None:
            self.budget.on_try_end(now, outcome, call.is_retry, call.retry_cost, sent=sent)

    def _wait_limit(self, call: _Call) -> float | None:
        limit = self.bulkhead.max_wait if self.bulkhead is not None else None
        if call.deadline_at is not None:
            left = max(0.0, call.deadline_at - self.clock.now())
            limit = left if limit is None else min(limit, left)
        return limit

    def _after_wait(self, call: _Call, attempt: _Try, waiter: object,
                    ) -> SimresError | None:
        now = self.clock.now()
        with self._lock:
            if self.bulkhead.abandon(waiter):  # type: ignore[union-attr]
                self._reject_bulkhead(now, call, attempt.permit, attempt.token)
                attempt.token = None
                if call.deadline_at is not None and now >= call.deadline_at:
                    return DeadlineExceeded(
                        f"deadline of {self.deadline} s passed waiting for the bulkhead")
                return BulkheadFullError("bulkhead wait expired")
            attempt.slot = True
            attempt.start = now
            if self.budget is not None:
                self.budget.on_try_start(now, call.is_retry)
        return None

    def _wait_slot(self, call: _Call, attempt: _Try) -> SimresError | None:
        """Block until the bulkhead hands this try a slot, or the wait expires."""
        waiter = _ThreadWaiter()
        with self._lock:
            self.bulkhead.enqueue(self.clock.now(), waiter)  # type: ignore[union-attr]
        waiter.event.wait(self._wait_limit(call))
        return self._after_wait(call, attempt, waiter)

    async def _await_slot(self, call: _Call, attempt: _Try) -> SimresError | None:
        """Await a bulkhead slot; a cancelled waiter gives back whatever it holds."""
        waiter = _TaskWaiter()
        with self._lock:
            self.bulkhead.enqueue(self.clock.now(), waiter)  # type: ignore[union-attr]
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter.future), self._wait_limit(call))
        except asyncio.CancelledError:
            error = self._after_wait(call, attempt, waiter)
            if error is None:  # the slot arrived as we were cancelled: hand it on
                self._finish(call, attempt, CANCELLED)
            raise
        return self._after_wait(call, attempt, waiter)

    def _try_timeout(self, call: _Call) -> float | None:
        t = self.timeout
        if call.deadline_at is not None:
            left = call.deadline_at - self.clock.now()
            t = left if t is None else min(t, left)
        return t

    @property
    def abandoned(self) -> int:
        """Timed-out calls still running in their threads (bounded by ``max_abandoned``)."""
        return self._abandoned

    def _abandon(self, attempt: _Try, is_done: Any) -> bool:
        """Mark a timed-out try as abandoned unless its call ended meanwhile (then False)."""
        with self._lock:
            if is_done():
                return False
            attempt.abandoned = True
            self._abandoned += 1
            return True

    def _call_ended(self, attempt: _Try) -> None:
        """An abandoned call really returned: count it out and give back a slot it kept."""
        now = self.clock.now()
        woken = None
        with self._lock:
            attempt.ended = True
            if not attempt.abandoned:
                return
            self._abandoned -= 1
            if attempt.finished and attempt.slot and self.bulkhead is not None:
                attempt.slot = False
                woken = self.bulkhead.leave(now)
        if woken is not None:
            woken.wake()  # type: ignore[attr-defined]

    def _finish(self, call: _Call, attempt: _Try, outcome: str) -> None:
        now = self.clock.now()
        woken = None
        with self._lock:
            attempt.finished = True
            keep = attempt.abandoned and not attempt.ended and self.bulkhead_counts == "running"
            if attempt.slot and self.bulkhead is not None and not keep:
                attempt.slot = False
                woken = self.bulkhead.leave(now)
            if outcome not in SUCCESS_OUTCOMES and outcome != CANCELLED:
                self._event("try_failed", call, outcome=outcome, duration=now - attempt.start)
            self._ctx = (call.req, call.attempt)
            if self.breaker is not None and attempt.permit is not None:
                self.breaker.on_result(now, attempt.permit, outcome, now - attempt.start)
            self._ctx = None
            if attempt.token is not None:
                self._limit_end(attempt.token, outcome)
                attempt.token = None
            if self.throttle is not None and outcome != CANCELLED:
                self.throttle.record_outcome(now, outcome)
            if self.rate_limiter is not None and outcome != CANCELLED:
                self.rate_limiter.response(now, outcome in self._throttling)
                self._rate_cond.notify()
            self._end_budget(now, call, outcome, sent=True)
        if woken is not None:
            woken.wake()  # type: ignore[attr-defined]

    def _limit_end(self, token: tuple[int, int], outcome: str) -> None:
        """Under the lock: the try's sample for the limit, as the simulation's driver gives it
        (Netflix's gRPC client interceptor): a success with its RTT for a success, a drop for
        a refusal (connection, rejected, shed), no sample for anything else (a timeout, an
        error reply, a cancelled try)."""
        limiter = self.limiter
        assert limiter is not None
        if outcome in SUCCESS_OUTCOMES:
            limiter.success(token, self._now_ns())
        elif outcome in _UNAVAILABLE:
            limiter.dropped(token, self._now_ns())
        else:
            limiter.ignore(token)

    def _retry_delay(self, call: _Call, outcome: str, hint: float | None,
                     last: BaseException | None, shown: str | None = None) -> float | None:
        """The wait before the next try, None to give up; raises DeadlineExceeded.

        ``shown``: the try's outcome before policies judge it (a ``connect_timeout`` is judged
        a ``connection`` failure); the retry budget prices the retry by it.
        """
        if call.retry is None:
            return None
        now = self.clock.now()
        with self._lock:
            delay = call.retry.next_delay(outcome, self.rng, hint)
            if delay is None:
                self._event("retry_given_up", call, outcome=outcome, why="policy")
                return None
            if call.deadline_at is not None and now + delay >= call.deadline_at:
                self._event("retry_given_up", call, outcome=outcome, why="deadline", delay=delay)
                raise DeadlineExceeded(
                    f"deadline of {self.deadline} s would pass during the retry wait") from last
            if self.budget is not None:
                if not self.budget.try_acquire_retry(now, outcome if shown is None else shown):
                    self._event("budget_denied", call, outcome=outcome, what="retry", **self._balance())
                    return None
                call.retry_cost = getattr(self.budget, "last_cost", None)
                self._event("budget_granted", call, outcome=outcome, what="retry", **self._balance())
            self._event("retry_scheduled", call, outcome=outcome, delay=delay, next_attempt=call.attempt + 1)
            call.is_retry = True
        return delay

    def _balance(self) -> dict[str, Any]:
        """The retry budget's balance as event fields (the simulation's ``budget_fields``)."""
        b = self.budget
        fields: dict[str, Any] = {"budget": type(b).__name__, "balance": float(b.tokens)}  # type: ignore[union-attr]
        for key in ("active", "active_retries", "retries_granted", "retries_denied"):
            v = getattr(b, key, None)
            if isinstance(v, (int, float)):
                fields[key] = v
        return fields

    def _settle(self, call: _Call, attempt: _Try, result: Any, error: Exception | None) -> tuple[bool, float]:
        """After a try that returned ``result`` or raised ``error``: tell the policies, then decide.

        Returns ``(True, 0)`` when the call is over with ``result``, ``(False, delay)`` when
        another try follows after ``delay`` seconds; raises ``error`` (or the deadline) when
        the call is over with it. One decision for the sync and asyncio entry points.
        """
        outcome, hint, retryable = self._classify(error if error is not None else result)
        shown = outcome
        if outcome == CONNECT_TIMEOUT:
            outcome = CONNECTION  # what the policies judge, as in the simulation; the budget sees `shown`
        self._finish(call, attempt, outcome)
        if outcome in SUCCESS_OUTCOMES:
            if error is not None:
                raise error
            return True, 0.0
        delay = self._retry_delay(call, outcome, hint, error, shown) if retryable else None
        if delay is None:
            if outcome == TIMEOUT:
                self._check_deadline(call, error)
            if error is not None:
                raise error
            return True, 0.0
        return False, delay

    def _check_deadline(self, call: _Call, last: BaseException | None) -> None:
        if call.deadline_at is not None and self.clock.now() >= call.deadline_at:
            raise DeadlineExceeded(f"deadline of {self.deadline} s passed") from last
