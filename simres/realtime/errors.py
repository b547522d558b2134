"""The errors :class:`~simres.realtime.Resilient` raises to its caller (local rejections and timeouts)."""

from __future__ import annotations

from simres.errors import SimresError


class BreakerOpenError(SimresError):
    """The circuit breaker rejected the call without contacting the dependency."""


class BulkheadFullError(SimresError):
    """The bulkhead had no free slot (and no wait, or the wait expired)."""


class AbandonedCallsError(BulkheadFullError):
    """Too many timed-out calls are still running in their threads (``max_abandoned``); never retried."""


class ConcurrencyLimitError(BulkheadFullError):
    """The adaptive concurrency limit had no permit free (``limit=``); a local rejection, never retried.

    The simulation records such a try as ``bulkhead_full`` (event ``limit_rejected``), so it
    is a :class:`BulkheadFullError` too.
    """


class ThrottledError(SimresError):
    """The adaptive throttle rejected the call locally."""


class DeadlineExceeded(SimresError, TimeoutError):
    """The overall deadline passed before a try could succeed."""


class AttemptTimeout(SimresError, TimeoutError):
    """A try took longer than the per-try timeout."""
