"""The ``pybreaker`` breaker preset against pybreaker itself (installed from PyPI).

pybreaker's ``calling()`` admits calls without a lock, so calls overlap and their results
arrive after the state changed; each result is then handled by the state object that
admitted the call (pybreaker/__init__.py 1.4: ``CircuitBreakerState.generator_call`` is
bound to the admitting state). ``call()`` and the decorator run one call at a time under
``self._lock``: the ``max_inflight = 1`` runs are that sequential case.

pybreaker reads ``datetime.now(UTC)``; the test replaces ``pybreaker.datetime`` with a
fake clock. Times are multiples of 1/64 s, exact both as binary floats and as
microseconds, so the open deadline is hit exactly and often.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from importlib.metadata import version
from typing import Any

import numpy as np
import pybreaker
import pytest

from simres.outcomes import ERROR, OK, REJECTED
from simres.policies import BreakerConfig

GRID = 1 / 64
_EPOCH = _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)
_NAMES = {"closed": "closed", "open": "open", "half-open": "half_open"}


class Failure(Exception):
    """A system error: counts as a failure."""


class Business(Exception):
    """An excluded exception: pybreaker counts it as a success (simres: ``rejected``)."""


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``clock[0]`` is pybreaker's now, in seconds after a fixed epoch."""
    now = [0.0]

    class FakeDatetime(_dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> _dt.datetime:  # type: ignore[override]
            return _EPOCH + _dt.timedelta(seconds=now[0])

    monkeypatch.setattr(pybreaker, "datetime", FakeDatetime)
    return now


class Log(pybreaker.CircuitBreakerListener):
    """Records pybreaker's transitions as (old, new)."""

    def __init__(self) -> None:
        self.moves: list[tuple[str, str]] = []

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        if old_state is not None:
            self.moves.append((_NAMES[old_state.name], _NAMES[new_state.name]))


def run_one(seed: int, now: list[float], check: Any, **overrides: Any) -> None:
    """One randomised run: calls start and finish in random order on the shared clock."""
    gen = np.random.default_rng(seed)
    fail_max = int(gen.integers(1, 7))
    reset = int(gen.integers(1, 400)) * GRID
    threshold = int(gen.integers(1, 4))
    max_inflight = int(gen.choice([1, 1, 2, 3, 6]))
    log = Log()
    lib = pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=reset,
                                   success_threshold=threshold, exclude=[Business],
                                   listeners=[log])
    moves: list[tuple[str, str]] = []
    sim = BreakerConfig(preset="pybreaker", failure_threshold=fail_max, open_for=reset,
                        close_after_successes=threshold, **overrides).build(
        listener=lambda t, old, new, why: moves.append((old, new)))
    now[0] = 0.0
    inflight: list[tuple[Any, int]] = []
    for step in range(250):
        if step == 240:
            max_inflight = 0  # drain: every call finishes (an abandoned generator would fail)
        r = gen.random()
        if r < 0.15 and sim.state == "open" and sim.open_until > now[0]:
            now[0] = sim.open_until  # exactly at the deadline
        elif r < 0.6:
            now[0] += int(gen.integers(0, 40)) * GRID
        if inflight and (len(inflight) >= max_inflight or gen.random() < 0.5):
            cm, permit = inflight.pop(int(gen.integers(len(inflight))))
            kind = gen.choice([OK, ERROR, ERROR, REJECTED])
            if kind == OK:
                cm.__exit__(None, None, None)
            else:
                exc = Failure() if kind == ERROR else Business()
                with contextlib.suppress(Failure, Business, pybreaker.CircuitBreakerError):
                    cm.__exit__(type(exc), exc, None)
            sim.on_result(now[0], permit, str(kind), 0.0)
            decision = ("result", str(kind))
            same = True
        elif max_inflight == 0:
            break
        else:
            cm = lib.calling()
            try:
                cm.__enter__()
                admitted = True
            except pybreaker.CircuitBreakerError:
                admitted = False
            permit = sim.allow(now[0])
            same = admitted == (permit is not None)
            decision = ("allow", admitted, permit is not None)
            if admitted and permit is not None:
                inflight.append((cm, permit))
        lib_state = _NAMES[lib.current_state]
        same = (same and lib_state == sim.state and lib.fail_counter == sim.consecutive_failures
                and log.moves == moves)
        if lib_state == "open":
            opened = (lib._state_storage.opened_at - _EPOCH).total_seconds() + reset
            same = same and opened == sim.open_until
        check(same, (seed, now[0], decision, lib_state, sim.state, lib.fail_counter,
                     sim.consecutive_failures))


def test_pybreaker_overlapping_calls_and_late_results(clock: list[float], tally: Any) -> None:
    t = tally("pybreaker calling() vs breaker preset pybreaker",
              f"pybreaker {version('pybreaker')}")
    for seed in range(64):
        run_one(seed, clock, t.check)
    t.assert_clean()


@pytest.mark.parametrize("overrides", [{"late_result_state": "current"}, {"half_open_at": "after_deadline"}],
                         ids=["current-state", "strict-deadline"])
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # abandoned calls
def test_the_comparison_notices_other_semantics(clock: list[float], overrides: dict[str, Any]) -> None:
    """The harness is sharp: the neighbouring semantics diverge from pybreaker."""
    bad = [0]

    def check(same: bool, what: Any) -> None:
        bad[0] += not same

    for seed in range(64):
        run_one(seed, clock, check, **overrides)
    assert bad[0] > 0
