"""The policy objects of :mod:`simres.policies` around real calls, on the wall clock.

:class:`Resilient` applies a policy stack to a real callable, in the order the simulation
applies it (outermost first): deadline, retry loop, retry budget, adaptive throttle,
circuit breaker, bulkhead, per-try timeout. The same configs (or already-built state
objects) that a scenario tunes are used here, so a tuned threshold is the deployed one::

    guard = Resilient(timeout=0.5, deadline=2.0,
                      retry=RetryConfig(preset="aws_standard"),
                      breaker=BreakerConfig(preset="resilience4j"))

    @guard
    def fetch(url): ...

    data = guard.call(urllib.request.urlopen, url)        # or: await guard.acall(afn, ...)
    with guard.attempt():                                 # one protected block, no retries
        ...

Per-try timeout. Synchronous calls run in a daemon worker thread and the caller stops
waiting after ``timeout`` (Python cannot kill a thread: the abandoned call runs on in the
background, as a real server's work does). With ``timeout_via="argument"`` the callable
is instead called with ``timeout=<seconds left>`` in the calling thread and must enforce
it itself (``urllib.request.urlopen`` does). Coroutines are cancelled on timeout.

Errors raised to the caller: :class:`BreakerOpenError`, :class:`BulkheadFullError`,
:class:`ThrottledError` (local rejections, never retried), :class:`DeadlineExceeded`
(the overall deadline passed, or the next wait would pass it), :class:`AttemptTimeout`
(the last try timed out), or the last try's own exception once retries run out. A
result that the classifier calls a failure is returned as it is once retries run out.

Classification. ``classify(value)`` receives the exception raised or the value returned
and gives an outcome from :mod:`simres.outcomes`, or ``(outcome, retry_after)`` where
``retry_after`` is a server hint in seconds (honoured if the retry config says so).
:func:`default_classify` understands urllib: 429 -> rejected, 5xx -> error (with its
``Retry-After``), timeouts, refused and reset connections; other 4xx count as success
for the policies (the caller still gets the exception).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email.utils
import functools
import inspect
import threading
import time
import urllib.error
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Literal, TypeVar

import numpy as np

from simres.clock import Clock, WallClock
from simres.errors import SimresError
from simres.outcomes import (
    BREAKER_OPEN,
    BULKHEAD_FULL,
    CANCELLED,
    CONNECTION,
    ERROR,
    OK,
    REJECTED,
    SUCCESS_OUTCOMES,
    THROTTLED,
    TIMEOUT,
)
from simres.policies.breaker import BreakerConfig, CircuitBreaker
from simres.policies.budget import RetryBudget
from simres.policies.bulkhead import ADMIT, WAIT, Bulkhead, BulkheadConfig
from simres.policies.retry import RetryCall, RetryConfig
from simres.policies.throttle import AdaptiveThrottle, ThrottleConfig

T = TypeVar("T")
Classification = str | tuple[str, float | None]
Classifier = Callable[[Any], Classification]


class BreakerOpenError(SimresError):
    """The circuit breaker rejected the call without contacting the dependency."""


class BulkheadFullError(SimresError):
    """The bulkhead had no free slot (and no wait, or the wait expired)."""


class ThrottledError(SimresError):
    """The adaptive throttle rejected the call locally."""


class DeadlineExceeded(SimresError, TimeoutError):
    """The overall deadline passed before a try could succeed."""


class AttemptTimeout(SimresError, TimeoutError):
    """A try took longer than the per-try timeout."""


# ---------------------------------------------------------------------------- classify


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _from_status(code: int, headers: Any) -> tuple[str, float | None]:
    if code == 429:
        return REJECTED, _retry_after(headers)
    if code >= 500:
        return ERROR, _retry_after(headers)
    return OK, None


def default_classify(value: Any) -> tuple[str, float | None]:
    """Outcome (and Retry-After hint) of an exception or a returned value; see the module doc."""
    if isinstance(value, BaseException):
        if isinstance(value, urllib.error.HTTPError):
            return _from_status(value.code, value.headers)
        if isinstance(value, urllib.error.URLError):
            reason = value.reason
            if isinstance(reason, BaseException):
                return default_classify(reason)
            return CONNECTION, None
        if isinstance(value, TimeoutError):
            return TIMEOUT, None
        if isinstance(value, OSError):  # refused, reset, remote disconnected, unreachable
            return CONNECTION, None
        return ERROR, None
    status = getattr(value, "status", None)
    if not isinstance(status, int):
        status = getattr(value, "status_code", None)
    if isinstance(status, int):
        return _from_status(status, getattr(value, "headers", None))
    return OK, None


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

    __slots__ = ("deadline_at", "is_retry", "retry", "retry_cost")

    def __init__(self, retry: RetryCall | None, deadline_at: float | None) -> None:
        self.retry = retry
        self.deadline_at = deadline_at
        self.is_retry = False
        self.retry_cost: float | None = None


class _Try:
    """What a try holds while it runs: the breaker permit and whether it has a slot."""

    __slots__ = ("permit", "slot", "start")

    def __init__(self, permit: int | None, slot: bool, start: float) -> None:
        self.permit = permit
        self.slot = slot
        self.start = start


# ---------------------------------------------------------------------------- Resilient


class Resilient:
    """A policy stack around real calls: decorator, ``call``/``acall``, or ``attempt()``.

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
        rng: np.random.Generator | None = None,
        clock: Clock | None = None,
        classify: Classifier | None = None,
        timeout_via: Literal["thread", "argument"] = "thread",
    ) -> None:
        for name, value in (("timeout", timeout), ("deadline", deadline)):
            if value is not None and not value > 0:
                raise ValueError(f"{name}: must be > 0 or None, got {value}")
        if timeout_via not in ("thread", "argument"):
            raise ValueError(f"timeout_via: must be 'thread' or 'argument', got {timeout_via!r}")
        self.timeout = timeout
        self.deadline = deadline
        self.retry = retry
        self.rng = rng if rng is not None else np.random.default_rng()
        self.clock: Clock = clock if clock is not None else WallClock()
        self.classify: Classifier = classify if classify is not None else default_classify
        self.timeout_via = timeout_via
        self.budget = budget if budget is not None else (
            retry.budget.build() if retry is not None and retry.budget is not None else None)
        self.breaker = (breaker.build(rng=self.rng) if isinstance(breaker, BreakerConfig)
                        else breaker)
        self.bulkhead = bulkhead.build() if isinstance(bulkhead, BulkheadConfig) else bulkhead
        self.throttle = throttle.build() if isinstance(throttle, ThrottleConfig) else throttle
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"Resilient(timeout={self.timeout!r}, deadline={self.deadline!r}, "
                f"retry={self.retry!r}, breaker={self.breaker!r}, bulkhead={self.bulkhead!r}, "
                f"throttle={self.throttle!r})")

    # ------------------------------------------------------------------ decisions

    def _classify(self, value: Any) -> tuple[str, float | None]:
        got = self.classify(value)
        return (got, None) if isinstance(got, str) else (got[0], got[1])

    def _begin(self) -> _Call:
        now = self.clock.now()
        with self._lock:
            if self.budget is not None:
                self.budget.on_request(now)
        retry = self.retry.new_call() if self.retry is not None else None
        return _Call(retry, None if self.deadline is None else now + self.deadline)

    def _admit(self, call: _Call) -> tuple[_Try | None, str, Exception | None]:
        """Throttle, breaker, bulkhead: (try, bulkhead verdict, local error)."""
        now = self.clock.now()
        with self._lock:
            if call.retry is not None:
                call.retry.on_try()
            if self.throttle is not None and self.throttle.should_reject(now, self.rng.random()):
                self.throttle.record_rejection(now)
                self._end_budget(now, call, THROTTLED)
                return None, "", ThrottledError("adaptive throttle rejected the call")
            permit = None
            if self.breaker is not None:
                permit = self.breaker.allow(now)
                if permit is None:
                    self._end_budget(now, call, BREAKER_OPEN)
                    return None, "", BreakerOpenError(
                        f"circuit breaker is {self.breaker.state}")
            verdict = ADMIT
            if self.bulkhead is not None:
                verdict = self.bulkhead.try_enter(now)
                if verdict not in (ADMIT, WAIT):
                    self._reject_bulkhead(now, call, permit)
                    return None, "", BulkheadFullError("bulkhead is full")
            return _Try(permit, verdict == ADMIT, now), verdict, None

    def _reject_bulkhead(self, now: float, call: _Call, permit: int | None) -> None:
        if self.breaker is not None and permit is not None:
            self.breaker.release(permit)
        self._end_budget(now, call, BULKHEAD_FULL)

    def _end_budget(self, now: float, call: _Call, outcome: str) -> None:
        if self.budget is not None:
            self.budget.on_try_end(now, outcome, call.is_retry, call.retry_cost)

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
                self._reject_bulkhead(now, call, attempt.permit)
                if call.deadline_at is not None and now >= call.deadline_at:
                    return DeadlineExceeded(
                        f"deadline of {self.deadline} s passed waiting for the bulkhead")
                return BulkheadFullError("bulkhead wait expired")
        attempt.slot = True
        attempt.start = now
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

    def _finish(self, call: _Call, attempt: _Try, outcome: str) -> None:
        now = self.clock.now()
        woken = None
        with self._lock:
            if attempt.slot and self.bulkhead is not None:
                woken = self.bulkhead.leave(now)
            if self.breaker is not None and attempt.permit is not None:
                self.breaker.on_result(now, attempt.permit, outcome, now - attempt.start)
            if self.throttle is not None and outcome != CANCELLED:
                self.throttle.record_outcome(now, outcome)
            self._end_budget(now, call, outcome)
        if woken is not None:
            woken.wake()  # type: ignore[attr-defined]

    def _retry_delay(self, call: _Call, outcome: str, hint: float | None,
                     last: BaseException | None) -> float | None:
        """The wait before the next try, None to give up; raises DeadlineExceeded."""
        if call.retry is None:
            return None
        now = self.clock.now()
        with self._lock:
            delay = call.retry.next_delay(outcome, self.rng, hint)
            if delay is None:
                return None
            if call.deadline_at is not None and now + delay >= call.deadline_at:
                raise DeadlineExceeded(
                    f"deadline of {self.deadline} s would pass during the retry wait") from last
            if self.budget is not None:
                if not self.budget.try_acquire_retry(now, outcome):
                    return None
                call.retry_cost = getattr(self.budget, "last_cost", None)
            call.is_retry = True
        return delay

    def _check_deadline(self, call: _Call, last: BaseException | None) -> None:
        if call.deadline_at is not None and self.clock.now() >= call.deadline_at:
            raise DeadlineExceeded(f"deadline of {self.deadline} s passed") from last

    # ------------------------------------------------------------------ sync

    def _run_sync(self, fn: Callable[..., T], timeout: float | None, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> T:
        if timeout is None:
            return fn(*args, **kwargs)
        if self.timeout_via == "argument":
            return fn(*args, timeout=max(timeout, 1e-3), **kwargs)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # delivered to the caller through the future
                future.set_exception(exc)

        threading.Thread(target=work, daemon=True, name="simres-try").start()
        done, _ = concurrent.futures.wait([future], timeout=max(timeout, 0.0))
        if not done:
            raise AttemptTimeout(f"try timed out after {timeout:.3g} s")
        return future.result()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)`` through the policy stack (blocking)."""
        call = self._begin()
        last: BaseException | None = None
        while True:
            self._check_deadline(call, last)
            attempt, verdict, local = self._admit(call)
            if local is not None:
                raise local from last
            assert attempt is not None
            if verdict == WAIT:
                error = self._wait_slot(call, attempt)
                if error is not None:
                    raise error from last
            result: Any = None
            try:
                result = self._run_sync(fn, self._try_timeout(call), args, kwargs)
            except Exception as exc:
                outcome, hint = self._classify(exc)
                last = exc
                failed_value: Any = exc
            else:
                outcome, hint = self._classify(result)
                last = None
                failed_value = result
            self._finish(call, attempt, outcome)
            if outcome in SUCCESS_OUTCOMES:
                if isinstance(failed_value, BaseException):
                    raise failed_value
                return result
            delay = self._retry_delay(call, outcome, hint, last)
            if delay is None:
                if outcome == TIMEOUT:
                    self._check_deadline(call, last)
                if last is not None:
                    raise last
                return result
            if delay > 0:
                time.sleep(delay)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate a function (sync or ``async def``) so each call goes through the stack."""
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.acall(fn, *args, **kwargs)
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self.call(fn, *args, **kwargs)
        return wrapper

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """Protect one block: admission, then the block's outcome is recorded.

        A with-block runs once, so there are no retries and no per-try timeout (the block
        cannot be interrupted); the deadline is not applied either. Exceptions propagate.
        """
        call = self._begin()
        attempt, verdict, local = self._admit(call)
        if local is not None:
            raise local
        assert attempt is not None
        if verdict == WAIT:
            error = self._wait_slot(call, attempt)
            if error is not None:
                raise error
        try:
            yield
        except Exception as exc:
            self._finish(call, attempt, self._classify(exc)[0])
            raise
        except BaseException:
            self._finish(call, attempt, CANCELLED)
            raise
        self._finish(call, attempt, OK)

    # ------------------------------------------------------------------ asyncio

    async def _run_async(self, fn: Callable[..., Awaitable[T]], timeout: float | None,
                         args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        task = asyncio.ensure_future(fn(*args, **kwargs))
        if timeout is None:
            return await task
        try:
            done, _ = await asyncio.wait({task}, timeout=max(timeout, 0.0))
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            task.add_done_callback(_swallow)
            raise AttemptTimeout(f"try timed out after {timeout:.3g} s")
        return task.result()

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` through the policy stack."""
        call = self._begin()
        last: BaseException | None = None
        while True:
            self._check_deadline(call, last)
            attempt, verdict, local = self._admit(call)
            if local is not None:
                raise local from last
            assert attempt is not None
            if verdict == WAIT:
                error = await self._await_slot(call, attempt)
                if error is not None:
                    raise error from last
            result: Any = None
            try:
                result = await self._run_async(fn, self._try_timeout(call), args, kwargs)
            except asyncio.CancelledError:
                self._finish(call, attempt, CANCELLED)
                raise
            except Exception as exc:
                outcome, hint = self._classify(exc)
                last = exc
                failed_value: Any = exc
            else:
                outcome, hint = self._classify(result)
                last = None
                failed_value = result
            self._finish(call, attempt, outcome)
            if outcome in SUCCESS_OUTCOMES:
                if isinstance(failed_value, BaseException):
                    raise failed_value
                return result
            delay = self._retry_delay(call, outcome, hint, last)
            if delay is None:
                if outcome == TIMEOUT:
                    self._check_deadline(call, last)
                if last is not None:
                    raise last
                return result
            await asyncio.sleep(delay)

    @contextlib.asynccontextmanager
    async def aattempt(self) -> AsyncIterator[None]:
        """The asyncio form of :meth:`attempt` (same rules: no retries, no timeout)."""
        call = self._begin()
        attempt, verdict, local = self._admit(call)
        if local is not None:
            raise local
        assert attempt is not None
        if verdict == WAIT:
            error = await self._await_slot(call, attempt)
            if error is not None:
                raise error
        try:
            yield
        except Exception as exc:
            self._finish(call, attempt, self._classify(exc)[0])
            raise
        except BaseException:
            self._finish(call, attempt, CANCELLED)
            raise
        self._finish(call, attempt, OK)


def _swallow(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned task's result so asyncio does not warn about it."""
    if not task.cancelled():
        task.exception()
