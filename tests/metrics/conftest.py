"""Hand-built RunResult frames (frames.md contract, recorder dtypes) for metric tests.

The builders are exposed as fixtures so test modules need no import path tricks. Each
takes plain arrays and fills the other columns with harmless defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from simres.outcomes import ATTEMPT_OUTCOMES, PRIORITIES, REQUEST_OUTCOMES

Builder = Callable[..., pd.DataFrame]


def _column(value: Any, n: int) -> np.ndarray:
    """Broadcast a scalar or sequence to an array of length ``n``."""
    arr = np.asarray(value)
    return np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr


def build_requests(start: Sequence[float], latency: Sequence[float] | float = 0.1,
                   outcome: Sequence[str] | str = "ok", client: Sequence[str] | str = "web",
                   priority: Sequence[str] | str = "high", member: Sequence[int] | int = 0,
                   request_id: Sequence[int] | None = None, tries: Sequence[int] | int = 1,
                   ) -> pd.DataFrame:
    """A requests frame; ``unfinished`` rows get NaN end and latency."""
    start = np.asarray(start, dtype=float)
    n = start.size
    outcome = _column(outcome, n).astype(object)
    latency = _column(latency, n).astype(float)
    latency = np.where(outcome == "unfinished", np.nan, latency)
    end = start + latency
    return pd.DataFrame({
        "request_id": np.arange(n, dtype=np.int64) if request_id is None
        else np.asarray(request_id, dtype=np.int64),
        "client": pd.Categorical(_column(client, n).astype(object)),
        "member": _column(member, n).astype(np.int32),
        "target": pd.Categorical(["api"] * n),
        "priority": pd.Categorical(_column(priority, n).astype(object),
                                   categories=list(PRIORITIES)),
        "start": start,
        "end": end,
        "latency": end - start,
        "outcome": pd.Categorical(outcome, categories=list(REQUEST_OUTCOMES)),
        "tries": _column(tries, n).astype(np.int32),
    })


def build_attempts(request_id: Sequence[int], start: Sequence[float] | float = 0.0,
                   attempt: Sequence[int] | int = 1, service: Sequence[str] | str = "api",
                   sent: Sequence[bool] | bool = True, depth: Sequence[int] | int = 0,
                   outcome: Sequence[str] | str = "ok", caller: Sequence[str] | str = "web",
                   try_id: Sequence[int] | None = None, parent_try: Sequence[int] | int = -1,
                   ) -> pd.DataFrame:
    """An attempts frame (try ids 0..n-1 and no parents unless given)."""
    rid = np.asarray(request_id, dtype=np.int64)
    n = rid.size
    start = _column(start, n).astype(float)
    return pd.DataFrame({
        "request_id": rid,
        "attempt": _column(attempt, n).astype(np.int32),
        "caller": pd.Categorical(_column(caller, n).astype(object)),
        "service": pd.Categorical(_column(service, n).astype(object)),
        "instance": np.zeros(n, dtype=np.int32),
        "start": start,
        "end": start + 0.01,
        "outcome": pd.Categorical(_column(outcome, n).astype(object),
                                  categories=list(ATTEMPT_OUTCOMES)),
        "sent": _column(sent, n).astype(bool),
        "wait": np.zeros(n),
        "depth": _column(depth, n).astype(np.int8),
        "try_id": np.arange(n, dtype=np.int64) if try_id is None else np.asarray(try_id, dtype=np.int64),
        "parent_try": _column(parent_try, n).astype(np.int64),
        "service_start": start,
    })


def build_events(rows: Sequence[tuple[float, str, str, str, float]]) -> pd.DataFrame:
    """An events frame from ``(time, kind, component, detail, value)`` rows."""
    frame = pd.DataFrame(list(rows), columns=["time", "kind", "component", "detail", "value"])
    return frame.astype({"time": float, "kind": object, "component": object, "detail": object,
                         "value": float})


def build_timeline(time: Sequence[float], service: Sequence[str] | str = "api",
                   busy: Sequence[float] | float = 0.0, workers: Sequence[float] | float = 1.0,
                   queue_len: Sequence[float] | float = 0.0) -> pd.DataFrame:
    """A timeline frame; counters not given are 0."""
    t = np.asarray(time, dtype=float)
    n = t.size
    frame = pd.DataFrame({"time": t, "service": pd.Categorical(_column(service, n).astype(object))})
    for col in ("arrivals", "completions", "ok", "errors", "timeouts", "rejected", "shed",
                "cancelled"):
        frame[col] = np.zeros(n, dtype=np.int64)
    frame["queue_len"] = _column(queue_len, n).astype(float)
    frame["busy"] = _column(busy, n).astype(float)
    frame["inflight"] = frame["queue_len"] + frame["busy"]
    frame["workers"] = _column(workers, n).astype(float)
    return frame


@pytest.fixture
def make_requests() -> Builder:
    """Builder of requests frames (see ``build_requests``)."""
    return build_requests


@pytest.fixture
def make_attempts() -> Builder:
    """Builder of attempts frames (see ``build_attempts``)."""
    return build_attempts


@pytest.fixture
def make_events() -> Builder:
    """Builder of events frames (see ``build_events``)."""
    return build_events


@pytest.fixture
def make_timeline() -> Builder:
    """Builder of timeline frames (see ``build_timeline``)."""
    return build_timeline


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: metric tests are deterministic."""
    return np.random.default_rng(20240501)


def build_synthetic_run(n: int, *, seed: int = 7, duration: float = 100.0,
                        ) -> dict[str, pd.DataFrame]:
    """A large random run (vectorised): ``n`` requests, ~2n attempts, a fault and breakers.

    Requests succeed with probability 0.95 (latency ~ Exp(mean 50 ms)); failures are
    timeouts at 1 s after three tries to ``api``. Every success also made one ``db`` call.
    A fault ``spike`` runs over [40, 50) and one per-member breaker opens during it.
    """
    rng = np.random.default_rng(seed)
    start = np.sort(rng.uniform(0, duration, n))
    ok = rng.random(n) < 0.95
    latency = np.where(ok, rng.exponential(0.05, n), 1.0)
    requests = build_requests(start, latency=latency,
                              outcome=np.where(ok, "ok", "timeout").astype(object),
                              client=rng.choice(["web", "mobile"], n).astype(object),
                              priority=rng.choice(["critical", "high", "low"], n).astype(object),
                              member=rng.integers(0, 50, n), tries=np.where(ok, 1, 3))
    rid = np.arange(n)
    failed = rid[~ok]
    api = build_attempts(
        request_id=np.concatenate([rid, failed, failed]),
        start=np.concatenate([start, start[~ok] + 0.3, start[~ok] + 0.6]),
        attempt=np.concatenate([np.ones(n), np.full(failed.size, 2), np.full(failed.size, 3)]),
        outcome="ok")
    db = build_attempts(request_id=rid[ok], start=start[ok] + 0.001, service="db", depth=1,
                        caller="api")
    attempts = pd.concat([api, db], ignore_index=True)
    for col in ("caller", "service"):
        attempts[col] = attempts[col].astype("category")
    steps = np.arange(0.0, duration, 1.0)
    timeline = build_timeline(time=np.concatenate([steps, steps]),
                              service=["api"] * steps.size + ["db"] * steps.size,
                              busy=rng.integers(0, 4, 2 * steps.size), workers=4,
                              queue_len=rng.integers(0, 10, 2 * steps.size))
    events = build_events([
        (40.0, "fault_start", "spike", "load_spike", np.nan),
        (42.0, "breaker", "web->api#3", "closed->open: failure rate", 1.0),
        (47.0, "breaker", "web->api#3", "open->half_open: wait elapsed", 2.0),
        (47.5, "breaker", "web->api#3", "half_open->closed: probes ok", 0.0),
        (50.0, "fault_end", "spike", "load_spike", np.nan),
    ])
    return {"requests": requests, "attempts": attempts, "timeline": timeline, "events": events}


@pytest.fixture
def make_synthetic_run() -> Callable[..., dict[str, pd.DataFrame]]:
    """Builder of large random runs (see ``build_synthetic_run``)."""
    return build_synthetic_run
