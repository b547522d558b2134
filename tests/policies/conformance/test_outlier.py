"""simres's outlier ejection against transcriptions of Envoy's detector and Linkerd's breaker.

The same randomised sequences of try outcomes on random hosts, with the interval timer
firing between them, go through :mod:`envoy_outlier` (Envoy's ``DetectorImpl`` and
``DetectorHostMonitorImpl`` transcribed class by class, with the router's reports of each
try; Linkerd's ``ConsecutiveFailures`` task as a generator) and through
:class:`simres.policies.outlier.OutlierConfig`; after every step the ejected hosts, the
ejection backoffs, the events and the balancer's view are compared. Random configurations
cover every rule (consecutive 5xx, gateway and local-origin failures, success rate,
failure percentage, partial enforcement, jitter, max_ejection_percent and
always_eject_one_host). A mutant transcription (one comparison changed) must diverge.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from simres.outcomes import CONNECTION, DEGRADED, ERROR, OK, REJECTED, SHED, TIMEOUT
from simres.policies.outlier import OutlierConfig

from . import envoy_outlier as eo

NS = 1_000_000_000
TWO64 = 2.0**64


def _envoy_config(gen: np.random.Generator) -> dict[str, Any]:
    """Random options (simres fields; the transcription's are derived from them)."""
    base = float(gen.choice([1.0, 2.0, 5.0, 30.0]))
    opts: dict[str, Any] = {
        "kind": "envoy",
        "interval": float(gen.choice([1.0, 2.5, 10.0])),
        "base_ejection_time": base,
        "max_ejection_time": None if gen.random() < 0.5 else base * float(gen.choice([1, 2, 5, 10])),
        "max_ejection_time_jitter": float(gen.choice([0.0, 0.0, 0.5, 3.0])),
        "max_ejection_percent": int(gen.choice([0, 10, 20, 34, 50, 100])),
        "always_eject_one_host": bool(gen.random() < 0.3),
        "consecutive_5xx": int(gen.integers(1, 8)),
        "consecutive_gateway_failure": int(gen.integers(1, 8)),
        "consecutive_local_origin_failure": int(gen.integers(1, 8)),
        "split_external_local_origin_errors": bool(gen.random() < 0.4),
        "success_rate_minimum_hosts": int(gen.integers(1, 6)),
        "success_rate_request_volume": int(gen.choice([1, 5, 20, 100])),
        "success_rate_stdev_factor": int(gen.choice([0, 500, 1000, 1900])),
        "failure_percentage_threshold": int(gen.choice([0, 30, 50, 85])),
        "failure_percentage_minimum_hosts": int(gen.integers(1, 6)),
        "failure_percentage_request_volume": int(gen.choice([1, 5, 20, 50])),
    }
    for name in ("enforcing_consecutive_5xx", "enforcing_consecutive_gateway_failure",
                 "enforcing_consecutive_local_origin_failure", "enforcing_success_rate",
                 "enforcing_local_origin_success_rate", "enforcing_failure_percentage",
                 "enforcing_failure_percentage_local_origin"):
        opts[name] = int(gen.choice([0, 30, 70, 100, 100]))
    return opts


def _reference_config(opts: dict[str, Any]) -> eo.Config:
    kw = {k: v for k, v in opts.items() if k not in ("kind", "interval", "base_ejection_time", "max_ejection_time",
                                                     "max_ejection_time_jitter")}
    kw["interval_ms"] = round(opts["interval"] * 1000)
    kw["base_ejection_time_ms"] = round(opts["base_ejection_time"] * 1000)
    if opts["max_ejection_time"] is not None:
        kw["max_ejection_time_ms"] = round(opts["max_ejection_time"] * 1000)
    kw["max_ejection_time_jitter_ms"] = int(opts["max_ejection_time_jitter"] * 1000)
    return eo.Config(**kw)


OUTCOMES = (OK, OK, OK, DEGRADED, ERROR, REJECTED, SHED, TIMEOUT, CONNECTION)


def run_envoy(seed: int, *, mutant: bool = False, steps: int = 400, check: Any = None,
              seen: set[str] | None = None) -> tuple[int, int]:
    """(steps, divergences) for one random sequence; ``check(same, what)`` sees every comparison."""
    gen = np.random.default_rng(seed)
    opts = _envoy_config(gen)
    n = int(gen.integers(1, 13))
    d1 = np.random.default_rng(seed + 10_000).random(5_000)
    d2 = np.random.default_rng(seed + 20_000).random(5_000)
    r1, s1, r2, s2 = iter(d1), iter(d1), iter(d2), iter(d2)
    ref = eo.DetectorImpl(n, _reference_config(opts), lambda: int(next(r1) * TWO64),
                          lambda: int(next(r2) * TWO64), mutant=mutant)
    log: list[tuple[int, int, str]] = []
    wakes: list[float] = []
    sim = OutlierConfig(**opts).build(
        n, rng=lambda: float(next(s1)), jitter_rng=lambda: float(next(s2)),
        listener=lambda now, h, action, reason: log.append(
            (round(now * NS), h, f"eject {reason}" if action == "ejected" else "uneject")),
        wake=wakes.append)
    sim.start(0.0)
    # Per-host failure probabilities: most hosts healthy, some bad, so every rule fires.
    bad = gen.random(n) < 0.35
    silent = gen.random(n) < 0.5  # a bad host that fails by timeouts and refused connections only
    fail_p = np.where(bad, gen.choice([0.3, 0.7, 1.0], size=n), gen.choice([0.0, 0.02, 0.1], size=n))
    now = 0
    divergences = 0

    def compare(what: str) -> None:
        nonlocal divergences
        same = (ref.log == log
                and [h.failed_outlier_check for h in ref.hosts] == sim.ejected
                and [m.eject_time_backoff_ for m in ref.host_monitors_.values()]
                == [m.backoff for m in sim.monitors]  # type: ignore[attr-defined]
                and ref.ejections_active == sim.active)  # type: ignore[attr-defined]
        divergences += not same
        if check is not None:
            check(same, f"seed {seed} {what}: {ref.log[-3:]} vs {log[-3:]}")

    for _ in range(steps):
        now += int(gen.choice([1, 10, 100, 1000]) * gen.integers(1, 1000) * 1000)
        while ref.timer_at <= now:
            ref.now = ref.timer_at
            assert wakes and round(wakes[-1] * NS) == ref.timer_at
            sim.on_timer(ref.timer_at / NS)
            ref.onIntervalTimer()
            compare("tick")
        ref.now = now
        h = int(gen.integers(n))
        if gen.random() < 0.1:  # a raw status code (4xx, 5xx) through putHttpResponseCode
            code = int(gen.choice([200, 404, 500, 501, 502, 503, 504, 599]))
            ref.host_monitors_[ref.hosts[h]].putHttpResponseCode(code)
            sim.put_http(now / NS, h, code)  # type: ignore[attr-defined]
        else:
            outcome = OUTCOMES[int(gen.integers(4))] if gen.random() >= fail_p[h] \
                else OUTCOMES[(7 if silent[h] else 4) + int(gen.integers(2 if silent[h] else 5))]
            if outcome in (OK, DEGRADED):
                ref.reply(h, 200)
            elif outcome == ERROR:
                ref.reply(h, 500)
            elif outcome in (REJECTED, SHED):
                ref.reply(h, 503)
            elif outcome == TIMEOUT:
                ref.timeout(h)
            else:
                ref.connect_failed(h)
            sim.on_result(now / NS, h, outcome)
        compare("result")
    if seen is not None:
        seen.update(what for _, _, what in ref.log)
    return steps, divergences


def run_linkerd(seed: int, *, mutant: bool = False, steps: int = 400, check: Any = None) -> tuple[int, int]:
    """(steps, divergences) for one host's random responses and probes."""
    gen = np.random.default_rng(seed)
    max_failures = int(gen.integers(1, 9))
    lo = float(gen.choice([0.1, 1.0, 2.0]))
    hi = lo * float(gen.choice([1, 3, 10, 60]))
    gate = eo.Gate()
    ref = eo.Executor(eo.ConsecutiveFailures(max_failures, round(lo * NS), round(hi * NS), gate, mutant=mutant))
    sim = OutlierConfig(kind="linkerd", consecutive_failures=max_failures, min_penalty=lo,
                        max_penalty=hi).build(1)
    p_fail = float(gen.choice([0.2, 0.5, 0.8, 0.95]))
    now = 0
    divergences = 0
    inflight = 0
    for _ in range(steps):
        now += int(gen.integers(1, 3 * NS // 10)) + 1
        ref.advance(now)
        sim.on_timer(now / NS)
        if gate.ready() and gen.random() < 0.7:  # the balancer sends a request (a probe takes the permit)
            gate.acquire()
            sim.on_pick(0)
            inflight += 1
        elif inflight or gen.random() < 0.2:  # a response (or a straggler from before the shut)
            inflight = max(0, inflight - 1)
            ok = bool(gen.random() >= p_fail)
            ref.response(now, ok)
            sim.on_result(now / NS, 0, OK if ok else ERROR)
        same = gate.ready() == sim.available[0] and (gate.state == "open") == (not sim.ejected[0])
        divergences += not same
        if check is not None:
            check(same, f"seed {seed}: gate {gate.state}/{gate.permits} vs available {sim.available[0]}")
    return steps, divergences


def test_envoy_matches_the_transcription_step_by_step(tally: Any) -> None:
    t = tally("Envoy DetectorImpl (transcribed) vs outlier_detection envoy", "envoy 00c7146d")
    for seed in range(40):
        run_envoy(seed, check=t.check)
    t.assert_clean()


def test_linkerd_matches_the_transcription_step_by_step(tally: Any) -> None:
    t = tally("linkerd2-proxy ConsecutiveFailures (transcribed) vs outlier linkerd", "linkerd2-proxy a7cdecc1")
    for seed in range(40):
        run_linkerd(seed, check=t.check)
    t.assert_clean()


@pytest.mark.parametrize("runner", [run_envoy, run_linkerd])
def test_a_one_character_change_in_the_library_is_caught(runner: Any) -> None:
    assert sum(runner(seed, mutant=True)[1] for seed in range(40)) > 0


def test_the_sequences_exercise_every_envoy_rule() -> None:
    """Agreement is not agreement on nothing: every ejection type, un-ejections and refusals happen."""
    seen: set[str] = set()
    for seed in range(40):
        run_envoy(seed, check=lambda same, what: None, seen=seen)
    assert seen >= {"eject " + k for k in (eo.CONSECUTIVE_5XX, eo.CONSECUTIVE_GATEWAY_FAILURE,
                                           eo.CONSECUTIVE_LOCAL_ORIGIN_FAILURE, eo.SUCCESS_RATE,
                                           eo.FAILURE_PERCENTAGE)} | {"uneject"}, seen
