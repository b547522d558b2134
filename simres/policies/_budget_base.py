"""What every retry budget shares: the driver protocol (:class:`RetryBudget`), scopes and outcome checks.

How the driver calls a budget, for every logical call:

1. ``on_request(now)`` when the call starts (before its first try);
2. ``on_try_start(now, is_retry)`` when a try passes the local gates and is sent;
3. ``on_try_end(now, outcome, is_retry, sent=...)`` once for every try that ``on_request``
   or a granted ``try_acquire_retry`` started, including tries rejected locally (breaker,
   bulkhead, throttle: ``sent=False``) and a granted retry abandoned before it was sent;
4. after a failed try's ``on_try_end``, and only if the retry policy wants to retry,
   ``try_acquire_retry(now, outcome)``; ``False`` means give up.
"""

from __future__ import annotations

from typing import Literal

from simres.outcomes import RETRYABLE_KINDS

Scope = Literal["per_client", "shared"]

_SCOPE_DOC = ("per_client: each client instance has its own budget; shared: one budget for "
              "every client with this config (the driver decides what 'shared' spans).")
_PRESET_DOC = "Name of a library preset whose values fill every field not given here."


def _check_failure_outcomes(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [o for o in value if o not in RETRYABLE_KINDS]
    if bad:
        raise ValueError(f"failure_outcomes: must be among {list(RETRYABLE_KINDS)}, got {bad}")
    return value


class RetryBudget:
    """Base of the budget state classes (see the module docstring for the call protocol)."""

    __slots__ = ()

    def on_request(self, now: float) -> None:
        """A new logical call starts (its first try is about to be made)."""

    def try_acquire_retry(self, now: float, outcome: str) -> bool:  # pragma: no cover
        """May a retry follow a try that failed with ``outcome``? Consumes its cost if so."""
        raise NotImplementedError

    def on_try_start(self, now: float, is_retry: bool) -> None:
        """A try passed the local gates and is being sent (only the Envoy-exact concurrency
        budget needs this; the simulation and real-clock drivers call it for every try)."""

    def on_try_end(self, now: float, outcome: str, is_retry: bool,
                   retry_cost: float | None = None, *, sent: bool = True) -> None:
        """A try ended with ``outcome`` (success or not); ``is_retry``: not the first try.

        ``retry_cost`` is only used by the token bucket: what the retry acquired (the
        driver may remember ``last_cost`` right after ``try_acquire_retry``). ``sent``:
        the try reached the network (False for a local rejection or a retry abandoned in
        its backoff); only the Envoy-exact concurrency budget reads it.
        """

    @property
    def tokens(self) -> float:  # pragma: no cover
        """The budget's current balance, in the kind's own unit."""
        raise NotImplementedError

    @property
    def available(self) -> float:
        """How many more retries the budget would grant right now (ignoring time passing)."""
        return self.tokens
