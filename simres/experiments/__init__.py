"""Experiments: one run, replications and comparisons, sweeps with their store, choosing a setting, validation.

Owns everything that runs the model more than trivially and turns runs into tables:
:mod:`.runs` (scenario -> world -> :class:`~simres.experiments.runs.RunResult`),
:mod:`.replications` (replications with common random numbers, paired comparisons),
:mod:`.design` (sweep axes and the plan of points), :mod:`.sweeping` (running a plan on an
executor), :mod:`.store` (Parquet parts, manifest, resume, loading), :mod:`.executors`
(serial, processes, Dask), :mod:`.choosing` (``best``) and :mod:`.validation` (the engine
against queueing theory). May import the foundations, :mod:`simres.policies`,
:mod:`simres.metrics`, :mod:`simres.scenario` and :mod:`simres.model`; never
:mod:`simres.reporting`, :mod:`simres.realtime` or :mod:`simres.cli`.

Nothing is imported here, so ``import simres.experiments.X`` loads only what X needs.
"""
