"""The job: one try in flight from a caller to an instance, itself the SimPy event the caller waits on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simpy import Environment, Event
from simpy.events import NORMAL, PENDING

from simres.outcomes import (
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
        arrive at or after the timer is dropped: the timer was scheduled first, so it wins
        a tie, and the caller sees TIMEOUT either way.
        """
        d = self.back.delay()
        if d is None or self._value is not PENDING:
            return
        env = self.env
        if d > 0:
            if env.now + d < self.deadline:
                self._ok = True
                self._value = outcome
                env.schedule(self, NORMAL, d)
        else:
            self.succeed(outcome)
