"""Proxies and RPC: Envoy cluster + route YAML, Istio DestinationRule + VirtualService, gRPC service config JSON."""

from __future__ import annotations

from typing import Any

import yaml

from simres.export._common import (
    GRPC_CODE,
    HTTP_STATUS,
    REMOTE,
    Mapping,
    NothingToExport,
    codes_for,
    resolved,
    seconds,
    show,
)
from simres.policies import BulkheadConfig, HedgeConfig, OutlierConfig, RetryConfig

UNLIMITED = 4294967295
"""Envoy's largest threshold: what "no limit" is written as where Envoy would otherwise apply a default."""

_ENVOY_OUTLIER = ("consecutive_5xx", "consecutive_gateway_failure", "consecutive_local_origin_failure",
                  "split_external_local_origin_errors", "enforcing_consecutive_5xx",
                  "enforcing_consecutive_gateway_failure", "enforcing_consecutive_local_origin_failure",
                  "enforcing_success_rate", "enforcing_local_origin_success_rate", "enforcing_failure_percentage",
                  "enforcing_failure_percentage_local_origin", "success_rate_minimum_hosts",
                  "success_rate_request_volume", "success_rate_stdev_factor", "failure_percentage_threshold",
                  "failure_percentage_minimum_hosts", "failure_percentage_request_volume", "max_ejection_percent",
                  "always_eject_one_host")
_ENVOY_OUTLIER_TIMES = ("interval", "base_ejection_time", "max_ejection_time", "max_ejection_time_jitter")


def _retry_on(m: Mapping, path: str = "retry.retry_on") -> tuple[str, list[int]]:
    """Envoy's retry_on tokens and retriable_status_codes for the retried outcomes at ``path``."""
    retry_on = m.v(path)
    if "error" in retry_on:
        missing = [o for o in REMOTE if o not in retry_on]
        if missing:
            m.note(f"{path}: {show(retry_on)}: Envoy's 5xx also retries {show(missing)} (resets, connect "
                   "failures, per-try timeouts and every 5xx)")
        return "5xx", []
    tokens = []
    if "connection" in retry_on:
        tokens += ["connect-failure", "reset"]
    statuses, _ = codes_for([o for o in retry_on if o in ("rejected", "shed")], HTTP_STATUS)
    if statuses:
        tokens.append("retriable-status-codes")
    if "timeout" in retry_on:
        m.note(f"{path}: timeout without error: Envoy retries a per-try timeout only under 5xx or "
               "gateway-error; not written")
    return ",".join(tokens), sorted(statuses)


def _budget_thresholds(m: Mapping, out: dict[str, Any], *, istio: bool = False) -> None:
    if not m.has("retry.budget"):
        if not istio:
            out["max_retries"] = UNLIMITED  # Envoy's default of 3 concurrent retries would be a budget
        return
    if m.raw("retry.budget.kind") != "concurrency":
        m.cannot("retry.budget", "Envoy's retry budget limits concurrent retries (budget_percent of active "
                 "requests, min_retry_concurrency); no token or ratio budget")
        return
    pct, least = m.v("retry.budget.budget_percent"), m.v("retry.budget.min_retry_concurrency")
    m.fixed("retry.budget", resolved(RetryConfig, "envoy")["budget"], "Envoy")
    if pct == 0 or istio:
        out["max_retries"] = least
        if istio and pct:
            m.note(f"retry.budget.budget_percent: {pct}: Istio has no retry_budget; written as "
                   f"connectionPool.http.maxRetries {least}")
    else:
        out["retry_budget"] = {"budget_percent": {"value": round(pct * 100, 9)}, "min_retry_concurrency": least}


def _route(m: Mapping, cluster: str) -> dict[str, Any]:
    route: dict[str, Any] = {"cluster": cluster}
    per_try = m.v("timeout")
    deadline = m.v("deadline")
    if m.has("retry"):
        route["timeout"] = seconds(deadline) if deadline else "0s"
        tokens, statuses = _retry_on(m)
        policy: dict[str, Any] = {"retry_on": tokens, "num_retries": m.v("retry.max_attempts") - 1}
        if statuses:
            policy["retriable_status_codes"] = statuses
        if per_try:
            policy["per_try_timeout"] = seconds(per_try)
        if m.v("retry.backoff.kind") != "exponential":
            m.note(f"retry.backoff.kind: {m.raw('retry.backoff.kind')}: Envoy backs off exponentially with full "
                   "jitter; written from base and cap")
        policy["retry_back_off"] = {"base_interval": seconds(m.v("retry.backoff.base")),
                                    "max_interval": seconds(m.v("retry.backoff.cap"))}
        lib = resolved(RetryConfig, "envoy")
        m.fixed("retry", {k: v for k, v in lib.items() if k != "budget"}, "Envoy")
        route["retry_policy"] = policy
    elif m.has("hedge") and not isinstance(m.raw("hedge.delay"), str) and m.raw("hedge.delay") > 0:
        _hedge(m, route)
    else:
        limit = min([t for t in (per_try, deadline) if t] or [0])
        route["timeout"] = seconds(limit) if limit else "0s"
        if m.has("hedge"):
            m.cannot("hedge", "Envoy hedges only when a per-try timeout fires (hedge_policy.hedge_on_per_try_timeout): "
                     "a fixed positive delay is needed")
    return route


def _hedge(m: Mapping, route: dict[str, Any]) -> None:
    """A hedge after a fixed delay: Envoy's per_try_timeout with hedge_on_per_try_timeout (the first try keeps
    running, a hedged retry on a per-try timeout is always allowed while retries are left)."""
    deadline, per_try, delay = m.raw("deadline"), m.raw("timeout"), m.raw("hedge.delay")
    tries = m.v("hedge.max_attempts")
    cap = m.v("hedge.max_attempts_cap")
    hedges = (tries if cap is None else min(tries, cap)) - 1
    if deadline:
        route["timeout"] = seconds(deadline)
    elif per_try:
        route["timeout"] = seconds(per_try + hedges * delay)  # when the last hedge's try would time out
    else:
        route["timeout"] = "0s"
    tokens, statuses = _retry_on(m, "hedge.non_fatal")
    policy: dict[str, Any] = {"retry_on": tokens, "num_retries": hedges,
                              "per_try_timeout": seconds(m.v("hedge.delay")),
                              "retry_back_off": {"base_interval": "0.001s", "max_interval": "0.001s"}}
    if statuses:
        policy["retriable_status_codes"] = statuses
    backoff = m.raw("hedge.backoff")
    envoy_like = (backoff is not None and backoff.get("kind") == "exponential" and backoff.get("multiplier") == 2
                  and m.raw("hedge.jitter.kind") == "full")
    if envoy_like:  # the hedge's backoff is Envoy's own retry back-off (preset envoy)
        policy["retry_back_off"] = {"base_interval": seconds(m.v("hedge.backoff.base")),
                                    "max_interval": seconds(m.v("hedge.backoff.cap"))}
        m.use("hedge.backoff", "hedge.jitter")
    if not m.v("hedge.hedge_on_failure"):
        m.note("hedge.hedge_on_failure: false: Envoy also retries after a non-fatal failure (retry_on)")
    elif not envoy_like:
        m.note("hedge.hedge_on_failure: true: Envoy sends the next try after a failure once its back-off has passed "
               "(written as 1 ms, its shortest)")
    if m.has("timeout"):
        m.cannot("timeout", "with an Envoy hedge the per_try_timeout is the hedging delay; each try then runs "
                 "until the route timeout" + ("" if deadline else f" (written as {route['timeout']}: when the "
                                              "last hedge would time out)"))
    m.fixed("hedge", {"cancel_losers": True}, "Envoy")
    route["retry_policy"] = policy
    route["hedge_policy"] = {"hedge_on_per_try_timeout": True}


def _outlier(m: Mapping, istio: bool = False) -> dict[str, Any] | None:
    if not m.has("outlier_detection"):
        return None
    if m.v("outlier_detection.kind") != "envoy":
        m.cannot("outlier_detection", "Linkerd's failure accrual has no Envoy equivalent")
        return None
    lib = resolved(OutlierConfig, "envoy")
    if istio:
        lib["enforcing_success_rate"] = 0  # Istio turns success-rate ejection off
        out = {"consecutive5xxErrors": m.v("outlier_detection.consecutive_5xx"),
               "consecutiveGatewayErrors": m.v("outlier_detection.consecutive_gateway_failure"),
               "interval": seconds(m.v("outlier_detection.interval")),
               "baseEjectionTime": seconds(m.v("outlier_detection.base_ejection_time")),
               "maxEjectionPercent": m.v("outlier_detection.max_ejection_percent"),
               "minHealthPercent": m.v("outlier_detection.healthy_panic_threshold"),
               "splitExternalLocalOriginErrors": m.v("outlier_detection.split_external_local_origin_errors"),
               "consecutiveLocalOriginFailures": m.v("outlier_detection.consecutive_local_origin_failure")}
        # Istio enforces the gateway-error rule only when consecutiveGatewayErrors is set
        if m.raw("outlier_detection.enforcing_consecutive_gateway_failure") == 0:
            del out["consecutiveGatewayErrors"]
        else:
            m.use("outlier_detection.enforcing_consecutive_gateway_failure")
        m.fixed("outlier_detection", lib, "Istio")
        return out
    out = {k: m.v(f"outlier_detection.{k}") for k in _ENVOY_OUTLIER}
    for k in _ENVOY_OUTLIER_TIMES:
        value = m.v(f"outlier_detection.{k}")
        if value is not None:
            out[k] = seconds(value)
    m.v("outlier_detection.healthy_panic_threshold")
    return out


def envoy(m: Mapping) -> str:
    """A cluster (circuit_breakers, retry_budget, outlier_detection) and a route (timeout, retry_policy)."""
    if not any(m.has(k) for k in ("retry", "timeout", "deadline", "bulkhead", "outlier_detection", "hedge")):
        raise NothingToExport("Envoy exports a retry policy, timeouts, a bulkhead, outlier detection or a hedge; "
                              "this call has none of them")
    name = m.instance
    thresholds: dict[str, Any] = {"priority": "DEFAULT"}
    if m.has("bulkhead"):
        thresholds["max_requests"] = m.v("bulkhead.max_concurrent")
        if m.v("bulkhead.kind") == "pool":
            thresholds["max_pending_requests"] = m.v("bulkhead.queue_size")
        else:
            thresholds["max_pending_requests"] = 0
            if m.v("bulkhead.max_wait"):
                m.note(f"bulkhead.max_wait: {m.raw('bulkhead.max_wait')}: Envoy's pending requests wait without a "
                       "time limit of their own (the route timeout); written as max_pending_requests 0")
    else:
        thresholds["max_requests"] = UNLIMITED
        thresholds["max_pending_requests"] = UNLIMITED
    if m.has("retry"):
        _budget_thresholds(m, thresholds)
    elif m.has("hedge"):
        thresholds["max_retries"] = UNLIMITED  # Envoy counts hedged tries as retries (default limit 3)
    cluster: dict[str, Any] = {"name": name, "circuit_breakers": {"thresholds": [thresholds]}}
    if m.has("connect_timeout"):  # Envoy's cluster connect_timeout (default 5 s): the upstream TCP connect
        cluster["connect_timeout"] = seconds(m.v("connect_timeout"))
        m.use("connect_timeout")
    outlier = _outlier(m)
    if outlier is not None:
        cluster["outlier_detection"] = outlier
        cluster["common_lb_config"] = {"healthy_panic_threshold": {
            "value": m.raw("outlier_detection.healthy_panic_threshold")}}
    route = {"name": name, "match": {"prefix": "/"}, "route": _route(m, name)}
    head = ("# Envoy v3: the cluster goes under static_resources.clusters, the route under a\n"
            "# route_config virtual_host's routes. Limits not set by simres are written as 4294967295\n"
            "# where Envoy would otherwise apply its defaults (1024 requests, 3 concurrent retries).\n")
    return head + yaml.safe_dump({"clusters": [cluster], "routes": [route]}, sort_keys=False)


def istio(m: Mapping) -> str:
    """A VirtualService (timeout, retries) and a DestinationRule (connectionPool, outlierDetection)."""
    if not any(m.has(k) for k in ("retry", "timeout", "deadline", "bulkhead", "outlier_detection")):
        raise NothingToExport("Istio exports a retry policy, timeouts, a bulkhead or outlier detection; "
                              "this call has none of them")
    host = m.instance
    http: dict[str, Any] = {"route": [{"destination": {"host": host}}]}
    per_try, deadline = m.v("timeout"), m.v("deadline")
    pool: dict[str, Any] = {}
    if m.has("retry"):
        if deadline:
            http["timeout"] = seconds(deadline)
        tokens, statuses = _retry_on(m)
        retries: dict[str, Any] = {"attempts": m.v("retry.max_attempts") - 1,
                                   "retryOn": ",".join([t for t in tokens.split(",") if t and
                                                        t != "retriable-status-codes"] + [str(s) for s in statuses])}
        if per_try:
            retries["perTryTimeout"] = seconds(per_try)
        http["retries"] = retries
        lib = resolved(RetryConfig, "envoy")
        m.fixed("retry", {k: v for k, v in lib.items() if k != "budget"},
                "Istio (Envoy's back-off of 25 ms to 250 ms with full jitter)")
        _budget_thresholds(m, pool, istio=True)
        if "max_retries" in pool:
            pool["maxRetries"] = pool.pop("max_retries")
    else:
        http["retries"] = {"attempts": 0}  # Istio retries twice by default
        limit = min([t for t in (per_try, deadline) if t] or [0])
        if limit:
            http["timeout"] = seconds(limit)
    if m.has("hedge"):
        m.cannot("hedge", "Istio has no hedging")
    if m.has("bulkhead"):
        pool["http2MaxRequests"] = m.v("bulkhead.max_concurrent")
        pending = m.v("bulkhead.queue_size") if m.v("bulkhead.kind") == "pool" else 0
        if m.raw("bulkhead.kind") == "semaphore" and m.v("bulkhead.max_wait"):
            m.note("bulkhead.max_wait: Istio's pending requests wait without a time limit of their own")
        if pending == 0:
            pending = 1
            m.note("bulkhead queue 0: Istio reads http1MaxPendingRequests 0 as unset (unlimited); written as 1")
        pool["http1MaxPendingRequests"] = pending
        m.fixed("bulkhead", resolved(BulkheadConfig, "envoy"), "Istio")
    policy: dict[str, Any] = {}
    if pool:
        policy["connectionPool"] = {"http": pool}
    if m.has("connect_timeout"):  # connectionPool.tcp.connectTimeout: the upstream TCP connect
        policy.setdefault("connectionPool", {})["tcp"] = {"connectTimeout": seconds(m.v("connect_timeout"))}
        m.use("connect_timeout")
    outlier = _outlier(m, istio=True)
    if outlier is not None:
        policy["outlierDetection"] = outlier
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": host},
          "spec": {"hosts": [host], "http": [http]}}
    docs = [vs]
    if policy:
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": host},
                     "spec": {"host": host, "trafficPolicy": policy}})
    return yaml.safe_dump_all(docs, sort_keys=False)


# ---------------------------------------------------------------------------- gRPC


def _codes(m: Mapping, path: str) -> list[str]:
    outcomes = m.v(path)
    codes, also = codes_for(outcomes, GRPC_CODE)
    if also:
        m.note(f"{path}: {show(also)} share a status code with {show(outcomes)} ({', '.join(codes)}); gRPC "
               "treats them alike")
    return codes


def _attempts(m: Mapping, path: str, n: int) -> int:
    if n > 5:
        m.note(f"{path}: {n}: gRPC caps maxAttempts at 5 (a larger value is treated as 5); written as 5")
        return 5
    return n


def grpc(m: Mapping) -> dict[str, Any]:
    """``methodConfig`` (timeout, retryPolicy or hedgingPolicy) and ``retryThrottling``."""
    if not any(m.has(k) for k in ("retry", "hedge", "deadline")):
        raise NothingToExport("gRPC's service config exports a retry policy, a hedging policy or a deadline; "
                              "this call has none of them")
    method: dict[str, Any] = {"name": [{"service": m.instance}]}
    if m.has("deadline"):
        method["timeout"] = seconds(m.v("deadline"))
    if m.has("timeout"):
        m.cannot("timeout", "gRPC's service config has no per-try timeout (the method timeout is the overall "
                 "deadline)")
    out: dict[str, Any] = {"methodConfig": [method]}
    budget_path = None
    if m.has("retry"):
        tries = m.v("retry.max_attempts")
        if tries < 2:
            m.note("retry.max_attempts: 1: a gRPC retryPolicy needs maxAttempts 2..5; no retryPolicy written")
        else:
            if m.v("retry.backoff.kind") != "exponential":
                m.note(f"retry.backoff.kind: {m.raw('retry.backoff.kind')}: gRPC backs off exponentially; "
                       "written from base, cap and multiplier")
            method["retryPolicy"] = {
                "maxAttempts": _attempts(m, "retry.max_attempts", tries),
                "initialBackoff": seconds(m.v("retry.backoff.base")),
                "maxBackoff": seconds(m.v("retry.backoff.cap")),
                "backoffMultiplier": m.v("retry.backoff.multiplier") if m.raw("retry.backoff.kind") == "exponential"
                else 1,
                "retryableStatusCodes": _codes(m, "retry.retry_on")}
            m.use("retry.backoff.multiplier")
            lib = resolved(RetryConfig, "grpc")
            m.fixed("retry", {k: v for k, v in lib.items() if k != "budget"}, "gRPC")
            budget_path = "retry.budget"
    if m.has("hedge"):
        delay = m.v("hedge.delay")
        if isinstance(delay, str):
            m.note(f"hedge.delay: {delay}: gRPC's hedgingDelay is fixed; written as 0.5s")
            delay = 0.5
        m.v("hedge.max_attempts_cap")
        method["hedgingPolicy"] = {"maxAttempts": _attempts(m, "hedge.max_attempts", m.v("hedge.max_attempts")),
                                   "hedgingDelay": seconds(max(delay, 0)),
                                   "nonFatalStatusCodes": _codes(m, "hedge.non_fatal")}
        if delay == -1:
            m.note("hedge.delay: -1 (only after a failure): gRPC has no such delay; written as 0s")
        lib = resolved(HedgeConfig, "grpc")
        m.fixed("hedge", {k: v for k, v in lib.items() if k != "budget"}, "gRPC")
        budget_path = "hedge.budget"
    if budget_path and m.has(budget_path):
        if m.v(f"{budget_path}.kind") == "grpc":
            out["retryThrottling"] = {"maxTokens": m.v(f"{budget_path}.max_tokens"),
                                      "tokenRatio": m.v(f"{budget_path}.token_ratio")}
            retried = m.raw("retry.retry_on" if budget_path == "retry.budget" else "hedge.non_fatal")
            counted = m.v(f"{budget_path}.failure_outcomes")
            if set(counted) != set(retried):
                m.note(f"{budget_path}.failure_outcomes: {show(counted)}: gRPC throttling counts exactly the retryable "
                       f"codes ({show(retried)})")
        else:
            m.cannot(budget_path, "gRPC's only budget is retryThrottling (maxTokens, tokenRatio)")
    return out
