"""Adaptive concurrency limits, transcribed from Netflix concurrency-limits.

A limiter admits a call while fewer than ``limit`` calls are in flight and rejects it
otherwise (``SimpleLimiter``); every admitted call reports back once, as a success, a drop
(a timeout or an overload reply: the signal to back off) or an ignore (no sample). The
limit algorithm turns those samples into a new limit:

- ``aimd`` (``AIMDLimit``): on a drop, or an RTT over ``timeout``, the limit is multiplied
  by ``backoff_ratio``; otherwise, while at least half the limit is in flight, it grows by
  one. Clamped to [``min_limit``, ``max_limit``].
- ``vegas`` (``VegasLimit``): TCP Vegas. It keeps the lowest RTT seen (``rtt_noload``,
  re-probed every ``probe_multiplier`` x limit x U[0.5, 1) samples) and estimates the queue
  as ``ceil(limit * (1 - rtt_noload / rtt))``; a queue at most log10(limit) grows the limit
  by 6 log10(limit), under 3 log10(limit) by log10(limit), over 6 log10(limit) shrinks it by
  log10(limit); a drop shrinks it by log10(limit).
- ``gradient2`` (``Gradient2Limit``): the gradient between a long exponential average of the
  RTT (600 samples, the first 10 averaged) and the current RTT, limit x clamp(1.5 x long /
  short, 0.5, 1) + 4, smoothed by 0.2 and clamped to [20, 200].
- ``fixed``: a constant limit (``FixedLimit``), the control.

A ``window`` (``WindowedLimit``) batches samples: the algorithm sees one sample per window
(the average RTT, or a percentile, the largest in-flight count, any drop), a window closing
when a sample ends more than clamp(2 x min RTT, min_time, max_time) after the previous
close and it holds at least ``size`` samples; RTTs under ``min_rtt`` are ignored.

Source: github.com/Netflix/concurrency-limits at 78a74b98 (2026-01-12),
``concurrency-limits-core/src/main/java/com/netflix/concurrency/limits/``:
``limit/{AbstractLimit,AIMDLimit,VegasLimit,Gradient2Limit,FixedLimit,WindowedLimit}.java``,
``limit/functions/Log10RootIntFunction.java``, ``limit/measurement/ExpAvgMeasurement.java``,
``limit/window/Immutable{Average,Percentile}SampleWindow.java``,
``limiter/{AbstractLimiter,SimpleLimiter}.java``. Times are kept in integer nanoseconds as
there (``System.nanoTime``), so every integer truncation happens where the library's does;
the ``*_s`` entry points convert simulated seconds.

The objects are pure: no clock, no SimPy, no global random state (Vegas's probe jitter is
drawn from the ``rng`` the driver passes, keyed like every other stream).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from pydantic import Field, model_validator

from simres.errors import PolicyConfigError
from simres.policies._base import PolicyModel
from simres.policies.backoff import Uniform, draw
from simres.policies.envoy_concurrency import EnvoyGradientConfig, EnvoyGradientLimit

NANOS = 1_000_000_000
LONG_MAX = 2**63 - 1

_LOG10 = [max(1, int(math.log10(i))) if i > 0 else 1 for i in range(1000)]


def log10_root(t: int) -> int:
    """``Log10RootIntFunction``: max(1, (int) log10(t)) from a table below 1000."""
    return _LOG10[t] if t < 1000 else int(math.log10(t))


def to_nanos(seconds: float) -> int:
    """Simulated seconds as the integer nanoseconds the library's clock would give."""
    return round(seconds * NANOS)


# ----------------------------------------------------------------------------- config

_DEFAULTS: dict[str, dict[str, float | int]] = {
    # AIMDLimit.Builder: minLimit 20, initialLimit 20, maxLimit 200, backoffRatio 0.9, timeout 5 s
    "aimd": {"initial_limit": 20, "min_limit": 20, "max_limit": 200},
    # VegasLimit.Builder: initialLimit 20, maxConcurrency 1000, smoothing 1.0, probeMultiplier 30
    # (no minimum: the limit is clamped to >= 1)
    "vegas": {"initial_limit": 20, "min_limit": 1, "max_limit": 1000, "smoothing": 1.0},
    # Gradient2Limit.Builder: initialLimit 20, minLimit 20, maxConcurrency 200, smoothing 0.2,
    # queueSize 4, longWindow 600, rttTolerance 1.5
    "gradient2": {"initial_limit": 20, "min_limit": 20, "max_limit": 200, "smoothing": 0.2},
    # FixedLimit.of(limit)
    "fixed": {"initial_limit": 20, "min_limit": 20, "max_limit": 20},
    # Envoy's gradient controller takes its numbers from `envoy:` (EnvoyGradientConfig)
    "envoy_gradient": {"initial_limit": 3, "min_limit": 3, "max_limit": 1000},
}


class LimitWindowConfig(PolicyModel):
    """``WindowedLimit``: feed the algorithm one aggregated sample per window."""

    min_time: float = Field(default=1.0, ge=0.1, description="Shortest window, seconds (library: 1 s, >= 100 ms).")
    max_time: float = Field(default=1.0, ge=0.1, description="Longest window, seconds (library: 1 s, >= 100 ms).")
    size: int = Field(default=10, ge=10, description="Samples a window needs before it counts (library: 10).")
    min_rtt: float = Field(default=1e-4, ge=0, description="RTTs below this are ignored, seconds (library: 100 us).")
    sample: Literal["average", "percentile"] = Field(
        default="average", description="The window's RTT: the mean, or a percentile of its first `capacity` samples.")
    percentile: float = Field(default=0.99, gt=0, lt=1, description="The percentile, for sample: percentile.")
    capacity: int = Field(default=100, ge=1,
                          description="sample: percentile: samples a window keeps, later ones are dropped "
                                      "(PercentileSampleWindowFactory.of(p, n) has no default; simres choice).")


class LimitConfig(PolicyModel):
    """Options of an adaptive concurrency limit; unset numbers take the kind's library default."""

    preset_group = "limit"
    kind: Literal["aimd", "vegas", "gradient2", "fixed", "envoy_gradient"] = Field(
        default="gradient2",
        description="aimd (AIMDLimit), vegas (VegasLimit), gradient2 (Gradient2Limit; the library's "
                    "recommended one), fixed (FixedLimit); envoy_gradient (Envoy's adaptive concurrency "
                    "filter, its options under envoy:).")
    envoy: EnvoyGradientConfig | None = Field(
        default=None, description="envoy_gradient: the gradient controller's options (Envoy's field names); "
                                  "none = Envoy's defaults.")
    initial_limit: int | None = Field(default=None, ge=1, description="Starting limit (library: 20).")
    min_limit: int | None = Field(default=None, ge=1,
                                  description="Floor (aimd, gradient2: 20; vegas: 1).")
    max_limit: int | None = Field(default=None, ge=1,
                                  description="Ceiling (aimd, gradient2: 200; vegas: 1000).")
    backoff_ratio: float = Field(default=0.9, ge=0.5, lt=1,
                                 description="aimd: the limit's factor on a drop (library: 0.9).")
    timeout: float = Field(default=5.0, gt=0, description="aimd: an RTT over this counts as a drop, s (5 s).")
    smoothing: float | None = Field(default=None, gt=0, le=1,
                                    description="vegas (1.0), gradient2 (0.2): weight of the new limit.")
    probe_multiplier: int = Field(default=30, ge=1, description="vegas: re-probe the no-load RTT every "
                                                                "probe_multiplier x limit x U[0.5, 1) samples.")
    queue_size: int = Field(default=4, ge=0, description="gradient2: queue allowance added to the limit (4).")
    long_window: int = Field(default=600, ge=1, description="gradient2: samples in the long RTT average (600).")
    rtt_tolerance: float = Field(default=1.5, ge=1, description="gradient2: long/short RTT ratio tolerated (1.5).")
    window: LimitWindowConfig | None = Field(
        default=None, description="Batch samples per window (WindowedLimit); none = every sample.")
    scope: Literal["per_client", "shared"] = Field(
        default="per_client",
        description="per_client: one limiter per calling instance; shared: one for every caller with this config.")
    preset: str | None = Field(default=None, description="Name of a library preset whose values fill every field "
                                                         "not given here.")

    @model_validator(mode="after")
    def _bounds(self) -> LimitConfig:
        if self.kind == "envoy_gradient":
            given = [f for f in ("initial_limit", "min_limit", "max_limit", "window") if getattr(self, f) is not None]
            if given:
                raise ValueError(f"{given[0]}: not an option of envoy_gradient (Envoy's controller starts at "
                                 "envoy.min_concurrency and is bounded by envoy.min_concurrency and "
                                 "envoy.max_concurrency_limit)")
        elif self.envoy is not None:
            raise ValueError(f"envoy: options of kind envoy_gradient, not of {self.kind}")
        lo, hi = int(self.resolved("min_limit")), int(self.resolved("max_limit"))
        if lo > hi:
            raise ValueError(f"min_limit: must be <= max_limit ({hi}), got {lo}")
        return self

    def resolved(self, name: str) -> float | int:
        """A numeric option, or the kind's library default when unset."""
        value = getattr(self, name)
        return value if value is not None else _DEFAULTS[self.kind][name]

    def build(self, rng: Uniform | None = None) -> ConcurrencyLimiter:
        """Fresh limiter state; ``rng`` draws Vegas's probe jitter."""
        algo: LimitAlgorithm
        if self.kind == "envoy_gradient":
            if rng is None:
                raise PolicyConfigError("limit: an envoy_gradient limit needs a random stream for its jitter")
            return ConcurrencyLimiter(EnvoyGradientLimit(self.envoy or EnvoyGradientConfig(), rng))
        if self.kind == "aimd":
            algo = AIMDLimit(self)
        elif self.kind == "vegas":
            if rng is None:
                raise PolicyConfigError("limit: a vegas limit needs a random stream for its probe jitter")
            algo = VegasLimit(self, rng)
        elif self.kind == "gradient2":
            algo = Gradient2Limit(self)
        else:
            algo = FixedLimit(int(self.resolved("initial_limit")))
        if self.window is not None:
            algo = WindowedLimit(self.window, algo)
        return ConcurrencyLimiter(algo)


# ----------------------------------------------------------------------------- algorithms


class LimitAlgorithm:
    """``Limit``: a limit and ``on_sample(start_ns, rtt_ns, inflight, did_drop)``."""

    limit: int

    def on_sample(self, start: int, rtt: int, inflight: int, did_drop: bool) -> None:  # pragma: no cover
        raise NotImplementedError


class FixedLimit(LimitAlgorithm):
    """A limit that never changes."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def on_sample(self, start: int, rtt: int, inflight: int, did_drop: bool) -> None:
        return None


class AIMDLimit(LimitAlgorithm):
    """``AIMDLimit._update``: multiplicative decrease on a drop or slow RTT, +1 when half used."""

    __slots__ = ("_max", "_min", "_ratio", "_timeout", "limit")

    def __init__(self, cfg: LimitConfig) -> None:
        self.limit = int(cfg.resolved("initial_limit"))
        self._ratio = cfg.backoff_ratio
        self._timeout = to_nanos(cfg.timeout)
        self._min = int(cfg.resolved("min_limit"))
        self._max = int(cfg.resolved("max_limit"))

    def on_sample(self, start: int, rtt: int, inflight: int, did_drop: bool) -> None:
        current = self.limit
        if did_drop or rtt > self._timeout:
            current = int(current * self._ratio)
        elif inflight * 2 >= current:
            current = current + 1
        self.limit = min(self._max, max(self._min, current))


class VegasLimit(LimitAlgorithm):
    """``VegasLimit._update`` and ``updateEstimatedLimit`` with the default log10 functions."""

    __slots__ = ("_max", "_probe_count", "_probe_jitter", "_probe_multiplier", "_rng", "_smoothing",
                 "estimated", "limit", "rtt_noload")

    def __init__(self, cfg: LimitConfig, rng: Uniform) -> None:
        self.limit = int(cfg.resolved("initial_limit"))
        self.estimated = float(self.limit)
        self.rtt_noload = 0
        self._max = int(cfg.resolved("max_limit"))
        self._smoothing = float(cfg.resolved("smoothing"))
        self._probe_multiplier = cfg.probe_multiplier
        self._probe_count = 0
        self._rng = rng
        self._probe_jitter = self._jitter()

    def _jitter(self) -> float:
        # ThreadLocalRandom.nextDouble(0.5, 1)
        return 0.5 + 0.5 * draw(self._rng)

    def on_sample(self, start: int, rtt: int, inflight: int, did_drop: bool) -> None:
        if rtt <= 0:
            # The library throws IllegalArgumentException from the caller's onSuccess; a
            # simulated call that takes no time at all gives no sample instead.
            return
        self._probe_count += 1
        if self._probe_jitter * self._probe_multiplier * self.estimated <= self._probe_count:
            self._probe_jitter = self._jitter()
            self._probe_count = 0
            self.rtt_noload = rtt
            self.limit = int(self.estimated)
            return
        noload = self.rtt_noload
        if noload == 0 or rtt < noload:
            self.rtt_noload = rtt
            self.limit = int(self.estimated)
            return
        self.limit = self._update(rtt, noload, inflight, did_drop)

    def _update(self, rtt: int, noload: int, inflight: int, did_drop: bool) -> int:
        est = self.estimated
        queue = math.ceil(est * (1 - noload / rtt))
        if did_drop:
            new = est - log10_root(int(est))
        elif inflight * 2 < est:
            return int(est)
        else:
            lg = log10_root(int(est))
            alpha, beta, threshold = 3 * lg, 6 * lg, lg
            if queue <= threshold:
                new = est + beta
            elif queue < alpha:
                new = est + lg
            elif queue > beta:
                new = est - lg
            else:
                return int(est)
        new = max(1.0, min(float(self._max), new))
        new = (1 - self._smoothing) * est + self._smoothing * new
        self.estimated = new
        return int(new)


class ExpAvg:
    """``ExpAvgMeasurement``: a plain mean of the first ``warmup`` samples, then EWMA 2/(n+1)."""

    __slots__ = ("_count", "_factor", "_sum", "_warmup", "value")

    def __init__(self, window: int, warmup: int) -> None:
        self.value = 0.0
        self._sum = 0.0
        self._count = 0
        self._warmup = warmup
        self._factor = 2.0 / (window + 1)

    def add(self, sample: float) -> float:
        if self._count < self._warmup:
            self._count += 1
            self._sum += sample
            self.value = self._sum / self._count
        else:
            f = self._factor
            self.value = self.value * (1 - f) + sample * f
        return self.value


class Gradient2Limit(LimitAlgorithm):
    """``Gradient2Limit._update``: limit x clamp(tolerance x long/short RTT, 0.5, 1) + queue."""

    __slots__ = ("_long", "_max", "_min", "_queue", "_smoothing", "_tolerance", "estimated", "limit")

    def __init__(self, cfg: LimitConfig) -> None:
        self.limit = int(cfg.resolved("initial_limit"))
        self.estimated = float(self.limit)
        self._max = int(cfg.resolved("max_limit"))
        self._min = int(cfg.resolved("min_limit"))
        self._queue = cfg.queue_size
        self._smoothing = float(cfg.resolved("smoothing"))
        self._tolerance = cfg.rtt_tolerance
        self._long = ExpAvg(cfg.long_window, 10)

    def on_sample(self, start: int, rtt: int, inflight: int, did_drop: bool) -> None:
        if rtt <= 0:
            # The library divides by the RTT (a zero gives an infinite or NaN gradient, and a
            # NaN limit casts to 0); a simulated call that takes no time gives no sample.
            return
        est = self.estimated
        queue = float(self._queue)
        short = float(rtt)
        long = self._long.add(rtt)
        if long / short > 2:
            self._long.value = self._long.value * 0.95
        if inflight < est / 2:
            self.limit = int(est)
            return
        gradient = max(0.5, min(1.0, self._tolerance * long / short))
        new = est * gradient + queue
        new = est * (1 - self._smoothing) + new * self._smoothing
        new = max(float(self._min), min(float(self._max), new))
        self.estimated = new
        self.limit = int(new)


class WindowedLimit(LimitAlgorithm):
    """``WindowedLimit.onSample``: one aggregated sample per window to the delegate."""

    __slots__ = (
        "_capacity",
        "_count",
        "_delegate",
        "_drop",
        "_max_inflight",
        "_max_time",
        "_min_rtt",
        "_min_time",
        "_next_update",
        "_percentile",
        "_rtts",
        "_size",
        "_sum",
        "_window_min",
    )

    def __init__(self, cfg: LimitWindowConfig, delegate: LimitAlgorithm) -> None:
        self._delegate = delegate
        self._min_time = to_nanos(cfg.min_time)
        self._max_time = to_nanos(cfg.max_time)
        self._size = cfg.size
        self._min_rtt = to_nanos(cfg.min_rtt)
        self._percentile = cfg.percentile if cfg.sample == "percentile" else None
        self._capacity = cfg.capacity
        self._next_update = 0
        self._reset()

    def _reset(self) -> None:
        self._window_min = LONG_MAX
        self._sum = 0
        self._max_inflight = 0
        self._count = 0
        self._drop = False
        self._rtts: list[int] = []

    @property
    def limit(self) -> int:  # type: ignore[override]
        return self._delegate.limit

    def _tracked(self) -> int:
        if self._count == 0:
            return 0
        if self._percentile is None:
            return self._sum // self._count
        ordered = sorted(self._rtts)
        return ordered[math.floor(self._count * self._percentile + 0.5) - 1]  # Java Math.round

    def on_sample(self, start: int, rtt: int, inflight: int, did_drop: bool) -> None:
        end = start + rtt
        if rtt < self._min_rtt:
            return
        if self._percentile is None or self._count < self._capacity:
            # A percentile window keeps only its first `capacity` samples (its array's length).
            self._window_min = min(rtt, self._window_min)
            self._sum += rtt
            self._max_inflight = max(inflight, self._max_inflight)
            self._count += 1
            self._drop = self._drop or did_drop
            if self._percentile is not None:
                self._rtts.append(rtt)
        if end > self._next_update:
            candidate, count = self._window_min, self._count
            tracked, most, drop = self._tracked(), self._max_inflight, self._drop
            self._reset()
            self._next_update = end + min(max(candidate * 2, self._min_time), self._max_time)
            if candidate < LONG_MAX and count >= self._size:
                self._delegate.on_sample(start, tracked, most, drop)


# ----------------------------------------------------------------------------- limiter


class ConcurrencyLimiter:
    """``SimpleLimiter``: admit while in flight < limit; each admitted call reports once.

    :meth:`acquire` returns a token (the call's start time and the in-flight count it saw,
    as ``AbstractLimiter.createListener`` captures them) or ``None`` when rejected; then
    exactly one of :meth:`success`, :meth:`dropped` or :meth:`ignore` with that token.
    ``on_change`` (if set) is called with each new limit, for the timeline and events.
    """

    __slots__ = ("algorithm", "inflight", "on_change", "rejected_count")

    def __init__(self, algorithm: LimitAlgorithm | EnvoyGradientLimit) -> None:
        self.algorithm = algorithm
        self.inflight = 0
        self.rejected_count = 0
        self.on_change: Callable[[int], None] | None = None

    @property
    def limit(self) -> int:
        """The current limit."""
        return self.algorithm.limit

    def acquire(self, now_ns: int) -> tuple[int, int] | None:
        """A token ``(start_ns, inflight)`` if a permit is free, else ``None`` (rejected)."""
        if self.inflight >= self.algorithm.limit:
            self.rejected_count += 1
            return None
        self.inflight += 1
        return (now_ns, self.inflight)

    def _sample(self, token: tuple[int, int], now_ns: int, drop: bool) -> None:
        self.inflight -= 1
        before = self.algorithm.limit
        self.algorithm.on_sample(token[0], now_ns - token[0], token[1], drop)
        after = self.algorithm.limit
        if after != before and self.on_change is not None:
            self.on_change(after)

    def success(self, token: tuple[int, int], now_ns: int) -> None:
        """The call succeeded: an RTT sample."""
        self._sample(token, now_ns, False)

    def dropped(self, token: tuple[int, int], now_ns: int) -> None:
        """The call timed out or was refused for overload: a sample that says back off."""
        self._sample(token, now_ns, True)

    @property
    def timed(self) -> bool:
        """The algorithm runs timers of its own (Envoy's controller): the driver must serve them."""
        return hasattr(self.algorithm, "fire")

    def fire(self, name: str, generation: int, now_ns: int) -> None:
        """A timer of the algorithm is due (see :class:`EnvoyGradientLimit`); reports a new limit."""
        before = self.algorithm.limit
        self.algorithm.fire(name, generation, now_ns)  # type: ignore[attr-defined]
        after = self.algorithm.limit
        if after != before and self.on_change is not None:
            self.on_change(after)

    def reset(self) -> None:
        """Forget every admitted call (the process that held them is gone); the limit stays."""
        self.inflight = 0

    def ignore(self, token: tuple[int, int]) -> None:
        """The call ended without a sample (e.g. a client-side error)."""
        self.inflight -= 1

    # Simulated-seconds entry points for the drivers.
    def acquire_s(self, now: float) -> tuple[int, int] | None:
        """:meth:`acquire` at ``now`` seconds."""
        return self.acquire(to_nanos(now))

    def success_s(self, token: tuple[int, int], now: float) -> None:
        """:meth:`success` at ``now`` seconds."""
        self._sample(token, to_nanos(now), False)

    def dropped_s(self, token: tuple[int, int], now: float) -> None:
        """:meth:`dropped` at ``now`` seconds."""
        self._sample(token, to_nanos(now), True)
