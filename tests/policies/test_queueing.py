"""folly's Codel against a line-by-line transcription of ``folly/executors/Codel.cpp``.

Source: github.com/facebook/folly, ``folly/executors/Codel.cpp`` (commit 1ad98e21) and
``Codel.h``. The transcription keeps the atomics' load/exchange pairs as they are written;
the simres object is driven with the same delays and clocks and every answer compared.
"""

from __future__ import annotations

import numpy as np
import pytest

from simres.errors import PolicyConfigError
from simres.policies.queueing import CodelConfig


class FollyCodel:
    """``folly::Codel`` with ``overloaded_explicit_now``; times in integer nanoseconds."""

    def __init__(self, target_ns: int, interval_ns: int, now_ns: int, strict: bool = False) -> None:
        self.codelMinDelayNs_ = 0
        self.codelIntervalTimeNs_ = now_ns  # steady_clock::now() at construction
        self.targetDelay_, self.interval_ = target_ns, interval_ns
        self.codelResetDelay_ = True
        self.overloaded_ = False
        self.strict = strict  # a mutant: >= where folly has >

    def _exchange(self, value: bool) -> bool:
        old, self.codelResetDelay_ = self.codelResetDelay_, value
        return old

    def overloaded_explicit_now(self, delay: int, now: int) -> bool:
        ret = False
        minDelay = self.codelMinDelayNs_
        sloughTimeout = self.targetDelay_ * 2
        if now > self.codelIntervalTimeNs_ and (not self.codelResetDelay_ and not self._exchange(True)):
            self.codelIntervalTimeNs_ = now + self.interval_
            self.overloaded_ = minDelay > self.targetDelay_
        if self.codelResetDelay_ and self._exchange(False):
            self.codelMinDelayNs_ = delay
            return False
        elif delay < self.codelMinDelayNs_:
            self.codelMinDelayNs_ = delay
        if self.overloaded_ and (delay >= sloughTimeout if self.strict else delay > sloughTimeout):
            ret = True
        return ret


def compare(seed: int, strict: bool = False) -> tuple[int, int]:
    gen = np.random.default_rng(seed)
    target_ms = int(gen.integers(1, 20))
    interval_ms = target_ms + int(gen.integers(1, 200))
    start = int(gen.integers(0, 1000)) * 1_000_000
    ref = FollyCodel(target_ms * 1_000_000, interval_ms * 1_000_000, start, strict)
    sim = CodelConfig(target=target_ms / 1000, interval=interval_ms / 1000).build(start / 1e9)
    now, bad = start, 0
    level = float(gen.choice([0.2, 1.0, 3.0]))  # delays around the target, below it, or well above
    steps = 400
    for _ in range(steps):
        now += int(gen.integers(0, 30)) * 1_000_000 // int(gen.choice([1, 10]))
        if gen.random() < 0.05:
            level = float(gen.choice([0.2, 1.0, 3.0]))
        delay_ms = int(gen.integers(0, max(1, int(4 * level * target_ms)) + 1))
        if gen.random() < 0.1:
            delay_ms = 2 * target_ms  # exactly the slough timeout
        a = ref.overloaded_explicit_now(delay_ms * 1_000_000, now)
        b = sim.overloaded(delay_ms / 1000, now / 1e9)
        bad += a != b
    return steps, bad


def test_codel_decides_as_folly_does() -> None:
    steps = bad = drops = 0
    for seed in range(30):
        n, d = compare(seed)
        steps, bad = steps + n, bad + d
    assert steps >= 10_000 and bad == 0
    # and the sequences do drop: agreement is not agreement on "never"
    for seed in range(30):
        gen = np.random.default_rng(seed)
        cfg = CodelConfig(target=0.005, interval=0.1)
        c = cfg.build(0.0)
        t = 0.0
        for _ in range(200):
            t += 0.01
            drops += c.overloaded(float(gen.uniform(0.006, 0.03)), t)
    assert drops > 100


def test_the_comparison_catches_a_one_character_change() -> None:
    assert sum(compare(seed, strict=True)[1] for seed in range(30)) > 0


def test_the_first_request_after_an_interval_is_never_dropped() -> None:
    c = CodelConfig(target=0.005, interval=0.1).build(0.0)
    assert not c.overloaded(1.0, 0.01)       # the first request starts the minimum
    assert not c.overloaded(1.0, 0.02)       # not overloaded yet: no interval has been judged
    assert not c.overloaded(1.0, 0.2)        # judges the interval (min 1 s > 5 ms) and restarts it
    assert c.overloaded(0.011, 0.21)         # overloaded, and 11 ms > the 10 ms slough timeout
    assert not c.overloaded(0.010, 0.22)     # exactly the slough timeout is kept
    assert c.load() == 100


def test_interval_must_exceed_target() -> None:
    with pytest.raises((ValueError, PolicyConfigError), match="interval: must be > target"):
        CodelConfig(target=0.1, interval=0.1)
