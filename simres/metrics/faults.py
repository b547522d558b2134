"""Fault intervals from the ``events`` frame: the anchor of herd and recovery metrics."""

from __future__ import annotations

from collections import defaultdict, deque

import numpy as np
import pandas as pd

FAULT_COLUMNS: tuple[str, ...] = ("fault", "component", "kind", "start", "end")


def fault_intervals(events: pd.DataFrame) -> pd.DataFrame:
    """One row per injected fault: ``fault``, ``component``, ``kind``, ``start``, ``end``.

    ``fault_start`` and ``fault_end`` events are paired per component in time order (the
    n-th end closes the earliest still-open start). A start with no end (the fault
    outlasted the run) gets ``end = NaN``; an end with no start is ignored. ``fault``
    is the component name, or ``name#k`` (k = 1, 2... in start order) when the same
    component is injected more than once, so every fault has a unique summary key.
    Rows are sorted by start time.
    """
    if len(events) == 0:
        return _empty()
    kinds = events["kind"].astype(object).to_numpy()
    sel = (kinds == "fault_start") | (kinds == "fault_end")
    fe = events.loc[sel]
    if len(fe) == 0:
        return _empty()
    order = np.argsort(fe["time"].to_numpy(dtype=float), kind="stable")
    fe = fe.iloc[order]
    open_starts: dict[str, deque[int]] = defaultdict(deque)
    rows: list[dict[str, object]] = []
    # A loop over fault events only: a run has a handful of faults, not thousands.
    for time, kind, component, detail in zip(fe["time"].astype(float), fe["kind"].astype(str),
                                             fe["component"].astype(str),
                                             fe["detail"].astype(str), strict=True):
        if kind == "fault_start":
            open_starts[component].append(len(rows))
            rows.append({"component": component, "kind": detail, "start": time,
                         "end": np.nan})
        elif open_starts[component]:
            rows[open_starts[component].popleft()]["end"] = time
    frame = pd.DataFrame(rows, columns=list(FAULT_COLUMNS[1:]))
    occurrence = frame.groupby("component").cumcount() + 1
    repeated = frame["component"].map(frame["component"].value_counts()) > 1
    frame.insert(0, "fault", np.where(repeated, frame["component"] + "#" + occurrence.astype(str),
                                      frame["component"]))
    frame["fault"] = frame["fault"].astype(object)
    return frame.reset_index(drop=True)


def _empty() -> pd.DataFrame:
    """A fault frame with no rows and the right columns."""
    return pd.DataFrame({"fault": pd.Series(dtype=object), "component": pd.Series(dtype=object),
                         "kind": pd.Series(dtype=object), "start": pd.Series(dtype=float),
                         "end": pd.Series(dtype=float)})
