"""The SimPy environment every world runs in: SimPy's own, with its event loop inlined.

:meth:`simpy.Environment.run` calls :meth:`~simpy.Environment.step` once per event, and a
run makes several events per request, so the call itself is a measurable part of the
per-request cost. :class:`Engine` runs the same loop with the body of ``step`` inlined:
events are popped in the same (time, priority, id) order and their callbacks called in
the same order, a failed event that nobody defused crashes the run the same way, and a
``StopSimulation`` raised by a callback puts the rest of that event's callbacks back as
``step`` does. Only the per-event call to ``step`` is gone.
"""

from __future__ import annotations

from heapq import heappop
from typing import Any

from simpy import Environment, Event
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import URGENT


class Engine(Environment):
    """:class:`simpy.Environment` with :meth:`run`'s loop over :meth:`step` inlined."""

    def run(self, until: float | Event | None = None) -> Any:
        """:meth:`simpy.Environment.run`, same contract (``until``: a time, an event or None)."""
        if until is not None:
            if not isinstance(until, Event):
                at = until if isinstance(until, int) else float(until)
                if at <= self._now:
                    raise ValueError(f"until ({at}) must be greater than the current simulation time")
                until = Event(self)
                until._ok = True
                until._value = None
                self.schedule(until, URGENT, at - self._now)
            elif until.callbacks is None:
                return until.value
            until.callbacks.append(StopSimulation.callback)  # type: ignore[union-attr]
        queue = self._queue
        try:
            while queue:
                self._now, _, _, event = heappop(queue)
                callbacks, event.callbacks = event.callbacks, None
                try:
                    for callback in callbacks:
                        callback(event)
                except StopSimulation:
                    event.callbacks = callbacks[callbacks.index(callback) + 1:]
                    self.schedule(event, -1)  # type: ignore[arg-type]  # as step(): before everything at that time
                    raise
                if not event._ok and not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
            raise EmptySchedule
        except StopSimulation as exc:
            return exc.args[0]
        except EmptySchedule:
            if until is not None:
                assert not until.triggered
                raise RuntimeError(
                    f'No scheduled events left but "until" event was not triggered: {until}') from None
        return None


class Fired(Event):
    """An event that is triggered (ok) when made: a Timeout's state without its ``__init__``.

    The hot paths make one with ``new(Fired)`` (``object.__new__``), set its ``callbacks``
    (and ``_value`` when a callback reads it) and push ``(now + delay, NORMAL, next(eid),
    event)`` on the environment's queue: the entry ``Timeout(env, delay)`` would push, for
    about a third less than the Timeout's ``__init__`` and ``env.schedule`` calls.
    """

    _ok = True


new = object.__new__
"""``new(Fired)``: a bare :class:`Fired` (no ``__init__`` run)."""
