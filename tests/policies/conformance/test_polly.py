"""The ``polly`` retry presets against a transcription of Polly v8's retry strategy.

The reference side is :class:`transcriptions_retry.PollyRetryExecution` (Polly's
``RetryHelper.cs`` and ``RetryResilienceStrategy.cs`` at App-vNext/Polly 173d6d1d, .NET 8
``TimeSpan`` arithmetic). Randomised options (backoff type, ``UseJitter``, ``Delay`` and
``MaxDelay`` in whole ticks, ``MaxRetryAttempts``) and outcome sequences go through both;
each try's decision (retry or not, and the delay to the tick) is compared, with the same
uniform draw on both sides. A few executions run past attempt 1024, where Polly's
``double.IsInfinity`` guard and the ``TimeSpan`` overflows take over.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from simres.policies import RetryConfig
from simres.policies.backoff import TICKS_PER_SECOND, TIMESPAN_MAX_SECONDS

from .transcriptions_retry import PollyRetryExecution

_KINDS = {"Constant": "constant", "Linear": "linear", "Exponential": "exponential"}
DAY = 864_000_000_000  # ticks; Polly's [Range] on Delay and MaxDelay


def _ticks(gen: np.random.Generator) -> int:
    form = int(gen.integers(5))
    if form == 0:
        return 0
    if form == 1:
        return int(gen.integers(1, 10_000))  # under a millisecond
    if form == 2:
        return int(gen.integers(1, 5_000)) * 10_000  # whole milliseconds
    if form == 3:
        return int(gen.integers(1, 3_600)) * TICKS_PER_SECOND  # whole seconds
    return int(gen.integers(1, DAY + 1))


def run_one(seed: int, check: Any, jitter_kind: str = "polly", timespan: bool = True) -> None:
    gen = np.random.default_rng(seed)
    long_run = seed % 40 == 0
    backoff_type = str(gen.choice(list(_KINDS)))
    if long_run:
        backoff_type = "Exponential"
    use_jitter = bool(gen.random() < 0.6)
    base = _ticks(gen)
    if long_run or jitter_kind == "decorrelated":
        base = max(base, 1)
    max_delay = None if gen.random() < 0.5 else max(1, _ticks(gen))  # simres cap > 0
    retries = 1100 if long_run else int(gen.integers(1, 9))
    p_fail = 1.0 if long_run else float(gen.choice([0.3, 0.6, 0.9]))
    sim = RetryConfig(
        preset="polly_jitter" if use_jitter else "polly", max_attempts=retries + 1,
        backoff={"kind": _KINDS[backoff_type], "base": base / TICKS_PER_SECOND,
                 "timespan": timespan,  # a backoff of another kind replaces the preset's whole
                 "cap": TIMESPAN_MAX_SECONDS if max_delay is None else max_delay / TICKS_PER_SECOND},
        jitter={"kind": jitter_kind if use_jitter else "none",
                **({"fraction": 0.25} if jitter_kind == "proportional" else {})})
    draws = [0.0]
    for _ in range(1 if long_run else 12):
        lib = PollyRetryExecution(backoff_type, use_jitter, retries, base, max_delay,
                                  lambda: draws[0])
        call = sim.new_call()
        while True:
            call.on_try()
            handled = bool(gen.random() < p_fail)
            draws[0] = float(gen.random())
            lib_ticks = lib.after_outcome(handled)
            lib_delay = None if lib_ticks is None else lib_ticks / TICKS_PER_SECOND
            sim_delay = call.next_delay("error", lambda: draws[0]) if handled else None
            check(lib_delay == sim_delay,
                  (seed, backoff_type, use_jitter, base, max_delay, lib.attempt, lib_delay, sim_delay))
            if lib_delay is None or sim_delay is None:
                break


def test_polly_retry_delays(tally: Any) -> None:
    t = tally("Polly RetryHelper (transcribed) vs retry polly / polly_jitter",
              "Polly 173d6d1d (v8)")
    for seed in range(400):
        run_one(seed, t.check)
    t.assert_clean()


@pytest.mark.parametrize(("jitter_kind", "timespan"), [
    ("decorrelated", False),   # AWS's decorrelated jitter is not Polly's
    ("proportional", False),   # Polly's +-25 % is not the float proportional jitter
])
def test_the_comparison_notices_other_jitters(jitter_kind: str, timespan: bool) -> None:
    bad = [0]

    def check(same: bool, what: Any) -> None:
        bad[0] += not same

    for seed in range(1, 40):
        if seed % 40:
            run_one(seed, check, jitter_kind=jitter_kind, timespan=timespan)
    assert bad[0] > 0


def test_the_comparison_notices_float_waits() -> None:
    """Without TimeSpan ticks, linear waits drift from Polly's by a rounding step."""
    bad = [0]

    def check(same: bool, what: Any) -> None:
        bad[0] += not same

    for seed in range(1, 40):
        run_one(seed, check, jitter_kind="none", timespan=False)
    assert bad[0] > 0
