"""simres's ``envoy_gradient`` limit against a transcription of Envoy's gradient controller.

Randomised runs of overlapping requests (admissions, responses after random latencies,
resets that give no sample) on a fake clock, with the controller's two timers firing in
between, go through :mod:`envoy_gradient` (the C++ transcribed in its own shape, with its
dispatcher and circllhist's sorted buckets) and through
:class:`simres.policies.limits.LimitConfig` (``kind: envoy_gradient``) driven by the same
timer protocol the simulation uses. Every admission decision and the limit after every
step are compared; a mutant (``<`` as ``<=`` at admission) must diverge.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from simres.policies.envoy_concurrency import LogLinearHistogram, hist_bucket
from simres.policies.limits import LimitConfig

from . import envoy_gradient as eg

MS = 1_000_000


def _config(gen: np.random.Generator) -> dict[str, Any]:
    return {
        "sample_aggregate_percentile": float(gen.choice([0.5, 0.9, 0.99, 0.25])),
        "concurrency_update_interval": float(gen.choice([0.05, 0.1, 0.25])),
        "max_concurrency_limit": int(gen.choice([8, 50, 1000])),
        "interval": float(gen.choice([0.5, 2.0, 10.0])),
        "request_count": int(gen.integers(1, 60)),
        "jitter": float(gen.choice([0.0, 0.15, 0.5])),
        "min_concurrency": int(gen.integers(1, 6)),
        "buffer": float(gen.choice([0.0, 0.25, 1.0])),
    }


def _run(seed: int, steps: int, *, mutant: bool = False) -> tuple[int, int]:
    """Drive both for ``steps`` request starts; returns (steps compared, divergences)."""
    gen = np.random.default_rng(seed)
    opts = _config(gen)
    draws = np.random.default_rng(seed + 10_000).random(10_000)
    ours_u = iter(draws)
    ref_u = iter(draws)

    limiter = LimitConfig(kind="envoy_gradient", envoy=opts).build(rng=lambda: float(next(ours_u)))
    algo: Any = limiter.algorithm
    timers: list[tuple[int, int, str, int]] = []  # (due, seq, name, generation)
    seq = [0]

    def arm(name: str, generation: int, due: int) -> None:
        seq[0] += 1
        heapq.heappush(timers, (due, seq[0], name, generation))

    algo.arm = arm
    algo.start(0)

    disp = eg.Dispatcher()
    ref = eg.GradientController(
        interval_ms=round(opts["interval"] * 1000), sample_ms=round(opts["concurrency_update_interval"] * 1000),
        jitter=opts["jitter"], max_limit=opts["max_concurrency_limit"], request_count=opts["request_count"],
        percentile=opts["sample_aggregate_percentile"], min_concurrency=opts["min_concurrency"],
        buffer=opts["buffer"], dispatcher=disp, random=lambda: int(float(next(ref_u)) * 2**64), mutant=mutant)

    base_latency = float(gen.choice([0.0005, 0.005, 0.05]))
    rate = float(gen.choice([50, 500, 5000]))
    ends: list[tuple[int, int, tuple[int, int] | None, int, bool]] = []  # (t, id, token, ref start, reset)
    now = 0
    divergences = compared = 0
    for i in range(steps):
        now += int(gen.exponential(1 / rate) * 1e9) + 1
        # responses due before this arrival, and the timers between them, in time order
        while ends and ends[0][0] <= now:
            t_end, _i, token, ref_start, reset = heapq.heappop(ends)
            while timers and timers[0][0] <= t_end:
                due, _s, name, g = heapq.heappop(timers)
                limiter.fire(name, g, due)
            disp.run_until(t_end)
            if token is not None:
                if reset:
                    limiter.dropped(token, t_end)
                    ref.cancel_latency_sample()
                else:
                    limiter.success(token, t_end)
                    ref.record_latency_sample(ref_start)
        while timers and timers[0][0] <= now:
            due, _s, name, g = heapq.heappop(timers)
            limiter.fire(name, g, due)
        disp.run_until(now)
        token = limiter.acquire(now)
        admitted = ref.forwarding_decision()
        compared += 1
        if (token is not None) != admitted or limiter.limit != ref.concurrency_limit:
            divergences += 1
            if not mutant:
                raise AssertionError(f"seed {seed} step {i}: ours admitted={token is not None} "
                                     f"limit={limiter.limit}, Envoy admitted={admitted} "
                                     f"limit={ref.concurrency_limit}, options {opts}")
        if token is not None:
            slow = gen.random() < 0.1
            latency = base_latency * (gen.lognormal(0, 0.5) + (20 if slow else 0)) * (1 + limiter.inflight / 10)
            heapq.heappush(ends, (now + int(latency * 1e9), i, token, now, bool(gen.random() < 0.05)))
    return compared, divergences


def test_histogram_bins_and_quantiles_as_circllhist() -> None:
    assert hist_bucket(0) == (0, 0) and hist_bucket(7) == (0, 70) and hist_bucket(12345) == (4, 12)
    assert hist_bucket(100) == (2, 10) and hist_bucket(99) == (1, 99) and hist_bucket(0.11) == (-1, 11)
    gen = np.random.default_rng(3)
    for _ in range(300):
        ours, ref = LogLinearHistogram(), eg.Histogram()
        for v in (gen.lognormal(6, 2, size=int(gen.integers(1, 80)))).astype(int):
            ours.insert(int(v))
            ref.insert(int(v))
        for q in (0.0, 0.25, 0.5, 0.9, 0.99, 1.0):
            assert ours.quantile(q) == ref.approx_quantile(q)
    h = LogLinearHistogram()
    for v in (1000, 1000, 2000, 2500):
        h.insert(v)
    # four samples: p50 is the top of the 1000-1100 bin, p75 the bottom of 2500's
    assert h.quantile(0.5) == 1100.0 and h.quantile(0.75) == 2100.0 and h.quantile(1.0) == 2600.0


def test_envoy_gradient_decides_as_envoy(tally: Any) -> None:
    t = tally("Envoy adaptive concurrency GradientController (transcribed) vs limit envoy_gradient",
              "envoy c35f67fb")
    for seed in range(60):
        compared, divergences = _run(seed, 400)
        t.steps += compared
        t.divergences += divergences
    t.assert_clean()  # 24,000 decisions


def test_a_mutant_transcription_diverges() -> None:
    assert sum(_run(seed, 400, mutant=True)[1] for seed in range(10)) > 0


def test_the_limit_moves_and_measures_min_rtt_again() -> None:
    """Not vacuous: across the runs the limit leaves its floor, and minRTT windows recur."""
    limiter = LimitConfig(kind="envoy_gradient", envoy={"interval": 1.0, "jitter": 0.0, "request_count": 5,
                                                         "concurrency_update_interval": 0.1}).build(rng=lambda: 0.5)
    algo: Any = limiter.algorithm
    timers: list[tuple[int, int, str, int]] = []
    algo.arm = lambda name, g, due: heapq.heappush(timers, (due, g, name, g))
    algo.start(0)
    limits, windows = [], 0
    pending: list[tuple[int, tuple[int, int]]] = []
    now = 0
    for _ in range(3000):
        now += MS
        while pending and pending[0][0] <= now:
            end, tok = pending.pop(0)
            limiter.success(tok, end)  # every request takes 2 ms: a steady RTT, the limit should grow
        while timers and timers[0][0] <= now:
            due, _s, name, g = heapq.heappop(timers)
            was = algo.in_min_rtt_window
            limiter.fire(name, g, due)
            windows += (not was) and algo.in_min_rtt_window
        for _k in range(40):  # 40 requests a millisecond: more than any limit lets in
            tok = limiter.acquire(now)
            if tok is not None:
                pending.append((now + 2 * MS, tok))
        limits.append(limiter.limit)
    assert max(limits) > 20 and windows >= 2
    # all five samples in the 2000-2100 us bin: circllhist interpolates p50 to the middle of it
    assert algo.min_rtt_us == 2050
