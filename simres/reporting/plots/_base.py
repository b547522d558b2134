"""Shared plumbing of the figures: variant styles, saving, input checks, metric names and units."""

from __future__ import annotations

import difflib
import functools
import io
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from simres.errors import SimresError

OKABE_ITO: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                              "#000000", "#F0E442")
"""Okabe-Ito colours, ordered so the first few stay distinct on white and in grey."""
LINESTYLES: tuple[Any, ...] = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)),
                               (0, (8, 2, 2, 2)))
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
HATCHES: tuple[str, ...] = ("", "//", "\\\\", "xx", "..", "++", "--", "oo")

RC: dict[str, Any] = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.grid": True, "grid.color": "0.88",
    "grid.linewidth": 0.6, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.6, "hatch.linewidth": 0.8, "svg.hashsalt": "simres",
}
"""Matplotlib settings used while a figure is built (and, for the SVG hash salt, saved)."""

ID_COLUMNS = frozenset({"scenario", "variant", "replicate", "seed", "wall_time", "run_id", "error"})
"""Columns of a replications or sweep frame that identify a run rather than measure it."""

FAULT_SHADE = "0.86"

F = TypeVar("F", bound=Callable[..., Figure])


class PlotError(SimresError, ValueError):
    """A plot was asked for with data or arguments it cannot use (names the argument)."""


@dataclass(frozen=True)
class VariantStyle:
    """How one variant is drawn: colour, line style, marker and bar hatch."""

    color: str
    linestyle: Any
    marker: str
    hatch: str

    def line(self) -> dict[str, Any]:
        """Keyword arguments for ``Axes.plot`` (a line without markers)."""
        return {"color": self.color, "linestyle": self.linestyle}


class Palette:
    """A fixed style per variant, in the given order, the same in every figure it is passed to.

    More than eight variants reuse colours, but with another line style and marker.
    """

    def __init__(self, variants: Iterable[str]):
        names = [str(v) for v in variants]
        if len(set(names)) != len(names):
            raise PlotError(f"palette: variant names must be unique, got {names}")
        k = len(OKABE_ITO)
        self._styles = {v: VariantStyle(OKABE_ITO[i % k], LINESTYLES[(i + i // k) % k],
                                        MARKERS[(i + i // k) % k], HATCHES[(i + i // k) % k])
                        for i, v in enumerate(names)}

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants in their order."""
        return tuple(self._styles)

    def __getitem__(self, variant: str) -> VariantStyle:
        try:
            return self._styles[variant]
        except KeyError:
            raise PlotError(f"palette: no style for variant {variant!r}; the palette has: "
                            f"{', '.join(map(repr, self._styles)) or 'none'}") from None

    def __contains__(self, variant: object) -> bool:
        return variant in self._styles

    def __len__(self) -> int:
        return len(self._styles)

    def __repr__(self) -> str:
        return f"Palette({list(self._styles)!r})"


def variant_label(variant: str) -> str:
    """The legend label of a variant (the scenario as written has the empty name)."""
    return variant if variant else "(as written)"


def _palette(palette: Palette | None, variants: Sequence[str]) -> Palette:
    if palette is None:
        return Palette(variants)
    for v in variants:
        palette[v]  # raises PlotError naming the missing variant
    return palette


def _styled(fn: F) -> F:
    """Build the figure under :data:`RC` so every figure looks the same whatever the user's rc."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` wrapped to lines that fit ``width_in`` inches at ``fontsize`` points (about 0.55 em a character)."""
    import textwrap

    chars = max(20, int(width_in * 72 / (fontsize * 0.55)))
    return "\n".join(w for line in text.split("\n") for w in (textwrap.wrap(line, chars) or [""]))


def set_title(ax: Axes, text: str, *, fontsize: float | None = None) -> None:
    """An axes title wrapped to the axes' width, so a long title is never cut at the figure's edge."""
    size = fontsize or float(matplotlib.rcParams["axes.titlesize"]
                             if not isinstance(matplotlib.rcParams["axes.titlesize"], str) else 10)
    fig = ax.get_figure()
    width = fig.get_figwidth() * ax.get_position().width if fig is not None else 6.0
    ax.set_title(_wrap(text, max(width, 2.0), size), fontsize=size)


def set_suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width."""
    fig.suptitle(_wrap(text, fig.get_figwidth() * 0.95, 11.0))


def _log_if_wide(ax: Axes, axis: str, values: Iterable[float], *, ratio: float = 20.0) -> None:
    """Log scale when the positive finite ``values`` span more than ``ratio``; linear otherwise."""
    import numpy as np

    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and v.max() / v.min() > ratio:
        _log(ax, axis)


def _log(ax: Axes, axis: str) -> None:
    """Log scale with plain tick labels (``100``, ``0.01``) instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())

_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}


def figure_bytes(fig: Figure, fmt: str = "png", *, dpi: int = 100) -> bytes:
    """The figure encoded as ``png``, ``svg`` or ``pdf``, without dates or software versions."""
    if fmt not in _METADATA:
        raise PlotError(f"format: expected one of png, svg, pdf, got {fmt!r}")
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "simres", "svg.fonttype": "path"}):
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
    return buf.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Write the figure to ``path`` (``.png``, ``.svg`` or ``.pdf``); same figure -> same bytes."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in _METADATA:
        raise PlotError(f"{p}: output must end in .png, .svg or .pdf, got {p.suffix or 'no suffix'!r}")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(figure_bytes(fig, fmt, dpi=dpi))
    return p


def _by_variant(frames: Mapping[str, pd.DataFrame] | pd.DataFrame, what: str) -> dict[str, pd.DataFrame]:
    """``{variant: frame}`` from a mapping or a frame with a ``variant`` column (first-seen order)."""
    if isinstance(frames, pd.DataFrame):
        if "variant" not in frames.columns:
            return {"": frames}
        keys = frames["variant"].astype(object).where(frames["variant"].notna(), "").astype(str)
        return {v: frames.loc[keys == v] for v in dict.fromkeys(keys)}
    if isinstance(frames, Mapping):
        out = {str(k): v for k, v in frames.items()}
        for k, v in out.items():
            if not isinstance(v, pd.DataFrame):
                raise PlotError(f"{what}[{k!r}]: expected a DataFrame, got {type(v).__name__}")
        return out
    raise PlotError(f"{what}: expected a DataFrame or a mapping of variant -> DataFrame, "
                    f"got {type(frames).__name__}")


def _need_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PlotError(f"{what}: missing column(s) {', '.join(missing)}")


def _variants_of(df: pd.DataFrame) -> pd.Series:
    if "variant" not in df.columns:
        return pd.Series("", index=df.index)
    return df["variant"].astype(object).where(df["variant"].notna(), "").astype(str)


def _clean_results(results: pd.DataFrame, what: str = "results") -> pd.DataFrame:
    """Rows that ran (no ``error``), with a string ``variant`` column."""
    if not isinstance(results, pd.DataFrame):
        raise PlotError(f"{what}: expected a DataFrame, got {type(results).__name__}")
    df = results
    if "error" in df.columns:
        err = df["error"]
        df = df.loc[err.isna() | (err.astype(str) == "")]
    df = df.copy()
    df["variant"] = _variants_of(df)
    if df.empty:
        raise PlotError(f"{what}: no rows without an error")
    return df


def _check_metric(df: pd.DataFrame, metric: str, what: str = "metric") -> None:
    if metric in df.columns and pd.api.types.is_numeric_dtype(df[metric]):
        return
    options = [c for c in df.columns if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(df[c])
               and "." not in str(c)]
    hint = difflib.get_close_matches(metric, options, n=1)
    tail = f" (did you mean '{hint[0]}'?)" if hint else ""
    shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    raise PlotError(f"{what}: unknown metric '{metric}'{tail}; expected one of: {shown}")


def sweep_parameters(results: pd.DataFrame) -> list[str]:
    """The swept parameter columns of a results frame.

    ``results.attrs["sweep"]["params"]`` (as :func:`simres.experiments.store.load_results` sets it) or
    ``results.attrs["parameters"]`` when recorded; otherwise the columns named
    by a dotted path (``clients.web.retry.max_attempts``): metric names never contain a dot
    before their ``:`` qualifier.
    """
    attrs = getattr(results, "attrs", {}) or {}
    declared = attrs.get("parameters") or (attrs.get("sweep") or {}).get("params")
    if declared:
        return [str(p) for p in declared if p in results.columns]
    return [str(c) for c in results.columns
            if "." in str(c) and ":" not in str(c) and str(c) not in ID_COLUMNS]


def _resolve_param(results: pd.DataFrame, name: str, what: str) -> str:
    """A parameter column by full dotted path or by an unambiguous last segment."""
    params = sweep_parameters(results)
    if name in params:
        return name
    matches = [p for p in params if p.rsplit(".", 1)[-1] == name or p.endswith("." + name)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise PlotError(f"{what}: '{name}' is ambiguous, matches: {', '.join(matches)}")
    short = {p.rsplit(".", 1)[-1]: p for p in params}
    hint = (difflib.get_close_matches(name, params, n=1)
            or [short[h] for h in difflib.get_close_matches(name, short, n=1)])
    tail = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise PlotError(f"{what}: unknown swept parameter '{name}'{tail}; swept: {', '.join(params) or 'none'}")


def _select(results: pd.DataFrame, where: Mapping[str, Any] | None, keep: Sequence[str],
            what: str) -> pd.DataFrame:
    """Apply ``where`` filters and check no other swept parameter varies besides ``keep``."""
    df = results
    for key, value in (where or {}).items():
        col = _resolve_param(df, key, "where")
        df = df.loc[df[col] == _coerce(value, df[col])]
        if df.empty:
            known = ", ".join(map(str, _sorted_values(results[col])))
            raise PlotError(f"where: {col}={value!r} matches no row; values: {known}")
    varying = [p for p in sweep_parameters(df) if p not in keep and df[p].nunique(dropna=False) > 1]
    if varying:
        raise PlotError(f"{what}: other swept parameters vary ({', '.join(varying)}); "
                        "fix them with where={...} (CLI: --where KEY=VALUE)")
    return df


def _coerce(value: Any, column: pd.Series) -> Any:
    """``value`` (a CLI string, say) converted to the type of ``column`` when possible."""
    if isinstance(value, str):
        if pd.api.types.is_bool_dtype(column):
            return value.strip().lower() in ("1", "true", "yes", "on")
        if pd.api.types.is_numeric_dtype(column):
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _sorted_values(column: pd.Series) -> list[Any]:
    values = column.dropna().unique().tolist()
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _short(param: str) -> str:
    return param.rsplit(".", 1)[-1]

_NAMES = {
    "latency_p50": "p50 latency", "latency_p90": "p90 latency", "latency_p99": "p99 latency",
    "latency_p999": "p99.9 latency", "latency_mean": "mean latency", "latency_max": "max latency",
    "latency_all_p99": "p99 latency of all finished requests", "success_rate": "success rate",
    "latency_all_p50": "p50 latency of all finished requests",
    "latency_all_p999": "p99.9 latency of all finished requests",
    "tries_per_request": "tries per request", "work_per_success": "work per success",
    "error_rate": "error rate", "timeout_rate": "timeout rate", "slo_attainment": "SLO attainment",
}
_PER_SECOND = ("goodput", "throughput", "tries_per_s")
DURATIONS = ("latency", "read_staleness", "replication_lag")
"""Prefixes of base names measured in seconds (drawn in ms, written as ``144 ms`` or ``2.5 s``)."""
_SHARES = ("slo_attainment", "recovered", "breaker_open_share", "utilization", "herd_synchrony")


def metric_name(metric: str) -> str:
    """A readable name of a summary metric (``latency_p99`` -> ``p99 latency``); unknown names pass through."""
    return _NAMES.get(metric, metric)


def is_share(metric: str) -> bool:
    """Whether a metric is a share in [0, 1] (shown in %)."""
    base = metric.split(":", 1)[0]
    return base.endswith("_rate") or base in _SHARES


def metric_scale(metric: str) -> tuple[float, str]:
    """Display factor and axis label of a metric: latencies in ms, shares in %, rates per second."""
    base = metric.split(":", 1)[0]
    name = metric_name(metric)
    if base.startswith(DURATIONS):
        return 1000.0, f"{name} (ms)"
    if is_share(metric):
        return 100.0, f"{name} (%)"
    if base in _PER_SECOND:
        return 1.0, f"{name} (per s)"
    return 1.0, name


def format_number(x: float) -> str:
    """Three significant digits (whole numbers from 1000 up), ``-`` for NaN or infinity."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"
