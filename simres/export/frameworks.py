"""Resilience frameworks: Resilience4j ``application.yml`` and Polly v8 strategy options (JSON)."""

from __future__ import annotations

from typing import Any

import yaml

from simres.export._common import REMOTE, Mapping, NothingToExport, millis, num, resolved, show, timespan
from simres.policies import BreakerConfig, RetryConfig
from simres.policies.presets import _TIMESPAN_MAX

_JAVA_EXCEPTIONS = {"timeout": ["java.util.concurrent.TimeoutException", "java.net.SocketTimeoutException"],
                    "connection": ["java.net.ConnectException"]}


def _nothing(m: Mapping, keys: tuple[str, ...], library: str) -> None:
    if not any(m.has(k) for k in keys):
        raise NothingToExport(f"{library} exports {', '.join(keys)}; this call has none of them")


# ---------------------------------------------------------------------------- Resilience4j


def _r4j_retry(m: Mapping) -> dict[str, Any]:
    out: dict[str, Any] = {"maxAttempts": m.v("retry.max_attempts")}
    kind = m.v("retry.backoff.kind")
    base, cap = m.v("retry.backoff.base"), m.v("retry.backoff.cap")
    jit = m.v("retry.jitter.kind")
    if kind == "none":
        out["waitDuration"] = "0ms"
    elif kind == "constant":
        out["waitDuration"] = millis(min(base, cap))
    else:
        out["waitDuration"] = millis(base)
        if kind == "linear":
            m.note("retry.backoff.kind: linear: Resilience4j has fixed, exponential and random waits; written as a "
                   "fixed wait of base (a custom IntervalFunction in code can do it)")
        else:
            out["enableExponentialBackoff"] = True
            out["exponentialBackoffMultiplier"] = m.v("retry.backoff.multiplier")
            out["exponentialMaxWaitDuration"] = millis(cap)
    if jit == "proportional":
        out["enableRandomizedWait"] = True
        out["randomizedWaitFactor"] = m.v("retry.jitter.fraction")
    elif jit != "none":
        m.note(f"retry.jitter: {jit}: Resilience4j randomises only proportionally (randomizedWaitFactor: "
               "wait * U[1-f, 1+f]); written without jitter")
    retry_on = m.v("retry.retry_on")
    if not set(retry_on) >= set(REMOTE):
        excs = [e for o in retry_on for e in _JAVA_EXCEPTIONS.get(o, [])]
        http = [o for o in retry_on if o not in _JAVA_EXCEPTIONS]
        out["retryExceptions"] = excs
        if http:
            m.note(f"retry.retry_on: {show(http)}: replies raise your HTTP client's own exception (e.g. "
                   "HttpServerErrorException); add it to retryExceptions")
    m.fixed("retry", resolved(RetryConfig, "resilience4j"), "Resilience4j")
    return out


def _r4j_breaker(m: Mapping) -> dict[str, Any]:
    out: dict[str, Any] = {}
    trip = m.v("breaker.trip")
    if trip == "consecutive":
        m.note(f"breaker.trip: consecutive ({m.raw('breaker.failure_threshold')} failures in a row): Resilience4j "
               "breakers trip on a failure or slow-call rate over a window; not written")
        m.use("breaker.failure_threshold")
    else:
        kind = m.v("breaker.window.kind")
        size = m.v("breaker.window.size")
        if kind in ("count", "time"):
            out["slidingWindowType"] = "COUNT_BASED" if kind == "count" else "TIME_BASED"
            out["slidingWindowSize"] = int(size)
        else:
            m.cannot("breaker.window", "Resilience4j windows are COUNT_BASED or TIME_BASED (1 s buckets)")
        least = m.v("breaker.minimum_calls")
        if least < 1:
            m.note("breaker.minimum_calls: 0: Resilience4j needs at least 1; written as 1")
        out["minimumNumberOfCalls"] = max(1, least)
        out["failureRateThreshold"] = _pct(m.v("breaker.threshold")) if trip == "failure_rate" else 100
        slow = m.v("breaker.slow_threshold")
        if slow is None:
            m.note("breaker.slow_threshold: null: Resilience4j always checks a slow-call rate; written as "
                   "slowCallRateThreshold 100 (every call in the window slow)")
            out["slowCallRateThreshold"] = 100
        else:
            out["slowCallRateThreshold"] = _pct(slow)
        out["slowCallDurationThreshold"] = millis(m.v("breaker.slow_call_duration"))
    out["waitDurationInOpenState"] = millis(m.v("breaker.open_for"))
    growth = m.v("breaker.open_for_multiplier")
    if growth != 1 and m.raw("breaker.open_for_jitter") == "none":
        # IntervalFunction.ofExponentialBackoff(waitDurationInOpenState, multiplier[, max]) per consecutive open
        out["enableExponentialBackoff"] = True
        out["exponentialBackoffMultiplier"] = growth
        if m.v("breaker.open_for_max") is not None:
            out["exponentialMaxWaitDurationInOpenState"] = millis(m.raw("breaker.open_for_max"))
    if m.raw("breaker.half_open") == "permits":
        out["permittedNumberOfCallsInHalfOpenState"] = m.v("breaker.half_open_permits")
    wait = m.v("breaker.half_open_max_wait")
    if wait is not None:
        out["maxWaitDurationInHalfOpenState"] = millis(wait)
    out["automaticTransitionFromOpenToHalfOpenEnabled"] = False
    m.fixed("breaker", resolved(BreakerConfig, "resilience4j"), "Resilience4j")
    return out


def _pct(x: float) -> float | int:
    p = round(x * 100, 9)
    return int(p) if float(p).is_integer() else p


def resilience4j(m: Mapping) -> str:
    """``resilience4j.{retry,circuitbreaker,bulkhead,thread-pool-bulkhead,timelimiter}.instances.NAME``."""
    _nothing(m, ("retry", "breaker", "bulkhead", "timeout"), "Resilience4j")
    name = m.instance
    doc: dict[str, Any] = {}
    if m.has("retry"):
        doc["retry"] = {"instances": {name: _r4j_retry(m)}}
    if m.has("breaker"):
        doc["circuitbreaker"] = {"instances": {name: _r4j_breaker(m)}}
    if m.has("bulkhead"):
        if m.v("bulkhead.kind") == "semaphore":
            doc["bulkhead"] = {"instances": {name: {"maxConcurrentCalls": m.v("bulkhead.max_concurrent"),
                                                    "maxWaitDuration": millis(m.v("bulkhead.max_wait"))}}}
        else:
            n = m.v("bulkhead.max_concurrent")
            doc["thread-pool-bulkhead"] = {"instances": {name: {
                "coreThreadPoolSize": n, "maxThreadPoolSize": n, "queueCapacity": m.v("bulkhead.queue_size")}}}
    if m.has("timeout"):
        doc["timelimiter"] = {"instances": {name: {"timeoutDuration": millis(m.v("timeout")),
                                                   "cancelRunningFuture": True}}}
    if m.has("deadline"):
        m.cannot("deadline", "Resilience4j's TimeLimiter bounds one try (inside Retry); an overall deadline "
                 "needs a second TimeLimiter decorated outside Retry in code")
    layers = ["Retry", "CircuitBreaker", "Bulkhead", "TimeLimiter"]
    if m.has("order"):
        layers = _r4j_aspect_order(m, doc)
    return f"# decorators, outermost first: {', '.join(layers)}\n" + yaml.safe_dump(
        {"resilience4j": doc}, sort_keys=False)


_R4J_ASPECT = {"retry": ("retry", "retryAspectOrder", "Retry"),
               "breaker": ("circuitbreaker", "circuitBreakerAspectOrder", "CircuitBreaker"),
               "bulkhead": ("bulkhead", "bulkheadAspectOrder", "Bulkhead")}
_LOWEST = 2**31 - 1  # Spring's Ordered.LOWEST_PRECEDENCE; a lower order value is an outer aspect


def _r4j_aspect_order(m: Mapping, doc: dict[str, Any]) -> list[str]:
    """``order`` as the Spring Boot aspect orders (``resilience4j.retry.retryAspectOrder`` ...).

    resilience4j-spring-boot's defaults are LOWEST_PRECEDENCE - 5 for Retry, - 4 for
    CircuitBreaker, - 2 for TimeLimiter and - 1 for Bulkhead (RetryConfigurationProperties
    and its siblings), and a lower value is an outer aspect. The layers ``order`` lists get
    - 5, - 4, - 3 in its order; a bulkhead left inside the retry keeps its - 1, inside the
    TimeLimiter, as by default. Written for every layer ``order`` lists, so the file says it.
    """
    order = [name for name in m.v("order") if name in _R4J_ASPECT and m.has(name)]
    if "limit" in m.v("order"):
        m.note("order: limit: Resilience4j has no adaptive concurrency limit; its place in the order is not written")
    values: dict[str, int] = {}
    for i, name in enumerate(order):
        values[name] = _LOWEST - 5 + i
    if order and order[-1] == "bulkhead" and order[-2:-1] == ["retry"]:
        values["bulkhead"] = _LOWEST - 1
    for name, value in values.items():
        section, key, _ = _R4J_ASPECT[name]
        doc.setdefault(section, {"instances": {}})
        doc[section] = {key: value, **doc[section]}
    m.use("order")
    outer = sorted(values, key=values.__getitem__)
    names = [_R4J_ASPECT[n][2] for n in outer]
    timelimiter = _LOWEST - 2
    pos = sum(1 for n in outer if values[n] < timelimiter)
    return [*names[:pos], "TimeLimiter", *names[pos:]]


# ---------------------------------------------------------------------------- Polly v8


_POLLY_BACKOFF = {"constant": "Constant", "linear": "Linear", "exponential": "Exponential", "none": "Constant"}


def _polly_retry(m: Mapping) -> dict[str, Any]:
    out: dict[str, Any] = {"MaxRetryAttempts": m.v("retry.max_attempts") - 1}
    kind = m.v("retry.backoff.kind")
    out["BackoffType"] = _POLLY_BACKOFF[kind]
    out["Delay"] = timespan(0 if kind == "none" else m.v("retry.backoff.base"))
    jit = m.v("retry.jitter.kind")
    out["UseJitter"] = jit == "polly"
    if jit not in ("none", "polly"):
        m.note(f"retry.jitter: {jit}: Polly's only jitter is UseJitter (±25 % for constant and linear, "
               "DecorrelatedJitterBackoffV2 for exponential); written without jitter")
    cap = m.v("retry.backoff.cap")
    if kind != "none" and cap < _TIMESPAN_MAX:
        out["MaxDelay"] = timespan(cap)
    if kind == "exponential" and m.v("retry.backoff.multiplier") != 2:
        m.cannot("retry.backoff.multiplier", "Polly's exponential backoff always doubles")
    retry_on = m.v("retry.retry_on")
    if not set(retry_on) >= set(REMOTE):
        m.note(f"retry.retry_on: {show(retry_on)}: Polly's ShouldHandle is a predicate in code (by default every "
               "exception); handle only these there")
    lib = resolved(RetryConfig, "polly_jitter" if jit == "polly" else "polly")
    m.fixed("retry", lib, "Polly")
    return out


def _polly_breaker(m: Mapping) -> dict[str, Any]:
    out: dict[str, Any] = {}
    trip = m.v("breaker.trip")
    if trip != "failure_rate":
        m.note(f"breaker.trip: {trip}: Polly v8 breakers trip on a failure ratio over a sampling duration; "
               "not written (its FailureRatio stays 0.1)")
        m.use("breaker.failure_threshold", "breaker.slow_threshold", "breaker.slow_call_duration")
    else:
        out["FailureRatio"] = m.v("breaker.threshold")
        out["MinimumThroughput"] = m.v("breaker.minimum_calls")
        if m.v("breaker.window.kind") == "rolling":
            out["SamplingDuration"] = timespan(m.v("breaker.window.size"))
        else:
            m.cannot("breaker.window", "Polly samples over a duration in 10 rolling sub-windows "
                     "(SamplingDuration); written without it (Polly's default 30 s)")
    out["BreakDuration"] = timespan(m.v("breaker.open_for"))
    if m.v("breaker.open_for_multiplier") != 1:
        m.note("breaker.open_for_multiplier: a growing break needs a BreakDurationGenerator in code")
        m.use("breaker.open_for_max", "breaker.open_for_jitter")
    m.fixed("breaker", resolved(BreakerConfig, "polly"), "Polly")
    return out


def polly(m: Mapping) -> dict[str, Any]:
    """Polly v8 options by strategy: TotalTimeout, Retry, CircuitBreaker, ConcurrencyLimiter, AttemptTimeout, Hedging.

    Each section binds to Polly's options class (``RetryStrategyOptions``, ...); TimeSpans as strings.
    """
    _nothing(m, ("retry", "breaker", "bulkhead", "timeout", "deadline", "hedge"), "Polly")
    out: dict[str, Any] = {}
    if m.has("deadline"):
        out["TotalTimeout"] = {"Timeout": timespan(m.v("deadline"))}
    if m.has("retry"):
        out["Retry"] = _polly_retry(m)
    if m.has("breaker"):
        out["CircuitBreaker"] = _polly_breaker(m)
    if m.has("bulkhead"):
        queue = 0 if m.v("bulkhead.kind") == "semaphore" else m.v("bulkhead.queue_size")
        if m.raw("bulkhead.kind") == "semaphore" and m.v("bulkhead.max_wait"):
            m.note(f"bulkhead.max_wait: {num(m.raw('bulkhead.max_wait'))}: Polly's concurrency limiter queues "
                   "without a time limit; written as QueueLimit 0 (reject at once)")
        out["ConcurrencyLimiter"] = {"PermitLimit": m.v("bulkhead.max_concurrent"), "QueueLimit": queue}
    if m.has("timeout"):
        out["AttemptTimeout"] = {"Timeout": timespan(m.v("timeout"))}
    if m.has("hedge"):
        h: dict[str, Any] = {"MaxHedgedAttempts": m.v("hedge.max_attempts") - 1}
        cap = m.v("hedge.max_attempts_cap")
        if cap is not None and cap < h["MaxHedgedAttempts"] + 1:
            h["MaxHedgedAttempts"] = cap - 1
        delay = m.v("hedge.delay")
        if isinstance(delay, str):
            m.note(f"hedge.delay: {delay}: a percentile delay needs a DelayGenerator in code; written as 2 s")
            m.use("hedge.window", "hedge.refresh", "hedge.min_delay")
            delay = 2.0
        h["Delay"] = timespan(-0.001 if delay == -1 else delay)
        from simres.policies import HedgeConfig

        m.fixed("hedge", resolved(HedgeConfig, "polly"), "Polly")
        out["Hedging"] = h
    if m.has("order"):  # a pipeline runs its strategies in the order they were added, outermost first
        sections = {"retry": "Retry", "breaker": "CircuitBreaker", "bulkhead": "ConcurrencyLimiter"}
        middle = [sections[n] for n in m.v("order") if n in sections and sections[n] in out]
        first = [k for k in ("TotalTimeout",) if k in out]
        out = {k: out[k] for k in [*first, *middle, *(k for k in out if k not in first and k not in middle)]}
        m.use("order")
    return out
