"""Backoff and jitter: how long to wait before the next retry.

A backoff gives the un-randomised wait for retry index ``n`` (0 for the first retry,
unless the retry policy starts elsewhere); a jitter spreads it. They combine the way
tenacity combines its ``wait_*`` strategies. A :class:`Waiter` is the per-call state: it
keeps ``n`` and the previous wait, which the decorrelated jitters need.

Every wait is clamped to ``[floor, cap]``, whatever the jitter, except the additive jitter
with ``over_cap`` (tenacity's ``wait_exponential(max=...) + wait_random(...)`` is an uncapped
sum). ``zero_first`` makes the first retry wait nothing and draw nothing (urllib3).

``timespan`` (and the ``polly`` jitter, which implies it) computes the waits as Polly v8
does, in whole 100 ns .NET ``TimeSpan`` ticks: see :func:`timespan_wait`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field

from simres.errors import PolicyConfigError
from simres.policies._base import PolicyModel

Uniform = np.random.Generator | Callable[[], float]
"""A source of U[0, 1) draws: a numpy Generator, or a zero-argument callable returning one
(e.g. :func:`simres.rng.uniform_sampler`, which draws in numpy batches)."""

_HUGE = 1e300  # stands in for an overflowing base * multiplier**n; finite, so * 0 stays 0

TICKS_PER_SECOND = 10_000_000
""".NET ``TimeSpan.TicksPerSecond`` (a tick is 100 ns)."""
TIMESPAN_MAX_TICKS = 2**63 - 1
"""``TimeSpan.MaxValue.Ticks`` (``long.MaxValue``)."""
TIMESPAN_MAX_SECONDS = TIMESPAN_MAX_TICKS / TICKS_PER_SECOND
"""``TimeSpan.MaxValue`` in seconds: as a ``cap`` with ``timespan``, no ``MaxDelay``."""
_LONG_MAX_D = float(2**63)  # long.MaxValue converted to a double, as C# compares them
_MAX_MS = float(TIMESPAN_MAX_TICKS // 10_000)  # TimeSpan.MaxMilliSeconds, TotalMilliseconds' clamp
_POLLY_MAX_TICKS_D = float(TIMESPAN_MAX_TICKS) - 1_000  # RetryHelper.MaxTimeSpanTicks: 2**63 - 1024
_POLLY_RP = 1 / 1.4  # RetryHelper RpScalingFactor


def draw(rng: Uniform) -> float:
    """One U[0, 1) draw from ``rng`` (a Generator or a zero-argument callable)."""
    return rng() if callable(rng) else rng.random()  # type: ignore[operator,union-attr]


class BackoffConfig(PolicyModel):
    """The un-randomised wait before retry ``n``: none, constant, linear or exponential."""

    kind: Literal["none", "constant", "linear", "exponential"] = Field(
        default="exponential",
        description="Growth of the wait with the retry index n: none (0), constant (base), "
                    "linear ((n+1)*base) or exponential (base*multiplier**n), capped at cap.")
    base: float = Field(
        default=0.1, ge=0,
        description="Seconds: the first wait (exponential, constant, linear step); also the "
                    "floor of the decorrelated jitters.")
    cap: float = Field(
        default=20.0, gt=0,
        description="Seconds: no wait is ever longer, whatever the backoff and jitter.")
    multiplier: float = Field(
        default=2.0, gt=0,
        description="Growth factor per retry of the exponential backoff.")
    floor: float = Field(
        default=0.0, ge=0,
        description="Seconds: no wait is shorter (tenacity's min=); applied after the cap, so "
                    "floor wins over cap as in tenacity. The full jitter draws U[floor, c).")
    zero_first: bool = Field(
        default=False,
        description="The first retry waits 0 and draws nothing; the second uses retry index 1 "
                    "(urllib3: backoff_factor * 2**(retries-1) from the second retry on).")
    timespan: bool = Field(
        default=False,
        description="Compute waits in whole 100 ns ticks with .NET TimeSpan arithmetic, as "
                    "Polly v8 does: base and cap rounded to ticks, products rounded to the "
                    "nearest tick, an overflow gives cap (Polly's MaxDelay); only with jitter "
                    "none or polly, and the polly jitter implies it.")

    def raw(self, n: int) -> float:
        """The wait for retry index ``n`` before capping (finite even when it overflows)."""
        kind = self.kind
        if kind == "exponential":
            try:
                value = self.base * self.multiplier**n
            except OverflowError:
                return _HUGE
            return value if value < _HUGE else _HUGE
        if kind == "constant":
            return self.base
        if kind == "linear":
            return (n + 1) * self.base
        return 0.0

    def delay(self, n: int) -> float:
        """The capped, un-randomised wait for retry index ``n``."""
        return min(self.cap, self.raw(n))


def _jitter_from_str(value: Any) -> Any:
    return {"kind": value} if isinstance(value, str) else value


class JitterConfig(PolicyModel):
    """How the backoff is randomised; a bare string (``jitter: full``) names the kind."""

    kind: Literal["none", "full", "equal", "decorrelated", "decorrelated_finagle",
                  "proportional", "additive", "polly"] = Field(
        default="full",
        description="none: c; full: U[0,c); equal: c/2+U[0,c/2); decorrelated (AWS blog): "
                    "min(cap, U[base, 3*prev)); decorrelated_finagle: first base, then "
                    "U[prev, min(cap, 3*prev)); proportional (Resilience4j, gRPC "
                    "connections): min(cap, raw*U[1-f, 1+f)); additive: min(cap, c+U[0,j)); "
                    "polly (Polly v8 UseJitter, in TimeSpan ticks): constant and linear "
                    "c*(0.75+0.5*U), exponential DecorrelatedJitterBackoffV2 "
                    "base*(f(n+U)-f(prev))/1.4 with f(t)=2**t*tanh(sqrt(4t)), capped. "
                    "c is the capped backoff, raw the uncapped one.")
    fraction: float = Field(
        default=0.2, ge=0, le=1,
        description="f of the proportional jitter: the wait is scaled by U[1-f, 1+f).")
    amount: float = Field(
        default=0.0, ge=0,
        description="Seconds: j of the additive jitter, which adds U[0, j).")
    over_cap: bool = Field(
        default=False,
        description="additive: add the draw after capping, so the wait may exceed cap "
                    "(tenacity's wait_exponential(max=m) + wait_random(0, j)); False caps the "
                    "sum (tenacity wait_exponential_jitter, urllib3 backoff_jitter).")


JitterKind = Literal["none", "full", "equal", "decorrelated", "decorrelated_finagle", "proportional",
                     "additive", "polly"]

Jitter = Annotated[
    JitterConfig,
    # the JSON Schema (simres schema) shows both spellings an editor should accept
    BeforeValidator(_jitter_from_str, json_schema_input_type=JitterKind | JitterConfig),
]
"""A jitter field: a JitterConfig mapping or a bare kind name."""


def waiter_params(backoff: BackoffConfig, jitter: JitterConfig) -> tuple[Any, ...]:
    """The plain values a :class:`Waiter` needs, validated once.

    Raises:
        PolicyConfigError: a decorrelated jitter with ``backoff.base`` 0, or ``timespan``
            with a jitter other than none and polly.
    """
    if jitter.kind in ("decorrelated", "decorrelated_finagle") and backoff.base <= 0:
        raise PolicyConfigError(
            f"backoff.base: must be > 0 for {jitter.kind} jitter, got {backoff.base}")
    problem = timespan_problem(backoff, jitter)
    if problem:
        raise PolicyConfigError(problem)
    timespan = None
    if backoff.timespan or jitter.kind == "polly":
        max_ticks = round(backoff.cap * TICKS_PER_SECOND)
        timespan = (round(backoff.base * TICKS_PER_SECOND),
                    None if max_ticks >= TIMESPAN_MAX_TICKS else max_ticks)
    return (backoff.kind, float(backoff.base), float(backoff.cap), float(backoff.multiplier),
            jitter.kind, float(jitter.fraction), float(jitter.amount), float(backoff.floor),
            backoff.zero_first, jitter.over_cap, timespan)


def timespan_problem(backoff: BackoffConfig, jitter: JitterConfig) -> str:
    """Why ``backoff`` and ``jitter`` cannot be combined with TimeSpan arithmetic ('' if they can)."""
    if backoff.timespan and jitter.kind not in ("none", "polly"):
        return f"backoff.timespan: only with jitter none or polly, got jitter {jitter.kind}"
    if (backoff.timespan or jitter.kind == "polly") and (
            backoff.multiplier != 2.0 or backoff.zero_first or backoff.floor):
        return ("backoff: Polly's TimeSpan waits (timespan, jitter polly) have multiplier 2, "
                "no floor and no zero_first")
    return ""


def _interval(ticks: float) -> int:
    """.NET ``TimeSpan.IntervalFromDoubleTicks``: a double tick count to a whole one.

    Raises:
        OverflowError: outside ``long`` (or NaN), as .NET throws ``OverflowException``.
    """
    if ticks > _LONG_MAX_D or ticks < -_LONG_MAX_D or ticks != ticks:
        raise OverflowError("TimeSpan too long")
    if ticks == _LONG_MAX_D:
        return TIMESPAN_MAX_TICKS
    return int(ticks)  # (long) truncates toward zero


def _apply_jitter(ticks: int, rng: Uniform) -> int:
    """Polly ``RetryHelper.ApplyJitter``: ``delay ± 25 %`` computed in milliseconds."""
    ms = float(ticks) / 10_000.0  # TimeSpan.TotalMilliseconds
    if ms > _MAX_MS:
        ms = _MAX_MS
    offset = (ms * 0.5) / 2
    random_delay = (ms * 0.5 * draw(rng)) - offset
    return _interval((ms + random_delay) * 10_000.0)  # TimeSpan.FromMilliseconds


def timespan_wait(kind: str, jitter: bool, attempt: int, base_ticks: int,
                  max_ticks: int | None, state: list[float], rng: Uniform) -> int:
    """Polly v8 ``RetryHelper.GetRetryDelay`` (.NET 8 ``TimeSpan``), in ticks.

    ``kind`` is the backoff kind, ``jitter`` Polly's ``UseJitter``, ``attempt`` the retry
    index (0 for the first retry), ``max_ticks`` ``MaxDelay`` (None: none) and
    ``state[0]`` the per-execution ``retryState`` of ``DecorrelatedJitterBackoffV2``
    (0 at the start of a call; updated here). A zero base waits 0 and draws nothing;
    every other jittered wait draws one uniform. Products are rounded to the nearest tick
    (``TimeSpan * double``), millisecond conversions truncated (``FromMilliseconds``);
    an overflow gives ``MaxDelay``, or ``TimeSpan.MaxValue`` without one.
    """
    try:
        if base_ticks == 0:
            ticks = 0
        elif jitter:
            if kind == "exponential":  # DecorrelatedJitterBackoffV2
                t = attempt + draw(rng)
                try:
                    nxt = math.pow(2.0, t) * math.tanh(math.sqrt(4.0 * t))
                except OverflowError:  # Math.Pow gives +inf
                    nxt = math.inf
                if math.isinf(nxt):  # Polly issue 2163: t >= 1024
                    state[0] = nxt
                    ticks = int(_POLLY_MAX_TICKS_D)
                else:
                    value = nxt - state[0]
                    state[0] = nxt
                    ticks = int(min(value * _POLLY_RP * base_ticks, _POLLY_MAX_TICKS_D))
            elif kind == "constant":
                ticks = _apply_jitter(base_ticks, rng)
            elif kind == "linear":
                ms = min(float(base_ticks) / 10_000.0, _MAX_MS)
                ticks = _apply_jitter(_interval((attempt + 1) * ms * 10_000.0), rng)
            else:
                ticks = 0
        elif kind == "constant":
            ticks = base_ticks
        elif kind == "linear":
            ticks = _interval(round(base_ticks * float(attempt + 1)))
        elif kind == "exponential":
            try:
                factor = math.pow(2.0, attempt)
            except OverflowError:
                factor = math.inf
            ticks = _interval(round(base_ticks * factor))
        else:
            ticks = 0
    except OverflowError:  # OverflowException: MaxDelay, else TimeSpan.MaxValue
        return TIMESPAN_MAX_TICKS if max_ticks is None else max_ticks
    if max_ticks is not None and ticks > max_ticks:
        return max_ticks
    return ticks


class Waiter:
    """The waits of one logical call: keeps the retry index and the previous wait.

    Draws at most one uniform per wait, and none for ``jitter: none`` or Finagle's first
    decorrelated wait, so the random stream only advances when randomness is used.
    """

    __slots__ = ("_alt", "_alt_on", "_base", "_bkind", "_cap", "_f", "_floor", "_j", "_jkind",
                 "_mult", "_over", "_state", "_ts", "_zero_first", "n", "prev")

    def __init__(self, backoff: BackoffConfig, jitter: JitterConfig,
                 first_index: int = 0, *, alt_backoff: BackoffConfig | None = None,
                 alt_outcomes: frozenset[str] = frozenset()) -> None:
        alt = None if alt_backoff is None else waiter_params(alt_backoff, jitter)
        self._set(waiter_params(backoff, jitter), first_index, alt, alt_outcomes)

    def _set(self, params: tuple[Any, ...], first_index: int,
             alt: tuple[Any, ...] | None = None, alt_on: frozenset[str] = frozenset()) -> None:
        (self._bkind, self._base, self._cap, self._mult, self._jkind, self._f,
         self._j, self._floor, self._zero_first, self._over, self._ts) = params
        self._state: list[float] | None = None if self._ts is None else [0.0]
        """Polly's per-execution ``retryState`` (TimeSpan waits only)."""
        self._alt = alt
        """Backoff values used after an outcome in ``_alt_on`` (AWS throttling errors)."""
        self._alt_on = alt_on
        self.n = first_index
        """Retry index of the next wait."""
        self.prev: float | None = None
        """The previous wait of this call (None before the first)."""

    @classmethod
    def from_params(cls, params: tuple[Any, ...], first_index: int = 0,
                    alt: tuple[Any, ...] | None = None,
                    alt_on: frozenset[str] = frozenset()) -> Waiter:
        """A waiter from :func:`waiter_params` (cheaper than re-reading the configs per call)."""
        waiter = cls.__new__(cls)
        waiter._set(params, first_index, alt, alt_on)
        return waiter

    def _raw(self, n: int, base: float | None = None) -> float:
        kind = self._bkind
        if base is None:
            base = self._base
        if kind == "exponential":
            try:
                value = base * self._mult**n
            except OverflowError:
                return _HUGE
            return value if value < _HUGE else _HUGE
        if kind == "constant":
            return base
        if kind == "linear":
            return (n + 1) * base
        return 0.0

    def next(self, rng: Uniform, outcome: str | None = None) -> float:
        """The wait before the next retry after ``outcome``, in seconds; advances the state.

        ``outcome`` only matters with an alternative backoff (AWS standard mode 2.1 uses a
        1 s base after throttling errors and 50 ms after others, with the same index).
        """
        kind = self._jkind
        n = self.n
        self.n = n + 1
        if self._ts is not None:
            base_ticks, max_ticks = self._ts
            ticks = timespan_wait(self._bkind, kind == "polly", n, base_ticks, max_ticks,
                                  self._state, rng)  # type: ignore[arg-type]
            wait = ticks / TICKS_PER_SECOND  # TimeSpan.TotalSeconds
            self.prev = wait
            return wait
        if n == 0 and self._zero_first:
            self.prev = 0.0
            return 0.0
        if self._alt is not None and outcome in self._alt_on:
            _, base, cap = self._alt[:3]
        else:
            base, cap = self._base, self._cap
        floor = self._floor
        if kind == "full":
            c = min(cap, self._raw(n, base))
            if floor:
                c = c if c > floor else floor
                wait = floor + draw(rng) * (c - floor)
            else:
                wait = draw(rng) * c
        elif kind == "none":
            wait = min(cap, self._raw(n, base))
        elif kind == "equal":
            half = min(cap, self._raw(n, base)) / 2
            wait = half + draw(rng) * half
        elif kind == "decorrelated":
            base = self._base
            prev = base if self.prev is None else self.prev
            wait = min(cap, base + draw(rng) * (3 * prev - base))
        elif kind == "decorrelated_finagle":
            prev = self.prev
            if prev is None:
                wait = min(cap, self._base)
            else:
                upper = min(cap, 3 * prev)
                wait = prev + draw(rng) * (upper - prev) if upper > prev else upper
        elif kind == "proportional":
            f = self._f
            wait = min(cap, self._raw(n, base) * (1 - f + 2 * f * draw(rng)))
        elif self._over:  # additive, uncapped sum (tenacity wait_exponential + wait_random)
            c = min(cap, self._raw(n, base))
            wait = (c if c > floor else floor) + draw(rng) * self._j
            self.prev = wait
            return wait
        else:  # additive
            wait = min(cap, min(cap, self._raw(n, base)) + draw(rng) * self._j)
        if not wait > 0:  # also maps a NaN to 0
            wait = 0.0
        elif wait > cap:
            wait = cap
        if wait < floor:
            wait = floor
        self.prev = wait
        return wait

    def skip(self, rng: Uniform | None = None) -> None:
        """Count a retry whose wait came from elsewhere (a server's Retry-After).

        With TimeSpan waits (Polly) the wait is still computed and dropped, drawing from
        ``rng``, as Polly computes it before a ``DelayGenerator`` replaces it.
        """
        if self._ts is not None and rng is not None:
            self.next(rng)
            return
        self.n += 1

    def __repr__(self) -> str:
        return f"Waiter(backoff={self._bkind!r}, jitter={self._jkind!r}, n={self.n})"

