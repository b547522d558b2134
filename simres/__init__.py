"""simres: discrete-event simulation of resilience policies under injected failures.

Three lines in a notebook::

    import simres
    cmp = simres.compare("retry-storm-metastable", reps=5)   # shows as a compact table
    cmp.plot("percentiles")                                  # no import of the plots module

``simres.run`` (a :class:`RunResult`) and ``simres.compare`` (a ``Comparison``) return
results, and ``simres.SweepResult(simres.sweep(...))`` wraps a sweep, each with a
``.plot(kind)`` method; the
figures live in :mod:`simres.reporting`, and handing out one of these results registers
them (:mod:`simres.reporting.plotters`).

Heavy modules (pandas, matplotlib, dask) load on first use, so ``import simres`` and
``simres --help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "Resilient",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SimresError",
    "SweepResult",
    "__version__",
    "best",
    "build_report",
    "compare",
    "load_results",
    "load_scenario",
    "read_stream",
    "replicate",
    "run",
    "sweep",
]

# Functions live in modules with other names (experiments/runs.py, experiments/sweeping.py), and
# below the top level, so that importing a submodule can never shadow the function on the package.
_LAZY = {
    "RunResult": "simres.experiments.runs",
    "run": "simres.experiments.runs",
    "Scenario": "simres.scenario.schema",
    "load_scenario": "simres.scenario.loading",
    "ScenarioError": "simres.errors",
    "SimresError": "simres.errors",
    "compare": "simres.experiments.replications",
    "replicate": "simres.experiments.replications",
    "sweep": "simres.experiments.sweeping",
    "load_results": "simres.experiments.store",
    "read_stream": "simres.experiments.spill",
    "best": "simres.experiments.choosing",
    "build_report": "simres.reporting.report",
    "Resilient": "simres.realtime.resilient",
    "Comparison": "simres.experiments.results",
    "SweepResult": "simres.experiments.results",
}

_WITH_FIGURES = {"run", "RunResult", "compare", "sweep", "Comparison", "SweepResult"}
"""Names whose results have ``.plot(kind)``: handing one out registers the figures (cheap: plots load on use)."""


def register_figures() -> None:
    """Fill the ``.plot(kind)`` registry (:mod:`simres.reporting.plotters`; plots load on use).

    Called when a name with figures is handed out, and by ``.plot`` itself, so a result
    made through a submodule (``simres.experiments.runs.run``) can plot as well.
    """
    import_module("simres.reporting.plotters")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simres' has no attribute {name!r}")
    if name in _WITH_FIGURES:
        register_figures()
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
