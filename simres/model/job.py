"""The job: one try in flight from a caller to an instance, itself the SimPy event the caller waits on.
"""

from __future__ import annotations

from heapq import heappush
from typing import TYPE_CHECKING

from simpy import Environment, Event
from simpy.events import NORMAL, PENDING, Timeout

from simres.outcomes import (
    CONNECT_TIMEOUT,
    TIMEOUT,
)

if TYPE_CHECKING:
    from simres.model.network import Link



INF = float("inf")
NAN = float("nan")
READ = 1
"""Job.op of an optimistic-concurrency read (the reply carries the row version)."""
WRITE = 2
"""Job.op of a conditional write (succeeds only if Job.version is still current)."""


class Job(Event):
    """One try in flight from a caller to an instance; the job is itself the SimPy event.

    It fires once with the outcome seen by the caller: the reply, or TIMEOUT when the
    caller's timer fires first. ``gone`` tells the server the caller gave up. Being the
    event (rather than holding one) saves an object per try on the hot path.
    """

    __slots__ = (
        "back", "deadline", "epoch", "gone", "idx", "member", "op", "parent", "priority", "req_id", "retry_after",
        "served", "t0", "try_id", "version",
    )

    phased = False
    """Whether the try has a connect and a read phase (:class:`PhasedJob`); a class constant,
    so an instance checks it at no cost per try."""

    def __init__(self, env: Environment, req_id: int, priority: str, deadline: float, back: Link,
                 try_id: int = -1, parent: int = -1):
        # inlined Event.__init__ (hot path)
        self.env = env
        self.callbacks = []
        self._value = PENDING
        self.gone = False
        self.req_id = req_id
        self.priority = priority
        self.deadline = deadline
        self.back = back
        self.epoch = 0
        self.retry_after: float | None = None
        self.op = 0  # 0 plain call, READ or WRITE against an occ_row resource
        self.version = 0
        self.try_id = try_id  # this try's id in the attempts frame
        self.parent = parent  # the try whose handler made this call (-1: a client's call)
        self.served = NAN  # when a worker took it (set by the instance; NaN if never served)

    def expire(self, _ev: Event) -> None:
        """The caller's per-try timer fired."""
        if self._value is PENDING:
            self.gone = True
            self.succeed(TIMEOUT)

    def reply(self, outcome: str) -> None:
        """The server answers; the reply crosses the network back (or is lost).

        A reply that will arrive before the caller's timer fires triggers the job now, to
        be processed after the network delay (``env.schedule`` with a delay: the job is its
        own delivery, one event instead of a delivery timeout plus the job). One that would
        arrive at or after the timer is dropped: the timer wins a tie, whichever of the two
        events SimPy runs first at that instant, and the caller sees TIMEOUT either way.
        """
        if self._value is not PENDING:
            self.back.delay()  # the reply is still drawn (and lost): the link's streams move on
            return
        lk = self.back
        if lk.blocked or lk.loss:
            d = lk.delay()
            if d is None:
                return
        elif lk.sample is None:
            d = lk.add  # Link.delay() inlined for a link that cannot lose the message
        else:
            d = lk.sample() * lk.mult + lk.add
        env = self.env
        now = env._now  # type: ignore[attr-defined]
        if d > 0:
            if now + d < self.deadline:
                self._ok = True
                self._value = outcome
                heappush(env._queue, (now + d, NORMAL, next(env._eid), self))  # type: ignore[attr-defined]
        elif now < self.deadline:  # a reply at the timer's instant loses, whichever event runs first
            self._ok = True  # succeed(outcome), inlined
            self._value = outcome
            heappush(env._queue, (now, NORMAL, next(env._eid), self))  # type: ignore[attr-defined]


class PhasedJob(Job):
    """A try with a connect timeout, a read timeout, or both (``timeout=(3, 10)`` in requests).

    The connect phase lasts until the job reaches its instance and is admitted there (the
    network out, then the instance being up to take it); the read phase from then until the
    reply. The connect timer fires :data:`~simres.outcomes.CONNECT_TIMEOUT` if the job has not
    connected by then, and the instance then never sees it (the caller gave up connecting).
    The read timer starts on connecting and fires TIMEOUT. ``deadline`` (when a reply still
    counts) is the connect deadline until the job connects, then the earlier of the read
    deadline and the per-try one, so a reply on the way back when a timer fires is dropped
    as for a plain try.
    """

    __slots__ = ("connected", "read_timeout", "try_end")

    phased = True

    def __init__(self, env: Environment, req_id: int, priority: str, deadline: float, back: Link,
                 try_id: int, parent: int, connect_by: float, read_timeout: float):
        super().__init__(env, req_id, priority, min(deadline, connect_by), back, try_id, parent)
        self.connected = False
        self.read_timeout = read_timeout
        self.try_end = deadline

    def connect_expire(self, _ev: Event) -> None:
        """The connect timer fired: still not at the instance, the caller stops trying."""
        if self._value is PENDING and not self.connected:
            self.gone = True
            self.succeed(CONNECT_TIMEOUT)

    def connect(self) -> None:
        """The job reached an instance that is up (and the caller had not given up connecting:
        the instance drops such a job unseen): connected. Arms the read timer."""
        self.connected = True
        env = self.env
        end = env.now + self.read_timeout
        if end < self.try_end:
            self.deadline = end
            if self._value is PENDING:
                Timeout(env, self.read_timeout).callbacks.append(self.expire)
        else:
            self.deadline = self.try_end
