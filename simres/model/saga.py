"""Sagas: a client workflow of steps across services, compensated backwards on failure.

Each step is a logical call through its own :class:`~simres.model.driver.CallSite` (one
per client member and step, so retries, breakers and budgets keep state per step). When a
step fails after its retries, the compensations of the steps already done run in reverse
order, each through its own call site. The request's outcome stays in the fixed outcome
vocabulary (ok when every step succeeded, else the failing step's outcome); the saga's own
result is recorded as events (see docs/metrics.md, "Sagas"):

* ``saga_partial`` when the first step succeeded (its effects are now applied),
* ``saga_completed``, ``saga_compensated`` or ``saga_inconsistent`` (a compensation failed)
  when the saga ends, ``detail`` the failing step's name (empty when completed),

each with the client as component and the request id as value.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from simpy import Event

from simres.metrics.recorder import Recorder
from simres.model.driver import INF, CallSite
from simres.outcomes import DEGRADED, OK

SagaSites = list[tuple[str, CallSite, CallSite | None]]
"""One member's steps: (step name, forward call site, compensation call site or None)."""


def run_saga(recorder: Recorder, client: str, steps: SagaSites, req_id: int, priority: str
             ) -> Generator[Event, Any, tuple[str, int]]:
    """Run one saga for request ``req_id``; returns (request outcome, forward tries)."""
    done: list[CallSite | None] = []
    tries = 0
    for name, site, comp in steps:
        outcome, n = yield from site.call(req_id, priority, INF)
        tries += n
        if outcome is OK or outcome is DEGRADED:
            if not done:
                recorder.event(site.env.now, "saga_partial", client, name, float(req_id))
            done.append(comp)
            continue
        if not done:  # nothing applied: nothing to undo
            recorder.event(site.env.now, "saga_compensated", client, name, float(req_id))
            return outcome, tries
        failed = False
        for undo in reversed(done):
            if undo is None:
                continue
            c_outcome, _ = yield from undo.call(req_id, priority, INF)
            if c_outcome is not OK and c_outcome is not DEGRADED:
                failed = True  # logged; the remaining compensations still run
        kind = "saga_inconsistent" if failed else "saga_compensated"
        recorder.event(site.env.now, kind, client, name, float(req_id))
        return outcome, tries
    recorder.event(steps[-1][1].env.now, "saga_completed", client, "", float(req_id))
    return OK, tries
