"""The figures behind ``.plot(kind)`` of a run, a comparison and a sweep (:mod:`simres.experiments.results`).

The experiments layer may not import reporting, so its results look their figures up in a
registry; importing this module fills it. ``import simres`` does so whenever it hands out
a result (``simres.run``, ``simres.compare``, ``simres.sweep``). The functions here only
adapt a result to the plot functions of :mod:`simres.reporting.plots`, imported when a
figure is drawn (matplotlib is heavy), so importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

from simres.experiments.results import register_plotter


def _label(run: Any) -> str:
    return run.variant or run.scenario.name


def _run_timeline(run: Any, **options: Any) -> Any:
    from simres.reporting import plots

    options.setdefault("title", _label(run))
    options.setdefault("warmup", run.warmup)
    return plots.timeline(requests=run.requests, timeline=run.timeline, events=run.events, **options)


def _run_cdf(run: Any, **options: Any) -> Any:
    from simres.reporting import plots

    return plots.latency_cdf({_label(run): run.requests}, **options)


def _run_ccdf(run: Any, **options: Any) -> Any:
    from simres.reporting import plots

    return plots.latency_ccdf({_label(run): run.requests}, **options)


def _run_herd(run: Any, **options: Any) -> Any:
    from simres.reporting import plots

    return plots.herd({_label(run): run.attempts}, events=run.events, **options)


def _replications(cmp: Any) -> Any:
    from simres.reporting.plots import PlotError

    reps = getattr(cmp, "replications", None)
    if reps is None:
        raise PlotError("plot: this comparison has no replications (it was sliced or copied); plot the "
                        "frame simres.compare returned")
    return reps


def _cmp_percentiles(cmp: Any, **options: Any) -> Any:
    from simres.reporting import plots

    reps = _replications(cmp)
    options.setdefault("palette", plots.Palette(list(dict.fromkeys(reps["variant"].fillna("").astype(str)))))
    return plots.percentile_bars(reps, **options)


def _sweep_heatmap(df: Any, **options: Any) -> Any:
    from simres.reporting import plots

    return plots.heatmap(df, **options)


def _sweep_amplification(df: Any, **options: Any) -> Any:
    from simres.reporting import plots

    return plots.amplification(df, **options)


def _sweep_pareto(df: Any, **options: Any) -> Any:
    from simres.reporting import plots

    return plots.pareto(df, **options)


def _sweep_percentiles(df: Any, **options: Any) -> Any:
    from simres.reporting import plots

    return plots.percentile_bars(df, **options)


for _kind, _fn in (("timeline", _run_timeline), ("cdf", _run_cdf), ("ccdf", _run_ccdf), ("herd", _run_herd)):
    register_plotter("run", _kind, _fn)
register_plotter("comparison", "percentiles", _cmp_percentiles)
for _kind, _fn in (("heatmap", _sweep_heatmap), ("amplification", _sweep_amplification),
                   ("pareto", _sweep_pareto), ("percentiles", _sweep_percentiles)):
    register_plotter("sweep", _kind, _fn)
