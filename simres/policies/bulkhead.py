"""Bulkhead: a cap on concurrent calls, so one slow dependency cannot take every worker.

Two kinds, as in Resilience4j:

- ``semaphore`` (``Bulkhead``: 25 concurrent, wait 0): over the limit a call waits in
  FIFO order for at most ``max_wait`` seconds, then is rejected; ``max_wait: 0`` rejects
  at once.
- ``pool`` (``ThreadPoolBulkhead``: queue 100): over the limit a call joins a bounded
  queue and waits without a time limit; it is rejected only when the queue is full.

The state object does accounting only; the driver does the waiting::

    verdict = bulkhead.try_enter(now)      # "admit" | "wait" | "reject"
    if verdict == "wait":
        bulkhead.enqueue(now, token)       # then wait for a wake-up, at most max_wait
        ...                                # on timeout: bulkhead.abandon(token)
    ...
    woken = bulkhead.leave(now)            # the slot goes to the first waiter, if any
    if woken is not None: wake(woken)

A freed slot is handed straight to the oldest waiter, so no later arrival can overtake it.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from pydantic import Field

from simres.errors import PolicyConfigError
from simres.policies._base import PolicyModel

ADMIT = "admit"
WAIT = "wait"
REJECT = "reject"


class BulkheadConfig(PolicyModel):
    """Options of a bulkhead."""

    preset_group = "bulkhead"
    kind: Literal["semaphore", "pool"] = Field(
        default="semaphore",
        description="semaphore: wait FIFO up to max_wait (Resilience4j Bulkhead); pool: bounded "
                    "queue, no wait limit (Resilience4j ThreadPoolBulkhead).")
    max_concurrent: int = Field(default=25, ge=1,
                                description="Calls allowed in flight at once (Resilience4j 25).")
    max_wait: float = Field(
        default=0.0, ge=0,
        description="Seconds a semaphore caller waits for a slot; 0 = reject at once.")
    queue_size: int = Field(default=100, ge=0,
                            description="Waiting calls a pool holds before rejecting (pool).")
    scope: Literal["per_client", "shared"] = Field(
        default="per_client",
        description="per_client: one bulkhead per client instance; shared: one for every "
                    "client with this config.")
    preset: str | None = Field(
        default=None,
        description="Name of a library preset whose values fill every field not given here.")

    def build(self) -> Bulkhead:
        """Fresh bulkhead state."""
        return Bulkhead(self)


class Bulkhead:
    """Slots in use and the FIFO of waiters.

    Waiter tokens must be hashable (SimPy events and threading objects are); an abandoned
    waiter is dropped lazily when it reaches the head of the FIFO, so :meth:`abandon` is O(1).
    ``waiting`` counts live waiters only.
    """

    __slots__ = ("_limit", "_pool", "_queue", "_queue_size", "_queued", "active",
                 "config", "max_wait", "rejected_count", "waiting")

    def __init__(self, config: BulkheadConfig) -> None:
        self.config = config
        self._limit = config.max_concurrent
        self._pool = config.kind == "pool"
        self._queue_size = config.queue_size
        self.max_wait: float | None = None if self._pool else config.max_wait
        """Seconds a waiter may wait: None = no limit (pool), 0 = never waits."""
        self._queue: deque[object] = deque()
        self._queued: set[object] = set()
        self.active = 0
        """Slots in use."""
        self.waiting = 0
        """Callers waiting for a slot."""
        self.rejected_count = 0

    def try_enter(self, now: float) -> str:
        """``admit`` (a slot is taken), ``wait`` (call :meth:`enqueue`) or ``reject``."""
        if self.active < self._limit and not self.waiting:
            self.active += 1
            return ADMIT
        if self._pool:
            if self.waiting < self._queue_size:
                return WAIT
        elif self.max_wait:
            return WAIT
        self.rejected_count += 1
        return REJECT

    def enqueue(self, now: float, token: object) -> None:
        """Register a waiter after ``try_enter`` said ``wait``."""
        if token in self._queued:
            raise PolicyConfigError("token: this waiter token is already queued; use a "
                                    "fresh token per wait")
        self._queue.append(token)
        self._queued.add(token)
        self.waiting += 1

    def leave(self, now: float) -> object | None:
        """Free a slot; if someone waits, hand them the slot and return their token."""
        queue = self._queue
        queued = self._queued
        while queue:
            token = queue.popleft()
            if token in queued:
                queued.discard(token)
                self.waiting -= 1
                return token  # the slot passes to the waiter: active is unchanged
        if self.active > 0:
            self.active -= 1
        return None

    def abandon(self, token: object) -> bool:
        """A waiter gave up (its wait expired): remove it from the FIFO.

        Returns False if the token was no longer waiting because :meth:`leave` had already
        handed it a slot; the caller then holds that slot and must :meth:`leave` later.
        """
        if token not in self._queued:
            return False
        self._queued.discard(token)
        self.waiting -= 1
        if not self.waiting:  # only stale entries are left: drop them now
            self._queue.clear()
        return True

    def __repr__(self) -> str:
        return (f"Bulkhead(active={self.active}, waiting={self.waiting}, "
                f"config={self.config!r})")
