"""What the botocore standard-mode conformance tests share: sequences, botocore's side, simres's side.

``test_botocore.py`` runs botocore's side in process, against the installed botocore (retry
mode 2.1); ``test_botocore_legacy.py`` runs the same side in a subprocess in which an older
botocore (mode 2.0) shadows the installed one (``_botocore_legacy_driver.py``). So the
three pieces are separate and talk in JSON-ready dicts:

- :func:`sequence` draws one randomised run up front: the service, a ``max_attempts``
  override, and per step the uniforms that open and pick a call, the try's result and
  the U[0, 1) draw both sides' backoff gets.
- :func:`run_botocore` feeds a run to botocore's ``RetryHandler`` and quota checker (as
  wired by a ``wire`` function of the botocore version at hand). It owns the calls in
  flight: up to :data:`MAX_IN_FLIGHT` share the quota, a call ends when botocore stops
  retrying it, and each step records which call tried, its attempt, botocore's wait (or
  None) and the quota left.
- :func:`compare_simres` replays botocore's record through a simres retry preset and its
  budget, call by call, in the order of the real-clock driver's ``_settle``, and checks
  every decision: same call attempt, same wait or stop, same quota balance.

Only the standard library, numpy and whichever ``botocore`` comes first on the path are
needed by the first two; simres is imported here too (it does not import botocore).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from simres.outcomes import CONNECT_TIMEOUT, CONNECTION, ERROR, OK, REJECTED, SHED, SUCCESS_OUTCOMES, TIMEOUT
from simres.policies import RetryConfig
from simres.realtime import aws_classify

MAX_IN_FLIGHT = 8
"""Calls in flight at once sharing one quota."""

STEPS_PER_RUN = 400
"""Tries per randomised run."""

NOT_FOUND, NOT_IMPLEMENTED, INVALID, TOO_MANY = "404", "501", "400", "429"
REPLIES: dict[str, tuple[int, str | None]] = {
    OK: (200, None), ERROR: (500, "InternalError"), REJECTED: (400, "ThrottlingException"),
    SHED: (503, "SlowDown"), NOT_FOUND: (404, "NoSuchKey"),
    NOT_IMPLEMENTED: (501, "NotImplemented"), INVALID: (400, "ValidationException"),
    TOO_MANY: (429, "UnrecognizedError")}
"""Status and error code of each reply a try can get (``OK`` has no error body)."""

FAILURES = [ERROR, ERROR, TIMEOUT, CONNECT_TIMEOUT, CONNECTION, REJECTED, SHED, NOT_FOUND, NOT_IMPLEMENTED, INVALID,
            TOO_MANY]
"""A failed try's result, drawn uniformly (a 500 twice as often). A 429 with a code that is
neither a throttling nor a transient one: mode 2.1 retries it as throttling, mode 2.0 not."""


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


def sequence(seed: int, steps: int = STEPS_PER_RUN) -> dict[str, Any]:
    """One randomised run, drawn before either side sees it (so it can go to a subprocess).

    ``max_attempts`` is 0 for "no override" (the mode's default). Per step: ``open`` (a
    new call starts if below 0.3 and fewer than :data:`MAX_IN_FLIGHT` are in flight, or
    if none is), ``pick`` (which call in flight tries), ``outcome``, ``hint_ms`` (an
    ``x-amz-retry-after`` header on an error reply, sometimes negative) and ``draw``.
    """
    gen = np.random.default_rng(seed)
    service = str(gen.choice(["s3", "dynamodb"]))
    override = int(gen.choice([0, 0, 1, 2, 5, 8]))
    p_fail = float(gen.choice([0.2, 0.5, 0.8]))
    out = []
    for _ in range(steps):
        opened, pick = float(gen.random()), float(gen.random())
        outcome = str(gen.choice(FAILURES)) if gen.random() < p_fail else OK
        hint_ms = None
        if outcome not in (OK, TIMEOUT, CONNECT_TIMEOUT, CONNECTION) and gen.random() < 0.3:
            hint_ms = int(gen.choice([int(gen.integers(0, 30_000)), -5]))
        out.append({"open": opened, "pick": pick, "outcome": outcome, "hint_ms": hint_ms,
                    "draw": float(gen.random())})
    return {"seed": seed, "service": service, "max_attempts": override, "steps": out}


def botocore_reply(step: dict[str, Any]) -> tuple[tuple[Response, dict[str, Any]] | None, Exception | None]:
    """(response, caught exception) as botocore's endpoint hands them to ``needs-retry``."""
    outcome, hint_ms = step["outcome"], step["hint_ms"]
    if outcome == TIMEOUT:
        return None, ReadTimeoutError(endpoint_url="https://x")
    if outcome == CONNECT_TIMEOUT:
        return None, ConnectTimeoutError(endpoint_url="https://x")
    if outcome == CONNECTION:
        return None, EndpointConnectionError(endpoint_url="https://x")
    status, code = REPLIES[outcome]
    headers = {} if hint_ms is None else {"x-amz-retry-after": str(hint_ms)}
    parsed = {} if code is None else {"Error": {"Code": code}}
    return (Response(status, headers), parsed), None


Wire = Callable[[str, int, list[float]], tuple[Any, Any, Any]]
"""``wire(service, max_attempts override or 0, draws)`` -> (handler, quota checker, quota);
the backoff reads its random number from ``draws[0]``."""


def run_botocore(run: dict[str, Any], wire: Wire) -> list[dict[str, Any]]:
    """botocore's decision at every step of ``run``, with its own objects doing the deciding.

    ``needs_retry`` is called as the endpoint's ``needs-retry`` event calls it, and
    ``release_retry_quota`` as ``after-call`` does: once per call, with the last response
    (a call that ends in an exception makes no ``after-call``).
    """
    draws = [0.0]
    handler, checker, the_quota = wire(run["service"], run["max_attempts"], draws)
    operation = Operation(run["service"])
    calls: list[dict[str, Any]] = []
    opened = 0
    record = []
    for step in run["steps"]:
        if not calls or (len(calls) < MAX_IN_FLIGHT and step["open"] < 0.3):
            calls.append({"id": opened, "ctx": {}, "attempt": 1})
            opened += 1
        call = calls[int(step["pick"] * len(calls))]
        draws[0] = step["draw"]
        response, exc = botocore_reply(step)
        delay = handler.needs_retry(response=response, attempts=call["attempt"], operation=operation,
                                    caught_exception=exc, request_dict={"context": call["ctx"]})
        if delay is None and response is not None:
            checker.release_retry_quota(call["ctx"], response[0])
        record.append({"call": call["id"], "attempt": call["attempt"], "delay": delay,
                       "quota": the_quota.available_capacity})
        if delay is None:
            calls.remove(call)
        else:
            call["attempt"] += 1
    return record


def client_result(step: dict[str, Any]) -> Any:
    """What the (installed) botocore client returns or raises for the step's try."""
    response, exc = botocore_reply(step)
    if exc is not None:
        return exc
    assert response is not None
    meta = {"HTTPStatusCode": response[0].status_code, "HTTPHeaders": response[0].headers}
    if response[0].status_code < 300:
        return {"ResponseMetadata": meta}
    return ClientError({**response[1], "ResponseMetadata": meta}, "GetItem")


def mode_2_1(service: str) -> str:
    """The retry preset that claims botocore's current standard mode (2.1) for ``service``."""
    return "aws_standard_dynamodb" if service == "dynamodb" else "aws_standard"


def mode_2_0(service: str) -> str:
    """The retry preset that claims standard mode 2.0 (the same for every service)."""
    return "aws_standard_2_0"


def compare_simres(run: dict[str, Any], record: list[dict[str, Any]], preset: Callable[[str], str],
                   check: Callable[[bool, Any], None], classify: Callable[[Any], Any] = aws_classify,
                   overrides: dict[str, Any] | None = None) -> None:
    """Replay botocore's ``record`` of ``run`` through simres and ``check`` every decision.

    ``preset(service)`` names the retry preset (``overrides`` change some of its fields,
    to show a one-rule change is noticed); its budget is the shared quota. The calls
    start and end as botocore's did; each try's result is classified by ``classify`` from
    the value the client would return or raise, then decided as ``_settle`` decides: the
    budget sees the try end, a retryable failure asks the retry policy for a wait, and the
    budget for a token.
    """
    override = run["max_attempts"]
    kw = {"max_attempts": override} if override else {}
    cfg = RetryConfig(preset=preset(run["service"]), **{**kw, **(overrides or {})})
    budget = cfg.budget.build()  # type: ignore[union-attr]
    calls: dict[int, dict[str, Any]] = {}
    for step, lib in zip(run["steps"], record, strict=True):
        call = calls.get(lib["call"])
        if call is None:
            budget.on_request(0.0)
            call = calls[lib["call"]] = {"attempt": 1, "rc": cfg.new_call(), "cost": None}
            call["rc"].on_try()
        got = classify(client_result(step))
        shown, hint, retryable = (*got, True)[:3] if isinstance(got, tuple) else (got, None, True)
        outcome = CONNECTION if shown == CONNECT_TIMEOUT else shown  # judged a connection failure
        budget.on_try_end(0.0, outcome, call["attempt"] > 1, call["cost"])
        delay = None
        if outcome not in SUCCESS_OUTCOMES and retryable:
            wait = call["rc"].next_delay(outcome, lambda draw=step["draw"]: draw, hint)
            if wait is not None and budget.try_acquire_retry(0.0, shown):  # priced by the try's own outcome
                delay = wait
                call["cost"] = budget.last_cost
        same = lib["attempt"] == call["attempt"] and lib["delay"] == delay and lib["quota"] == budget.tokens
        check(same, (run["seed"], lib["call"], lib["attempt"], step["outcome"], step["hint_ms"],
                     lib["delay"], delay, lib["quota"], budget.tokens))
        if lib["delay"] is None:
            del calls[lib["call"]]
        else:
            call["attempt"] += 1
            call["rc"].on_try()
