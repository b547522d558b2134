"""Breaker presets ``cockatiel``, ``cockatiel_sampling`` and ``opossum`` against
transcriptions of their libraries' source (:mod:`transcriptions`, commits cited there).

Randomised calls overlap (up to 6 in flight), results arrive in any order and after the
state changed, times land exactly on open deadlines and window edges, and cockatiel's
half-open callers wait for the probe's verdict: every admission, every state, every
woken caller and the window's counts are compared after each step. Times are multiples
of 1/1024 s, so the libraries' millisecond clocks (``now * 1000``) are exact. The
``*_notices_*`` tests check that a neighbouring semantics does diverge.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from simres.outcomes import ERROR, OK, REJECTED
from simres.policies import BreakerConfig
from simres.policies.breaker import WAIT

from .transcriptions import (
    COCKATIEL_COMMIT,
    OPOSSUM_COMMIT,
    POLLY_COMMIT,
    CockatielCircuitBreakerPolicy,
    CockatielConsecutiveBreaker,
    CockatielSamplingBreaker,
    OpossumCircuitBreaker,
    PollyCircuitBreaker,
)

GRID = 1 / 1024
_STATE = {0: "closed", 1: "open", 2: "half_open"}
_OUTCOME = {"success": OK, "failure": ERROR, "unhandled": REJECTED, "filtered": REJECTED}
HANDLED = ("error", "timeout", "connection", "shed")
"""The presets handle every remote failure (cockatiel handleAll, opossum without an
errorFilter); the harness narrows that so ``rejected`` stands for an error the policy does
not handle (cockatiel handleType) or that opossum's errorFilter matches."""


def run_cockatiel(seed: int, check: Any, sampling: bool, steps: int = 300, **overrides: Any) -> None:
    """One randomised run; stops at the first divergence (so a neighbouring semantics
    cannot derail the harness)."""
    gen = np.random.default_rng(seed)
    clock = [0.0]
    half_open_after = int(gen.choice([0, 64, 256, 1024, 3000])) * GRID
    if sampling:
        threshold = float(gen.choice([0.1, 0.2, 0.25, 0.5, 0.7]))
        duration_ms = int(gen.choice([300, 625, 1000, 1234, 2500, 5000, 7000]))
        rps = gen.choice([None, 0.5, 1.0, 5.0, 20.0])
        rps = None if rps is None else float(rps)
        breaker: Any = CockatielSamplingBreaker(threshold, duration_ms, rps, clock)
        sim = BreakerConfig(preset="cockatiel_sampling", threshold=threshold,
                            window={"kind": "sampling", "size": duration_ms / 1000},
                            minimum_rps=rps, open_for=half_open_after, failure_outcomes=HANDLED,
                            **overrides).build()
    else:
        n = int(gen.integers(1, 7))
        breaker = CockatielConsecutiveBreaker(n)
        sim = BreakerConfig(preset="cockatiel", failure_threshold=n, open_for=half_open_after,
                            failure_outcomes=HANDLED, **overrides).build()
    lib = CockatielCircuitBreakerPolicy(breaker, half_open_after * 1000, clock)
    p_fail = float(gen.choice([0.2, 0.5, 0.8]))
    max_step = int(gen.choice([4, 40, 400]))
    now = 0.0
    inflight: list[tuple[float, Any, int]] = []
    sim_woken: list[int] = []
    ids = iter(range(1_000_000))

    def stats_same() -> bool:
        if sampling:
            total, failures, _ = sim.counts(now)
            return (breaker.current_successes + breaker.current_failures, breaker.current_failures) == (
                total, failures)
        return bool(breaker.state == sim.consecutive_failures)

    def ask(caller: int) -> bool:
        lib_answer = lib.execute(caller)
        permit = sim.allow(now, True)
        kind = "wait" if permit == WAIT else "reject" if permit is None else "run"
        if lib_answer[0] == "run" and kind == "run":
            inflight.append((now, lib_answer[1], permit))  # type: ignore[arg-type]
        elif kind == "wait":
            sim.wait(lambda c=caller: sim_woken.append(c))
        return lib_answer[0] == kind

    for _ in range(steps):
        if gen.random() < 0.1 and sim.state == "open":
            now = sim.open_until  # exactly at the deadline
        else:
            now += int(gen.integers(0, max_step)) * GRID
        clock[0] = now * 1000
        if inflight and (len(inflight) >= 6 or gen.random() < 0.5):
            start, token, permit = inflight.pop(int(gen.integers(len(inflight))))
            r = gen.random()
            result = "failure" if r < p_fail else "unhandled" if r < p_fail + 0.08 else "success"
            lib.finish(token, result)
            sim.on_result(now, permit, _OUTCOME[result], now - start)
            same, what = True, ("result", result)
        else:
            same, what = ask(next(ids)), "call"
        while same and (lib.woken or sim_woken):  # callers awaiting the decision run again
            same = bool(lib.woken and sim_woken and lib.woken[0] == sim_woken[0])
            if same:
                caller = lib.woken.pop(0)
                sim_woken.pop(0)
                same = ask(caller)
            what = ("woken", what)
        same = same and _STATE[lib.inner.value] == sim.state and stats_same()
        check(same, (seed, now, what, _STATE[lib.inner.value], sim.state))
        if not same:
            return


@pytest.mark.parametrize("sampling", [False, True], ids=["consecutive", "sampling"])
def test_cockatiel_breakers(tally: Any, sampling: bool) -> None:
    name = "SamplingBreaker vs preset cockatiel_sampling" if sampling else (
        "ConsecutiveBreaker vs preset cockatiel")
    t = tally(f"cockatiel CircuitBreakerPolicy + {name} (transcribed)",
              f"cockatiel 4.0.0 {COCKATIEL_COMMIT[:8]}")
    for seed in range(40):
        run_cockatiel(seed, t.check, sampling)
    t.assert_clean()


@pytest.mark.parametrize(("sampling", "overrides"), [
    (True, {"rate_rule": "at_or_above"}),
    (True, {"close_window": "reset"}),
    (True, {"half_open_failure_counts": False}),
    (True, {"unhandled": "success"}),
    (False, {"half_open_waits": False}),
    (False, {"late_result_state": "current"}),
    (False, {"late_result_state": "admitting"}),
], ids=["ratio-at-or-above", "probe-not-counted", "failed-probe-not-counted", "unhandled-success",
        "half-open-rejects", "late-current", "late-pybreaker"])
def test_cockatiel_harness_notices_other_semantics(sampling: bool, overrides: dict[str, Any]) -> None:
    bad = [0]
    for seed in range(40):
        run_cockatiel(seed, lambda same, what: bad.__setitem__(0, bad[0] + (not same)), sampling,
                      **overrides)
    assert bad[0] > 0


def test_cockatiel_sampling_ring_matches_the_constructor() -> None:
    """30 s -> 30 slots of 1 s; 1234 ms -> 5 slots of round(246.8) = 247 ms (1235 ms)."""
    for size, slots, width_ms in [(30.0, 30, 1000), (1.234, 5, 247), (0.3, 5, 60)]:
        breaker = CockatielSamplingBreaker(0.5, size * 1000, None, [0.0])
        window = BreakerConfig(preset="cockatiel_sampling", window={"kind": "sampling", "size": size}
                               ).build()._window
        assert (len(breaker.windows), breaker.window_size, breaker.duration) == (slots, width_ms,
                                                                                 slots * width_ms)
        assert window.duration_ms == breaker.duration  # type: ignore[union-attr]
        assert math.isclose(window.width, width_ms / 1000)  # type: ignore[union-attr]


def run_opossum(seed: int, check: Any, steps: int = 300, **overrides: Any) -> None:
    gen = np.random.default_rng(seed)
    pct = float(gen.choice([50.0, 25.0, 10.0, 75.0, 33.0, 57.0, 90.0]))
    reset_ms = float(gen.choice([125.0, 250.0, 375.0, 1000.0, 3000.0, 5000.0]))  # exact in binary seconds
    rolling, buckets = [(10000, 10), (1000, 10), (3000, 3), (2000, 7), (500, 4), (1000, 8)][
        int(gen.integers(6))]
    volume = int(gen.choice([0, 0, 3, 10]))
    lib = OpossumCircuitBreaker(pct, reset_ms, rolling, buckets, volume)
    width = lib.interval / 1000
    sim = BreakerConfig(preset="opossum", threshold=pct / 100, open_for=reset_ms / 1000,
                        minimum_calls=volume, failure_outcomes=HANDLED,
                        window={"kind": "time", "size": buckets * width, "bucket_width": width},
                        **overrides).build()
    p_fail = float(gen.choice([0.2, 0.5, 0.8]))
    max_step = int(gen.choice([2, 32, 256, 1024]))
    now = 0.0
    inflight: list[tuple[float, int]] = []
    for _ in range(steps):
        if gen.random() < 0.1 and sim.state == "open":
            now = sim.open_until  # exactly when the reset timer fires
        elif gen.random() < 0.05:
            now += int(gen.integers(0, 3 * rolling)) * GRID  # an idle gap
        else:
            now += int(gen.integers(0, max_step)) * GRID
        lib.advance(now * 1000)
        if inflight and (len(inflight) >= 6 or gen.random() < 0.5):
            start, permit = inflight.pop(int(gen.integers(len(inflight))))
            r = gen.random()
            result = "failure" if r < p_fail else "filtered" if r < p_fail + 0.08 else "success"
            if result == "success":
                lib.on_success()
            else:
                lib.on_error(result == "filtered")
            sim.on_result(now, permit, _OUTCOME[result], now - start)
            same, what = True, ("result", result)
        else:
            admitted = lib.call()
            permit = sim.allow(now)
            same, what = admitted == (permit is not None), ("call", admitted)
            if admitted and permit is not None:
                inflight.append((now, permit))
        stats = lib.stats()
        calls, failures, _ = sim.counts(now)
        same = same and lib.state == sim.state and (stats["fires"], stats["failures"]) == (calls, failures)
        check(same, (seed, now, what, lib.state, sim.state, stats, (calls, failures)))
        if not same:
            return


def test_opossum_breaker(tally: Any) -> None:
    t = tally("opossum CircuitBreaker + Status (transcribed) vs preset opossum",
              f"opossum 10.0.0 {OPOSSUM_COMMIT[:8]}")
    for seed in range(40):
        run_opossum(seed, t.check)
    t.assert_clean()


@pytest.mark.parametrize("overrides", [
    {"rate_rule": "at_or_above"},
    {"close_window": "reset"},
    {"half_open_trigger": "call"},
    {"rate_denominator": "results"},
], ids=["at-or-above", "cleared-on-close", "lazy-half-open", "results-denominator"])
def test_opossum_harness_notices_other_semantics(overrides: dict[str, Any]) -> None:
    bad = [0]
    for seed in range(40):
        run_opossum(seed, lambda same, what: bad.__setitem__(0, bad[0] + (not same)), **overrides)
    assert bad[0] > 0


POLLY_GRID = 1 / 64  # whole ticks (100 ns): 156,250 per step


def run_polly(seed: int, check: Any, steps: int = 300, **overrides: Any) -> None:
    gen = np.random.default_rng(seed)
    ratio = float(gen.choice([0.1, 0.2, 0.5, 0.3, 0.75]))
    minimum = int(gen.integers(1, 12))
    sampling = float(gen.choice([0.625, 1.25, 2.5, 5.0, 30.0]))  # sub-windows of whole ticks
    brk = int(gen.choice([0, 8, 64, 320])) * POLLY_GRID
    clock = [0]
    lib = PollyCircuitBreaker(ratio, minimum, round(sampling * 1e7), round(brk * 1e7), clock)
    sim = BreakerConfig(preset="polly", threshold=ratio, minimum_calls=minimum, open_for=brk,
                        window={"kind": "rolling", "size": sampling, "buckets": 10}, **overrides).build()
    p_fail = float(gen.choice([0.1, 0.3, 0.6]))
    max_step = int(gen.choice([2, 8, 64]))
    now = 0.0
    inflight: list[tuple[float, int]] = []
    for _ in range(steps):
        if gen.random() < 0.1 and sim.state == "open":
            now = sim.open_until
        else:
            now += int(gen.integers(0, max_step)) * POLLY_GRID
        clock[0] = round(now * 1e7)
        if inflight and (len(inflight) >= 6 or gen.random() < 0.5):
            start, permit = inflight.pop(int(gen.integers(len(inflight))))
            r = gen.random()
            result = "failure" if r < p_fail else "unhandled" if r < p_fail + 0.08 else "success"
            if result == "failure":
                lib.on_handled_outcome()
            else:
                lib.on_unhandled_outcome()
            sim.on_result(now, permit, _OUTCOME[result], now - start)
            same, what = True, ("result", result)
        else:
            admitted = lib.pre_execute()
            permit = sim.allow(now)
            same, what = admitted == (permit is not None), ("call", admitted)
            if admitted and permit is not None:
                inflight.append((now, permit))
        same = same and lib.state == sim.state
        if same and sim.state == "closed":  # Polly also counts while open; closing resets both
            total, _rate, failures = lib.metrics.get_health_info()
            same = (total, failures) == sim.counts(now)[:2]
        check(same, (seed, now, what, lib.state, sim.state))
        if not same:
            return


def test_polly_breaker(tally: Any) -> None:
    t = tally("Polly CircuitStateController + AdvancedCircuitBehavior (transcribed) vs preset polly",
              f"Polly 8.x {POLLY_COMMIT[:8]}")
    for seed in range(40):
        run_polly(seed, t.check)
    t.assert_clean()


@pytest.mark.parametrize("overrides", [
    {"rate_rule": "above"}, {"check_rate_on": "every_result"}, {"count_late_results": False},
    {"late_result_state": "admitting_closed"}, {"close_window": "reset_then_probe"},
], ids=["above", "every-result", "late-ignored", "cockatiel-late-results", "probe-counted"])
def test_polly_harness_notices_other_semantics(overrides: dict[str, Any]) -> None:
    bad = [0]
    for seed in range(40):
        run_polly(seed, lambda same, what: bad.__setitem__(0, bad[0] + (not same)), **overrides)
    assert bad[0] > 0
