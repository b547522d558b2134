"""The wait-before-send gate of botocore's adaptive retry mode, on SimPy timers.

botocore's ``ClientRateLimiter`` blocks each send in ``TokenBucket.acquire`` until a token
is there (:mod:`simres.policies.aws_adaptive` holds the arithmetic). Every blocked thread
sleeps until the same instant, when the next token is due (each computes
``(1 - tokens) / rate`` after the last grant, and these land on one time), and whichever
thread gets the condition's lock first takes it; the others sleep again. Here the waiting
tries are one pool per limiter and, at each due time, one of them drawn uniformly takes the
token: the race of the threads, at O(1) per token rather than N wake-ups for N waiters
(only one timer is armed, for the next token). A response that changes the fill rate makes
the gate check again at once (``Condition.notify``); a try whose deadline comes first
leaves the pool unsent. Token grant times and rates are botocore's.
"""

from __future__ import annotations

from typing import Any

from simpy import Environment
from simpy.events import Timeout

from simres.policies.aws_adaptive import AdaptiveRateConfig, AdaptiveRateLimiter

INF = float("inf")


class _Waiter:
    """A try waiting for a token: who to resume, and its place in the pool (-1 once gone)."""

    __slots__ = ("idx", "resume")

    def __init__(self, resume: Any, idx: int) -> None:
        self.resume = resume
        self.idx = idx


class RateGate:
    """One :class:`AdaptiveRateLimiter` and the tries waiting on it (one per botocore client).

    ``u`` draws U[0, 1) for the race (its stream is keyed by the limiter's identity).
    """

    __slots__ = ("_gen", "_pool", "env", "limiter", "u")

    def __init__(self, env: Environment, cfg: AdaptiveRateConfig, u: Any) -> None:
        self.env = env
        self.limiter = AdaptiveRateLimiter(cfg, env.now)
        self.u = u
        self._pool: list[_Waiter] = []
        self._gen = 0
        """Numbers the armed timer; an older timer finds a different number and does nothing."""

    @property
    def enabled(self) -> bool:
        """Whether sends must take tokens (after the first throttling response)."""
        return self.limiter.enabled

    def ask(self, deadline_at: float, resume: Any) -> bool:
        """``before-send``: True to send now; False when the try waits, and ``resume(granted)``
        runs later: True with its token, False at ``deadline_at`` if that comes first.

        A send that finds a token takes it even while others wait, as a thread that gets the
        lock while the sleepers sleep does.
        """
        env = self.env
        wait = self.limiter.acquire(env.now)
        if wait == 0.0:
            return True
        pool = self._pool
        w = _Waiter(resume, len(pool))
        pool.append(w)
        if len(pool) == 1:
            self._arm(wait)
        if deadline_at < INF:
            Timeout(env, deadline_at - env.now).callbacks.append(lambda _ev: self._expire(w))
        return False

    def _arm(self, wait: float) -> None:
        self._gen += 1
        gen = self._gen
        Timeout(self.env, wait).callbacks.append(lambda _ev: self._serve(gen))

    def _remove(self, w: _Waiter) -> None:
        pool = self._pool
        last = pool.pop()
        if last is not w:
            pool[w.idx] = last
            last.idx = w.idx
        w.idx = -1

    def _serve(self, gen: int) -> None:
        """A token is due (or the rate changed): grant tokens while there are, each to a
        waiter drawn at random, then arm the timer for the next one."""
        if gen != self._gen:
            return
        pool = self._pool
        limiter = self.limiter
        now = self.env.now
        while pool:
            wait = limiter.acquire(now)
            if wait > 0:
                self._arm(wait)
                return
            w = pool[int(self.u() * len(pool))]
            self._remove(w)
            w.resume(True)

    def _expire(self, w: _Waiter) -> None:
        """``w``'s deadline: it leaves unsent (the timer stays armed for the others)."""
        if w.idx < 0:
            return
        self._remove(w)
        w.resume(False)

    def response(self, now: float, throttled: bool) -> None:
        """``needs-retry``: one sent try's response updates the rate; waiters check again now."""
        self.limiter.response(now, throttled)
        if self._pool:
            self._gen += 1
            gen = self._gen
            Timeout(self.env, 0.0).callbacks.append(lambda _ev: self._serve(gen))
