"""How a sweep's parameters become figure axes: zipped parameters as one axis, sampled floats binned.

A sweep frame has one column per swept parameter. Two facts about a design are not in the
columns but can be read off the rows:

- **Zipped parameters** (``zip:`` in a sweep file) vary together: every value of one comes
  with exactly one value of the other. They are one axis of the design, so a figure treats
  them as one parameter (ticks ``1 / 8``, label ``instances / workers``), and naming either
  (``--x workers``) selects the axis.
- **Sampled parameters** (``sample:`` ranges, random or Latin hypercube) take a new float
  value at every point. An axis with more than :data:`MAX_LEVELS` distinct non-integer
  values is *continuous*: a heatmap or a split bins it into quantile ranges, so nobody has to
  type ``--where timeout=0.0609003``.

Axes a figure does not show are not pooled silently: they split the figure into one line
(or one panel) per level, labelled with the level, up to a limit past which the figure asks
for ``where``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simres.reporting.plots._base import (
    PlotError,
    _coerce,
    _resolve_param,
    _short,
    _sorted_values,
    format_number,
    sweep_parameters,
)

MAX_LEVELS = 8
"""A numeric axis with more distinct non-integer values than this is continuous (sampled)."""


@dataclass(frozen=True)
class SweepAxis:
    """One axis of a sweep design: one parameter, or several zipped ones that vary together."""

    params: tuple[str, ...]
    continuous: bool = False

    @property
    def label(self) -> str:
        """Axis label: the short names, ``/``-joined for a zipped axis."""
        return " / ".join(_short(p) for p in self.params)

    @property
    def column(self) -> str:
        """The key column that :func:`add_levels` writes (the first parameter's path for one parameter)."""
        return self.params[0] if len(self.params) == 1 and not self.continuous else f"@{'+'.join(self.params)}"

    @property
    def numeric(self) -> bool:
        """Whether the axis can be drawn on a numeric scale (one numeric, non-binned parameter)."""
        return len(self.params) == 1 and not self.continuous


def _value_text(v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return "null"  # a parameter left unset at this point (a `null` in the sweep), as YAML writes it
    if isinstance(v, (float, np.floating)) and not float(v).is_integer():
        return format_number(float(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return str(v)


def _is_continuous(col: pd.Series) -> bool:
    if not pd.api.types.is_float_dtype(col):
        return False
    values = col.dropna().unique()
    return len(values) > MAX_LEVELS and not all(float(v).is_integer() for v in values)


def _one_to_one(df: pd.DataFrame, p: str, q: str) -> bool:
    pair = df[[p, q]].drop_duplicates()
    return len(pair) == df[p].nunique(dropna=False) == df[q].nunique(dropna=False)


def sweep_axes(results: pd.DataFrame) -> list[SweepAxis]:
    """The varying axes of a sweep frame, in parameter order: zipped parameters grouped, sampled marked."""
    params = [p for p in sweep_parameters(results) if results[p].nunique(dropna=False) > 1]
    continuous = {p for p in params if _is_continuous(results[p])}
    groups: list[list[str]] = []
    for p in params:
        if p not in continuous:
            for g in groups:
                if g[0] not in continuous and _one_to_one(results, g[0], p):
                    g.append(p)
                    break
            else:
                groups.append([p])
        else:
            groups.append([p])
    return [SweepAxis(tuple(g), continuous=g[0] in continuous) for g in groups]


def resolve_axis(results: pd.DataFrame, name: str, what: str) -> SweepAxis:
    """The axis holding parameter ``name`` (dotted path or unambiguous last segment)."""
    col = _resolve_param(results, name, what)
    for axis in sweep_axes(results):
        if col in axis.params:
            return axis
    return SweepAxis((col,))  # swept but constant in these rows: a one-level axis


def _bins(col: pd.Series, nbins: int) -> tuple[pd.Series, list[str]]:
    """Quantile bins of a continuous column: an integer code per row and a ``lo–hi`` label per bin."""
    values = col.to_numpy(dtype=float)
    edges = np.unique(np.quantile(values[np.isfinite(values)], np.linspace(0, 1, nbins + 1)))
    if edges.size < 2:
        return pd.Series(0, index=col.index), [format_number(float(edges[0]))]
    codes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)
    labels = [f"{format_number(float(a))}–{format_number(float(b))}" for a, b in itertools.pairwise(edges)]
    return pd.Series(codes, index=col.index), labels


def add_levels(df: pd.DataFrame, axis: SweepAxis, *, nbins: int) -> tuple[pd.DataFrame, list[Any], list[str]]:
    """``df`` with the axis's key column, the sorted keys and their tick labels.

    One ordinary parameter keeps its own column and values. A zipped axis gets one key per
    combination (sorted by the first parameter), labelled ``1 / 8``. A continuous axis gets
    ``nbins`` quantile bins, labelled by their ranges.
    """
    if axis.numeric:
        keys = _sorted_values(df[axis.params[0]])
        return df, keys, [_value_text(k) for k in keys]
    out = df.copy()
    if axis.continuous:
        codes, labels = _bins(out[axis.params[0]], nbins)
        out[axis.column] = codes
        present = sorted(set(codes.tolist()))
        return out, present, [labels[c] for c in present]
    combos = out[list(axis.params)].drop_duplicates()
    order = sorted(combos.itertuples(index=False, name=None), key=lambda t: tuple(_sort_key(v) for v in t))
    index = {t: i for i, t in enumerate(order)}
    out[axis.column] = [index[t] for t in out[list(axis.params)].itertuples(index=False, name=None)]
    return out, list(range(len(order))), [" / ".join(_value_text(v) for v in t) for t in order]


def _sort_key(v: Any) -> tuple[int, Any]:
    if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and not (isinstance(v, float) and
                                                                                   math.isnan(v)):
        return (0, float(v))
    return (1, str(v))


def split_levels(df: pd.DataFrame, axes: Sequence[SweepAxis], *, nbins: int = 3
                 ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """``df`` with a ``_split`` column: one label per combination of the ``axes`` (binned when continuous).

    Returns the frame, the labels in sorted order, and the key columns used. A frame with no
    such axes gets the empty label everywhere.
    """
    out = df.copy()
    if not axes:
        out["_split"] = ""
        return out, [""], []
    parts: list[pd.Series] = []
    orders: list[list[str]] = []
    for axis in axes:
        out, keys, labels = add_levels(out, axis, nbins=nbins)
        text = {k: f"{axis.label}={lab}" for k, lab in zip(keys, labels)}
        parts.append(out[axis.column].map(text))
        orders.append([text[k] for k in keys])
    label = parts[0]
    for p in parts[1:]:
        label = label + ", " + p
    out["_split"] = label.to_numpy()
    seen = set(out["_split"])
    import itertools

    ordered = [", ".join(c) for c in itertools.product(*orders) if ", ".join(c) in seen]
    return out, ordered, [a.column for a in axes]


def apply_where(results: pd.DataFrame, where: Mapping[str, Any] | None) -> pd.DataFrame:
    """Rows matching every ``where`` item; a float matches at the 3 significant digits figures print.

    So ``--where timeout=0.0609`` selects the point shown as ``0.0609`` (sampled as
    0.0609003). No match is one line listing the values.
    """
    df = results
    for key, value in (where or {}).items():
        col = _resolve_param(df, key, "where")
        want = _coerce(value, df[col])
        mask = df[col] == want
        if not mask.any() and isinstance(want, (int, float)) and not isinstance(want, bool) \
                and pd.api.types.is_numeric_dtype(df[col]):
            vals = df[col].to_numpy(dtype=float)
            mask = pd.Series(np.isclose(vals, float(want), rtol=5e-3, atol=0.0), index=df.index)
            if mask.any():  # the nearest value only, if two are within the tolerance
                nearest = vals[mask.to_numpy()][np.argmin(np.abs(vals[mask.to_numpy()] - float(want)))]
                mask = pd.Series(vals == nearest, index=df.index)
        df = df.loc[mask]
        if df.empty:
            known = ", ".join(_value_text(v) for v in _sorted_values(results[col]))
            raise PlotError(f"where: {col}={value!r} matches no row; values: {known}")
    return df


def others(df: pd.DataFrame, shown: Sequence[SweepAxis]) -> list[SweepAxis]:
    """The varying axes of ``df`` that are not among ``shown`` (by parameter)."""
    taken = {p for a in shown for p in a.params}
    return [a for a in sweep_axes(df) if not set(a.params) & taken]


def too_many(what: str, count: int, limit: int, rest: Sequence[SweepAxis], df: pd.DataFrame) -> PlotError:
    """The error of a figure that would need more lines or panels than it can show."""
    listing = "; ".join(f"{a.label}: " + ", ".join(_value_text(v) for v in _sorted_values(df[a.params[0]])[:6])
                        + (", ..." if df[a.params[0]].nunique() > 6 else "") for a in rest)
    return PlotError(f"{what}: {count} combinations of the other swept parameters (more than {limit}); "
                     f"fix some with where={{...}} (CLI: --where KEY=VALUE): {listing}")
