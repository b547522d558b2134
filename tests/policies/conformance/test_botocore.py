"""The ``aws_standard`` presets against botocore's standard retry mode (installed from PyPI).

botocore's own objects make the decisions: ``retries/standard.py`` ``RetryHandler`` with
``StandardRetryConditions``, ``ExponentialBackoff`` and ``RetryQuotaChecker`` over one
``quota.RetryQuota``, wired as ``register_retry_handler`` wires them, and
``release_retry_quota`` called as the ``after-call`` event calls it. Several calls are in
flight at once and share the quota, so acquisitions and refunds of different calls
interleave. Each retry decision gets the same U[0, 1) draw on both sides.

Each try's result is a real botocore value: 200; 500 ``InternalError``; 503 ``SlowDown``
and 400 ``ThrottlingException`` (throttling errors); ``ReadTimeoutError``;
``EndpointConnectionError``; and the replies botocore does not retry, 404 ``NoSuchKey``,
501 ``NotImplemented`` and 400 ``ValidationException``. Error replies sometimes carry
``x-amz-retry-after`` (milliseconds). The simres side gets its outcome, hint and
retryability from :func:`simres.realtime.aws_classify` applied to the ``ClientError`` (or
exception) botocore would raise, and decides in the order of the real-clock driver's
``_settle``. botocore's ``after-call`` (``release_retry_quota``) runs once per call, with
the last response.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.retries import quota, standard

from simres.outcomes import CONNECTION, ERROR, OK, REJECTED, SHED, SUCCESS_OUTCOMES, TIMEOUT
from simres.policies import RetryConfig
from simres.realtime import aws_classify


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


NOT_FOUND, NOT_IMPLEMENTED, INVALID = "404", "501", "400"
_REPLIES = {OK: (200, None), ERROR: (500, "InternalError"), REJECTED: (400, "ThrottlingException"),
            SHED: (503, "SlowDown"), NOT_FOUND: (404, "NoSuchKey"),
            NOT_IMPLEMENTED: (501, "NotImplemented"), INVALID: (400, "ValidationException")}


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
        outcome = str(gen.choice([ERROR, ERROR, TIMEOUT, CONNECTION, REJECTED, SHED, NOT_FOUND,
                                  NOT_IMPLEMENTED, INVALID])) if failed else OK
        hint_ms = None
        if outcome not in (OK, TIMEOUT, CONNECTION) and gen.random() < 0.3:
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
        if lib_delay is None and response is not None:  # after-call: the call ends with a response
            checker.release_retry_quota(call["ctx"], response[0])
        # -- simres: what botocore would raise (or return), classified, in _settle's order
        if exc is None:
            status, headers = response[0].status_code, response[0].headers  # type: ignore[index]
            meta = {"HTTPStatusCode": status, "HTTPHeaders": headers}
            raised: Any = ({"ResponseMetadata": meta} if status < 300
                           else ClientError({**response[1], "ResponseMetadata": meta}, "GetItem"))  # type: ignore[index]
        else:
            raised = exc
        got = aws_classify(raised)
        sim_outcome, hint, retryable = (*got, True)[:3] if isinstance(got, tuple) else (got, None, True)
        is_retry = call["attempt"] > 1
        budget.on_try_end(0.0, sim_outcome, is_retry, call["cost"])
        sim_delay = None
        if sim_outcome not in SUCCESS_OUTCOMES and retryable:
            delay = call["rc"].next_delay(sim_outcome, lambda: draws[0], hint)
            if delay is not None and budget.try_acquire_retry(0.0, sim_outcome):
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


def test_the_comparison_notices_404_and_501_as_default_classify_sees_them(monkeypatch: Any) -> None:
    """A classifier that calls a raised 404 a success (refund) and retries a 501 diverges."""
    from simres.realtime import default_classify

    bad = [0]

    def check(same: bool, what: Any) -> None:
        bad[0] += not same

    monkeypatch.setattr(f"{__name__}.aws_classify", default_classify)
    for seed in range(5):
        run_one(seed, check)
    assert bad[0] > 0


def test_aws_classify_reads_botocore_errors() -> None:
    def client_error(status: int, code: str, headers: dict[str, str] | None = None) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"},
                            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}}},
                           "GetItem")

    assert aws_classify(client_error(400, "ThrottlingException", {"x-amz-retry-after": "1500"})) == (REJECTED, 1.5)
    assert aws_classify(client_error(503, "SlowDown")) == (REJECTED, None)
    assert aws_classify(client_error(400, "RequestLimitExceeded")) == (REJECTED, None)
    assert aws_classify(client_error(429, "Whatever", {"x-amz-retry-after": "-3"})) == (REJECTED, None)
    assert aws_classify(client_error(500, "InternalError", {"x-amz-retry-after": "x"})) == (ERROR, None)
    assert aws_classify(client_error(400, "RequestTimeout")) == (ERROR, None)
    assert aws_classify(client_error(404, "NoSuchKey")) == (ERROR, None, False)
    assert aws_classify(client_error(501, "NotImplemented")) == (ERROR, None, False)
    assert aws_classify(ReadTimeoutError(endpoint_url="https://x")) == (TIMEOUT, None)
    assert aws_classify(EndpointConnectionError(endpoint_url="https://x")) == (CONNECTION, None)
    from botocore.exceptions import ConnectTimeoutError, NoCredentialsError
    assert aws_classify(ConnectTimeoutError(endpoint_url="https://x")) == (CONNECTION, None)
    assert aws_classify(NoCredentialsError()) == (ERROR, None, False)
    assert aws_classify({"ResponseMetadata": {"HTTPStatusCode": 200}}) == (OK, None)
