"""Circuit breaker: stop calling a dependency that is failing, and probe until it recovers.

States: ``closed`` (calls flow, results are counted), ``open`` (calls are rejected at once
for ``open_for`` seconds) and ``half_open`` (a few calls probe the dependency). The move
from open to half-open happens lazily, when :meth:`CircuitBreaker.allow` is called after
the open deadline (see ``half_open_at`` below).

Trip rules, each mirroring a library:

- ``consecutive``: ``failure_threshold`` failures in a row (pybreaker ``fail_max``, Finagle);
- ``failure_rate``: failure rate over a window reaches ``threshold`` once ``minimum_calls``
  are in it (Resilience4j; Polly with a rolling window). Like Resilience4j, the slow-call
  rate is checked alongside it (``slow_threshold``; None disables it);
- ``slow_rate``: only the slow-call rate (Resilience4j ``slowCallRateThreshold``).

Half-open modes: ``permits`` (Resilience4j: admit ``half_open_permits`` calls, decide on
the failure rate of the first ``min(minimum_calls, half_open_permits)`` results),
``single_probe`` (Polly v8, Finagle: one probe, every other call rejected until it ends)
and ``all`` (pybreaker: admit everyone; a failure reopens, ``close_after_successes``
successes close).

A permit handed out by :meth:`CircuitBreaker.allow` is the state epoch. A result whose
permit is from an earlier epoch is *late* (the call started before the current state
began); it is ignored unless ``count_late_results``. Counted late results are handled by
the current state (``late_result_state: current``, Resilience4j and Polly; a late result
never changes an open breaker) or by the state that admitted the call (``admitting``,
pybreaker: a closed-state failure arriving while open restarts the open timer, a
half-open call's failure reopens a closed breaker, a closed-state success arriving in
half-open does not close it).

The open period ends at ``open_until``: the breaker half-opens on a call at or after it
(``half_open_at: deadline``, pybreaker and cockatiel) or strictly after it
(``after_deadline``, Resilience4j ``Instant.isAfter``). With ``half_open_trigger: timer``
(opossum's reset timer) it is half-open from the deadline on, whatever comes first: a
result arriving after the deadline is handled by the half-open state.

Library choices beyond these, each a named option whose default is the behaviour above:
``rate_rule`` (the inequality and its arithmetic), ``check_rate_on``, ``rate_denominator``
(opossum counts every call started), ``minimum_rps`` (cockatiel), ``close_window``
(reset, keep, or reset and count the closing probe), ``half_open_failure_counts``,
``half_open_waits`` (cockatiel: callers beyond the probe wait for its verdict; the driver
must pass ``can_wait=True`` and register a wake-up with :meth:`CircuitBreaker.wait`),
``unhandled`` and ``late_result_state: admitting_closed`` (cockatiel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from simres.errors import PolicyConfigError
from simres.outcomes import CANCELLED, LOCAL_OUTCOMES, RETRYABLE_KINDS, SUCCESS_OUTCOMES, UNFINISHED
from simres.policies._base import PolicyModel
from simres.policies.backoff import Uniform, draw
from simres.policies.windows import WindowConfig

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
BREAKER_STATES: tuple[str, ...] = (CLOSED, OPEN, HALF_OPEN)

WAIT = -1
"""What :meth:`CircuitBreaker.allow` returns, when asked with ``can_wait=True``, to a call
that must wait for the half-open verdict (``half_open_waits``)."""

Listener = Callable[[float, str, str, str], None]
"""``listener(now, old_state, new_state, reason)``, called on every transition."""

_IGNORED = frozenset(LOCAL_OUTCOMES | {CANCELLED, UNFINISHED})
_CODE = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}
_RULES = {"at_or_above": 0, "above": 1, "count_above": 2, "percent_above": 3}


def _sampling_duration_ms(size: float) -> int:
    """cockatiel's ``this.duration``: the slot width rounded to whole ms, times the slots."""
    duration_ms = round(size * 1000.0, 6)
    n = max(5, math.ceil(duration_ms / 1000))
    return math.floor(duration_ms / n + 0.5) * n


class BreakerConfig(PolicyModel):
    """Options of a circuit breaker."""

    preset_group = "breaker"
    trip: Literal["consecutive", "failure_rate", "slow_rate"] = Field(
        default="failure_rate",
        description="What opens the breaker: consecutive failures, the failure rate (and the "
                    "slow-call rate, as Resilience4j) over a window, or only the slow-call rate.")
    failure_threshold: int = Field(
        default=5, ge=1, description="Consecutive failures that open the breaker (consecutive).")
    threshold: float = Field(
        default=0.5, gt=0, le=1,
        description="Failure rate (0..1) at or above which the breaker opens; also the "
                    "half-open verdict threshold in permits mode.")
    window: WindowConfig = Field(default_factory=WindowConfig,
                                 description="The calls a rate is computed over.")
    minimum_calls: int = Field(
        default=100, ge=0,
        description="Calls in the window before a rate is evaluated (a count window uses "
                    "min(minimum_calls, size), as Resilience4j; opossum volumeThreshold). "
                    "A sampling window uses minimum_rps instead.")
    slow_call_duration: float = Field(
        default=60.0, gt=0,
        description="Seconds: a call that takes longer (success or failure) is slow.")
    slow_threshold: float | None = Field(
        default=1.0, gt=0, le=1,
        description="Slow-call rate (0..1) at or above which the breaker opens; None = "
                    "slow calls never trip it (Polly, pybreaker).")
    open_for: float = Field(default=60.0, ge=0,
                            description="Seconds the breaker stays open after tripping.")
    open_for_multiplier: float = Field(
        default=1.0, ge=1,
        description="Growth of the open duration per consecutive open (opens without a "
                    "close in between): open_for * multiplier**(k-1).")
    open_for_max: float | None = Field(
        default=None, gt=0, description="Seconds: cap of the growing open duration.")
    open_for_jitter: Literal["none", "equal"] = Field(
        default="none",
        description="equal: Finagle's equalJittered back-off: the first open lasts open_for, "
                    "the k-th h + U[0, h) with h = open_for * multiplier**(k-2), capped.")
    half_open: Literal["permits", "single_probe", "all"] = Field(
        default="permits",
        description="permits: admit half_open_permits calls (Resilience4j); single_probe: one "
                    "probe at a time (Polly, Finagle); all: admit everyone (pybreaker).")
    half_open_permits: int = Field(
        default=10, ge=1, description="Calls admitted in half-open (permits mode).")
    close_after_successes: int = Field(
        default=1, ge=1,
        description="single_probe and all modes: half-open successes that close the breaker "
                    "(pybreaker success_threshold); a failure reopens it at once.")
    half_open_at: Literal["deadline", "after_deadline"] = Field(
        default="deadline",
        description="deadline: a call at or after the end of the open period half-opens the "
                    "breaker (pybreaker, cockatiel, Polly); after_deadline: only strictly after "
                    "it (Resilience4j isAfter).")
    half_open_max_wait: float | None = Field(
        default=None, gt=0,
        description="Seconds in half-open without a verdict before reopening (Resilience4j "
                    "maxWaitDurationInHalfOpenState); None = wait for the results.")
    failure_outcomes: tuple[str, ...] = Field(
        default=("error", "timeout", "connection"),
        description="Outcomes that count as failures; other remote outcomes count as successes.")
    count_late_results: bool = Field(
        default=False,
        description="Count results of calls admitted before the current state began (the "
                    "libraries do); False ignores them.")
    late_result_state: Literal["current", "admitting", "admitting_closed"] = Field(
        default="current",
        description="Which state handles a counted late result: the current one (Resilience4j, "
                    "Polly, opossum), the one that admitted the call (pybreaker), or "
                    "admitting_closed (cockatiel): a closed-state call's result always goes to "
                    "the closed-state statistics and a trip opens a closed or half-open breaker "
                    "(an open one stays as it is); a half-open call's late result is ignored.")
    rate_rule: Literal["at_or_above", "above", "count_above", "percent_above"] = Field(
        default="at_or_above",
        description="How the closed-state failure rate meets threshold: at_or_above "
                    "failures/calls >= threshold (Resilience4j, Polly); above failures/calls > "
                    "threshold; count_above failures > threshold*calls (cockatiel); "
                    "percent_above failures/calls*100 > threshold*100 (opossum).")
    check_rate_on: Literal["auto", "failure", "every_result"] = Field(
        default="auto",
        description="When the closed-state rate is checked: auto (after a failure or slow call "
                    "for a rolling window, as Polly; after every result otherwise), failure "
                    "(cockatiel, opossum) or every_result.")
    rate_denominator: Literal["results", "calls_started"] = Field(
        default="results",
        description="results: the rate is over the results in the window (closed state only); "
                    "calls_started (opossum, time windows): over every call asked of the breaker "
                    "(admitted or rejected, in any state), with failures counted in any state.")
    minimum_rps: float | None = Field(
        default=None, gt=0,
        description="Sampling window: the rate is checked once the ring holds at least "
                    "duration_ms * minimum_rps / 1000 results (cockatiel minimumRps); None = "
                    "cockatiel's default, 5 / threshold per second.")
    close_window: Literal["reset", "keep", "reset_then_probe"] = Field(
        default="reset",
        description="What closing does to the closed-state statistics: reset (Resilience4j, "
                    "Polly, pybreaker), keep (opossum), or reset_then_probe: reset, then count "
                    "the successful probe (cockatiel SamplingBreaker).")
    half_open_failure_counts: bool = Field(
        default=False,
        description="A failed half-open probe is also counted in the closed-state statistics "
                    "(cockatiel: breaker.failure(HalfOpen)).")
    half_open_waits: bool = Field(
        default=False,
        description="single_probe mode: calls beyond the probe wait for its verdict and then "
                    "try again (cockatiel) instead of being rejected; in the simulation only "
                    "(the real-time wrappers reject them).")
    half_open_trigger: Literal["call", "timer"] = Field(
        default="call",
        description="call: the breaker half-opens on the first call after the open period "
                    "(lazily); timer: at the deadline itself (opossum's reset timer), so a "
                    "result arriving later is handled as half-open.")
    unhandled: Literal["success", "skip_when_closed"] = Field(
        default="success",
        description="Remote outcomes that are neither failures nor successes (unhandled "
                    "errors): success counts them as successes; skip_when_closed (cockatiel) "
                    "neither counts them nor resets in closed, and counts them as a success "
                    "in half-open.")
    scope: Literal["per_client", "shared"] = Field(
        default="per_client",
        description="per_client: one breaker per client instance; shared: one for every "
                    "client with this config.")
    preset: str | None = Field(
        default=None,
        description="Name of a library preset whose values fill every field not given here.")

    @field_validator("failure_outcomes")
    @classmethod
    def _known_outcomes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [o for o in value if o not in RETRYABLE_KINDS]
        if bad:
            raise ValueError(f"failure_outcomes: must be among {list(RETRYABLE_KINDS)}, got {bad}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> BreakerConfig:
        if self.open_for_max is not None and self.open_for_max < self.open_for:
            raise ValueError(
                f"open_for_max: must be >= open_for ({self.open_for}), got {self.open_for_max}")
        if self.trip == "slow_rate" and self.slow_threshold is None:
            raise ValueError("slow_threshold: trip 'slow_rate' needs a slow_threshold, got None")
        kind = self.window.kind
        if self.rate_denominator == "calls_started" and (kind != "time" or self.trip == "consecutive"):
            raise ValueError("rate_denominator: calls_started needs a rate trip over a time window, "
                             f"got trip {self.trip!r} with window {kind!r}")
        if self.minimum_rps is not None and kind != "sampling":
            raise ValueError(f"minimum_rps: only a sampling window uses it, got window {kind!r}")
        if kind == "sampling" and self.trip == "slow_rate":
            raise ValueError("trip: a sampling window counts no slow calls, got 'slow_rate'")
        if self.rate_denominator == "calls_started" and self.late_result_state != "current":
            raise ValueError("late_result_state: calls_started counts results in the current "
                             f"state, got {self.late_result_state!r}")
        if self.half_open_waits and self.half_open != "single_probe":
            raise ValueError(f"half_open_waits: needs half_open 'single_probe', got {self.half_open!r}")
        return self

    def minimum_window_calls(self) -> float:
        """Results the closed-state window must hold before a rate is checked: a count
        window's min(minimum_calls, size) (Resilience4j), a sampling window's
        duration_ms * minimum_rps / 1000 in cockatiel's arithmetic, else minimum_calls."""
        win = self.window
        if win.kind == "count":
            return min(self.minimum_calls, int(win.size))
        if win.kind == "sampling":
            duration_ms = _sampling_duration_ms(float(win.size))
            rpms = self.minimum_rps / 1000 if self.minimum_rps else 5 / (self.threshold * 1000)
            return duration_ms * rpms
        return self.minimum_calls

    def build(self, listener: Listener | None = None, *,
              rng: np.random.Generator | Uniform | None = None) -> CircuitBreaker:
        """Fresh breaker state; ``rng`` is needed only for ``open_for_jitter: equal``."""
        return CircuitBreaker(self, listener=listener, rng=rng)


class CircuitBreaker:
    """The state of one breaker; see the module docstring for the rules."""

    __slots__ = (
        "_admitting",
        "_close_window",
        "_closed_adm",
        "_count_calls",
        "_epoch_state",
        "_eval_on_failure_only",
        "_fail",
        "_ho_fail",
        "_ho_fail_counts",
        "_ho_needed",
        "_ho_ok",
        "_ho_results",
        "_ho_since",
        "_ho_slow",
        "_ho_taken",
        "_late",
        "_listener",
        "_min_calls",
        "_mode",
        "_ok_needed",
        "_opens_in_row",
        "_pct",
        "_permits",
        "_probe_busy",
        "_rng",
        "_rule",
        "_skip_unhandled",
        "_slow_dur",
        "_slow_thr",
        "_streak",
        "_strict",
        "_threshold",
        "_timer",
        "_trip",
        "_waiters",
        "_waits",
        "_window",
        "config",
        "epoch",
        "open_until",
        "opened_count",
        "rejected_count",
        "state",
        "transitions",
    )

    def __init__(self, config: BreakerConfig, listener: Listener | None = None,
                 rng: Uniform | None = None) -> None:
        if config.open_for_jitter == "equal" and rng is None:
            raise PolicyConfigError("rng: open_for_jitter 'equal' needs an rng passed to build()")
        self.config = config
        self._listener = listener
        self._rng = rng
        self._trip = config.trip
        self._threshold = config.threshold
        self._slow_thr = config.slow_threshold
        self._slow_dur = config.slow_call_duration
        self._fail = frozenset(config.failure_outcomes)
        self._late = config.count_late_results
        self._admitting = config.count_late_results and config.late_result_state == "admitting"
        self._closed_adm = config.late_result_state == "admitting_closed"
        self._rule = _RULES[config.rate_rule]
        self._pct = round(config.threshold * 100.0, 9)
        """The threshold as the percentage opossum is given (percent_above)."""
        self._count_calls = config.rate_denominator == "calls_started"
        self._close_window = config.close_window
        self._ho_fail_counts = config.half_open_failure_counts
        self._waits = config.half_open_waits
        self._waiters: list[Callable[[], None]] = []
        self._timer = config.half_open_trigger == "timer"
        self._skip_unhandled = config.unhandled == "skip_when_closed"
        self._epoch_state = bytearray([0])
        """The state of every epoch so far (admitting mode reads a permit's state from it)."""
        self._strict = config.half_open_at == "after_deadline"
        self._ok_needed = config.close_after_successes
        self._ho_ok = 0
        self._mode = config.half_open
        self._permits = config.half_open_permits
        self._ho_needed = min(config.minimum_calls, config.half_open_permits)
        win = config.window
        self._min_calls = config.minimum_window_calls()
        check = config.check_rate_on
        self._eval_on_failure_only = check == "failure" or (check == "auto" and win.kind == "rolling")
        self._window = win.build() if config.trip != "consecutive" else None
        self.state = CLOSED
        """closed, open or half_open."""
        self.epoch = 0
        """Incremented on every transition; permits carry the epoch they were issued in."""
        self.open_until = 0.0
        """When the current open period ends (meaningful while open)."""
        self.opened_count = 0
        self.transitions = 0
        self.rejected_count = 0
        self._streak = 0
        self._opens_in_row = 0
        self._ho_taken = 0
        self._ho_results = 0
        self._ho_fail = 0
        self._ho_slow = 0
        self._ho_since = 0.0
        self._probe_busy = False

    # ------------------------------------------------------------------ the driver's API

    def allow(self, now: float, can_wait: bool = False) -> int | None:
        """May a call start now? Returns a permit to pass back, or None to reject.

        With ``half_open_waits`` and ``can_wait`` (the simulated driver), a call beyond the
        half-open probe gets :data:`WAIT`: it registers a wake-up with :meth:`wait` and asks
        again when the probe's verdict is in. Without ``can_wait`` it is rejected.
        """
        if self._count_calls:
            self._window.record_call(now)  # type: ignore[union-attr]
        state = self.state
        if state == CLOSED:
            return self.epoch
        if state == OPEN:
            if now < self.open_until or (self._strict and now == self.open_until):
                self.rejected_count += 1
                return None
            self._to(self.open_until if self._timer else now, HALF_OPEN, "open_elapsed")
        elif (self.config.half_open_max_wait is not None
              and now - self._ho_since >= self.config.half_open_max_wait):
            self._open(now, "half_open_timeout")
            self.rejected_count += 1
            return None
        mode = self._mode
        if mode == "permits":
            if self._ho_taken < self._permits:
                self._ho_taken += 1
                return self.epoch
        elif mode == "single_probe":
            if not self._probe_busy:
                self._probe_busy = True
                return self.epoch
            if self._waits and can_wait:
                return WAIT
        else:
            return self.epoch
        self.rejected_count += 1
        return None

    def wait(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` when the current half-open verdict is in (or the probe is given
        back); the waiting call then asks :meth:`allow` again. FIFO, as cockatiel's
        callers awaiting the half-open decision."""
        self._waiters.append(wake)

    def on_result(self, now: float, permit: int, outcome: str, duration: float) -> None:
        """Record the result of a permitted call that took ``duration`` seconds."""
        if outcome in _IGNORED:
            self.release(permit)
            return
        if self._timer and self.state == OPEN and (
                now > self.open_until or (now == self.open_until and not self._strict)):
            self._to(self.open_until, HALF_OPEN, "open_elapsed")
        late = permit != self.epoch
        if late and not self._late:
            return
        failed = outcome in self._fail
        slow = duration > self._slow_dur
        unhandled = self._skip_unhandled and not failed and outcome not in SUCCESS_OUTCOMES
        if self._closed_adm:
            self._closed_admitted_result(now, permit, failed, slow, unhandled)
            return
        if self._admitting:
            self._admitted_result(now, permit, failed, slow)
            return
        if self._count_calls:
            self._window.record_failure(now, failed, slow)  # type: ignore[union-attr]
        state = self.state
        if state == CLOSED:
            if unhandled:
                return
            self._closed_result(now, failed, slow)
        elif state == HALF_OPEN:
            self._half_open_result(now, failed, slow)
        # open: a result never changes an open breaker

    def release(self, permit: int) -> None:
        """Give back a permit whose call produced no result (e.g. cancelled before sending)."""
        if permit != self.epoch or self.state != HALF_OPEN:
            return
        if self._mode == "permits":
            if self._ho_taken > 0:
                self._ho_taken -= 1
        elif self._mode == "single_probe":
            self._probe_busy = False
            self._wake()

    # ------------------------------------------------------------------ inspection

    def counts(self, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) in the closed-state window; for the consecutive rule,
        (0, the current failure streak, 0)."""
        if self._window is None:
            return 0, self._streak, 0
        return self._window.counts(now)

    def evidence(self, now: float, new: str, reason: str) -> dict[str, object]:
        """What a transition to ``new`` for ``reason`` decided on, as flat fields for the
        decision log: the closed-state window's counts, the rate and the rule (rate trips),
        the failure streak (consecutive trip), the half-open results (a half-open verdict)
        and the open duration chosen. Call it from the listener: it reads the state the
        transition left (an opening keeps the window; only closing resets it) and reads the
        window only for a rate trip, whose check has just read it at the same ``now``."""
        cfg = self.config
        ev: dict[str, object] = {}
        if reason in ("failure_rate", "slow_rate"):
            total, failures, slows = self._window.counts(now)  # type: ignore[union-attr]
            ev.update(calls=total, failures=failures, slow_calls=slows,
                      failure_rate=failures / total if total else None,
                      slow_rate=slows / total if total else None,
                      threshold=cfg.threshold, slow_threshold=cfg.slow_threshold, rule=cfg.rate_rule,
                      window=cfg.window.kind, window_size=float(cfg.window.size),
                      minimum_calls=self._min_calls, slow_call_duration=cfg.slow_call_duration)
        elif reason == "consecutive_failures":
            ev.update(streak=self._streak, failure_threshold=cfg.failure_threshold)
        elif reason.startswith("half_open") and reason != "half_open_timeout":
            n = self._ho_results
            ev.update(probes=n, failures=self._ho_fail, slow_calls=self._ho_slow,
                      failure_rate=self._ho_fail / n if n else None, threshold=cfg.threshold,
                      slow_threshold=cfg.slow_threshold, needed=self._ho_needed)
        elif reason in ("probe_failed", "probe_succeeded"):
            ev.update(close_after_successes=self._ok_needed)
        elif reason == "half_open_timeout":
            ev.update(half_open_max_wait=cfg.half_open_max_wait)
        if new == OPEN:
            ev.update(open_for=self.open_until - now, open_until=self.open_until,
                      consecutive_opens=self._opens_in_row)
        return ev

    @property
    def consecutive_failures(self) -> int:
        """The current run of failures (consecutive trip rule)."""
        return self._streak

    @property
    def consecutive_opens(self) -> int:
        """Opens since the breaker was last closed (drives the open-duration growth)."""
        return self._opens_in_row

    # ------------------------------------------------------------------ rules

    def _closed_result(self, now: float, failed: bool, slow: bool) -> None:
        reason = self._closed_trip(now, failed, slow)
        if reason is not None:
            self._open(now, reason)

    def _closed_trip(self, now: float, failed: bool, slow: bool) -> str | None:
        """Count one result in the closed-state statistics; the reason to open, if any."""
        window = self._window
        if window is None:  # consecutive
            if failed:
                self._streak += 1
                if self._streak >= self.config.failure_threshold:
                    return "consecutive_failures"
            else:
                self._streak = 0
            return None
        if not self._count_calls:
            window.record(now, failed, slow)
        if self._eval_on_failure_only and not (failed or slow):
            return None
        total, failures, slows = window.counts(now)
        if total < self._min_calls:
            return None
        if self._trip == "failure_rate":
            if self._rule == 0:
                if (failures / total >= self._threshold) if total else failures > 0:
                    return "failure_rate"
            elif self._rate_exceeded(failures, total):
                return "failure_rate"
        if self._slow_thr is not None and total and slows / total >= self._slow_thr:
            return "slow_rate"
        return None

    def _rate_exceeded(self, failures: int, total: int) -> bool:
        """The failure-rate rules other than ``at_or_above``, in each library's arithmetic."""
        rule = self._rule
        if rule == 2:  # cockatiel: `currentFailures > threshold * total`
            return failures > self._threshold * total
        if total == 0:  # opossum: failures / 0 is Infinity (calls rotated out of the window)
            return failures > 0
        if rule == 1:
            return failures / total > self._threshold
        return failures / total * 100 > self._pct  # opossum: errorRate > errorThresholdPercentage

    def _closed_admitted_result(self, now: float, permit: int, failed: bool, slow: bool,
                                unhandled: bool) -> None:
        """cockatiel: a call admitted while closed reports to the closed-state statistics
        whatever the state now (``breaker.success/failure(CircuitState.Closed)``), and a trip
        opens a closed or half-open breaker (``open()`` returns early when already open); a
        half-open call's result counts only in the half-open state that admitted it."""
        admitted = self._epoch_state[permit]
        if admitted == 0:
            if unhandled:
                return  # an unhandled error is rethrown before the breaker hears of it
            reason = self._closed_trip(now, failed, slow)
            if reason is not None and self.state != OPEN:
                self._open(now, reason)
        elif admitted == 2 and permit == self.epoch:
            self._half_open_result(now, failed, slow)

    def _admitted_result(self, now: float, permit: int, failed: bool, slow: bool) -> None:
        """pybreaker: the state that admitted the call handles its result, whatever the
        breaker's state now; the failure streak counts every result (any success resets it)."""
        admitted = self._epoch_state[permit]
        if admitted == 0:  # closed
            if self._window is None:
                if failed:
                    self._streak += 1
                    if self._streak >= self.config.failure_threshold:
                        self._open(now, "consecutive_failures")
                else:
                    self._streak = 0
                return
            self._closed_result(now, failed, slow)
        elif admitted == 2:  # half-open
            if self._mode == "permits":
                if permit == self.epoch:
                    self._half_open_result(now, failed, slow)
                return
            if failed:
                self._streak += 1
            else:
                self._streak = 0
            self._half_open_result(now, failed, slow)

    def _half_open_result(self, now: float, failed: bool, slow: bool) -> None:
        if self._mode != "permits":
            if failed:
                if self._ho_fail_counts:
                    if self._window is None:
                        self._streak += 1
                    else:
                        self._window.record(now, True, slow)
                self._open(now, "probe_failed")
            else:
                self._ho_ok += 1
                if self._ho_ok >= self._ok_needed:
                    self._to(now, CLOSED, "probe_succeeded")
                else:
                    self._probe_busy = False  # the next probe may start
            return
        self._ho_results += 1
        self._ho_fail += failed
        self._ho_slow += slow
        n = self._ho_results
        if n < self._ho_needed:
            return
        if self._trip != "slow_rate" and self._ho_fail / n >= self._threshold:
            self._open(now, "half_open_failure_rate")
        elif self._slow_thr is not None and self._ho_slow / n >= self._slow_thr:
            self._open(now, "half_open_slow_rate")
        else:
            self._to(now, CLOSED, "half_open_recovered")

    def _open_duration(self) -> float:
        cfg = self.config
        k = self._opens_in_row
        top = math.inf if cfg.open_for_max is None else cfg.open_for_max
        mult = cfg.open_for_multiplier
        try:
            if cfg.open_for_jitter == "equal":
                if k <= 1:
                    return min(top, cfg.open_for)
                half = cfg.open_for * mult ** (k - 2)
                if half >= top:
                    return top
                return min(top, half + draw(self._rng) * half)  # type: ignore[arg-type]
            return min(top, cfg.open_for * mult ** (k - 1))
        except OverflowError:
            return top

    def _open(self, now: float, reason: str) -> None:
        self._opens_in_row += 1
        self.opened_count += 1
        self.open_until = now + self._open_duration()
        self._to(now, OPEN, reason)

    def _to(self, now: float, new: str, reason: str) -> None:
        old = self.state
        self.state = new
        self.epoch += 1
        self._epoch_state.append(_CODE[new])
        self._ho_ok = 0
        self.transitions += 1
        if new == CLOSED:
            self._opens_in_row = 0
            keep = self._close_window
            if keep != "keep":
                self._streak = 0
                if self._window is not None:
                    self._window.reset()
                    if keep == "reset_then_probe":
                        self._window.record(now, False, False)
        elif new == HALF_OPEN:
            self._ho_taken = self._ho_results = self._ho_fail = self._ho_slow = 0
            self._probe_busy = False
            self._ho_since = now
        if self._listener is not None:
            self._listener(now, old, new, reason)
        if old == HALF_OPEN and self._waiters:
            self._wake()

    def _wake(self) -> None:
        """Wake every caller waiting for the half-open verdict, in arrival order."""
        waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()

    def __repr__(self) -> str:
        return (f"CircuitBreaker(state={self.state!r}, opened_count={self.opened_count}, "
                f"config={self.config!r})")
