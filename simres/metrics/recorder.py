"""The recorder: plain columnar lists appended during the run, DataFrames built once at the end.

No object is created per event: each frame is a set of Python lists (one per column), whose
bound ``append`` methods the model caches on its hot path.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from simres.outcomes import ATTEMPT_OUTCOMES, PRIORITIES, REQUEST_OUTCOMES


def _cat(values: list[str], categories: list[str] | None = None) -> pd.Categorical:
    """A categorical column from a list of strings (via an object array: about 2x faster)."""
    return pd.Categorical(np.array(values, dtype=object), categories=categories)


class Recorder:
    """Columnar storage for the requests, attempts, events and timeline frames."""

    def __init__(self) -> None:
        # requests
        self.r_id: list[int] = []
        self.r_client: list[str] = []
        self.r_member: list[int] = []
        self.r_target: list[str] = []
        self.r_priority: list[str] = []
        self.r_start: list[float] = []
        self.r_end: list[float] = []
        self.r_outcome: list[str] = []
        self.r_tries: list[int] = []
        # attempts
        self.a_req: list[int] = []
        self.a_attempt: list[int] = []
        self.a_caller: list[str] = []
        self.a_service: list[str] = []
        self.a_instance: list[int] = []
        self.a_start: list[float] = []
        self.a_end: list[float] = []
        self.a_outcome: list[str] = []
        self.a_sent: list[bool] = []
        self.a_wait: list[float] = []
        self.a_depth: list[int] = []
        self.a_try: list[int] = []
        self.a_parent: list[int] = []
        self.a_served: list[float] = []
        self.next_try = itertools.count().__next__
        """A new try id: tries are numbered in the order they start (or are refused)."""
        # events
        self.e_time: list[float] = []
        self.e_kind: list[str] = []
        self.e_component: list[str] = []
        self.e_detail: list[str] = []
        self.e_value: list[float] = []
        # timeline rows (few: one per step and service)
        self.timeline_rows: list[tuple[Any, ...]] = []

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
        self.r_id.append(req_id)
        self.r_client.append(client)
        self.r_member.append(member)
        self.r_target.append(target)
        self.r_priority.append(priority)
        self.r_start.append(start)
        self.r_end.append(end)
        self.r_outcome.append(outcome)
        self.r_tries.append(tries)

    # ------------------------------------------------------------------ frames

    def requests_frame(self) -> pd.DataFrame:
        """One row per logical request, sorted by request id."""
        start = np.asarray(self.r_start, dtype=float)
        end = np.asarray(self.r_end, dtype=float)
        df = pd.DataFrame({
            "request_id": np.asarray(self.r_id, dtype=np.int64),
            "client": _cat(self.r_client),
            "member": np.asarray(self.r_member, dtype=np.int32),
            "target": _cat(self.r_target),
            "priority": _cat(self.r_priority, categories=list(PRIORITIES)),
            "start": start,
            "end": end,
            "latency": end - start,
            "outcome": _cat(self.r_outcome, categories=list(REQUEST_OUTCOMES)),
            "tries": np.asarray(self.r_tries, dtype=np.int32),
        })
        return df.sort_values("request_id", kind="stable").reset_index(drop=True)

    def attempts_frame(self) -> pd.DataFrame:
        """One row per try considered by any call driver, in completion order."""
        return pd.DataFrame({
            "request_id": np.asarray(self.a_req, dtype=np.int64),
            "attempt": np.asarray(self.a_attempt, dtype=np.int32),
            "caller": _cat(self.a_caller),
            "service": _cat(self.a_service),
            "instance": np.asarray(self.a_instance, dtype=np.int32),
            "start": np.asarray(self.a_start, dtype=float),
            "end": np.asarray(self.a_end, dtype=float),
            "outcome": _cat(self.a_outcome, categories=list(ATTEMPT_OUTCOMES)),
            "sent": np.asarray(self.a_sent, dtype=bool),
            "wait": np.asarray(self.a_wait, dtype=float),
            "depth": np.asarray(self.a_depth, dtype=np.int8),
            "try_id": np.asarray(self.a_try, dtype=np.int64),
            "parent_try": np.asarray(self.a_parent, dtype=np.int64),
            "service_start": np.asarray(self.a_served, dtype=float),
        })

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
