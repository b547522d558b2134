"""The recorder: typed columns appended during the run, DataFrames built once at the end.

No Python object is kept per row: every column is an :class:`array.array` of machine
numbers (8 bytes a float, 1-8 an integer). The hot path packs a request or attempt row into
one bytes object (:data:`REQUEST_ROW`, :data:`ATTEMPT_ROW`: one C call instead of an
``append`` per column) and stages it in a bytearray; the rows move into the columns, in
order, whenever something reads them. Categorical columns are recorded as integer codes: outcomes and priorities by
their position in the fixed vocabularies of :mod:`simres.outcomes`, names (callers,
services, clients) by a code the recorder hands out once per name (:meth:`Recorder.name`).
At the end each frame's columns are numpy views of those buffers, without a copy; the
frames are the same, value for value and dtype for dtype, as when every row held strings.
"""

from __future__ import annotations

import itertools
import struct
from array import array
from typing import Any

import numpy as np
import pandas as pd

from simres.outcomes import ATTEMPT_OUTCOMES, PRIORITIES, REQUEST_OUTCOMES


def _codes(vocabulary: tuple[str, ...], extra: tuple[str, ...] = ()) -> dict[str, int]:
    """value -> code: its position in ``vocabulary``; ``extra`` values get -1, which the
    frame shows as NaN (what a categorical does with a value outside its categories). A
    plain dict on purpose: the hot path looks codes up, and exact dicts are fastest."""
    codes = {v: i for i, v in enumerate(vocabulary)}
    codes.update((v, -1) for v in extra if v not in codes)
    return codes


ATTEMPT_CODES = _codes(ATTEMPT_OUTCOMES)
"""Code of each attempt outcome (its position in ATTEMPT_OUTCOMES)."""
REQUEST_CODES = _codes(REQUEST_OUTCOMES, ATTEMPT_OUTCOMES)
PRIORITY_CODES = _codes(PRIORITIES)

REQUEST_ROW = struct.Struct("=qiiddbi")
"""A staged request row: id, group, member, start, end, outcome code, tries (the request
columns' types, in :attr:`Recorder.REQUEST_COLUMNS` order, no padding)."""
ATTEMPT_ROW = struct.Struct("=qiiiddbbdqqd")
"""A staged attempt row, in :attr:`Recorder.ATTEMPT_COLUMNS` order: request id, attempt, site,
instance, start, end, outcome code, sent, wait, try id, parent try, service start."""


def _row_dtype(columns: tuple[tuple[str, Any], ...]) -> np.dtype:
    """The numpy record type of a packed row of ``columns`` (native order, no padding)."""
    return np.dtype([(name, np.int8 if dtype is bool else dtype) for name, dtype in columns])


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
        self._groups: dict[tuple[str, str, str], int] = {}
        self._group_rows: list[tuple[int, int, int]] = []  # (client, target, priority) codes
        self._sites: list[tuple[int, int, int]] = []  # (caller, service, depth) codes
        # requests
        self.r_id = array("q")
        self.r_group = array("i")  # request group: client, target and priority (see :meth:`group`)
        self.r_member = array("i")
        self.r_start = array("d")
        self.r_end = array("d")
        self.r_outcome = array("b")  # REQUEST_CODES
        self.r_tries = array("i")
        # attempts
        self.a_req = array("q")
        self.a_attempt = array("i")
        self.a_site = array("i")  # call site: caller, service and depth (see :meth:`site`)
        self.a_instance = array("i")
        self.a_start = array("d")
        self.a_end = array("d")
        self.a_outcome = array("b")  # ATTEMPT_CODES
        self.a_sent = array("b")
        self.a_wait = array("d")
        self.a_try = array("q")
        self.a_parent = array("q")
        self.a_served = array("d")
        self.r_rows = bytearray()
        """Request rows not yet in the columns, packed with REQUEST_ROW (see :meth:`_unstage`)."""
        self.a_rows = bytearray()
        """Attempt rows not yet in the columns, packed with ATTEMPT_ROW."""
        self.add_request_row = self.r_rows.extend
        """``add_request_row(REQUEST_ROW.pack(...))``: one request row, for the hot path."""
        self.add_attempt_row = self.a_rows.extend
        """``add_attempt_row(ATTEMPT_ROW.pack(...))``: one attempt row, for the hot path."""
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
        self.log: Any = None
        """The run's :class:`~simres.metrics.decisions.DecisionLog`, or None (the default: no
        log, and each decision point pays one ``is not None`` test)."""
        self.ejection_sites: dict[str, str] = {}
        """Call sites with outlier ejection (component -> target service): the timeline then
        gets an ``ejected`` column, counted from their ``ejected``/``unejected`` events."""
        self.replication: Any = None
        """The run's :class:`~simres.model.replication.Replication` when some service is a
        replica: the timeline then gets the replica columns."""
        self.caches: list[Any] = []
        """The run's :class:`~simres.model.cache.Cache` objects: the timeline then gets the
        ``cache_*`` columns from their per-bucket counters."""
        self.autoscaled: dict[str, tuple[int, int]] = {}
        """Services with autoscale -> their (desired, ready) counts at the start: the timeline then
        gets ``desired`` and ``ready`` columns, from their ``scale`` and ``instance_*`` events."""
        self.fixed_instances: dict[str, int] = {}
        """With some service autoscaling, the other services' instance counts (their ``desired``
        and ``ready`` in the timeline)."""

    def name(self, name: str) -> int:
        """The code of a caller, service or client name (the same name, the same code)."""
        code = self._names.get(name)
        if code is None:
            code = self._names[name] = len(self._name_list)
            self._name_list.append(name)
        return code

    def group(self, client: str, target: str, priority: str) -> int:
        """The code of the requests of one client population (with its target and priority):
        a request row stores it once instead of three categorical values."""
        key = (client, target, priority)
        code = self._groups.get(key)
        if code is None:
            code = self._groups[key] = len(self._group_rows)
            self._group_rows.append((self.name(client), self.name(target), PRIORITY_CODES.get(priority, -1)))
        return code

    def site(self, caller: str, service: str, depth: int) -> int:
        """A new code for one call site's attempt rows (caller, service and depth)."""
        self._sites.append((self.name(caller), self.name(service), depth))
        return len(self._sites) - 1

    def _named(self, c: np.ndarray) -> pd.Categorical:
        """A categorical column of names from their codes: the categories are the names that
        occur, sorted (what ``pd.Categorical`` infers from the strings themselves)."""
        if not len(c):
            return pd.Categorical(np.array([], dtype=object))
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
        self.request_coded(req_id, self.group(client, target, priority), member, start, end, outcome, tries)

    def request_coded(self, req_id: int, group: int, member: int, start: float, end: float, outcome: str,
                      tries: int) -> None:
        """:meth:`request` with the client, target and priority as a :meth:`group` code (a
        client population gets it once)."""
        self.add_request_row(REQUEST_ROW.pack(req_id, group, member, start, end, REQUEST_CODES[outcome], tries))

    def _unstage(self) -> None:
        """Move the staged rows into the columns, oldest first, a chunk at a time.

        The hot path packs each row into one bytes object (one C call, where a column each
        took twelve ``append`` calls); the columns stay the store every reader uses (frames,
        :meth:`take_attempts`), so each reader unstages first. A chunk is unpacked by numpy
        and removed from the front of the buffer before the next (``del b[:n]`` on a
        bytearray is cheap), so the rows are never held twice over.
        """
        for buf, row, columns in ((self.r_rows, REQUEST_ROW, self.REQUEST_COLUMNS),
                                  (self.a_rows, ATTEMPT_ROW, self.ATTEMPT_COLUMNS)):
            step = row.size * 16384
            while buf:
                n = min(len(buf), step)
                recs = np.frombuffer(buf, dtype=_row_dtype(columns), count=n // row.size)
                for name, _ in columns:
                    getattr(self, name).frombytes(recs[name].tobytes())
                del recs
                del buf[:n]

    def requests_recorded(self) -> int:
        """Request rows held (in the columns or staged)."""
        return len(self.r_id) + len(self.r_rows) // REQUEST_ROW.size

    def attempts_recorded(self) -> int:
        """Attempt rows held (in the columns or staged)."""
        return len(self.a_req) + len(self.a_rows) // ATTEMPT_ROW.size

    # ------------------------------------------------------------------ chunks (record: summary, --stream)

    REQUEST_COLUMNS = (("r_id", np.int64), ("r_group", np.int32), ("r_member", np.int32), ("r_start", float),
                       ("r_end", float), ("r_outcome", np.int8), ("r_tries", np.int32))
    ATTEMPT_COLUMNS = (("a_req", np.int64), ("a_attempt", np.int32), ("a_site", np.int32),
                       ("a_instance", np.int32), ("a_start", float), ("a_end", float), ("a_outcome", np.int8),
                       ("a_sent", bool), ("a_wait", float), ("a_try", np.int64), ("a_parent", np.int64),
                       ("a_served", float))

    def _take(self, columns: tuple[tuple[str, Any], ...]) -> dict[str, np.ndarray]:
        """Copy the columns out and empty them in place (``del col[:]``), so the bound
        ``append`` methods the model cached stay valid and the buffers are freed."""
        self._unstage()
        out = {}
        for name, dtype in columns:
            col = getattr(self, name)
            out[name] = _view(col, dtype).copy()
            del col[:]
        return out

    def take_requests(self) -> dict[str, np.ndarray]:
        """The request rows recorded since the last take (codes, by column name), then cleared."""
        return self._take(self.REQUEST_COLUMNS)

    def take_attempts(self) -> dict[str, np.ndarray]:
        """The attempt rows recorded since the last take (codes, by column name), then cleared."""
        return self._take(self.ATTEMPT_COLUMNS)

    def group_names(self) -> list[tuple[str, str, str]]:
        """Group code -> (client, target, priority) names (priority "" when unknown)."""
        names = self._name_list
        return [(names[c], names[t], PRIORITIES[p] if p >= 0 else "") for c, t, p in self._group_rows]

    def site_names(self) -> list[tuple[str, str, int]]:
        """Site code -> (caller, service, depth)."""
        names = self._name_list
        return [(names[c], names[s], d) for c, s, d in self._sites]

    def group_codes(self) -> np.ndarray:
        """Group code -> (client name code, target name code, priority code), an (n, 3) int32 array."""
        return np.array(self._group_rows, dtype=np.int32).reshape(-1, 3)

    def site_codes(self) -> np.ndarray:
        """Site code -> (caller name code, service name code, depth), an (n, 3) int32 array."""
        return np.array(self._sites, dtype=np.int32).reshape(-1, 3)

    @property
    def names(self) -> list[str]:
        """Name code -> name (callers, services, clients)."""
        return self._name_list

    # ------------------------------------------------------------------ frames

    def requests_frame(self) -> pd.DataFrame:
        """One row per logical request, sorted by request id."""
        self._unstage()
        start = _view(self.r_start, float)
        end = _view(self.r_end, float)
        groups = np.array(self._group_rows, dtype=np.int32).reshape(-1, 3)[_view(self.r_group, np.int32)]
        df = pd.DataFrame({
            "request_id": _view(self.r_id, np.int64),
            "client": self._named(groups[:, 0]),
            "member": _view(self.r_member, np.int32),
            "target": self._named(groups[:, 1]),
            "priority": pd.Categorical.from_codes(groups[:, 2].astype(np.int8), categories=list(PRIORITIES)),
            "start": start,
            "end": end,
            "latency": end - start,
            "outcome": _fixed(self.r_outcome, REQUEST_OUTCOMES),
            "tries": _view(self.r_tries, np.int32),
        }, copy=False)
        return df.sort_values("request_id", kind="stable").reset_index(drop=True)

    def attempts_frame(self) -> pd.DataFrame:
        """One row per try considered by any call driver, in completion order."""
        self._unstage()
        sites = np.array(self._sites, dtype=np.int32).reshape(-1, 3)[_view(self.a_site, np.int32)]
        return pd.DataFrame({
            "request_id": _view(self.a_req, np.int64),
            "attempt": _view(self.a_attempt, np.int32),
            "caller": self._named(sites[:, 0]),
            "service": self._named(sites[:, 1]),
            "instance": _view(self.a_instance, np.int32),
            "start": _view(self.a_start, float),
            "end": _view(self.a_end, float),
            "outcome": _fixed(self.a_outcome, ATTEMPT_OUTCOMES),
            "sent": _view(self.a_sent, bool),
            "wait": _view(self.a_wait, float),
            "depth": sites[:, 2].astype(np.int8),
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
