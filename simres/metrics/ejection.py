"""Outlier ejection from the events frame: each ejection's span, and the ejected hosts over time.

Call sites with ``outlier_detection`` record ``ejected`` and ``unejected`` events (component
the call site, ``caller->service#member``; detail ``<instance>: <reason>``; value the
instance index). Linkerd's ``probe_failed`` keeps an instance out, and ``probation`` lets
one request through without bringing it back, so neither starts or ends a span.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPAN_COLUMNS = ("component", "instance", "start", "end", "duration", "reason")


def ejection_spans(events: pd.DataFrame, *, t_end: float | None = None) -> pd.DataFrame:
    """One row per ejection: ``component`` (call site), ``instance`` (index), ``start``, ``end``
    (NaN, or ``t_end`` if given, while still out at the end), ``duration`` and ``reason``
    (the ejecting rule), in order of start."""
    e = events[events["kind"].isin(["ejected", "unejected"])]
    rows: list[tuple[str, int, float, float, float, str]] = []
    open_: dict[tuple[str, int], tuple[float, str]] = {}
    for t, kind, comp, detail, value in zip(e["time"], e["kind"], e["component"], e["detail"], e["value"],
                                            strict=True):
        key = (str(comp), int(value))
        if kind == "ejected":
            open_[key] = (float(t), str(detail).split(": ", 1)[-1])
        elif key in open_:
            start, reason = open_.pop(key)
            rows.append((key[0], key[1], start, float(t), float(t) - start, reason))
    end = np.nan if t_end is None else float(t_end)
    for (comp, inst), (start, reason) in open_.items():
        rows.append((comp, inst, start, end, end - start, reason))
    out = pd.DataFrame(rows, columns=list(SPAN_COLUMNS))
    return out.sort_values("start", kind="stable").reset_index(drop=True)


def ejected_hosts(events: pd.DataFrame, *, step: float, t_end: float) -> pd.DataFrame:
    """Instances out of each call site's balancer at the end of each ``step`` in ``[0, t_end)``:
    columns ``time`` (bucket start, as the timeline), ``component`` and ``ejected``. The
    timeline's ``ejected`` column is the sum of these over a service's callers."""
    spans = ejection_spans(events, t_end=np.inf)
    times = np.arange(0.0, t_end, step)
    ends = times + step
    frames = []
    for comp, part in spans.groupby("component", sort=True):
        s = part["start"].to_numpy()
        f = part["end"].to_numpy()
        count = ((s[None, :] <= ends[:, None]) & (f[None, :] > ends[:, None])).sum(axis=1)
        frames.append(pd.DataFrame({"time": times, "component": comp, "ejected": count.astype(np.int64)}))
    if not frames:
        return pd.DataFrame({"time": pd.Series(dtype=float), "component": pd.Series(dtype=object),
                             "ejected": pd.Series(dtype=np.int64)})
    return pd.concat(frames, ignore_index=True)
