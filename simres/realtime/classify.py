"""Turning what a real call returned or raised into an outcome of :mod:`simres.outcomes`.

A classifier gets the exception a try raised or the value it returned and gives an
outcome, ``(outcome, retry_after)`` or ``(outcome, retry_after, retryable)``:
``retry_after`` is a server hint in seconds (None: none), ``retryable`` False means the
retry loop stops after this failure whatever ``retry_on`` says (a 404 or a 501 is a
failure for the breaker and refunds no budget token, but no library retries it).

- :func:`default_classify` (urllib aware): 429 -> rejected, 5xx -> error with its
  ``Retry-After``, timeouts, refused and reset connections; other 4xx count as success.
- :func:`http_classify`: as the libraries decide. 429 -> rejected (throttling), 500, 502,
  503, 504 -> error, with ``Retry-After`` (seconds or an HTTP date); a *raised* 4xx or any
  other 5xx (501, 505...) -> a failure that is not retried (pybreaker, Resilience4j and
  Polly count every exception as a failure; urllib3's forcelists and botocore retry none
  of them); a *returned* 4xx is a success, as no exception reached the library.
  urllib, requests and urllib3 responses and errors.
- :func:`aws_classify`: botocore's standard retry conditions (``retries/standard.py``)
  on ``ClientError`` and botocore's own exceptions, with ``x-amz-retry-after`` in
  milliseconds; anything else goes to :func:`http_classify`. :func:`aws_classify_2_0`:
  the same as mode 2.0 decides (botocore <= 1.43, the ``aws_standard_2_0`` preset).
"""

from __future__ import annotations

import email.utils
import time
import urllib.error
from collections.abc import Callable
from typing import Any

from simres.outcomes import (
    CONNECT_TIMEOUT,
    CONNECTION,
    ERROR,
    OK,
    REJECTED,
    TIMEOUT,
)

Classification = str | tuple[str, float | None] | tuple[str, float | None, bool]
"""An outcome, ``(outcome, retry_after)`` or ``(outcome, retry_after, retryable)``."""
Classifier = Callable[[Any], Classification]

TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
"""Status codes botocore (``TransientRetryableChecker``) and urllib3's usual forcelist retry."""
THROTTLING_STATUS = 429

AWS_THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException",
})
"""botocore 1.44 ``ThrottledRetryableChecker._THROTTLED_ERROR_CODES``."""
AWS_TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException",
                                 "PriorRequestNotComplete"})
"""botocore 1.44 ``TransientRetryableChecker._TRANSIENT_ERROR_CODES``."""


# ---------------------------------------------------------------------------- classify


def _header(headers: Any, name: str) -> Any:
    """A header from a Message, a (case-insensitive or plain) mapping; None if absent."""
    if headers is None:
        return None
    try:
        value = headers.get(name)
        if value is None:
            value = headers.get(name.lower())
    except (AttributeError, TypeError):
        return None
    return value


def _retry_after(headers: Any) -> float | None:
    """``Retry-After`` in seconds: delay-seconds, or an HTTP date (seconds from now)."""
    value = _header(headers, "Retry-After")
    if not isinstance(value, str | bytes):
        return None
    value = value.decode("latin-1") if isinstance(value, bytes) else value
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _from_status(code: int, headers: Any) -> tuple[str, float | None]:
    if code == 429:
        return REJECTED, _retry_after(headers)
    if code >= 500:
        return ERROR, _retry_after(headers)
    return OK, None


def default_classify(value: Any) -> tuple[str, float | None]:
    """Outcome (and Retry-After hint) of an exception or a returned value; see the module doc."""
    if isinstance(value, BaseException):
        if isinstance(value, urllib.error.HTTPError):
            return _from_status(value.code, value.headers)
        if isinstance(value, urllib.error.URLError):
            reason = value.reason
            if isinstance(reason, BaseException):
                return default_classify(reason)
            return CONNECTION, None
        if isinstance(value, TimeoutError):
            return TIMEOUT, None
        if isinstance(value, OSError):  # refused, reset, remote disconnected, unreachable
            return CONNECTION, None
        return ERROR, None
    status = getattr(value, "status", None)
    if not isinstance(status, int):
        status = getattr(value, "status_code", None)
    if isinstance(status, int):
        return _from_status(status, getattr(value, "headers", None))
    return OK, None


# ---------------------------------------------------------------------------- as the libraries


def _status_of(value: Any) -> tuple[int | None, Any]:
    """(status code, headers) of a response, or of an error that carries one."""
    for obj in (value, getattr(value, "response", None)):
        if obj is None or isinstance(obj, dict):
            continue
        for attr in ("status_code", "status", "code"):
            status = getattr(obj, attr, None)
            if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
                return status, getattr(obj, "headers", None)
    return None, None


def _by_status(status: int, headers: Any, raised: bool) -> Classification:
    if status == THROTTLING_STATUS:
        return REJECTED, _retry_after(headers)
    if status in TRANSIENT_STATUS:
        return ERROR, _retry_after(headers)
    if status >= 500 or (raised and status >= 400):
        return ERROR, None, False
    return OK, None


def _mro_names(value: Any) -> set[str]:
    return {cls.__name__ for cls in type(value).__mro__}


def http_classify(value: Any) -> Classification:
    """The outcome of a try as the HTTP client libraries and their breakers see it.

    See the module docstring: 429 -> ``rejected``; 500/502/503/504 -> ``error``, both
    with their ``Retry-After``; a raised 4xx, or any other 5xx, -> ``error`` that is not
    retried; a returned 4xx -> ``ok``. Read timeouts (``TimeoutError``, requests'
    ``ReadTimeout``, urllib3's ``ReadTimeoutError``) -> ``timeout``; connect timeouts and
    other connection errors -> ``connection``; any other exception -> ``error``.
    """
    if isinstance(value, BaseException):
        status, headers = _status_of(value)
        if status is not None:
            return _by_status(status, headers, raised=True)
        if isinstance(value, urllib.error.URLError):
            reason = value.reason
            return http_classify(reason) if isinstance(reason, BaseException) else (CONNECTION, None)
        names = _mro_names(value)
        if names & {"ConnectTimeout", "ConnectTimeoutError", "ConnectionError",
                    "NewConnectionError", "ProtocolError"}:
            return CONNECTION, None
        if isinstance(value, TimeoutError) or names & {"ReadTimeout", "ReadTimeoutError",
                                                       "Timeout", "TimeoutError"}:
            return TIMEOUT, None
        if isinstance(value, OSError):
            return CONNECTION, None
        return ERROR, None
    status, headers = _status_of(value)
    if status is not None:
        return _by_status(status, headers, raised=False)
    return OK, None


def _amz_retry_after(headers: Any) -> float | None:
    """botocore ``ExponentialBackoff._get_retry_after_delay``: ``int(ms) / 1000``, negative or bad ignored."""
    value = _header(headers, "x-amz-retry-after")
    if value is None:
        return None
    try:
        seconds = int(value) / 1000.0
    except (ValueError, OverflowError, TypeError):
        return None
    return None if seconds < 0 else seconds


def aws_classify(value: Any) -> Classification:
    """The outcome of a botocore call as botocore's standard retry mode decides (1.44).

    ``ClientError`` (duck-typed on its ``response`` dict): a throttling error code
    (``ThrottledRetryableChecker``) or a 429 -> ``rejected``; a transient error code or
    500/502/503/504 -> ``error``; both with ``x-amz-retry-after`` (milliseconds; the
    ``aws_standard`` presets clamp it to ``[t, t + 5]``). Any other ``ClientError`` (a 404,
    a 501, a 400 ``ValidationException``) -> ``error`` that is not retried and, being no
    2xx, refunds no quota token. botocore's ``ReadTimeoutError`` -> ``timeout``; its
    ``ConnectTimeoutError`` -> ``connect_timeout`` (the policies judge it a ``connection``
    failure, as in the simulation; a token bucket's ``timeout_cost`` applies to it, as
    botocore's mode 2.0 quota charges its ``_TIMEOUT_EXCEPTIONS``); the rest of its
    ``ConnectionError``/``HTTPClientError`` family -> ``connection``; any other
    ``BotoCoreError`` -> ``error``, not retried. Modeled retryable errors of an operation
    model and the service-specific checks (STS ``IDPCommunicationError``, DynamoDB CRC32)
    are not known here: pass your own classifier for them. Other values go to
    :func:`http_classify`; a returned value is a success.
    """
    if isinstance(value, BaseException):
        response = getattr(value, "response", None)
        if isinstance(response, dict) and ("Error" in response or "ResponseMetadata" in response):
            code = (response.get("Error") or {}).get("Code")
            meta = response.get("ResponseMetadata") or {}
            status = meta.get("HTTPStatusCode")
            headers = meta.get("HTTPHeaders") or {}
            if code in AWS_THROTTLING_CODES or status == THROTTLING_STATUS:
                return REJECTED, _amz_retry_after(headers)
            if code in AWS_TRANSIENT_CODES or status in TRANSIENT_STATUS:
                return ERROR, _amz_retry_after(headers)
            return ERROR, None, False
        if type(value).__module__.startswith("botocore"):
            names = _mro_names(value)
            if "ReadTimeoutError" in names:
                return TIMEOUT, None
            if "ConnectTimeoutError" in names:
                return CONNECT_TIMEOUT, None  # judged a connection failure; mode 2.0's quota charges it as a timeout
            if names & {"ConnectionError", "HTTPClientError"}:
                return CONNECTION, None
            return ERROR, None, False
        return http_classify(value)
    if isinstance(value, dict):
        return OK, None
    return http_classify(value)


def aws_classify_2_0(value: Any) -> Classification:
    """:func:`aws_classify` as botocore's standard mode 2.0 decides (botocore <= 1.43, the
    ``aws_standard_2_0`` preset): a 429 whose error code is neither a throttling nor a
    transient one is not retried (mode 2.1 added the rule that makes every 429 a throttling
    error). Everything else as :func:`aws_classify`."""
    response = getattr(value, "response", None) if isinstance(value, BaseException) else None
    if isinstance(response, dict) and ("Error" in response or "ResponseMetadata" in response):
        code = (response.get("Error") or {}).get("Code")
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if status == THROTTLING_STATUS and code not in AWS_THROTTLING_CODES and code not in AWS_TRANSIENT_CODES:
            return ERROR, None, False
    return aws_classify(value)
