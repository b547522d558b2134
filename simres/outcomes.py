"""The outcome vocabulary shared by policies, the model, metrics and reports.

Outcomes are plain ``str`` constants rather than an Enum: they sit on the per-request hot
path, end up as DataFrame categories, and compare fastest as interned strings.
"""

from __future__ import annotations

OK = "ok"
"""The call succeeded."""
DEGRADED = "degraded"
"""The call succeeded, but an optional downstream call failed and its fallback was used."""
ERROR = "error"
"""The server answered with an error reply (5xx)."""
TIMEOUT = "timeout"
"""The caller stopped waiting: a per-try timeout, a read timeout or the overall deadline fired."""
CONNECT_TIMEOUT = "connect_timeout"
"""The try did not reach the instance within the call's ``connect_timeout`` (a partition, a host
that drops packets): the caller gave up connecting and the server never sees the request.
Policies judge it as a ``connection`` failure, as urllib3 (the ``connect`` counter), botocore,
Envoy (``connect-failure``) and gRPC (``UNAVAILABLE``) do; the frames keep which it was."""
CONNECTION = "connection"
"""The connection was refused (crashed instance that refuses connections)."""
REJECTED = "rejected"
"""The server refused the request at once because its queue was full."""
SHED = "shed"
"""The server shed the request: by priority at admission, or for its queueing delay (queue-time limit, CoDel)."""
THROTTLED = "throttled"
"""The client's adaptive throttle rejected the request locally, before sending."""
BREAKER_OPEN = "breaker_open"
"""The client's circuit breaker rejected the try locally."""
BULKHEAD_FULL = "bulkhead_full"
"""The client's bulkhead had no free slot (and no wait, or the wait expired)."""
CANCELLED = "cancelled"
"""Work dropped by the server because its caller had already given up (deadline propagation)."""
UNFINISHED = "unfinished"
"""Still in flight when the simulation (including its drain period) ended."""

SUCCESS_OUTCOMES: frozenset[str] = frozenset({OK, DEGRADED})
"""Outcomes that count as a successful response for success rate and goodput."""

LOCAL_OUTCOMES: frozenset[str] = frozenset({THROTTLED, BREAKER_OPEN, BULKHEAD_FULL})
"""Outcomes decided by the caller itself: the try never left the client."""

RETRYABLE_KINDS: tuple[str, ...] = (TIMEOUT, CONNECTION, ERROR, REJECTED, SHED)
"""Remote failure kinds a retry policy may choose to retry on."""

REQUEST_OUTCOMES: tuple[str, ...] = (
    OK, DEGRADED, ERROR, TIMEOUT, CONNECT_TIMEOUT, CONNECTION, REJECTED, SHED, THROTTLED, BREAKER_OPEN,
    BULKHEAD_FULL, UNFINISHED,
)
ATTEMPT_OUTCOMES: tuple[str, ...] = (*REQUEST_OUTCOMES, CANCELLED)

PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
"""Priority classes, most important first (Google SRE criticality, the classic recipe)."""


def is_success(outcome: str) -> bool:
    """Whether ``outcome`` is a successful response (ok or degraded)."""
    return outcome in SUCCESS_OUTCOMES
