"""Turning what a real call returned or raised into an outcome of :mod:`simres.outcomes` (urllib aware)."""

from __future__ import annotations

import email.utils
import time
import urllib.error
from collections.abc import Callable
from typing import Any

from simres.outcomes import (
    CONNECTION,
    ERROR,
    OK,
    REJECTED,
    TIMEOUT,
)

Classification = str | tuple[str, float | None]
Classifier = Callable[[Any], Classification]


# ---------------------------------------------------------------------------- classify


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if value is None:
        return None
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
