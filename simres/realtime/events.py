"""The decision log's events from real calls: standard ``logging`` and OpenTelemetry span events.

:class:`~simres.realtime.Resilient` reports its decisions (breaker transitions with their
evidence, failed tries, retries scheduled or given up, budget answers, local refusals)
with the same ``event`` names and fields as a simulated run's decision log
(:mod:`simres.metrics.decisions`, docs/observability.md), so a simulated run and a
production canary answer the same queries. ``time`` is the wall clock (Unix seconds)
instead of simulated seconds; ``component`` is the guard's ``name``.

Two sinks, each used only when someone listens (else an event costs one check):

- the logger ``simres.realtime`` (:data:`LOGGER`), at INFO: the message is the event name,
  every field is an attribute of the record (``extra=``; a field that would clash with a
  ``LogRecord`` attribute gets a ``simres_`` prefix) and the whole flat dict is
  ``record.simres_event``. :class:`JsonFormatter` writes it as one JSON line (the shape
  ``structlog.processors.JSONRenderer`` gives); a structlog ``ProcessorFormatter`` reads
  the same ``extra`` fields;
- OpenTelemetry, when ``opentelemetry-api`` is importable: an event named after it, with
  the fields as attributes, on the current span if it is recording
  (``trace.get_current_span().add_event(name, attributes)``). The API is optional; without
  it nothing is sent there.

This module imports nothing of the simulation (the realtime layer's rule).
"""

from __future__ import annotations

import json
import logging
import math
import time as _time
from typing import Any

LOGGER = logging.getLogger("simres.realtime")
"""Where :class:`~simres.realtime.Resilient` logs its decisions (INFO)."""

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

try:  # optional: opentelemetry-api
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - depends on the environment
    _otel_trace = None


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _attribute(value: Any) -> Any:
    """An OpenTelemetry attribute value (str, bool, int or float), or None to leave it out."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def listening() -> bool:
    """Whether an event would go anywhere: the logger is enabled for INFO, or a span records."""
    if LOGGER.isEnabledFor(logging.INFO):
        return True
    return _otel_trace is not None and _otel_trace.get_current_span().is_recording()


def emit(event: str, component: str, fields: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Send one decision to the logger and the current span; returns the flat dict."""
    row: dict[str, Any] = {"event": event, "time": _time.time() if now is None else now, "component": component}
    for k, v in fields.items():
        row[k] = _clean(v)
    if LOGGER.isEnabledFor(logging.INFO):
        extra = {(f"simres_{k}" if k in _RESERVED else k): v for k, v in row.items()}
        extra["simres_event"] = row
        LOGGER.info(event, extra=extra)
    if _otel_trace is not None:
        span = _otel_trace.get_current_span()
        if span.is_recording():
            attrs = {k: a for k, v in row.items() if k != "event" and (a := _attribute(v)) is not None}
            span.add_event(event, attributes=attrs)
    return row


class JsonFormatter(logging.Formatter):
    """One JSON line per record: a decision's flat dict (``record.simres_event``) plus
    ``level`` and ``logger``; any other record as ``event`` (its message), ``time``,
    ``level`` and ``logger``. For ``handler.setFormatter(JsonFormatter())``."""

    def format(self, record: logging.LogRecord) -> str:
        row = getattr(record, "simres_event", None)
        out = dict(row) if isinstance(row, dict) else {"event": record.getMessage(), "time": record.created}
        out.setdefault("level", record.levelname.lower())
        out.setdefault("logger", record.name)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))
