"""Presets of libraries that need another runtime, against transcriptions of their source.

The reference side is :mod:`transcriptions` (each class cites its file and commit). The
same randomised sequences, with overlapping calls whose results arrive after the state
changed, go through the transcription and through the simres preset; every decision is
compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from simres.outcomes import CONNECTION, ERROR, OK, REJECTED, SHED, TIMEOUT
from simres.policies import (
    BreakerConfig,
    ConcurrencyBudgetConfig,
    GrpcBudgetConfig,
    RatioBudgetConfig,
    RetryConfig,
)

from .transcriptions import (
    EnvoyRetryBudget,
    FinagleRetryBudget,
    GrpcThrottle,
    Resilience4jCountBreaker,
    grpc_should_retry,
)

GRID = 1 / 64


def run_resilience4j(seed: int, check: Any, **overrides: Any) -> None:
    gen = np.random.default_rng(seed)
    size = int(gen.integers(2, 12))
    minimum = int(gen.integers(1, 15))
    pct = float(gen.choice([25.0, 50.0, 60.0, 100.0]))
    slow_pct = float(gen.choice([50.0, 100.0]))
    slow_duration = int(gen.integers(1, 8)) * GRID
    wait = int(gen.integers(1, 200)) * GRID
    permits = int(gen.integers(1, 6))
    lib = Resilience4jCountBreaker(size, minimum, pct, slow_pct, slow_duration, wait, permits)
    sim = BreakerConfig(preset="resilience4j", window={"kind": "count", "size": size},
                        minimum_calls=minimum, threshold=pct / 100, slow_threshold=slow_pct / 100,
                        slow_call_duration=slow_duration, open_for=wait,
                        half_open_permits=permits, **overrides).build()
    now = 0.0
    inflight: list[tuple[float, int]] = []
    for _ in range(300):
        if gen.random() < 0.1 and sim.state == "open":
            now = sim.open_until  # exactly at the deadline
        else:
            now += int(gen.integers(0, 30)) * GRID
        if inflight and (len(inflight) >= 6 or gen.random() < 0.5):
            start, permit = inflight.pop(int(gen.integers(len(inflight))))
            failed = bool(gen.random() < 0.5)
            lib.on_result(now, failed, now - start)
            sim.on_result(now, permit, ERROR if failed else OK, now - start)
            same, what = True, "result"
        else:
            admitted = lib.try_acquire(now)
            permit = sim.allow(now)
            same, what = admitted == (permit is not None), ("allow", admitted)
            if admitted and permit is not None:
                inflight.append((now, permit))
        same = same and lib.state == sim.state
        check(same, (seed, now, what, lib.state, sim.state))


def test_resilience4j_count_breaker(tally: Any) -> None:
    t = tally("Resilience4j CircuitBreaker (transcribed) vs preset resilience4j",
              "resilience4j 2.x main")
    for seed in range(40):
        run_resilience4j(seed, t.check)
    t.assert_clean()


def test_resilience4j_harness_notices_at_or_after() -> None:
    bad = [0]
    for seed in range(40):
        run_resilience4j(seed, lambda same, what: bad.__setitem__(0, bad[0] + (not same)),
                         half_open_at="deadline")
    assert bad[0] > 0


_GRPC_RETRYABLE = (CONNECTION, ERROR, REJECTED, SHED)


def test_grpc_retry_throttling(tally: Any) -> None:
    t = tally("grpc-java RetriableStream.Throttle (transcribed) vs preset grpc",
              "grpc-java 003b8789")
    for seed in range(40):
        gen = np.random.default_rng(seed)
        max_tokens = float(gen.choice([10.0, 5.0, 2.5, 1.0, 0.7, 100.0]))
        ratio = float(gen.choice([0.1, 0.05, 0.123, 1.0, 0.0015, 0.7]))
        attempts = int(gen.integers(2, 6))
        throttle = GrpcThrottle(max_tokens, ratio)
        cfg = RetryConfig(preset="grpc", max_attempts=attempts,
                          budget={"preset": "grpc", "max_tokens": max_tokens, "token_ratio": ratio})
        budget = cfg.budget.build()  # type: ignore[union-attr]
        calls: list[Any] = []
        p_fail = float(gen.choice([0.3, 0.6, 0.9]))
        for _ in range(300):
            if not calls or (len(calls) < 6 and gen.random() < 0.3):
                rc = cfg.new_call()
                rc.on_try()
                budget.on_request(0.0)
                calls.append(rc)
            rc = calls[int(gen.integers(len(calls)))]
            outcome = str(gen.choice([CONNECTION, ERROR, REJECTED, SHED, TIMEOUT])) if gen.random() < p_fail else OK
            # grpc-java
            if outcome == OK:
                throttle.on_success()
                lib = False
            else:
                lib = grpc_should_retry(throttle, outcome in _GRPC_RETRYABLE, attempts, rc.attempts - 1)
            # simres, in the driver's order
            budget.on_try_end(0.0, outcome, rc.attempts > 1)
            sim = False
            if outcome != OK and rc.next_delay(outcome, lambda: 0.5) is not None:
                sim = budget.try_acquire_retry(0.0, outcome)
            same = lib == sim and throttle.token_count == round(budget.tokens * 1000)
            t.check(same, (seed, outcome, lib, sim, throttle.token_count, budget.tokens))
            if sim:
                rc.on_try()
            else:
                calls.remove(rc)
    t.assert_clean()


def test_grpc_milli_tokens_are_truncated_like_java() -> None:
    # 0.0015 * 1000 in float32 is 1.5: grpc-java keeps 1 milli-token, round() would keep 2
    assert GrpcBudgetConfig(token_ratio=0.0015).build()._ratio == GrpcThrottle(10, 0.0015).token_ratio == 1


def run_envoy(seed: int, check: Any, waiting_active: bool) -> None:
    gen = np.random.default_rng(seed)
    percent = float(gen.choice([20.0, 25.0, 50.0, 10.0]))
    minimum = int(gen.integers(0, 4))
    lib = EnvoyRetryBudget(percent, minimum)
    sim = ConcurrencyBudgetConfig(preset="envoy", budget_percent=percent / 100,
                                  min_retry_concurrency=minimum,
                                  waiting_retries_active=waiting_active).build()
    # each request: "sending" (a try in flight), "backoff" (a granted retry waiting)
    requests: list[dict[str, Any]] = []
    for _ in range(400):
        r = gen.random()
        if not requests or r < 0.25:
            lib.requests += 1
            sim.on_request(0.0)
            requests.append({"phase": "sending", "retry": False, "held": False})
            continue
        req = requests[int(gen.integers(len(requests)))]
        if req["phase"] == "backoff":  # the back-off timer fires: the retry is sent
            req["phase"] = "sending"
            lib.requests += 1
            sim.on_try_start(0.0, True)
            continue
        # the try in flight ends
        lib.requests -= 1
        failed = gen.random() < 0.7
        sim.on_try_end(0.0, ERROR if failed else OK, req["retry"])
        if req["held"]:  # RetryStateImpl::resetRetry at the next shouldRetry / request end
            lib.retries -= 1
            req["held"] = False
        granted_lib = False
        if failed and gen.random() < 0.9:
            granted_lib = lib.can_create()
            if granted_lib:
                lib.retries += 1
                req["held"] = True
            granted_sim = sim.try_acquire_retry(0.0, ERROR)
            check(granted_lib == granted_sim and lib.retries == sim.active_retries,
                  (seed, granted_lib, granted_sim, lib.requests, lib.retries, sim.active))
        if granted_lib:
            req["phase"], req["retry"] = "backoff", True
        else:
            requests.remove(req)


def test_envoy_retry_budget(tally: Any) -> None:
    t = tally("Envoy RetryBudgetImpl (transcribed) vs concurrency budget, waiting_retries_active off",
              "envoy 01c2c1fa")
    for seed in range(90):
        run_envoy(seed, t.check, waiting_active=False)
    t.assert_clean()


@pytest.mark.parametrize("waiting_active", [True])
def test_envoy_preset_today_counts_waiting_retries(waiting_active: bool) -> None:
    """The preset as the driver runs it (retries in back-off counted as active) differs."""
    bad = [0]
    for seed in range(90):
        run_envoy(seed, lambda same, what: bad.__setitem__(0, bad[0] + (not same)), waiting_active)
    assert bad[0] > 0


def run_finagle(seed: int, check: Any, slices: str = "finagle") -> None:
    if True:
        gen = np.random.default_rng(seed)
        ttl = int(gen.choice([1, 2, 10]))
        reserve = int(gen.choice([0, 1, 10]))
        percent = float(gen.choice([0.2, 0.1, 0.3, 1.5, 0.0])) if reserve else 0.2
        now = [0]
        lib = FinagleRetryBudget(ttl, reserve, percent, now)
        sim = RatioBudgetConfig(preset="finagle", ttl=ttl, min_per_second=reserve, percent=percent,
                                slices=slices).build()
        step = int(gen.choice([1, 7, 50, 400]))  # ms between events: slices of ttl/10 are 100 ms+
        for _ in range(300):
            now[0] += int(gen.integers(0, step * 2 + 1))
            if gen.random() < 0.05:
                now[0] += int(gen.integers(0, 3 * ttl * 1000))  # an idle gap
            if gen.random() < 0.5:
                lib.deposit()
                sim.on_request(now[0] / 1000)
                continue
            check(lib.try_withdraw() == sim.try_acquire_retry(now[0] / 1000, ERROR), (seed, now[0]))


def test_finagle_retry_budget(tally: Any) -> None:
    t = tally("Finagle RetryBudget + WindowedAdder (transcribed) vs budget finagle",
              "finagle 0e26b576")
    for seed in range(70):
        run_finagle(seed, t.check)
    t.assert_clean()


def test_finagle_harness_notices_grid_slices() -> None:
    bad = [0]
    for seed in range(70):
        run_finagle(seed, lambda same, what: bad.__setitem__(0, bad[0] + (not same)), "grid")
    assert bad[0] > 0
