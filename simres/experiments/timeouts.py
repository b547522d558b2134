"""A wall-clock limit per sweep point, so one hung point cannot stall a whole sweep.

:func:`limited` runs a point under a watchdog thread. When the limit passes, the watchdog
raises :class:`PointTimeout` inside the point (an asynchronous exception, delivered at the
next Python bytecode, so a busy SimPy loop or a sampling loop stops), and the point
becomes an error row. If the point is still running ``GRACE`` seconds later (stuck in C
code), and it runs in a worker process (a local process pool or a Dask worker), the
watchdog kills that process; the executor then reports the point as failed and carries on
with a fresh worker. In the caller's own process (``--jobs 1``) nothing is killed.

:func:`default_point_timeout` derives a generous limit from the scenario's size.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from simres.errors import SweepError

T = TypeVar("T")

GRACE = 10.0
"""Seconds a point may keep running after its PointTimeout before its worker is killed."""

IN_WORKER = False
"""Set by the process-pool worker initializer: this process may be killed to stop a point."""


class PointTimeout(SweepError):
    """A sweep point ran past its wall-clock limit (``--point-timeout``) and was stopped."""

    def __init__(self, limit: float | None = None) -> None:
        what = f"its {limit:g} s" if limit else "its"
        super().__init__(f"the point ran longer than {what} wall-clock limit (--point-timeout) and was stopped")


def _in_worker() -> bool:
    if IN_WORKER:
        return True
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            get_worker()
            return True
        except (ValueError, ImportError):
            return False
    return False


def _raise_in(thread_id: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(PointTimeout))


def limited(limit: float | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, stopped with :class:`PointTimeout` after ``limit`` wall seconds (None: no limit)."""
    if not limit:
        return fn(*args, **kwargs)
    done = threading.Event()
    lock = threading.Lock()
    target = threading.get_ident()
    fired = [False]

    def watch() -> None:
        if done.wait(limit):
            return
        waited = 0.0
        while waited < GRACE:
            with lock:
                if done.is_set():
                    return
                fired[0] = True
                _raise_in(target)  # again each second: a broad `except` inside may swallow one
            if done.wait(1.0):
                return
            waited += 1.0
        if _in_worker():
            sys.stderr.write(f"simres: a sweep point ignored its {limit:g} s limit for {GRACE:g} s; "
                             "killing its worker process\n")
            sys.stderr.flush()
            os._exit(70)

    threading.Thread(target=watch, name="simres-point-timeout", daemon=True).start()
    try:
        try:
            result = fn(*args, **kwargs)
        finally:
            with lock:
                done.set()
    except PointTimeout:
        raise PointTimeout(limit) from None
    return result


def default_point_timeout(scenario: Any, *, floor: float = 300.0, cap: float = 6 * 3600.0) -> float:
    """A generous per-point limit: about 20x the scenario's expected run time, within [5 min, 6 h].

    The expected run time is estimated from the arrivals (open loop: rate x count x
    duration; closed loop: users x count x duration / think time), the tries per request and
    the downstream calls per request, at 100 microseconds of wall time per call.
    """
    from simres.scenario.clients import ClosedArrivals, ProfileArrivals

    calls_per_request = 1 + sum(len(s.handler.calls) for s in scenario.services.values())
    requests = 0.0
    for c in scenario.clients.values():
        arrival = c.arrival
        if isinstance(arrival, ClosedArrivals):
            think = max(arrival.think_time.mean, 1e-3)  # a closed loop with no think time: bounded by service
            rate = arrival.users / think
        elif isinstance(arrival, ProfileArrivals):
            rate = arrival.max_rate
        else:
            rate = arrival.rate
        tries = c.retry.max_attempts if c.retry is not None else 1
        requests += rate * c.count * scenario.duration * tries
    estimate = requests * calls_per_request * 1e-4
    return float(min(max(20 * estimate, floor), cap))
