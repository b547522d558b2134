"""The recorder: typed columns appended during the run, DataFrames built once at the end.

No object is created per row: every column is an :class:`array.array` of machine numbers
(8 bytes a float, 1-8 an integer), whose bound ``append`` methods the model caches on its
hot path. Categorical columns are recorded as integer codes: outcomes and priorities by
their position in the fixed vocabularies of :mod:`simres.outcomes`, names (callers,
services, clients) by a code the recorder hands out once per name (:meth:`Recorder.name`).
At the end each frame's columns are numpy views of those buffers, without a copy; the
frames are the same, value for value and dtype for dtype, as when every row held strings.
"""

from __future__ import annotations

import itertools
from array import array
from typing import Any

import numpy as np
import pandas as pd

from simres.outcomes import ATTEMPT_OUTCOMES, PRIORITIES, REQUEST_OUTCOMES


class _Codes(dict):  # type: ignore[type-arg]
    """value -> code in a fixed vocabulary; a value outside it gets -1 (NaN in the frame,
    as a categorical does with a value not among its categories)."""

    def __missing__(self, key: Any) -> int:
        return -1


ATTEMPT_CODES = _Codes((o, i) for i, o in enumerate(ATTEMPT_OUTCOMES))
"""Code of each attempt outcome (its position in ATTEMPT_OUTCOMES)."""
REQUEST_CODES = _Codes((o, i) for i, o in enumerate(REQUEST_OUTCOMES))
PRIORITY_CODES = _Codes((p, i) for i, p in enumerate(PRIORITIES))


def _view(col: array, dtype: Any) -> np.ndarray:
    """A numpy view of a typed column (no copy)."""
    return np.frombuffer(col, dtype=dtype) if len(col) else np.empty(0, dtype=dtype)


def _fixed(codes: array, categories: tuple[str, ...]) -> pd.Categorical:
    """A categorical column over a fixed vocabulary, from codes into it."""
    return pd.Categorical.from_codes(_view(codes, np.int8), categories=list(categories))


class Recorder:
    """Columnar storage for the requests, attempts, events and timeline frames."""

    def __init__(self) -> None:
        self._names: dict[str, int] = {}
        self._name_list: list[str] = []
        # requests
        self.r_id = array("q")
        self.r_client = array("i")  # name codes
        self.r_member = array("i")
        self.r_target = array("i")  # name codes
        self.r_priority = array("b")  # PRIORITY_CODES
        self.r_start = array("d")
        self.r_end = array("d")
        self.r_outcome = array("b")  # REQUEST_CODES
        self.r_tries = array("i")
        # attempts
        self.a_req = array("q")
        self.a_attempt = array("i")
        self.a_caller = array("i")  # name codes
        self.a_service = array("i")  # name codes
        self.a_instance = array("i")
        self.a_start = array("d")
        self.a_end = array("d")
        self.a_outcome = array("b")  # ATTEMPT_CODES
        self.a_sent = array("b")
        self.a_wait = array("d")
        self.a_depth = array("b")
        self.a_try = array("q")
        self.a_parent = array("q")
        self.a_served = array("d")
        self.next_try = itertools.count().__next__
        """A new try id: tries are numbered in the order they start (or are refused)."""
        # events (few: plain lists)
        self.e_time: list[float] = []
        self.e_kind: list[str] = []
        self.e_component: list[str] = []
        self.e_detail: list[str] = []
        self.e_value: list[float] = []
        # timeline rows (few: one per step and service)
        self.timeline_rows: list[tuple[Any, ...]] = []

    def name(self, name: str) -> int:
        """The code of a caller, service or client name (the same name, the same code)."""
        code = self._names.get(name)
        if code is None:
            code = self._names[name] = len(self._name_list)
            self._name_list.append(name)
        return code

    def _named(self, codes: array) -> pd.Categorical:
        """A categorical column of names from their codes: the categories are the names that
        occur, sorted (what ``pd.Categorical`` infers from the strings themselves)."""
        if not len(codes):
            return pd.Categorical(np.array([], dtype=object))
        c = _view(codes, np.int32)
        used = np.flatnonzero(np.bincount(c, minlength=len(self._name_list)))
        names = [self._name_list[i] for i in used]
        order = sorted(range(len(names)), key=names.__getitem__)
        lut = np.full(len(self._name_list), -1, dtype=np.int32)
        lut[used[order]] = np.arange(len(order), dtype=np.int32)
        return pd.Categorical.from_codes(lut[c], categories=[names[i] for i in order])

    def event(self, time: float, kind: str, component: str, detail: str = "", value: float = np.nan) -> None:
        """Record a state change (fault, breaker transition, budget denial, ...)."""
        self.e_time.append(time)
        self.e_kind.append(kind)
        self.e_component.append(component)
        self.e_detail.append(detail)
        self.e_value.append(value)

    def request(self, req_id: int, client: str, member: int, target: str, priority: str,
                start: float, end: float, outcome: str, tries: int) -> None:
        """Record a finished (or, at the end, unfinished) logical request."""
        self.request_coded(req_id, self.name(client), member, self.name(target), PRIORITY_CODES[priority],
                           start, end, outcome, tries)

    def request_coded(self, req_id: int, client: int, member: int, target: int, priority: int,
                      start: float, end: float, outcome: str, tries: int) -> None:
        """:meth:`request` with the client and target as name codes and the priority's code
        (a client population computes them once)."""
        self.r_id.append(req_id)
        self.r_client.append(client)
        self.r_member.append(member)
        self.r_target.append(target)
        self.r_priority.append(priority)
        self.r_start.append(start)
        self.r_end.append(end)
        self.r_outcome.append(REQUEST_CODES[outcome])
        self.r_tries.append(tries)

    # ------------------------------------------------------------------ frames

    def requests_frame(self) -> pd.DataFrame:
        """One row per logical request, sorted by request id."""
        start = _view(self.r_start, float)
        end = _view(self.r_end, float)
        df = pd.DataFrame({
            "request_id": _view(self.r_id, np.int64),
            "client": self._named(self.r_client),
            "member": _view(self.r_member, np.int32),
            "target": self._named(self.r_target),
            "priority": _fixed(self.r_priority, PRIORITIES),
            "start": start,
            "end": end,
            "latency": end - start,
            "outcome": _fixed(self.r_outcome, REQUEST_OUTCOMES),
            "tries": _view(self.r_tries, np.int32),
        }, copy=False)
        return df.sort_values("request_id", kind="stable").reset_index(drop=True)

    def attempts_frame(self) -> pd.DataFrame:
        """One row per try considered by any call driver, in completion order."""
        return pd.DataFrame({
            "request_id": _view(self.a_req, np.int64),
            "attempt": _view(self.a_attempt, np.int32),
            "caller": self._named(self.a_caller),
            "service": self._named(self.a_service),
            "instance": _view(self.a_instance, np.int32),
            "start": _view(self.a_start, float),
            "end": _view(self.a_end, float),
            "outcome": _fixed(self.a_outcome, ATTEMPT_OUTCOMES),
            "sent": _view(self.a_sent, bool),
            "wait": _view(self.a_wait, float),
            "depth": _view(self.a_depth, np.int8),
            "try_id": _view(self.a_try, np.int64),
            "parent_try": _view(self.a_parent, np.int64),
            "service_start": _view(self.a_served, float),
        }, copy=False)

    def events_frame(self) -> pd.DataFrame:
        """State changes in time order."""
        df = pd.DataFrame({
            "time": np.asarray(self.e_time, dtype=float),
            "kind": pd.Series(self.e_kind, dtype="object"),
            "component": pd.Series(self.e_component, dtype="object"),
            "detail": pd.Series(self.e_detail, dtype="object"),
            "value": np.asarray(self.e_value, dtype=float),
        })
        return df.sort_values("time", kind="stable").reset_index(drop=True)

    TIMELINE_COLUMNS = (
        "time", "service", "arrivals", "completions", "ok", "errors", "timeouts", "rejected",
        "shed", "cancelled", "queue_len", "busy", "inflight", "workers",
    )
