"""simres: discrete-event simulation of resilience policies under injected failures.

Three lines in a notebook::

    import simres
    result = simres.run("baseline", seed=1)
    result.summary["latency_p99"]

Heavy modules (pandas, matplotlib, dask) load on first use, so ``import simres`` and
``simres --help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SimresError",
    "__version__",
    "load_scenario",
    "run",
]

_LAZY = {
    "RunResult": "simres.run",
    "run": "simres.run",
    "Scenario": "simres.scenario",
    "load_scenario": "simres.scenario",
    "ScenarioError": "simres.errors",
    "SimresError": "simres.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simres' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
