"""Thin result classes for notebooks: a comparison and a sweep that show themselves and ``.plot(kind)``.

:func:`simres.compare` returns a :class:`Comparison`; ``simres.SweepResult(simres.sweep(...))``
wraps a sweep (``simres.sweep`` itself returns the plain frame, which existing code compares
strictly with ``assert_frame_equal``). Both **are** pandas DataFrames (the same tidy frames as before, so
code that filters, pivots or writes them is unchanged; a slice or a copy is a plain
DataFrame), with two additions for Jupyter:

- ``_repr_html_``: a compact table (a comparison: metrics x variants, mean ± interval
  with units, the best in bold; a sweep: one row per configuration with its headline
  means) instead of hundreds of raw rows;
- ``.plot(kind, **options)``: the figure of that kind, so the three-line notebook flow
  (``import simres``; ``cmp = simres.compare(...)``; ``cmp.plot("percentiles")``) needs
  no import of the plots module. Any other ``kind`` (``"bar"``, ``"line"``) and the
  accessor form (``.plot.bar()``) are pandas' own plotting, as before.

The layer rule forbids experiments to import reporting, where the figures live, so the
figures are looked up in :data:`PLOTTERS`, a registry that :mod:`simres.reporting.plotters`
fills when it is imported; ``import simres`` imports it whenever it hands out one of these
results (``simres.compare``, ``simres.sweep``, ``simres.run``). :class:`RunResult
<simres.experiments.runs.RunResult>` has the same ``.plot``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pandas as pd

from simres.errors import SimresError

Plotter = Callable[..., Any]

PLOTTERS: dict[str, dict[str, Plotter]] = {"run": {}, "comparison": {}, "sweep": {}}
"""Result type -> kind -> ``fn(result, **options) -> matplotlib Figure``; filled by :mod:`simres.reporting.plotters`."""


def register_plotter(target: str, kind: str, fn: Plotter) -> None:
    """Make ``result.plot(kind)`` of a ``target`` result (``run``, ``comparison``, ``sweep``) call ``fn``."""
    if target not in PLOTTERS:
        raise ValueError(f"target: expected one of {', '.join(PLOTTERS)}, got {target!r}")
    PLOTTERS[target][kind] = fn


def draw(target: str, result: Any, kind: str | None, **options: Any) -> Any:
    """The figure ``kind`` of ``result``: what every ``.plot(kind)`` calls."""
    kinds = PLOTTERS[target]
    if not kinds:
        import simres

        simres.register_figures()
    if not kinds:
        raise SimresError("plot: no figures are registered; `import simres` (or simres.reporting.plotters) "
                          "first, which registers them")
    if kind is None:
        kind = next(iter(kinds))
    if kind not in kinds:
        raise SimresError(f"plot: kind: expected one of {', '.join(kinds)}, got {kind!r}")
    return kinds[kind](result, **options)


class _Plot:
    """``result.plot``: ``result.plot(kind, ...)`` draws a simres figure; anything else is pandas' plotting."""

    def __init__(self, target: str, frame: pd.DataFrame) -> None:
        self._target = target
        self._frame = frame

    def _pandas(self) -> Any:
        return pd.plotting.PlotAccessor(pd.DataFrame(self._frame))

    def __call__(self, kind: str | None = None, *args: Any, **options: Any) -> Any:
        if (kind is None and not args and not options) or kind in PLOTTERS[self._target]:
            return draw(self._target, self._frame, kind, **options)
        return self._pandas()(*args, kind=kind or "line", **options)

    def __getattr__(self, name: str) -> Any:  # .plot.bar(), .plot.scatter(...): pandas, as on any frame
        return getattr(self._pandas(), name)

    def __dir__(self) -> list[str]:
        return sorted(PLOTTERS[self._target])

    def __repr__(self) -> str:
        return f"<plot: {', '.join(PLOTTERS[self._target]) or 'none registered'}; call .plot(kind, ...)>"


class _Result(pd.DataFrame):
    """A DataFrame with a compact notebook view and simres figures; its slices and copies are plain frames."""

    _target = ""

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    @property
    def plot(self) -> _Plot:  # type: ignore[override]
        """``.plot(kind, **options)``: a simres figure (see :func:`kinds`); other kinds are pandas' plotting."""
        return _Plot(self._target, self)

    @classmethod
    def kinds(cls) -> list[str]:
        """The figure kinds ``.plot`` draws for this result."""
        return list(PLOTTERS[cls._target])


def _cell(metric: str, mean: float, halfwidth: float, lo: float = math.nan, hi: float = math.nan) -> str:
    from simres.metrics.display import format_interval

    return format_interval(metric, mean, halfwidth, lo=lo, hi=hi)


_TD = "style='text-align:right;padding:0 0.6em'"

HEADLINE = ("success_rate", "goodput", "latency_p99", "latency_all_p99", "tries_per_request", "work_per_success")


class Comparison(_Result):
    """What :func:`simres.compare` returns: the tidy comparison frame (one row per metric and variant).

    ``.replications`` is the frame of runs it was computed from (one row per variant and
    replicate), which the figures need; ``.plot("percentiles")`` draws latency
    percentiles per variant with intervals.
    """

    _metadata: ClassVar[list[str]] = ["replications", "controls"]
    _target = "comparison"

    def __init__(self, data: Any = None, *args: Any, replications: pd.DataFrame | None = None,
                 controls: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(data, *args, **kwargs)
        self.replications = replications
        self.controls = list(controls)

    def _repr_html_(self) -> str:  # type: ignore[override]
        """Metrics x variants, mean ± interval with units; the best in bold, ``~`` not significantly worse."""
        if not {"metric", "variant", "mean"} <= set(self.columns):
            return pd.DataFrame(self)._repr_html_() or ""
        reps = self.replications
        order = (list(dict.fromkeys(reps["variant"].fillna("").astype(str)))
                 if isinstance(reps, pd.DataFrame) and "variant" in reps.columns else [])
        variants = [v for v in order if v in set(self["variant"])] or list(dict.fromkeys(self["variant"]))
        metrics = list(dict.fromkeys(self["metric"]))
        shown = [m for m in HEADLINE if m in metrics]
        shown += [m for m in metrics if m.startswith(("recovered:", "utilization:")) and m not in shown]
        shown = shown[:14] or metrics[:14]
        cells: dict[tuple[str, str], str] = {}
        for row in self.itertuples(index=False):
            if row.metric not in shown:
                continue
            text = html.escape(_cell(row.metric, row.mean, getattr(row, "halfwidth", math.nan),
                                     getattr(row, "lo", math.nan), getattr(row, "hi", math.nan)))
            if getattr(row, "best", False):
                text = f"<b>{text}</b>"
            elif getattr(row, "significant", True) is False and not math.isnan(getattr(row, "p_value", math.nan)):
                text += " ~"
            cells[(row.metric, row.variant)] = text
        head = "".join(f"<th {_TD}>{html.escape(v or '(as written)')}</th>" for v in variants)
        body = "".join(
            f"<tr><th style='text-align:left;padding-right:0.6em'>{html.escape(m)}</th>"
            + "".join(f"<td {_TD}>{cells.get((m, v), '-')}</td>" for v in variants) + "</tr>"
            for m in shown)
        if order:
            n = int(reps.groupby(reps["variant"].fillna("").astype(str)).size().min())
        else:
            n = int(self["n"].max()) if "n" in self.columns and len(self) else 0
        kinds = ", ".join(repr(k) for k in self.kinds()) or "none registered"
        controls = [c for c in self.controls if c in variants]
        also = f" ({', '.join(controls)}: control, never best)" if controls else ""
        return (f"<div><b>comparison of {len(variants)} variant(s), {n} replication(s) each</b>{html.escape(also)}"
                f"<table><tr><th></th>{head}</tr>{body}</table>"
                f"<small>mean ± 95 % interval (a share of runs: its Wilson interval); <b>bold</b> the best, "
                "~ not significantly different from it "
                f"(paired t-test). {len(shown)} of {len(metrics)} metrics shown: the frame has them all "
                f"(pd.DataFrame(cmp)); .replications the runs; .plot(kind) draws {kinds}</small></div>")


def _params(frame: pd.DataFrame) -> list[str]:
    meta = frame.attrs.get("sweep") or {}
    dtypes = meta.get("dtypes") if isinstance(meta, dict) else None
    if dtypes:
        return [p for p in dtypes if p in frame.columns]
    return [c for c in frame.columns if "." in c and ":" not in c]


class SweepResult(_Result):
    """What :func:`simres.sweep` returns: the tidy sweep frame (one row per point), ``attrs["sweep"]`` its design.

    ``.plot("heatmap", x=..., y=..., metric=...)``, ``.plot("amplification", x=...)``,
    ``.plot("pareto")`` and ``.plot("percentiles")`` draw the sweep figures.
    """

    _target = "sweep"

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(data, *args, **kwargs)
        if isinstance(data, pd.DataFrame):
            self.attrs = dict(data.attrs)  # the sweep's design, for the swept parameters

    @property
    def parameters(self) -> list[str]:
        """The swept parameters (dotted paths), as columns of the frame."""
        return _params(self)

    def configurations(self, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per configuration (swept values and variant): replications, errors and headline means."""
        keys = [*self.parameters, "variant"]
        keys = [k for k in keys if k in self.columns]
        if metrics is None:
            metrics = [m for m in HEADLINE[:5] if m in self.columns]
            metrics += [c for c in self.columns if c.startswith("recovered:")][:2]
        frame = pd.DataFrame(self)
        grouped = frame.groupby(keys, sort=False, dropna=False) if keys else frame.groupby(lambda _: 0)
        out = grouped[list(metrics)].mean()
        out.insert(0, "reps", grouped.size())
        if "error" in frame.columns:
            out.insert(1, "errors", grouped["error"].apply(lambda s: int(s.notna().sum())))
        return out.reset_index() if keys else out

    def _repr_html_(self) -> str:  # type: ignore[override]
        """One row per configuration with its headline means in units (at most 30 rows)."""
        params = self.parameters
        if "variant" not in self.columns:
            return pd.DataFrame(self)._repr_html_() or ""
        table = self.configurations()
        metrics = [c for c in table.columns if c not in (*params, "variant", "reps", "errors")]
        if "variant" in table.columns and (table["variant"].fillna("") == "").all():
            table = table.drop(columns="variant")
        cols = list(table.columns)
        head = "".join(f"<th {_TD}>{html.escape(c.rsplit('.', 1)[-1])}</th>" for c in cols)
        rows = []
        for rec in table.head(30).itertuples(index=False):
            tds = []
            for c, v in zip(cols, rec):
                text = _cell(c, float(v), math.nan) if c in metrics else str(v)
                tds.append(f"<td {_TD}>{html.escape(text)}</td>")
            rows.append(f"<tr>{''.join(tds)}</tr>")
        more = f"; {len(table) - 30} more rows" if len(table) > 30 else ""
        kinds = ", ".join(repr(k) for k in self.kinds()) or "none registered"
        return (f"<div><b>sweep: {len(table)} configuration(s), {len(self)} run(s)</b>"
                f"<table><tr>{head}</tr>{''.join(rows)}</table>"
                f"<small>means over replications{more}. The frame has one row per run "
                f"(pd.DataFrame(result)); .configurations() this table; .plot(kind) draws {kinds}</small></div>")
