"""The decision log: every state change of a run as one JSON line, in the style of structlog.

The events frame says *that* a breaker opened; the decision log says *why*: each line is a
flat dict with ``event`` (what happened), ``time`` (simulated seconds), ``component`` (who
decided: a call site ``web->api#3``, an instance ``api/0``, a fault name) and the fields the
decision was made on (a breaker's window counts and threshold, a retry's delay and the
outcome that caused it, a budget's balance, the load that shed a request), plus the
correlation ids ``req`` (request id), ``try`` (try id) and ``parent`` (the try whose
handler made the call, where there is one). :data:`EVENTS` lists the event names.

It is a separate sink: the frames are the same with it on or off, and with it off the model
pays one ``is not None`` test at each decision point. Lines are buffered and written in
chunks of :data:`CHUNK` lines; if writing fails the log stops (:attr:`DecisionLog.error`
says why, in one line) and the run goes on, so its results are never lost to the log.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

CHUNK = 2000
"""Lines buffered before one write to the file."""

EVENTS: dict[str, str] = {
    "breaker": "a circuit breaker changed state (old, new, reason and the evidence: calls, failures, "
               "slow_calls, failure_rate, threshold, rule, window, minimum_calls; streak and "
               "failure_threshold for a consecutive breaker; open_for chosen)",
    "try_failed": "a try ended with a failure (attempt, outcome, instance, duration)",
    "retry_scheduled": "a failed try will be retried (attempt, outcome that caused it, delay)",
    "retry_given_up": "a failed try will not be retried (attempt, outcome, why: policy or deadline)",
    "budget_granted": "the retry budget paid for a retry (balance: tokens, ratio or active retries)",
    "budget_denied": "the retry budget refused a retry or hedge (balance)",
    "rejected": "a try refused locally (why: breaker_open, throttled, bulkhead_rejected, limit_rejected, "
                "rate_limit_expired; with the limit and in-flight count where there is one)",
    "shed": "an instance shed a request (queue length, utilisation, priority)",
    "queue_full": "an instance refused a request because its queue is full (queue length, capacity)",
    "hedge": "a hedged request sent another try (reason)",
    "hedge_won": "a hedge's reply came first",
    "ejected": "outlier detection ejected an instance (reason)",
    "unejected": "an ejected instance returned to the pool",
    "probation": "an ejected instance is let back on probation (Finagle's failure accrual)",
    "probe_failed": "an instance on probation failed its probe and is ejected again",
    "rate_limit": "a throttling reply lowered the client rate limiter's fill rate",
    "scale": "an autoscaler decision (desired, ready, the metric's name and value)",
    "instance_ready": "an autoscaled instance became ready and joined the balancers (ready count)",
    "instance_drained": "an autoscaled instance left the balancers at a scale-down (ready count)",
    "fault_start": "a fault began (kind, duration)",
    "fault_end": "a fault ended (kind)",
}
"""Every ``event`` name the log writes, with its fields in words (docs/observability.md)."""


def _clean(value: Any) -> Any:
    """A JSON-safe field value: NaN and infinities become None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class DecisionLog:
    """A JSON-lines sink for decisions, written in chunks (see module doc)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._buf: list[str] = []
        self.lines = 0
        """Lines logged so far."""
        self.error: str | None = None
        """Why logging stopped (one line), or None while it works."""
        self.context: tuple[int, int, int] | None = None
        """(request, try, parent) of the try whose result is being judged: a breaker
        transition it causes carries these ids."""
        self._fh: IO[str] | None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
        except OSError as e:
            self._fh = None
            self.error = f"decision log {self.path}: cannot write there: {e.strerror or e}"

    def emit(self, event: str, time: float, component: str, **fields: Any) -> None:
        """Log one decision: ``event`` at simulated ``time`` by ``component``, with ``fields``."""
        if self._fh is None:
            return
        row = {"event": event, "time": round(time, 9), "component": component}
        for k, v in fields.items():
            row[k] = _clean(v)
        self._buf.append(json.dumps(row, separators=(",", ":")))
        self.lines += 1
        if len(self._buf) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines; on failure stop logging and keep the reason."""
        if self._fh is None or not self._buf:
            self._buf.clear()
            return
        try:
            self._fh.write("\n".join(self._buf) + "\n")
        except (OSError, ValueError) as e:
            self.error = f"decision log {self.path}: writing failed after {self.lines} lines: " \
                         f"{getattr(e, 'strerror', None) or e}"
            self._drop()
        self._buf.clear()

    def _drop(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        self.flush()
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError as e:
                self.error = f"decision log {self.path}: closing failed: {e.strerror or e}"
            self._fh = None


class DecisionLogWarning(UserWarning):
    """The decision log could not be written in full; the run's results are unaffected."""


class LogReadError(ValueError):
    """A decision log that cannot be read (one line naming the file and line)."""


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every decision of a JSON-lines log, in file order; a bad line is a :class:`LogReadError`."""
    return list(iter_log(path))


def iter_log(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The decisions of a log one by one (see :func:`read_log`)."""
    p = Path(path)
    try:
        fh = open(p, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise LogReadError(f"{p}: cannot read: {e.strerror or e}") from None
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise LogReadError(f"{p}: line {n}: not JSON ({e.msg})") from None
            if not isinstance(row, dict) or "event" not in row or "time" not in row:
                raise LogReadError(f"{p}: line {n}: not a decision (needs 'event' and 'time')")
            yield row
