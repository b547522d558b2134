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

from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.retries import quota, standard

from simres.outcomes import CONNECT_TIMEOUT, CONNECTION, ERROR, OK, REJECTED, TIMEOUT
from simres.realtime import aws_classify

from .botocore_standard import compare_simres, mode_2_0, mode_2_1, run_botocore, sequence


def botocore_handler(service: str, override: int, draws: list[float]) -> tuple[Any, Any, Any]:
    """(needs_retry handler, quota checker, quota) as ``register_retry_handler`` builds them."""
    max_attempts = override or standard._SERVICE_MAX_ATTEMPTS.get(service, standard.DEFAULT_MAX_ATTEMPTS)
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


def run_one(seed: int, check: Any, preset: Any = mode_2_1, classify: Any = aws_classify) -> None:
    """One randomised run of 400 tries through botocore and through simres, compared."""
    run = sequence(seed)
    compare_simres(run, run_botocore(run, botocore_handler), preset, check, classify)


def test_botocore_standard_mode_with_a_shared_quota(tally: Any) -> None:
    t = tally("botocore standard mode vs retry preset aws_standard(_dynamodb)",
              f"botocore {version('botocore')}")
    for seed in range(30):
        run_one(seed, t.check)
    t.assert_clean()


def test_the_comparison_notices_mode_2_0() -> None:
    """The harness is sharp: the legacy (mode 2.0) preset diverges from current botocore."""
    bad = [0]

    def check(same: bool, what: Any) -> None:
        bad[0] += not same

    for seed in range(5):
        run_one(seed, check, preset=mode_2_0)
    assert bad[0] > 0


def test_the_comparison_notices_404_and_501_as_default_classify_sees_them() -> None:
    """A classifier that calls a raised 404 a success (refund) and retries a 501 diverges."""
    from simres.realtime import default_classify

    bad = [0]

    def check(same: bool, what: Any) -> None:
        bad[0] += not same

    for seed in range(5):
        run_one(seed, check, classify=default_classify)
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
    assert aws_classify(ConnectTimeoutError(endpoint_url="https://x")) == (CONNECT_TIMEOUT, None)
    assert aws_classify(NoCredentialsError()) == (ERROR, None, False)
    assert aws_classify({"ResponseMetadata": {"HTTPStatusCode": 200}}) == (OK, None)
