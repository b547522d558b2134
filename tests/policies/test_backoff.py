"""Backoff and jitter: exact un-jittered waits, seeded jittered waits against the formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from simres.errors import PolicyConfigError
from simres.policies import BackoffConfig, JitterConfig, RetryConfig, Waiter

JITTER_KINDS = ["none", "full", "equal", "decorrelated", "decorrelated_finagle",
                "proportional", "additive"]


def waits(backoff: BackoffConfig, jitter: JitterConfig, k: int, seed: int = 7,
          first_index: int = 0) -> list[float]:
    w = Waiter(backoff, jitter, first_index)
    rng = np.random.default_rng(seed)
    return [w.next(rng) for _ in range(k)]


@pytest.mark.parametrize(("kind", "expected"), [
    ("exponential", [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]),
    ("constant", [0.1] * 6),
    ("linear", [0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6000000000000001]),
    ("none", [0.0] * 6),
])
def test_no_jitter_exact_waits(kind: str, expected: list[float]) -> None:
    backoff = BackoffConfig(kind=kind, base=0.1, cap=1.0)
    assert waits(backoff, JitterConfig(kind="none"), 6) == pytest.approx(expected)


def test_exponential_multiplier() -> None:
    backoff = BackoffConfig(base=1.0, multiplier=1.5, cap=100)
    assert waits(backoff, JitterConfig(kind="none"), 4) == [1.0, 1.5, 2.25, 3.375]


def test_first_retry_index_one_reproduces_aws_blog() -> None:
    backoff = BackoffConfig(base=0.005, cap=2.0)
    assert waits(backoff, JitterConfig(kind="none"), 3, first_index=1) == pytest.approx(
        [0.01, 0.02, 0.04])


def test_linear_is_capped() -> None:
    backoff = BackoffConfig(kind="linear", base=1.0, cap=2.5)
    assert waits(backoff, JitterConfig(kind="none"), 4) == [1.0, 2.0, 2.5, 2.5]


def test_huge_retry_index_does_not_overflow() -> None:
    backoff = BackoffConfig(base=0.1, cap=3.0)
    assert backoff.delay(5000) == 3.0
    for kind in JITTER_KINDS:
        w = Waiter(backoff, JitterConfig(kind=kind, fraction=1.0, amount=1.0), first_index=5000)
        value = w.next(np.random.default_rng(0))
        assert 0.0 <= value <= 3.0 and not math.isnan(value)


def expo(n: int, base: float = 0.1, cap: float = 1.0) -> float:
    return min(cap, base * 2**n)


def test_full_jitter_first_three_waits() -> None:
    got = waits(BackoffConfig(base=0.1, cap=1.0), JitterConfig(kind="full"), 3)
    u = np.random.default_rng(7).random(3)
    assert got == pytest.approx([u[i] * expo(i) for i in range(3)])
    assert all(0 <= g < expo(i) for i, g in enumerate(got))


def test_equal_jitter_first_three_waits() -> None:
    got = waits(BackoffConfig(base=0.1, cap=1.0), JitterConfig(kind="equal"), 3)
    u = np.random.default_rng(7).random(3)
    assert got == pytest.approx([expo(i) / 2 + u[i] * expo(i) / 2 for i in range(3)])
    assert all(expo(i) / 2 <= g < expo(i) for i, g in enumerate(got))


def test_decorrelated_aws_first_three_waits() -> None:
    base, cap = 0.1, 1.0
    got = waits(BackoffConfig(base=base, cap=cap), JitterConfig(kind="decorrelated"), 3)
    u = np.random.default_rng(7).random(3)
    prev, expected = base, []
    for i in range(3):
        prev = min(cap, base + u[i] * (3 * prev - base))
        expected.append(prev)
    assert got == pytest.approx(expected)
    assert base <= got[0] < 3 * base


def test_decorrelated_finagle_first_three_waits() -> None:
    base, cap = 0.1, 1.0
    got = waits(BackoffConfig(base=base, cap=cap), JitterConfig(kind="decorrelated_finagle"), 3)
    u = np.random.default_rng(7).random(2)  # the first wait draws nothing
    second = base + u[0] * (min(cap, 3 * base) - base)
    third = second + u[1] * (min(cap, 3 * second) - second)
    assert got == pytest.approx([base, second, third])
    assert got[0] <= got[1] <= got[2]  # Finagle's lower bound is the previous wait


def test_finagle_decorrelated_sticks_at_cap() -> None:
    got = waits(BackoffConfig(base=0.5, cap=0.6), JitterConfig(kind="decorrelated_finagle"), 6)
    assert got[0] == 0.5 and all(0.5 <= g <= 0.6 for g in got)
    assert got[-1] == pytest.approx(0.6, abs=0.1)


def test_proportional_jitter_randomises_then_caps() -> None:
    got = waits(BackoffConfig(base=0.4, cap=1.0), JitterConfig(kind="proportional",
                                                              fraction=0.5), 3)
    u = np.random.default_rng(7).random(3)
    raw = [0.4, 0.8, 1.6]
    assert got == pytest.approx([min(1.0, raw[i] * (0.5 + u[i])) for i in range(3)])


def test_additive_jitter_first_three_waits() -> None:
    got = waits(BackoffConfig(base=0.1, cap=1.0), JitterConfig(kind="additive", amount=0.05), 3)
    u = np.random.default_rng(7).random(3)
    assert got == pytest.approx([min(1.0, expo(i) + u[i] * 0.05) for i in range(3)])


def test_no_jitter_draws_nothing() -> None:
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    Waiter(BackoffConfig(), JitterConfig(kind="none"), 0).next(rng)
    assert rng.bit_generator.state == before


def test_callable_uniform_source() -> None:
    w = Waiter(BackoffConfig(base=1.0, cap=10), JitterConfig(kind="full"), 0)
    assert [w.next(lambda: 0.5) for _ in range(3)] == [0.5, 1.0, 2.0]


def test_skip_advances_index_without_drawing() -> None:
    w = Waiter(BackoffConfig(base=1.0, cap=10), JitterConfig(kind="none"), 0)
    w.skip()
    assert w.next(np.random.default_rng(0)) == 2.0


def test_jitter_accepts_a_bare_string() -> None:
    assert RetryConfig.model_validate({"jitter": "equal"}).jitter == JitterConfig(kind="equal")


@pytest.mark.parametrize("bad", [{"kind": "gaussian"}, {"kind": "proportional", "fraction": 1.5},
                                 {"amount": -1}, {"kind": "full", "extra": 1}])
def test_bad_jitter_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        JitterConfig.model_validate(bad)


@pytest.mark.parametrize("bad", [{"base": -1}, {"cap": 0}, {"kind": "cubic"},
                                 {"multiplier": 0}])
def test_bad_backoff_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        BackoffConfig.model_validate(bad)


def test_decorrelated_needs_positive_base() -> None:
    with pytest.raises(ValidationError, match=r"backoff\.base"):
        RetryConfig(backoff=BackoffConfig(base=0.0), jitter=JitterConfig(kind="decorrelated"))
    with pytest.raises(PolicyConfigError, match=r"backoff\.base"):
        Waiter(BackoffConfig(base=0.0), JitterConfig(kind="decorrelated_finagle"))


def test_configs_are_frozen() -> None:
    with pytest.raises(ValidationError):
        BackoffConfig().base = 3.0  # type: ignore[misc]


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["none", "constant", "linear", "exponential"]),
    jitter=st.sampled_from(JITTER_KINDS),
    base=st.floats(min_value=1e-4, max_value=10),
    cap=st.floats(min_value=1e-3, max_value=100),
    multiplier=st.floats(min_value=0.5, max_value=10),
    fraction=st.floats(min_value=0, max_value=1),
    amount=st.floats(min_value=0, max_value=50),
    first=st.integers(min_value=0, max_value=3),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_waits_stay_within_zero_and_cap(kind: str, jitter: str, base: float, cap: float,
                                        multiplier: float, fraction: float, amount: float,
                                        first: int, seed: int) -> None:
    backoff = BackoffConfig(kind=kind, base=base, cap=cap, multiplier=multiplier)
    w = Waiter(backoff, JitterConfig(kind=jitter, fraction=fraction, amount=amount), first)
    rng = np.random.default_rng(seed)
    for _ in range(25):
        value = w.next(rng)
        assert 0.0 <= value <= cap


# ---------------------------------------------------------------- Polly (TimeSpan ticks)


def test_polly_decorrelated_first_waits_follow_the_v2_formula() -> None:
    """DecorrelatedJitterBackoffV2: ticks = base * (f(n + U) - f(previous)) / 1.4, f(t) = 2^t tanh(sqrt(4t))."""
    backoff = BackoffConfig(base=1.0, cap=1e6)
    w = Waiter(backoff, JitterConfig(kind="polly"))
    draws = iter([0.5, 0.25, 0.75])

    def f(t: float) -> float:
        return 2.0**t * math.tanh(math.sqrt(4.0 * t))

    got = [w.next(lambda: next(draws)) for _ in range(3)]
    prev, expected = 0.0, []
    for n, u in enumerate([0.5, 0.25, 0.75]):
        value = f(n + u)
        expected.append(int((value - prev) * (1 / 1.4) * 10_000_000) / 10_000_000)
        prev = value
    assert got == expected
    # the median of the first wait is near the base (Polly's scaling), not 3x it like AWS's
    rng = np.random.default_rng(3)
    firsts = [Waiter(backoff, JitterConfig(kind="polly")).next(rng) for _ in range(2000)]
    assert 0.8 < float(np.median(firsts)) < 1.2


def test_polly_constant_and_linear_jitter_is_plus_minus_25_percent() -> None:
    for kind, n, expected in [("constant", 3, 2.0), ("linear", 2, 6.0)]:
        w = Waiter(BackoffConfig(kind=kind, base=2.0, cap=100.0), JitterConfig(kind="polly"), n)
        assert w.next(lambda: 0.0) == 0.75 * expected
        w = Waiter(BackoffConfig(kind=kind, base=2.0, cap=100.0), JitterConfig(kind="polly"), n)
        assert w.next(lambda: 0.5) == expected


def test_polly_max_delay_caps_and_an_overflow_gives_it() -> None:
    backoff = BackoffConfig(kind="exponential", base=1.0, cap=30.0, timespan=True)
    w = Waiter(backoff, JitterConfig(kind="none"), first_index=3)
    assert [w.next(lambda: 0.0) for _ in range(3)] == [8.0, 16.0, 30.0]
    w = Waiter(backoff, JitterConfig(kind="none"), first_index=5000)  # 2^5000 ticks: OverflowException
    assert w.next(lambda: 0.0) == 30.0
    w = Waiter(backoff, JitterConfig(kind="polly"), first_index=2000)  # Polly's IsInfinity guard
    assert w.next(lambda: 0.5) == 30.0


def test_polly_zero_base_waits_zero_and_draws_nothing() -> None:
    w = Waiter(BackoffConfig(kind="exponential", base=0.0, cap=5.0), JitterConfig(kind="polly"))

    def no_draw() -> float:
        raise AssertionError("drew")

    assert w.next(no_draw) == 0.0


def test_timespan_refuses_other_jitters_and_options() -> None:
    with pytest.raises(ValidationError, match=r"backoff\.timespan: only with jitter none or polly"):
        RetryConfig(backoff={"timespan": True}, jitter="full")
    with pytest.raises(ValidationError, match="multiplier 2"):
        RetryConfig(backoff={"multiplier": 3.0}, jitter="polly")
    with pytest.raises(PolicyConfigError, match="timespan"):
        Waiter(BackoffConfig(timespan=True), JitterConfig(kind="equal"))
    with pytest.raises(ValidationError, match="throttling_backoff"):
        RetryConfig(preset="polly", throttling_backoff={"base": 1.0})
