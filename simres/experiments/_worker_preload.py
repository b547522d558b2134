"""Imported once by the ``forkserver`` process of :class:`~simres.experiments.executors.ProcessExecutor`.

Every worker of a local process pool is forked from that server, so whatever the server
has imported and warmed up, a worker gets for free: starting a worker costs a fork (~10
ms) instead of a fresh interpreter importing numpy, pandas, pydantic, SimPy and simres
(~0.7-1.5 s each). Importing this module imports the modules a point needs and runs one
tiny simulation, so the lazy imports and first-call costs inside a run (SimPy, the model,
the summary, pydantic's validators) are paid once in the server, not in every worker's
first point.

Nothing here changes a result: a run's random streams derive from its seed and the
identity of what draws (:mod:`simres.rng`), never from global state. matplotlib is not
imported (the plotting layer is never needed by a point), which ``tests`` check.

Do not import this module elsewhere: its import runs a simulation.
"""

from __future__ import annotations

import contextlib

import simres.experiments.replications
import simres.experiments.runs
import simres.experiments.sweeping
import simres.experiments.timeouts
import simres.metrics.summary
import simres.model.world

WARM_UP = {
    "name": "forkserver-warm-up", "duration": 0.5, "warmup": 0.1, "drain": 0.1,
    "services": {"api": {"workers": 2, "service_time": {"kind": "exponential", "mean": 0.005}}},
    "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 100}, "timeout": 1.0,
                        "retry": {"max_attempts": 2}}},
}
"""A tiny scenario (about 50 requests) whose one run exercises the code path of a point."""


def warm_up() -> None:
    """Run :data:`WARM_UP` once; never raises (a failure here must not stop the server)."""
    with contextlib.suppress(Exception):  # the workers then just start colder
        simres.experiments.replications.run_point(WARM_UP, seed=0)


warm_up()
