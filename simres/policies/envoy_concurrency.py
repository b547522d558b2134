"""Envoy's adaptive concurrency filter: the gradient controller, transcribed.

Envoy's ``envoy.filters.http.adaptive_concurrency`` sits in front of a service (an inbound
sidecar) and admits a request while fewer than ``limit`` are outstanding; over it, the
filter answers 503 at once ("reached concurrency limit"). Every admitted request whose
response is encoded gives one latency sample (microseconds, from admission to the end of the
response), whatever its status; a request reset before its response (the caller gave up)
gives none. The limit follows two timers:

- **minRTT window**: at start, and ``interval`` (+ up to ``jitter`` of it, random) after
  each measurement, the limit is pinned at ``min_concurrency`` and the samples are thrown
  away; once ``request_count`` requests *admitted inside the window* have reported, the
  ``sample_aggregate_percentile`` of them becomes ``minRTT`` and the limit goes back to its
  value before the window. Five consecutive sample windows that leave the limit at
  ``min_concurrency`` start a new measurement at once.
- **sample window**: every ``concurrency_update_interval`` (outside a minRTT window) the
  percentile of the window's samples is ``sampleRTT``, and
  ``gradient = clamp(minRTT x (1 + buffer) / sampleRTT, 0.5, 2)``,
  ``limit = clamp(int(L x gradient + sqrt(L x gradient)), min_concurrency, max_concurrency_limit)``.

Percentiles are taken from a circllhist log-linear histogram (two significant digits per
bin, linear interpolation inside a bin), transcribed in :class:`LogLinearHistogram`, so the
RTTs the controller reacts to carry the same quantisation as Envoy's.

Source: github.com/envoyproxy/envoy,
``source/extensions/filters/http/adaptive_concurrency/controller/gradient_controller.cc`` at
c35f67fb (the version that checks the sample count inside ``updateMinRTT``),
``adaptive_concurrency_filter.cc``, ``api/envoy/extensions/filters/http/adaptive_concurrency/v3/
adaptive_concurrency.proto`` (defaults: p50, max 1000, request_count 50, jitter 15 %,
buffer 25 %, min_concurrency 3); github.com/openhistogram/libcircllhist ``src/circllhist.c``
(``double_to_hist_bucket``, ``hist_approx_quantile``).

Pure: no clock, no SimPy. The controller asks its driver for timers through :attr:`arm`
(``arm(name, generation, at_ns)``) and the driver calls :meth:`fire` back at that time; a
timer re-armed before it fires makes the older call stale (Envoy's ``enableTimer`` on an
armed timer replaces it). The jitter draws come from the ``rng`` the driver passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pydantic import Field

from simres.policies._base import PolicyModel
from simres.policies.backoff import Uniform, draw

MS_NS = 1_000_000


class EnvoyGradientConfig(PolicyModel):
    """``GradientControllerConfig``: Envoy's field names; times in seconds, shares as fractions."""

    sample_aggregate_percentile: float = Field(
        default=0.5, gt=0, le=1, description="Percentile of a window's latency samples (Envoy: 50 %).")
    concurrency_update_interval: float = Field(
        default=0.1, gt=0, description="Sample window, s (Envoy requires it; simres default: the docs' 100 ms).")
    max_concurrency_limit: int = Field(default=1000, ge=1, description="Ceiling of the limit (Envoy: 1000).")
    interval: float = Field(
        default=60.0, gt=0, description="Time between minRTT measurements, s (Envoy requires it; simres default: "
                                        "the docs' 60 s).")
    request_count: int = Field(default=50, ge=1, description="Samples a minRTT measurement needs (Envoy: 50).")
    jitter: float = Field(default=0.15, ge=0, le=1,
                          description="Random extra delay before a measurement, a share of interval (Envoy: 15 %).")
    min_concurrency: int = Field(default=3, ge=1,
                                 description="The limit during a measurement and its floor (Envoy: 3).")
    buffer: float = Field(default=0.25, ge=0, description="Share added to minRTT before the gradient (Envoy: 25 %).")


# ----------------------------------------------------------------------------- histogram


def hist_bucket(value: float) -> tuple[int, int]:
    """circllhist's bin of a non-negative value: ``(exp, val)``, val in 10..99 (or (0, 0) for zero).

    ``double_to_hist_bucket``: exp = floor(log10 d), val = floor(d / 10^exp x 10 + 1e-13),
    a val of 100 rolling over to (exp + 1, 10).
    """
    if value <= 0:
        return (0, 0)
    exp = math.floor(math.log10(value))
    val = math.floor(value / 10.0 ** exp * 10 + 1e-13)
    if val == 100:
        val, exp = 10, exp + 1
    return (exp, val)


class LogLinearHistogram:
    """The part of circllhist Envoy uses: insert, count, one approximate quantile, clear."""

    __slots__ = ("bins", "count")

    def __init__(self) -> None:
        self.bins: dict[tuple[int, int], int] = {}
        self.count = 0

    def insert(self, value: float) -> None:
        """``hist_insert(h, value, 1)``."""
        key = hist_bucket(value)
        self.bins[key] = self.bins.get(key, 0) + 1
        self.count += 1

    def clear(self) -> None:
        """``hist_clear``."""
        self.bins.clear()
        self.count = 0

    def quantile(self, q: float) -> float:
        """``hist_approx_quantile`` for one ``q``: linear inside the bin that holds rank q x count."""
        if self.count == 0:
            return math.nan
        want = self.count * q
        keys = sorted(self.bins)  # (exp, val): zero first, then by magnitude
        lower = upper = 0.0
        left = width = 0.0
        i = -1
        while True:
            i += 1
            exp, val = keys[i]
            left = 0.0 if val == 0 else (val / 10.0) * 10.0 ** exp
            width = 0.0 if val == 0 else 10.0 ** exp / 10.0
            lower, upper = upper, upper + self.bins[keys[i]]
            if not (i < len(keys) - 1 and upper < want):
                break
        if lower == want:
            return left
        if upper == want:
            return left + width
        if width == 0:
            return left
        return left + (want - lower) / (upper - lower) * width


# ----------------------------------------------------------------------------- controller


class EnvoyGradientLimit:
    """``GradientController``: the limit from a minRTT measured in windows and a sampled RTT.

    Used through :class:`simres.policies.limits.ConcurrencyLimiter` like the Netflix
    algorithms (``on_sample`` for every response; a drop, the caller having gone away, is
    Envoy's ``cancelLatencySample`` and gives no sample), plus the two timers: the driver
    sets :attr:`arm`, calls :meth:`start` once, and :meth:`fire` when a timer it was asked
    for comes due.
    """

    MIN_RTT = "min_rtt_calc"
    SAMPLE = "sample_reset"

    def __init__(self, cfg: EnvoyGradientConfig, rng: Uniform) -> None:
        self.cfg = cfg
        self._rng = rng
        self.limit = cfg.min_concurrency
        self.deferred = 0
        self.min_rtt_us = 0
        self.sample_rtt_us = 0
        self.min_rtt_epoch = 0
        self.consecutive_min = 0
        self.hist = LogLinearHistogram()
        self.timers: dict[str, tuple[int, int]] = {}  # name -> (generation, due ns)
        self._generation = 0
        self.now = 0
        self.arm: Callable[[str, int, int], None] | None = None
        """The driver's hook: schedule ``fire(name, generation)`` at ``due`` ns."""

    # -- timers -----------------------------------------------------------------------

    def start(self, now_ns: int) -> None:
        """The constructor's work: enter a minRTT window and arm the sample timer."""
        self.now = now_ns
        self._enter_min_rtt_window()
        self._enable(self.SAMPLE, self._ms(self.cfg.concurrency_update_interval))

    @staticmethod
    def _ms(seconds: float) -> int:
        # DurationUtil::durationToMilliseconds
        return round(seconds * 1000)

    def _enable(self, name: str, delay_ms: int) -> None:
        self._generation += 1
        due = self.now + delay_ms * MS_NS
        self.timers[name] = (self._generation, due)
        if self.arm is not None:
            self.arm(name, self._generation, due)

    def fire(self, name: str, generation: int, now_ns: int) -> None:
        """Timer ``name`` armed as ``generation`` is due at ``now_ns``; stale ones do nothing."""
        armed = self.timers.get(name)
        if armed is None or armed[0] != generation:
            return
        del self.timers[name]
        self.now = now_ns
        if name == self.MIN_RTT:
            self._enter_min_rtt_window()
        elif not self.in_min_rtt_window:
            # sample_reset_timer_: a minRTT window re-arms it when it ends
            self._reset_sample_window()
            self._enable(self.SAMPLE, self._ms(self.cfg.concurrency_update_interval))

    # -- the controller ---------------------------------------------------------------

    @property
    def in_min_rtt_window(self) -> bool:
        """``inMinRTTSamplingWindow``: a limit is deferred while minRTT is measured."""
        return self.deferred > 0

    def _enter_min_rtt_window(self) -> None:
        if self.in_min_rtt_window:
            return
        self.deferred = self.limit
        self._update_limit(self.cfg.min_concurrency)
        self.hist.clear()
        self.min_rtt_epoch = self.now

    def _update_min_rtt(self) -> None:
        if not self.in_min_rtt_window or self.hist.count < self.cfg.request_count:
            return
        self.min_rtt_us = self._aggregate()
        self._update_limit(self.deferred)
        self.deferred = 0
        interval = self._ms(self.cfg.interval)
        self._enable(self.MIN_RTT, self._jittered(interval))
        self._enable(self.SAMPLE, self._ms(self.cfg.concurrency_update_interval))

    def _jittered(self, interval_ms: int) -> int:
        if self.cfg.jitter == 0:
            return interval_ms
        span = math.ceil(interval_ms * self.cfg.jitter)
        # random_.random() % jitter_range_ms, random() being a uniform 64-bit integer
        return interval_ms + int(draw(self._rng) * 2**64) % span

    def _reset_sample_window(self) -> None:
        if self.hist.count == 0:
            return
        self.sample_rtt_us = self._aggregate()
        self._update_limit(self._new_limit())

    def _aggregate(self) -> int:
        value = self.hist.quantile(self.cfg.sample_aggregate_percentile)
        self.hist.clear()
        return int(value)  # std::chrono::microseconds(static_cast<int>(quantile))

    def _new_limit(self) -> int:
        buffered = self.min_rtt_us + self.min_rtt_us * self.cfg.buffer
        # sampleRTT is > 0 in Envoy (an ASSERT); a simulated reply under 1 us is one
        gradient = max(0.5, min(2.0, buffered / max(self.sample_rtt_us, 1)))
        limit = self.limit * gradient
        new = int(limit + math.sqrt(limit))
        return max(self.cfg.min_concurrency, min(self.cfg.max_concurrency_limit, new))

    def _update_limit(self, new: int) -> None:
        old = self.limit
        self.limit = new
        lo = self.cfg.min_concurrency
        if not self.in_min_rtt_window and old == lo and new == lo:
            self.consecutive_min += 1
        else:
            self.consecutive_min = 0
        if self.consecutive_min >= 5:
            self._enable(self.MIN_RTT, 0)

    def on_sample(self, start: int, rtt: int, inflight: int, did_drop: bool) -> None:
        """``recordLatencySample`` (or, for a drop, ``cancelLatencySample``: no sample)."""
        if did_drop:
            return
        self.now = start + rtt
        if start < self.min_rtt_epoch:
            return  # admitted before this minRTT window
        self.hist.insert(rtt // 1000)  # duration_cast<microseconds>
        self._update_min_rtt()
