"""The ``tenacity`` retry preset and the backoff options it needs, against tenacity itself.

Real ``tenacity.Retrying`` objects (tenacity/__init__.py, wait.py, stop.py) retry a
function whose tries fail in a scripted way; a fake ``sleep`` records each wait and a
fake ``random`` in ``tenacity.wait`` hands out the draw the test chose. Waits covered,
each with its simres spelling in :func:`simres_config`:

- ``wait_exponential(multiplier, max, exp_base, min)``: exponential, no jitter, ``floor``;
- ``wait_random_exponential(...)``: full jitter, ``U[floor, c)``;
- ``wait_exponential_jitter(...)``: additive jitter, the sum capped;
- ``wait_exponential(max=m) + wait_random(0, j)``: additive with ``over_cap`` (uncapped);
- ``wait_fixed(d)``: constant; ``wait_none()``: none.

tenacity keeps no state across calls, so overlapping calls cannot differ; every call is
compared try by try.
"""

from __future__ import annotations

import random as _random
from importlib.metadata import version
from typing import Any

import numpy as np
import pytest
import tenacity
import tenacity.wait as wait_module

from simres.outcomes import CONNECTION, ERROR, OK, REJECTED, SHED, TIMEOUT
from simres.policies import RetryConfig

_KINDS = (TIMEOUT, CONNECTION, ERROR, REJECTED, SHED)
_EXC = {kind: type(f"Sim{kind.title()}", (Exception,), {}) for kind in _KINDS}


class Draws:
    """Stands in for ``random`` inside tenacity.wait (``uniform`` as CPython computes it)."""

    def __init__(self) -> None:
        self.u = 0.0

    def random(self) -> float:
        return self.u

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()


@pytest.fixture
def draws(monkeypatch: pytest.MonkeyPatch) -> Draws:
    d = Draws()
    monkeypatch.setattr(wait_module, "random", d)
    return d


def random_params(gen: np.random.Generator) -> dict[str, Any]:
    return {
        "attempts": int(gen.integers(1, 7)),
        "wait": str(gen.choice(["exponential", "random_exponential", "exponential_jitter",
                                "exponential_plus_random", "fixed", "none"])),
        "multiplier": float(gen.choice([0.5, 1.0, 2.0])),
        "max": float(gen.choice([4.0, 10.0, 60.0])),
        "exp_base": float(gen.choice([2.0, 3.0])),
        "min": float(gen.choice([0.0, 0.0, 1.0, 3.0])),
        "jitter": float(gen.choice([0.5, 1.0, 2.0])),
        "retry_on": [k for k in _KINDS if gen.random() < 0.7],
    }


def tenacity_retrying(p: dict[str, Any], sleeps: list[float]) -> tenacity.Retrying:
    w = p["wait"]
    exp = {"multiplier": p["multiplier"], "max": p["max"], "exp_base": p["exp_base"], "min": p["min"]}
    if w == "exponential":
        wait = tenacity.wait_exponential(**exp)
    elif w == "random_exponential":
        wait = tenacity.wait_random_exponential(**exp)
    elif w == "exponential_jitter":
        wait = tenacity.wait_exponential_jitter(jitter=p["jitter"], **exp)
    elif w == "exponential_plus_random":
        wait = tenacity.wait_exponential(**exp) + tenacity.wait_random(0, p["jitter"])
    elif w == "fixed":
        wait = tenacity.wait_fixed(p["multiplier"])
    else:
        wait = tenacity.wait_none()
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(p["attempts"]), wait=wait, sleep=sleeps.append,
        retry=tenacity.retry_if_exception_type(tuple(_EXC[k] for k in p["retry_on"])),
        reraise=True)


def simres_config(p: dict[str, Any]) -> RetryConfig:
    """The simres spelling of the tenacity decorator described by ``p``."""
    w = p["wait"]
    backoff: dict[str, Any] = {"kind": "exponential", "base": p["multiplier"], "cap": p["max"],
                               "multiplier": p["exp_base"], "floor": p["min"]}
    jitter: dict[str, Any] = {"kind": "none"}
    if w == "random_exponential":
        jitter = {"kind": "full"}
    elif w == "exponential_jitter":
        jitter = {"kind": "additive", "amount": p["jitter"]}
    elif w == "exponential_plus_random":
        jitter = {"kind": "additive", "amount": p["jitter"], "over_cap": True}
    elif w == "fixed":
        backoff = {"kind": "constant", "base": p["multiplier"], "cap": 1e9}
    elif w == "none":
        backoff = {"kind": "none"}
    return RetryConfig(preset="tenacity", max_attempts=p["attempts"], retry_on=p["retry_on"],
                       backoff=backoff, jitter=jitter)


def run_one(seed: int, draws: Draws, check: Any, adjust: Any = None) -> None:
    gen = np.random.default_rng(seed)
    p = random_params(gen)
    cfg = simres_config(p)
    if adjust is not None:
        cfg = adjust(cfg)
    for _ in range(60):
        outcomes = [str(gen.choice([OK, *_KINDS, *_KINDS])) for _ in range(p["attempts"])]
        us = [float(x) for x in gen.random(p["attempts"])]
        sleeps: list[float] = []
        tries = [0]

        def fn(outcomes: list[str] = outcomes, us: list[float] = us, tries: list[int] = tries) -> str:
            i = tries[0]
            tries[0] += 1
            draws.u = us[i]  # the wait after this try draws this
            if outcomes[i] == OK:
                return OK
            raise _EXC[outcomes[i]]()

        try:
            tenacity_retrying(p, sleeps)(fn)
        except tuple(_EXC.values()):
            pass
        call = cfg.new_call()
        for i in range(tries[0]):
            call.on_try()
            if outcomes[i] == OK:
                break
            sim = call.next_delay(outcomes[i], lambda u=us[i]: u)
            lib = sleeps[i] if i < tries[0] - 1 else None
            check(lib == sim, (seed, p, i + 1, outcomes[i], lib, sim))


def test_tenacity_waits_and_stops(draws: Draws, tally: Any) -> None:
    t = tally("tenacity Retrying vs retry preset tenacity (+ wait_* spellings)",
              f"tenacity {version('tenacity')}")
    for seed in range(110):
        run_one(seed, draws, t.check)
    t.assert_clean()


@pytest.mark.parametrize("field", ["floor", "over_cap"])
def test_the_comparison_notices_missing_options(draws: Draws, field: str) -> None:
    """The harness is sharp: without ``floor`` or ``over_cap`` tenacity's waits differ."""
    bad = [0]

    def adjust(cfg: RetryConfig) -> RetryConfig:
        if field == "floor":
            return cfg.model_copy(update={"backoff": cfg.backoff.model_copy(update={"floor": 0.0})})
        return cfg.model_copy(update={"jitter": cfg.jitter.model_copy(update={"over_cap": False})})

    for seed in range(40):
        run_one(seed, draws, lambda same, what: bad.__setitem__(0, bad[0] + (not same)), adjust)
    assert bad[0] > 0


def test_the_fake_uniform_is_cpythons() -> None:
    """``Draws.uniform`` computes exactly what ``random.uniform`` does for the same draw."""
    r = _random.Random(7)
    state = r.getstate()
    expected = r.uniform(0.3, 5.0)
    r.setstate(state)
    d = Draws()
    d.u = r.random()
    assert d.uniform(0.3, 5.0) == expected
