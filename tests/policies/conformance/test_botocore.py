"""The ``aws_standard`` presets against botocore's standard retry mode (installed from PyPI).

botocore's own objects make the decisions: ``retries/standard.py`` ``RetryHandler`` with
``StandardRetryConditions``, ``ExponentialBackoff`` and ``RetryQuotaChecker`` over one
``quota.RetryQuota``, wired as ``register_retry_handler`` wires them, and
``release_retry_quota`` called as the ``after-call`` event calls it. Several calls are in
flight at once and share the quota, so acquisitions and refunds of different calls
interleave. Each retry decision gets the same U[0, 1) draw on both sides.

Outcomes map to what botocore sees: ``ok`` 200; ``error`` 500 ``InternalError``;
``timeout`` ``ReadTimeoutError``; ``connection`` ``EndpointConnectionError``;
``rejected`` 400 ``ThrottlingException``; ``shed`` 503 ``SlowDown`` (both throttling
errors). Error replies sometimes carry ``x-amz-retry-after`` (milliseconds).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.retries import quota, standard

from simres.outcomes import CONNECTION, ERROR, OK, REJECTED, SHED, TIMEOUT
from simres.policies import RetryConfig


class Response:
    """The two attributes botocore's retry code reads from an HTTP response."""

    def __init__(self, status_code: int, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.headers = headers


class Operation:
    """An operation model with no modeled errors (what the retry checkers read)."""

    def __init__(self, service: str) -> None:
        self.name = "GetItem"
        self.error_shapes: list[Any] = []
        self.service_model = type("ServiceModel", (), {"service_name": service})()


_REPLIES = {OK: (200, None), ERROR: (500, "InternalError"), REJECTED: (400, "ThrottlingException"),
            SHED: (503, "SlowDown")}


def botocore_handler(service: str, max_attempts: int, draws: list[float]) -> tuple[Any, Any, Any]:
    """(needs_retry handler, quota checker, quota) as ``register_retry_handler`` builds them."""
    adapter = standard.RetryEventAdapter()
    detector = standard.ThrottlingErrorDetector(adapter)
    the_quota = quota.RetryQuota()
    checker = standard.RetryQuotaChecker(the_quota, detector)
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=max_attempts),
            retry_backoff=standard.ExponentialBackoff(
                service_name=service, throttling_detector=detector, random=lambda: draws[0])),
        retry_event_adapter=adapter, retry_quota=checker, service_name=service)
    return handler, checker, the_quota


def run_one(seed: int, check: Any) -> None:
    gen = np.random.default_rng(seed)
    service = str(gen.choice(["s3", "dynamodb"]))
    override = int(gen.choice([0, 0, 1, 2, 5]))
    lib_max = override or standard._SERVICE_MAX_ATTEMPTS.get(service, standard.DEFAULT_MAX_ATTEMPTS)
    draws = [0.0]
    operation = Operation(service)
    handler, checker, the_quota = botocore_handler(service, lib_max, draws)
    preset = "aws_standard_dynamodb" if service == "dynamodb" else "aws_standard"
    cfg = RetryConfig(preset=preset, **({"max_attempts": override} if override else {}))
    budget = cfg.budget.build()  # type: ignore[union-attr]
    p_fail = float(gen.choice([0.2, 0.5, 0.8]))
    calls: list[dict[str, Any]] = []
    for _ in range(400):
        if not calls or (len(calls) < 8 and gen.random() < 0.3):
            budget.on_request(0.0)
            calls.append({"ctx": {}, "attempt": 1, "rc": cfg.new_call(), "cost": None})
            calls[-1]["rc"].on_try()
        call = calls[int(gen.integers(len(calls)))]
        failed = gen.random() < p_fail
        outcome = str(gen.choice([ERROR, ERROR, TIMEOUT, CONNECTION, REJECTED, SHED])) if failed else OK
        hint_ms = None
        if outcome in (ERROR, REJECTED, SHED) and gen.random() < 0.3:
            hint_ms = int(gen.choice([int(gen.integers(0, 30_000)), -5]))
        draws[0] = float(gen.random())
        # -- botocore
        response, exc = None, None
        if outcome == TIMEOUT:
            exc = ReadTimeoutError(endpoint_url="https://x")
        elif outcome == CONNECTION:
            exc = EndpointConnectionError(endpoint_url="https://x")
        else:
            status, code = _REPLIES[outcome]
            headers = {} if hint_ms is None else {"x-amz-retry-after": str(hint_ms)}
            parsed = {} if code is None else {"Error": {"Code": code}}
            response = (Response(status, headers), parsed)
        lib_delay = handler.needs_retry(response=response, attempts=call["attempt"], operation=operation,
                                        caught_exception=exc, request_dict={"context": call["ctx"]})
        if outcome == OK:
            checker.release_retry_quota(call["ctx"], response[0])  # type: ignore[index]
        # -- simres, in the driver's order
        is_retry = call["attempt"] > 1
        budget.on_try_end(0.0, outcome, is_retry, call["cost"])
        sim_delay = None
        if outcome != OK:
            hint = None if hint_ms is None else int(hint_ms) / 1000.0
            delay = call["rc"].next_delay(outcome, lambda: draws[0], hint)
            if delay is not None and budget.try_acquire_retry(0.0, outcome):
                sim_delay = delay
                call["cost"] = budget.last_cost
        same = lib_delay == sim_delay and the_quota.available_capacity == budget.tokens
        check(same, (seed, call["attempt"], outcome, hint_ms, lib_delay, sim_delay,
                     the_quota.available_capacity, budget.tokens))
        if lib_delay is None:
            calls.remove(call)
        else:
            call["attempt"] += 1
            call["rc"].on_try()


def test_botocore_standard_mode_with_a_shared_quota(tally: Any) -> None:
    t = tally("botocore standard mode vs retry preset aws_standard(_dynamodb)",
              f"botocore {version('botocore')}")
    for seed in range(30):
        run_one(seed, t.check)
    t.assert_clean()


def test_the_comparison_notices_mode_2_0(monkeypatch: Any) -> None:
    """The harness is sharp: the legacy (mode 2.0) preset diverges from current botocore."""
    bad = [0]

    def check(same: bool, what: Any) -> None:
        bad[0] += not same

    real = RetryConfig

    def legacy(*, preset: str, **kw: Any) -> RetryConfig:
        return real(preset="aws_standard_2_0", **kw)

    monkeypatch.setattr(f"{__name__}.RetryConfig", legacy)
    for seed in range(5):
        run_one(seed, check)
    assert bad[0] > 0
