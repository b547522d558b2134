"""A line-by-line transcription of Envoy's adaptive concurrency gradient controller.

Written from the C++ as it stands, separately from :mod:`simres.policies.envoy_concurrency`,
in the source's own shape (a dispatcher of timers, ``enableTimer``, ``hist_*`` calls on a
sorted array of buckets), so the comparison in ``test_envoy_gradient.py`` checks the simres
object against the library's structure rather than against itself.

Sources: envoyproxy/envoy
``source/extensions/filters/http/adaptive_concurrency/controller/gradient_controller.cc``
(c35f67fb) and openhistogram/libcircllhist ``src/circllhist.c`` (``double_to_hist_bucket``,
``hist_bucket_to_double``, ``hist_bucket_to_double_bin_width``, ``hist_approx_quantile``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

POWER_OF_TEN = {e: float(f"1e{e}") for e in range(-128, 128)}


class Histogram:
    """circllhist: ``bvs`` is a sorted list of ``[val, exp, count]``."""

    def __init__(self) -> None:
        self.bvs: list[list[int]] = []

    @staticmethod
    def to_bucket(d: float) -> tuple[int, int]:
        if d == 0:
            return (0, 0)
        big_exp = math.floor(math.log10(d))
        d = d / POWER_OF_TEN[big_exp]
        d *= 10
        val = math.floor(d + 1e-13)
        if val == 100:
            val //= 10
            big_exp += 1
        return (val, big_exp)

    @staticmethod
    def _order(b: tuple[int, int]) -> tuple[int, int]:
        return (0, 0) if b[0] == 0 else (1 + b[1] + 200, b[0])

    def insert(self, value: float) -> None:
        b = self.to_bucket(value)
        for bv in self.bvs:
            if (bv[0], bv[1]) == b:
                bv[2] += 1
                return
        self.bvs.append([b[0], b[1], 1])
        self.bvs.sort(key=lambda bv: self._order((bv[0], bv[1])))

    def sample_count(self) -> int:
        return sum(bv[2] for bv in self.bvs)

    def clear(self) -> None:
        self.bvs = []

    @staticmethod
    def to_double(val: int, exp: int) -> float:
        return 0.0 if val == 0 else (val / 10.0) * POWER_OF_TEN[exp]

    @staticmethod
    def bin_width(val: int, exp: int) -> float:
        return 0.0 if val == 0 else POWER_OF_TEN[exp] / 10.0

    def approx_quantile(self, q: float) -> float:
        total = float(self.sample_count())
        if total == 0:
            return math.nan
        qn = total * q
        upper = lower = width = left = 0.0
        i_b = 0
        used = len(self.bvs)

        def track(idx: int) -> None:
            nonlocal width, left, lower, upper
            val, exp, count = self.bvs[idx]
            width = self.bin_width(val, exp)
            left = self.to_double(val, exp)
            lower = upper
            upper = lower + count

        for i_b in range(used):
            if self.bvs[i_b][2] == 0:
                continue
            track(i_b)
            break
        while i_b < used - 1 and upper < qn:
            i_b += 1
            track(i_b)
        if lower == qn:
            return left
        if upper == qn:
            return left + width
        if width == 0:
            return left
        return left + (qn - lower) / (upper - lower) * width


class Dispatcher:
    """Timers on a fake monotonic clock in nanoseconds; ``run_until`` fires due ones in order."""

    def __init__(self) -> None:
        self.now = 0
        self.timers: dict[int, tuple[int, int, Callable[[], None]]] = {}  # id -> (due, seq, cb)
        self._seq = 0

    def create_timer(self, cb: Callable[[], None]) -> Timer:
        return Timer(self, cb)

    def run_until(self, t: int) -> None:
        while True:
            due = [(d, s, tid) for tid, (d, s, _cb) in self.timers.items() if d <= t]
            if not due:
                break
            d, _s, tid = min(due)
            cb = self.timers.pop(tid)[2]
            self.now = d
            cb()
        self.now = t


class Timer:
    def __init__(self, dispatcher: Dispatcher, cb: Callable[[], None]) -> None:
        self.d = dispatcher
        self.cb = cb

    def enable_timer(self, ms: int) -> None:
        self.d._seq += 1
        self.d.timers[id(self)] = (self.d.now + ms * 1_000_000, self.d._seq, self.cb)


class GradientController:
    def __init__(self, *, interval_ms: int, sample_ms: int, jitter: float, max_limit: int, request_count: int,
                 percentile: float, min_concurrency: int, buffer: float, dispatcher: Dispatcher,
                 random: Callable[[], int], mutant: bool = False) -> None:
        self.min_rtt_calc_interval = interval_ms
        self.sample_rtt_calc_interval = sample_ms
        self.jitter_pct = jitter
        self.max_concurrency_limit = max_limit
        self.min_rtt_aggregate_request_count = request_count
        self.sample_aggregate_percentile = percentile
        self.min_concurrency = min_concurrency
        self.min_rtt_buffer_pct = buffer
        self.dispatcher = dispatcher
        self.random = random
        self.mutant = mutant
        self.deferred_limit_value = 0
        self.num_rq_outstanding = 0
        self.concurrency_limit = min_concurrency
        self.consecutive_min_concurrency_set = 0
        self.hist = Histogram()
        self.min_rtt = 0
        self.sample_rtt = 0
        self.min_rtt_epoch = 0
        self.min_rtt_calc_timer = dispatcher.create_timer(self.enter_min_rtt_sampling_window)

        def sample_reset() -> None:
            if self.in_min_rtt_sampling_window():
                return
            self.reset_sample_window()
            self.sample_reset_timer.enable_timer(self.sample_rtt_calc_interval)

        self.sample_reset_timer = dispatcher.create_timer(sample_reset)
        self.enter_min_rtt_sampling_window()
        self.sample_reset_timer.enable_timer(self.sample_rtt_calc_interval)

    def in_min_rtt_sampling_window(self) -> bool:
        return self.deferred_limit_value > 0

    def enter_min_rtt_sampling_window(self) -> None:
        if self.in_min_rtt_sampling_window():
            return
        self.deferred_limit_value = self.concurrency_limit
        self.update_concurrency_limit(self.min_concurrency)
        self.hist.clear()
        self.min_rtt_epoch = self.dispatcher.now

    def update_min_rtt(self) -> None:
        if not self.in_min_rtt_sampling_window() or \
                self.hist.sample_count() < self.min_rtt_aggregate_request_count:
            return
        self.min_rtt = self.process_latency_samples_and_clear()
        self.update_concurrency_limit(self.deferred_limit_value)
        self.deferred_limit_value = 0
        self.min_rtt_calc_timer.enable_timer(self.apply_jitter(self.min_rtt_calc_interval, self.jitter_pct))
        self.sample_reset_timer.enable_timer(self.sample_rtt_calc_interval)

    def apply_jitter(self, interval: int, jitter_pct: float) -> int:
        if jitter_pct == 0:
            return interval
        jitter_range_ms = math.ceil(interval * jitter_pct)
        return interval + (self.random() % jitter_range_ms)

    def reset_sample_window(self) -> None:
        if self.hist.sample_count() == 0:
            return
        self.sample_rtt = self.process_latency_samples_and_clear()
        self.update_concurrency_limit(self.calculate_new_limit())

    def process_latency_samples_and_clear(self) -> int:
        q = self.hist.approx_quantile(self.sample_aggregate_percentile)
        self.hist.clear()
        return int(q)

    def calculate_new_limit(self) -> int:
        buffered_min_rtt = self.min_rtt + self.min_rtt * self.min_rtt_buffer_pct
        raw_gradient = buffered_min_rtt / max(self.sample_rtt, 1)
        gradient = max(0.5, min(2.0, raw_gradient))
        limit = self.concurrency_limit * gradient
        burst_headroom = math.sqrt(limit)
        new_limit = int(limit + burst_headroom)
        return max(self.min_concurrency, min(self.max_concurrency_limit, new_limit))

    def forwarding_decision(self) -> bool:
        if self.num_rq_outstanding < self.concurrency_limit or (self.mutant and
                                                                 self.num_rq_outstanding == self.concurrency_limit):
            self.num_rq_outstanding += 1
            return True
        return False

    def record_latency_sample(self, rq_send_time: int) -> None:
        self.num_rq_outstanding -= 1
        if rq_send_time < self.min_rtt_epoch:
            return
        rq_latency_us = (self.dispatcher.now - rq_send_time) // 1000
        self.hist.insert(rq_latency_us)
        self.update_min_rtt()

    def cancel_latency_sample(self) -> None:
        self.num_rq_outstanding -= 1

    def update_concurrency_limit(self, new_limit: int) -> None:
        old_limit = self.concurrency_limit
        self.concurrency_limit = new_limit
        if not self.in_min_rtt_sampling_window() and old_limit == self.min_concurrency and \
                new_limit == self.min_concurrency:
            self.consecutive_min_concurrency_set += 1
        else:
            self.consecutive_min_concurrency_set = 0
        if self.consecutive_min_concurrency_set >= 5:
            self.min_rtt_calc_timer.enable_timer(0)
