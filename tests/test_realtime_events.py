"""Decision events from real calls: ``simres.realtime.Resilient`` emits the decision log's
schema through ``logging`` (logger ``simres.realtime``) and as OpenTelemetry span events."""

from __future__ import annotations

import json
import logging

import pytest

from simres.metrics.decisions import EVENTS
from simres.policies.backoff import BackoffConfig, JitterConfig
from simres.policies.breaker import BreakerConfig
from simres.policies.retry import RetryConfig
from simres.realtime import BreakerOpenError, Resilient
from simres.realtime.events import LOGGER, JsonFormatter

BREAKER = BreakerConfig(trip="failure_rate", window={"kind": "count", "size": 4}, minimum_calls=4,
                        threshold=0.5, open_for=30.0)


def failing() -> None:
    raise ConnectionError("refused")


def _trip(guard: Resilient) -> None:
    for _ in range(4):
        with pytest.raises(ConnectionError):
            guard.call(failing)
    with pytest.raises(BreakerOpenError):
        guard.call(failing)


def test_breaker_transition_is_logged_with_its_evidence(caplog) -> None:
    guard = Resilient(breaker=BREAKER, name="web->api")
    with caplog.at_level(logging.INFO, logger="simres.realtime"):
        _trip(guard)
    recs = [r for r in caplog.records if r.name == "simres.realtime"]
    assert all(r.simres_event["event"] in EVENTS for r in recs)  # the simulation's event names
    opened = [r for r in recs if r.getMessage() == "breaker"]
    assert len(opened) == 1
    r = opened[0]
    assert (r.old, r.new, r.reason) == ("closed", "open", "failure_rate")
    assert (r.calls, r.failures, r.failure_rate, r.threshold) == (4, 4, 1.0, 0.5)
    assert r.window == "count" and r.minimum_calls == 4 and r.open_for == pytest.approx(30.0)
    assert r.component == "web->api" and r.req == 4 and r.attempt == 1
    assert [x.getMessage() for x in recs].count("try_failed") == 4
    rejected = [x for x in recs if x.getMessage() == "rejected"]
    assert rejected and rejected[0].why == "breaker_open" and rejected[0].state == "open"
    line = json.loads(JsonFormatter().format(r))  # structlog-style flat JSON
    assert line["event"] == "breaker" and line["failure_rate"] == 1.0 and line["logger"] == "simres.realtime"
    assert isinstance(line["time"], float) and line["time"] > 1e9  # wall clock


def test_retry_scheduled_is_logged(caplog) -> None:
    retry = RetryConfig(max_attempts=2, backoff=BackoffConfig(base=0.001, cap=0.001),
                        jitter=JitterConfig(kind="none"))
    guard = Resilient(retry=retry, name="svc")
    with caplog.at_level(logging.INFO, logger="simres.realtime"), pytest.raises(ConnectionError):
        guard.call(failing)
    names = [r.getMessage() for r in caplog.records if r.name == "simres.realtime"]
    assert names == ["try_failed", "retry_scheduled", "try_failed", "retry_given_up"]
    sched = next(r for r in caplog.records if r.getMessage() == "retry_scheduled")
    assert sched.outcome == "connection" and sched.attempt == 1 and sched.next_attempt == 2
    assert sched.delay == pytest.approx(0.001)


def test_nothing_is_built_when_nobody_listens(caplog) -> None:
    LOGGER.setLevel(logging.WARNING)
    try:
        guard = Resilient(breaker=BREAKER)
        _trip(guard)
        assert not [r for r in caplog.records if r.name == "simres.realtime"]
    finally:
        LOGGER.setLevel(logging.NOTSET)


def test_events_are_span_events_on_the_current_span() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    guard = Resilient(breaker=BREAKER, name="web->api")
    with tracer.start_as_current_span("canary"):
        _trip(guard)
    (span,) = exporter.get_finished_spans()
    names = [e.name for e in span.events]
    assert names.count("try_failed") == 4 and "breaker" in names and "rejected" in names
    ev = next(e for e in span.events if e.name == "breaker")
    attrs = dict(ev.attributes)
    assert attrs["old"] == "closed" and attrs["new"] == "open" and attrs["reason"] == "failure_rate"
    assert attrs["failure_rate"] == 1.0 and attrs["threshold"] == 0.5 and attrs["calls"] == 4
    assert attrs["component"] == "web->api"


def test_a_hedged_call_logs_its_hedge_and_the_winner(caplog) -> None:
    """The simulation's ``hedge`` and ``hedge_won`` decisions from a real hedged call: the
    first try hangs, the hedge sent after 20 ms answers."""
    import threading

    from simres.policies.hedging import HedgeConfig

    release = threading.Event()
    calls = []

    def slow_first() -> str:
        calls.append(1)
        if len(calls) == 1:
            release.wait(2.0)
        return "ok"

    guard = Resilient(hedge=HedgeConfig(delay=0.02, max_attempts=2), name="web->search")
    with caplog.at_level(logging.INFO, logger="simres.realtime"):
        assert guard.call(slow_first) == "ok"
    release.set()
    recs = {r.getMessage(): r for r in caplog.records if r.name == "simres.realtime"}
    assert recs["hedge"].attempt == 2 and recs["hedge"].in_flight == 2
    assert recs["hedge_won"].attempt == 2 and 0 <= recs["hedge_won"].latency < 1.0
    assert recs["hedge"].component == "web->search" and "hedge" in EVENTS and "hedge_won" in EVENTS
