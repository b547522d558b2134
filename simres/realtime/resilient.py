"""The policy objects of :mod:`simres.policies` around real calls, on the wall clock.

:class:`Resilient` applies a policy stack to a real callable, in the order the simulation
applies it (outermost first): deadline, retry loop or hedging (``hedge``), retry budget,
adaptive throttle, circuit breaker, adaptive concurrency limit (``limit``), bulkhead,
per-try timeout. The same configs (or already-built state objects) that a scenario tunes
are used here, so a tuned threshold is the deployed one::

    guard = Resilient(timeout=0.5, deadline=2.0,
                      retry=RetryConfig(preset="aws_standard"),
                      breaker=BreakerConfig(preset="resilience4j"),
                      limit=LimitConfig(kind="gradient2"))
    hedged = Resilient(timeout=1.0, hedge=HedgeConfig(delay="p95", max_attempts=2))

    @guard
    def fetch(url): ...

    data = guard.call(urllib.request.urlopen, url)        # or: await guard.acall(afn, ...)
    with guard.attempt():                                 # one protected block, no retries
        ...

Per-try timeout. Synchronous calls run in a daemon worker thread and the caller stops
waiting after ``timeout``: the whole try is bounded (Python cannot kill a thread: the
abandoned call runs on in the background, as a real server's work does). With
``timeout_via="argument"`` the callable is instead called with ``timeout=<seconds left>``
in the calling thread and only what it does with that is bounded: for
``urllib.request.urlopen`` each socket operation, not the whole response (a server that
drips its body keeps the try going). ``timeout_via="both"`` passes ``timeout=`` and also
runs the call in a thread, so the try is bounded and the abandoned call soon ends too.
Coroutines are cancelled on timeout.

Abandoned calls. A timed-out call still running in its thread keeps its bulkhead slot
until it returns (``bulkhead_counts="running"``; ``"tries"`` frees it at the timeout), so
the bulkhead bounds what the dependency really sees. At most ``max_abandoned`` (default
32) may run at once; further tries are refused with :class:`AbandonedCallsError` until
some return. :attr:`abandoned` is how many are running (docs/errors.md).

Hedging (``hedge=HedgeConfig(...)``). The simulation's pure :class:`HedgeCall` and
:class:`HedgePolicy` decide (:mod:`simres.realtime._hedge`): the first try at once, one
more every ``delay`` from the latest send (a fixed delay, or a percentile of this guard's
recent try latencies) up to ``max_attempts``; the first success wins; a non-fatal failure
(``non_fatal``, or a per-try timeout) sends the next hedge at once, a fatal one (or one the
classifier calls not retryable) ends the call. Each hedge must be granted by the budget
(``hedge.budget``, or ``budget=``); a refusal, or a gate (throttle, breaker,
``max_abandoned``) refusing a hedge, stops hedging while the tries in flight go on. Every
try has its own per-try timeout, capped by the deadline; none is sent after it. Sync tries
all run in worker threads (``timeout_via`` ``"argument"`` or ``"both"`` also passes
``timeout=``); the losers are abandoned, counted in :attr:`abandoned` like timed-out calls.
asyncio tries are tasks and the losers are cancelled. With ``cancel_losers`` the policies
see a loser as ``cancelled`` when the call ends; without, its own outcome when it returns
(a ``timeout`` if it overran its per-try timeout). Hedging with ``retry`` (or a bulkhead or
a limit, as in the scenario schema) or with ``breaker_serialize`` is refused; an
``attempt()`` block is one try and is not hedged.

Concurrency limit (``limit=LimitConfig(...)``: aimd, vegas, gradient2, fixed from Netflix
concurrency-limits; ``envoy_gradient`` is a server's filter and is refused). Each try takes
a permit after the breaker; beyond the limit it is refused with
:class:`ConcurrencyLimitError`. Its sample is its RTT in nanoseconds
(:func:`time.monotonic_ns`, or the injected ``clock``) and the driver's rule: a success
for ``ok``/``degraded``, a drop for ``connection``, ``rejected`` (a 429) or ``shed``, no
sample for a timeout or an error reply. :attr:`concurrency_limit` is the limit now.

Errors raised to the caller: :class:`BreakerOpenError`, :class:`BulkheadFullError`,
:class:`ConcurrencyLimitError`, :class:`ThrottledError` (local rejections, never retried),
:class:`DeadlineExceeded`
(the overall deadline passed, or the next wait would pass it), :class:`AttemptTimeout`
(the last try timed out), or the last try's own exception once retries run out. A
result that the classifier calls a failure is returned as it is once retries run out.

Classification. ``classify(value)`` receives the exception raised or the value returned
and gives an outcome from :mod:`simres.outcomes`, ``(outcome, retry_after)`` where
``retry_after`` is a server hint in seconds (honoured if the retry config says so), or
``(outcome, retry_after, retryable)``: ``retryable`` False ends the retry loop after that
failure. :func:`default_classify` understands urllib: 429 -> rejected, 5xx -> error
(with its ``Retry-After``), timeouts, refused and reset connections; other 4xx count as
success for the policies (the caller still gets the exception). :func:`http_classify`
decides as the libraries do (a raised 4xx and a 501 are failures that are not retried)
and :func:`aws_classify` as botocore's standard retry mode (``ClientError`` codes,
``x-amz-retry-after`` in milliseconds); see :mod:`simres.realtime.classify`.

Serialised breaker. ``breaker_serialize=True`` runs one try at a time, holding a
re-entrant lock from admission to the try's outcome, as pybreaker's ``call()`` and its
decorator hold the breaker's lock around the call: a caller that waited for the lock
sees the state the previous try left (a tripped breaker rejects it; in half-open only
one probe runs at a time). A timed-out try releases the lock at its timeout. asyncio
calls serialise on an ``asyncio.Lock`` per event loop, apart from the threads.
"""


from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import queue
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from simres.outcomes import (
    CANCELLED,
    OK,
)
from simres.policies.bulkhead import WAIT
from simres.realtime._hedge import INF, HedgeRun, HedgeTry
from simres.realtime._stack import PolicyStack
from simres.realtime.errors import AttemptTimeout

T = TypeVar("T")


class Resilient(PolicyStack):
    """A policy stack around real calls: decorator, ``call``/``acall``, or ``attempt()``.

    Thread-safe: every policy decision is taken under one lock, held only for the
    decision (never while the protected call runs or while waiting).
    """

    # ------------------------------------------------------------------ sync

    def _run_sync(self, fn: Callable[..., T], timeout: float | None, args: tuple[Any, ...],
                  kwargs: dict[str, Any], attempt: Any) -> T:
        if timeout is None:
            return fn(*args, **kwargs)
        if self.timeout_via == "argument":
            return fn(*args, timeout=max(timeout, 1e-3), **kwargs)
        if self.timeout_via == "both":
            kwargs = {**kwargs, "timeout": max(timeout, 1e-3)}
        future = self._spawn(fn, args, kwargs, attempt)
        done, _ = concurrent.futures.wait([future], timeout=max(timeout, 0.0))
        if not done and self._abandon(attempt, future.done):
            raise AttemptTimeout(f"try timed out after {timeout:.3g} s")
        return future.result()

    def _spawn(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any],
               attempt: Any) -> concurrent.futures.Future[T]:
        """Run ``fn`` in a daemon worker thread; its future has the result. When the call
        returns, an abandoned try is counted out (and gives back a slot it kept)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # delivered to the caller through the future
                future.set_exception(exc)
            finally:
                self._call_ended(attempt)

        threading.Thread(target=work, daemon=True, name="simres-try").start()
        return future

    def _hedged_call(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        """A hedged call from a thread: every try runs in a worker thread (see :mod:`._hedge`).

        The caller waits on one queue for the next reply, hedge time or per-try expiry. A
        timed-out try and, at the end, every loser still running are abandoned (counted in
        :attr:`abandoned`, bounded by ``max_abandoned``): Python cannot stop a thread.
        """
        run = HedgeRun(self)
        replies: queue.SimpleQueue[HedgeTry] = queue.SimpleQueue()

        def launch(tries: list[HedgeTry]) -> None:
            for t in tries:
                kw = kwargs
                if self.timeout_via != "thread" and t.expires_at != INF:
                    kw = {**kwargs, "timeout": max(t.expires_at - self.clock.now(), 1e-3)}
                t.handle = future = self._spawn(fn, args, kw, t.attempt)

                def on_done(_f: Any, t: HedgeTry = t) -> None:
                    with run.mutex:
                        late = t.late
                    if late:
                        run.late(t, *_outcome_of(t.handle))
                    else:
                        replies.put(t)
                future.add_done_callback(on_done)

        try:
            launch(run.start())
            while not run.done:
                try:
                    t = replies.get(timeout=run.wait_time())
                except queue.Empty:
                    for t in run.expired():
                        if run.done:
                            break
                        if self._abandon(t.attempt, t.handle.done):
                            launch(run.timed_out(t))
                    launch(run.due())
                    continue
                launch(run.reply(t, *_outcome_of(t.handle)))
                launch(run.due())
        except BaseException:  # e.g. KeyboardInterrupt, or the classifier raised: leave no try behind
            for t in run.losers(cancel=True):
                if not t.attempt.abandoned:
                    self._abandon(t.attempt, t.handle.done)
            raise
        for t in run.losers():
            if not t.attempt.abandoned:
                self._abandon(t.attempt, t.handle.done)
            if t.late and t.handle.done():
                run.late(t, *_outcome_of(t.handle))  # it ended as the call did
        return run.result()  # type: ignore[no-any-return]

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)`` through the policy stack (blocking)."""
        if self.hedge is not None:
            return self._hedged_call(fn, args, kwargs)
        call = self._begin()
        last: BaseException | None = None
        while True:
            self._check_deadline(call, last)
            with self._one_try():
                self._rate_wait(call)
                attempt, verdict, local = self._admit(call)
                if local is not None:
                    raise local from last
                assert attempt is not None
                if verdict == WAIT:
                    error = self._wait_slot(call, attempt)
                    if error is not None:
                        raise error from last
                result: Any = None
                last = None
                try:
                    result = self._run_sync(fn, self._try_timeout(call), args, kwargs, attempt)
                except Exception as exc:
                    last = exc
                done, delay = self._settle(call, attempt, result, last)
            if done:
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
        With ``breaker_serialize`` the block holds the try lock (pybreaker's ``calling()``
        does not serialise; leave the option off to match it).
        """
        with self._one_try():
            yield from self._attempt_body()

    def _attempt_body(self) -> Iterator[None]:
        call = self._begin()
        self._rate_wait(call)
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

    async def _hedged_acall(self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...],
                            kwargs: dict[str, Any]) -> T:
        """A hedged call in an event loop: every try is a task; losers are cancelled."""
        run = HedgeRun(self)
        tasks: dict[asyncio.Future[Any], HedgeTry] = {}

        def launch(tries: list[HedgeTry]) -> None:
            for t in tries:
                t.handle = task = asyncio.ensure_future(fn(*args, **kwargs))
                tasks[task] = t

        def stop(t: HedgeTry) -> None:
            if t.handle is None:  # fn raised before its task existed
                return
            tasks.pop(t.handle, None)
            t.handle.cancel()
            t.handle.add_done_callback(_swallow)

        try:
            launch(run.start())
            while not run.done:
                done, _ = await asyncio.wait(set(tasks), timeout=run.wait_time(),
                                             return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda k: tasks[k].number):
                    t = tasks.pop(task)
                    launch(run.reply(t, *_outcome_of(task)))
                for t in run.expired():
                    if run.done:
                        break
                    stop(t)
                    launch(run.timed_out(t))
                launch(run.due())
        except BaseException:  # cancelled (or the classifier raised): so is every try
            for t in run.losers(cancel=True):
                stop(t)
            raise
        for t in run.losers():
            if t.late:
                tasks.pop(t.handle, None)
                t.handle.add_done_callback(lambda task, t=t: run.late(t, *_outcome_of(task)))
            else:
                stop(t)
        return run.result()  # type: ignore[no-any-return]

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` through the policy stack."""
        if self.hedge is not None:
            return await self._hedged_acall(fn, args, kwargs)
        call = self._begin()
        last: BaseException | None = None
        while True:
            self._check_deadline(call, last)
            async with self._one_atry():
                await self._arate_wait(call)
                attempt, verdict, local = self._admit(call)
                if local is not None:
                    raise local from last
                assert attempt is not None
                if verdict == WAIT:
                    error = await self._await_slot(call, attempt)
                    if error is not None:
                        raise error from last
                result: Any = None
                last = None
                try:
                    result = await self._run_async(fn, self._try_timeout(call), args, kwargs)
                except asyncio.CancelledError:
                    self._finish(call, attempt, CANCELLED)
                    raise
                except Exception as exc:
                    last = exc
                done, delay = self._settle(call, attempt, result, last)
            if done:
                return result
            await asyncio.sleep(delay)

    @contextlib.asynccontextmanager
    async def aattempt(self) -> AsyncIterator[None]:
        """The asyncio form of :meth:`attempt` (same rules: no retries, no timeout)."""
        async with self._one_atry(), self._aattempt_body():
            yield

    @contextlib.asynccontextmanager
    async def _aattempt_body(self) -> AsyncIterator[None]:
        call = self._begin()
        await self._arate_wait(call)
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


def _outcome_of(future: Any) -> tuple[Any, BaseException | None]:
    """``(value, None)`` or ``(None, exception)`` of a finished future or task."""
    if future.cancelled():
        return None, asyncio.CancelledError()
    exc = future.exception()
    return (None, exc) if exc is not None else (future.result(), None)


def _swallow(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned task's result so asyncio does not warn about it."""
    if not task.cancelled():
        task.exception()
