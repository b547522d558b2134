"""Hedged requests: send a backup try when the first is slow; the first acceptable reply wins.

A hedged call sends its first try at once and, while no acceptable reply has come, one more
try every ``delay`` (counted from the latest send), up to ``max_attempts`` tries in all (the
first included, as gRPC's ``maxAttempts``). The delay is fixed (gRPC ``hedgingDelay``,
Polly ``Delay``) or a percentile of the call site's recent try latencies (Finagle's
``BackupRequestFilter`` sends its backup at the ``1 - maxExtraLoad`` percentile). Replies
are judged as gRPC and Polly judge them:

- a success wins: the call completes with it and the other tries are cancelled (or left
  running, ``cancel_losers: false``, which decides how much extra load hedging leaves);
- a *non-fatal* failure (gRPC ``nonFatalStatusCodes``, Polly ``ShouldHandle`` true) sends
  the next hedge at once (``hedge_on_failure``; the delay restarts from it), or, with no
  hedge left, waits for the tries still in flight; the call fails when none is left;
- any other outcome is *fatal*: the call ends with it and every other try is cancelled.

A retry budget (``budget``) must grant each hedge after the first try: gRPC's retry
throttling (``token_count > maxTokens / 2``, every non-fatal failure costs a token, every
success earns ``tokenRatio``), Finagle's backup budget (1 % of requests plus 10 per second).
Once a hedge is refused, the call sends no more (gRPC: "no further hedged requests").

:class:`HedgePolicy` is the per-call-site state (the latency window and the current
delay); :class:`HedgeCall` the state of one logical call. Neither has a clock, SimPy or a
random draw: the driver passes ``now`` and the latencies in, and the instance each try goes
to is the caller's balancer's choice.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, field_validator, model_serializer, model_validator

from simres.outcomes import CANCELLED, RETRYABLE_KINDS, SUCCESS_OUTCOMES, TIMEOUT
from simres.policies._base import PolicyModel
from simres.policies.backoff import BackoffConfig, Jitter, JitterConfig, Uniform, Waiter, waiter_params
from simres.policies.budget import BudgetConfig

INF = float("inf")
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")

WIN = "win"
"""Decision: the reply is a success; complete the call with it and cancel the others."""
FATAL = "fatal"
"""Decision: the reply is a fatal failure; end the call with it and cancel the others."""
HEDGE = "hedge"
"""Decision: a non-fatal failure; send the next hedge now (after ``hedge_after`` seconds)."""
WAIT = "wait"
"""Decision: a non-fatal failure and other tries are in flight; wait for them."""
FAIL = "fail"
"""Decision: a non-fatal failure, nothing in flight and nothing more to send; the call fails."""

_RECORDED = frozenset({*SUCCESS_OUTCOMES, TIMEOUT, CANCELLED})
"""Try outcomes whose latency enters the percentile window (Finagle ``shouldRecord``:
successes, timeouts and superseded tries; fast failures would pull the delay down)."""


def parse_delay(value: float | str) -> tuple[float | None, float | None]:
    """``(fixed seconds, None)`` or ``(None, percentile in (0, 100))`` for a ``delay`` value.

    A fixed delay of -1 means never by timer (Polly ``InfiniteTimeSpan``): a hedge is sent
    only after a non-fatal failure.

    Raises:
        ValueError: neither a delay >= 0 (or -1) nor ``pNN`` with 0 < NN < 100.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be seconds >= 0, -1 (never by timer) or a percentile like 'p95', got {value!r}")
    if isinstance(value, int | float):
        v = float(value)
        if v == -1.0:
            return INF, None
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"must be seconds >= 0, -1 (never by timer) or a percentile like 'p95', got {value!r}")
        return v, None
    m = _PERCENTILE.match(str(value).strip())
    if m is None or not 0 < float(m.group(1)) < 100:
        raise ValueError(f"must be seconds >= 0, -1 (never by timer) or a percentile like 'p95', got {value!r}")
    return None, float(m.group(1))


class HedgeConfig(PolicyModel):
    """Options of hedged requests (gRPC ``hedgingPolicy``, Polly hedging, Finagle backups)."""

    preset_group = "hedge"
    max_attempts: int = Field(
        default=2, ge=1,
        description="Tries per logical call, the original included (gRPC maxAttempts; Polly "
                    "MaxHedgedAttempts + 1; Finagle 2).")
    max_attempts_cap: int | None = Field(
        default=None, ge=1,
        description="A larger max_attempts is treated as this (gRPC's client-side cap of 5); "
                    "None = no cap.")
    delay: float | str = Field(
        default="p95",
        description="Seconds from the latest send to the next hedge (gRPC hedgingDelay, Polly "
                    "Delay; 0 = all at once; -1 = only after a non-fatal failure, Polly "
                    "InfiniteTimeSpan), or a percentile of recent try latencies such as 'p95' "
                    "or 'p99.9' (Finagle: p99 for maxExtraLoad 1 %).")
    window: int = Field(
        default=1000, ge=1,
        description="Percentile delay: how many recent try latencies the call site keeps (a "
                    "ring); successes, timeouts and cancelled losers are recorded.")
    refresh: float = Field(
        default=1.0, ge=0,
        description="Percentile delay: seconds between recomputations of the percentile "
                    "(Finagle 3); before the first one no hedge is sent by timer; 0 = "
                    "recompute for every call.")
    min_delay: float = Field(
        default=0.0, ge=0,
        description="Percentile delay: the shortest delay (Finagle 1 ms).")
    non_fatal: tuple[str, ...] = Field(
        default=RETRYABLE_KINDS,
        description="Failure outcomes after which hedging goes on (gRPC nonFatalStatusCodes, "
                    "Polly ShouldHandle); any other failure ends the call and cancels the "
                    "other tries.")
    hedge_on_failure: bool = Field(
        default=True,
        description="A non-fatal failure sends the next hedge at once (gRPC, Polly); false: "
                    "it only waits for the tries in flight, and a failure with nothing in "
                    "flight ends the call (Finagle returns the original's failure when it "
                    "comes before the backup).")
    cancel_losers: bool = Field(
        default=True,
        description="Cancel the other tries when the call completes (gRPC, Polly, Finagle "
                    "sendInterrupts); false leaves them running, so they still load the "
                    "server. A server drops cancelled work only with on_caller_gone: cancel.")
    budget: BudgetConfig | None = Field(
        default=None,
        description="Retry budget that must grant each hedge (gRPC retry throttling, "
                    "Finagle's backup budget); None = unlimited.")
    backoff: BackoffConfig | None = Field(
        default=None,
        description="A wait before each hedge, after its delay or a non-fatal failure, as a retry "
                    "waits (Envoy: a hedge on a per-try timeout takes the retry path with its "
                    "backoff); None = the hedge is sent at once.")
    jitter: Jitter = Field(default_factory=JitterConfig,
                           description="Jitter of that backoff (Envoy: full).")
    preset: str | None = Field(
        default=None, description="Name of a library preset whose values fill every field "
                                  "not given here.")

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: float | str) -> float | str:
        parse_delay(value)
        return value

    @field_validator("non_fatal")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [o for o in value if o not in RETRYABLE_KINDS]
        if bad:
            raise ValueError(f"must be among {list(RETRYABLE_KINDS)}, got {bad}")
        return tuple(dict.fromkeys(value))

    @property
    def attempts(self) -> int:
        """The effective most tries per call: ``max_attempts``, capped by ``max_attempts_cap``."""
        cap = self.max_attempts_cap
        return self.max_attempts if cap is None else min(self.max_attempts, cap)

    def build(self) -> HedgePolicy:
        """Fresh per-call-site state."""
        return HedgePolicy(self)

    @model_serializer(mode="wrap")
    def _drop_unset_backoff(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # No `backoff: null` (nor its unused jitter) in resolved scenarios: `show`, reports and sweep
        # fingerprints of hedges without a backoff are unchanged.
        out: dict[str, Any] = handler(self)
        if out.get("backoff", 0) is None:
            del out["backoff"]
            out.pop("jitter", None)
        return out

    @model_validator(mode="after")
    def _backoff_waits(self) -> HedgeConfig:
        if self.backoff is not None:
            waiter_params(self.backoff, self.jitter)  # a jitter that cannot work is an error now
        return self


class HedgePolicy:
    """One call site's hedging state: the recent try latencies and the delay they give.

    Deterministic: the window is a ring of the last ``window`` recorded latencies, and the
    percentile is the nearest rank (the smallest recorded value with at least p % of the
    values at or below it, as HdrHistogram's ``getValueAtPercentile``).
    """

    __slots__ = ("_fixed", "_n", "_next_refresh", "_pct", "_pos", "_ring", "_value", "_waits", "config",
                 "max_attempts")

    def __init__(self, config: HedgeConfig) -> None:
        self.config = config
        self._fixed, self._pct = parse_delay(config.delay)
        self.max_attempts = config.attempts
        self._ring: list[float] = []
        self._pos = 0
        self._n = config.window
        self._value = INF  # no hedge by timer before the first percentile (Finagle: Int.MaxValue)
        self._next_refresh: float | None = None
        self._waits = None if config.backoff is None else waiter_params(config.backoff, config.jitter)

    @property
    def tracks_latency(self) -> bool:
        """Whether the delay is a percentile (the driver then reports try latencies)."""
        return self._pct is not None

    def record(self, latency: float) -> None:
        """Add one try latency (seconds) to the window, replacing the oldest when full."""
        ring = self._ring
        if len(ring) < self._n:
            ring.append(latency)
        else:
            ring[self._pos] = latency
            self._pos = (self._pos + 1) % self._n

    def observe(self, outcome: str, latency: float) -> None:
        """A try ended with ``outcome`` after ``latency`` s: recorded for a percentile delay
        if it is a success, a timeout or a cancelled loser (Finagle's rule)."""
        if self._pct is not None and outcome in _RECORDED:
            self.record(latency)

    def percentile(self) -> float:
        """The configured percentile of the window now (INF when it is empty)."""
        ring = self._ring
        if not ring or self._pct is None:
            return INF
        values = sorted(ring)
        rank = max(1, math.ceil(self._pct / 100.0 * len(values) - 1e-9))
        return values[rank - 1]

    def delay(self, now: float) -> float:
        """Seconds from a send at ``now`` to the next hedge by timer (INF: none)."""
        if self._fixed is not None:
            return self._fixed
        cfg = self.config
        if cfg.refresh == 0:
            self._value = self.percentile()
        else:
            nxt = self._next_refresh
            if nxt is None:
                self._next_refresh = now + cfg.refresh  # the refresh timer starts with the site's first call
            elif now >= nxt:
                self._value = self.percentile()
                self._next_refresh = nxt + cfg.refresh * (math.floor((now - nxt) / cfg.refresh) + 1)
        v = self._value
        return v if v == INF else max(cfg.min_delay, v)

    def new_call(self) -> HedgeCall:
        """Fresh per-call state."""
        return HedgeCall(self.max_attempts, frozenset(self.config.non_fatal), self.config.hedge_on_failure,
                         self._waits)

    def __repr__(self) -> str:
        return f"HedgePolicy(delay={self.config.delay!r}, samples={len(self._ring)}, config={self.config!r})"


class HedgeCall:
    """The hedging state of one logical call: tries sent, tries in flight, whether to go on."""

    __slots__ = ("_max", "_non_fatal", "_on_failure", "_waiter", "hedge_after", "in_flight", "sent", "stopped")

    def __init__(self, max_attempts: int, non_fatal: frozenset[str], hedge_on_failure: bool,
                 waits: tuple[Any, ...] | None = None) -> None:
        self._waiter = None if waits is None else Waiter.from_params(waits)
        """The backoff before each hedge (None: sent at once); its index counts the hedges."""
        self._max = max_attempts
        self._non_fatal = non_fatal
        self._on_failure = hedge_on_failure
        self.sent = 0
        """Tries sent so far (the original included)."""
        self.in_flight = 0
        """Tries sent and not yet ended or cancelled."""
        self.stopped = False
        """No more hedges: a budget refused one, a pushback said do not retry, a gate refused."""
        self.hedge_after = 0.0
        """With a HEDGE decision: seconds to wait first (a server pushback, gRPC), else 0."""

    def may_send(self) -> bool:
        """Whether another try may be sent (attempts left and not stopped)."""
        return not self.stopped and self.sent < self._max

    def on_send(self) -> None:
        """Count a try that is being sent."""
        self.sent += 1
        self.in_flight += 1

    def on_gone(self) -> None:
        """A try in flight will not be judged: cancelled, or refused locally before sending."""
        self.in_flight -= 1

    def stop(self) -> None:
        """Send no more hedges for this call."""
        self.stopped = True

    @property
    def backs_off(self) -> bool:
        """Whether a hedge waits a backoff first (``backoff`` set)."""
        return self._waiter is not None

    def backoff(self, rng: Uniform) -> float:
        """The wait before the hedge now due, in seconds (0 without ``backoff``); one draw per hedge.

        Envoy's ``JitteredExponentialBackOffStrategy`` as its retries use it: the n-th hedge
        (or retry) of the call waits ``U[0, min(base * 2^(n-1), max))``.
        """
        w = self._waiter
        return 0.0 if w is None else w.next(rng)

    def on_result(self, outcome: str, retry_after: float | None = None, rng: Uniform | None = None) -> str:
        """A try ended with ``outcome`` (and maybe a server pushback); returns the decision.

        One of :data:`WIN`, :data:`FATAL`, :data:`HEDGE` (then ``hedge_after`` is the wait),
        :data:`WAIT` or :data:`FAIL`. A negative pushback stops hedging (gRPC: "no further
        hedged requests"); a pushback of n s sends the next hedge after n s. With ``backoff``
        the hedge after a failure waits the backoff too (``rng`` draws it; the longer wait wins).
        """
        self.in_flight -= 1
        if outcome in SUCCESS_OUTCOMES:
            return WIN
        if outcome not in self._non_fatal:
            return FATAL
        self.hedge_after = 0.0
        if retry_after is not None:
            if retry_after < 0:
                self.stopped = True
            else:
                self.hedge_after = float(retry_after)
        if self._on_failure and self.may_send():
            if self._waiter is not None and rng is not None:
                self.hedge_after = max(self.hedge_after, self.backoff(rng))
            return HEDGE
        return WAIT if self.in_flight > 0 else FAIL

    def __repr__(self) -> str:
        return f"HedgeCall(sent={self.sent}, in_flight={self.in_flight}, max_attempts={self._max})"


def check_hedge_stack(hedge: HedgeConfig | None, *, retry: object, bulkhead: object, limit: object) -> str | None:
    """What is wrong with ``hedge`` next to the call's other policies, or None.

    gRPC forbids a retryPolicy and a hedgingPolicy on one method; simres drives a hedged
    call on callbacks only, so a bulkhead (whose gate may wait) or a client-side limit is
    not supported with it yet.
    """
    if hedge is None:
        return None
    if retry is not None:
        return "hedge: give either retry or hedge, not both (gRPC allows only one of retryPolicy and hedgingPolicy)"
    if bulkhead is not None or limit is not None:
        return "hedge: not supported with a bulkhead or a limit on the same call"
    return None

__all__ = [
    "FAIL",
    "FATAL",
    "HEDGE",
    "WAIT",
    "WIN",
    "HedgeCall",
    "HedgeConfig",
    "HedgePolicy",
    "check_hedge_stack",
    "parse_delay",
]
