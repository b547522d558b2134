"""The ``urllib3`` retry preset (and the options it uses) against urllib3's ``Retry``.

Each try's result goes through urllib3 2.x's own ``Retry`` object exactly as
``connectionpool.urlopen`` uses it (urllib3/connectionpool.py, util/retry.py): an
exception calls ``increment(error=...)`` then ``sleep()``; a response calls
``is_retry(method, status, has_retry_after)``, then ``increment(response=...)`` and
``sleep(response)``; ``MaxRetryError`` (or a re-raised error) means no more tries. The
sleep is read from a fake ``time.sleep``; jitter draws come from a fake ``random``.

``Retry`` parameters are randomised (total, connect/read/status counters, backoff
factor, max and jitter, status_forcelist, GET or POST, Retry-After on or off, its cap),
and :func:`simres_config` states how each is written in simres. Outcomes: ``error`` is a
500, ``rejected`` a 429, ``shed`` a 503, ``timeout`` a ``ReadTimeoutError`` and
``connection`` a ``NewConnectionError``; replies sometimes carry an integer Retry-After.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np
import pytest
import urllib3.util.retry as retry_module
from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.response import HTTPResponse
from urllib3.util.retry import Retry

from simres.outcomes import CONNECTION, ERROR, OK, REJECTED, SHED, TIMEOUT
from simres.policies import RetryConfig

_STATUS = {ERROR: 500, REJECTED: 429, SHED: 503, OK: 200}
_OUTCOME = {500: ERROR, 429: REJECTED, 503: SHED}


class FakeTime:
    """Stands in for the ``time`` module inside urllib3's retry code."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def time(self) -> float:
        return 0.0


class Draws:
    """Stands in for ``random``: returns the draw the test chose for this decision."""

    def __init__(self) -> None:
        self.u = 0.0

    def random(self) -> float:
        return self.u


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeTime, Draws]:
    clock, draws = FakeTime(), Draws()
    monkeypatch.setattr(retry_module, "time", clock)
    monkeypatch.setattr(retry_module, "random", draws)
    return clock, draws


def simres_config(p: dict[str, Any]) -> RetryConfig:
    """The simres spelling of ``Retry(**p)`` for method ``p['method']``."""
    get = p["method"] != "POST"
    retry_on = [CONNECTION]  # connect errors are retried whatever the method
    if get:
        retry_on += [TIMEOUT] + [_OUTCOME[s] for s in p["status_forcelist"] if s in _OUTCOME]
    hint_on = [REJECTED, SHED] if get and p["respect_retry_after_header"] else []
    return RetryConfig(
        preset="urllib3", max_attempts=p["total"] + 1, retry_on=retry_on, retry_on_hint=hint_on,
        honor_retry_after=p["respect_retry_after_header"], retry_after_max=p["retry_after_max"],
        backoff={"base": p["backoff_factor"], "cap": p["backoff_max"]},
        jitter={"kind": "additive", "amount": p["backoff_jitter"]} if p["backoff_jitter"] else "none",
        connect_retries=p["connect"], read_retries=p["read"], status_retries=p["status"])


def lib_decision(retry: Retry, p: dict[str, Any], outcome: str, hint: int | None,
                 clock: FakeTime) -> tuple[Retry | None, float | None]:
    """(the next Retry, the wait) as urlopen would get them, or (None, None) for stop."""
    method = p["method"]
    clock.slept.clear()
    try:
        if outcome in (TIMEOUT, CONNECTION):
            err = (ReadTimeoutError(None, "/", "read timed out") if outcome == TIMEOUT  # type: ignore[arg-type]
                   else NewConnectionError(None, "refused"))  # type: ignore[arg-type]
            retry = retry.increment(method, "/", error=err)
            retry.sleep()
        else:
            headers = {} if hint is None else {"Retry-After": str(hint)}
            response = HTTPResponse(body=b"", headers=headers, status=_STATUS[outcome],
                                    preload_content=False)
            if not retry.is_retry(method, response.status, bool(headers.get("Retry-After"))):
                return None, None
            retry = retry.increment(method, "/", response=response)
            retry.sleep(response)
    except (MaxRetryError, ReadTimeoutError):
        return None, None
    return retry, (clock.slept[0] if clock.slept else 0.0)


def random_params(gen: np.random.Generator) -> dict[str, Any]:
    def counter() -> int | None:
        return None if gen.random() < 0.6 else int(gen.integers(0, 4))

    forcelist = [s for s in (429, 500, 502, 503, 504) if gen.random() < 0.6]
    return {
        "total": int(gen.integers(0, 6)), "connect": counter(), "read": counter(),
        "status": counter(), "status_forcelist": forcelist,
        "backoff_factor": float(gen.choice([0.0, 0.1, 0.5, 1.0, 2.0])),
        "backoff_max": float(gen.choice([120.0, 3.0, 10.0])),
        "backoff_jitter": float(gen.choice([0.0, 0.0, 0.5])),
        "method": str(gen.choice(["GET", "GET", "PUT", "POST"])),
        "respect_retry_after_header": bool(gen.random() < 0.8),
        "retry_after_max": int(gen.choice([21600, 100])),
    }


def run_one(seed: int, fakes: tuple[FakeTime, Draws], check: Any) -> None:
    clock, draws = fakes
    gen = np.random.default_rng(seed)
    p = random_params(gen)
    cfg = simres_config(p)
    kw = {k: v for k, v in p.items() if k != "method"}
    for _ in range(40):  # logical calls
        retry: Retry | None = Retry(**kw)
        call = cfg.new_call()
        call.on_try()
        while retry is not None:
            outcome = str(gen.choice([OK, ERROR, REJECTED, SHED, TIMEOUT, CONNECTION]))
            hint = None
            if outcome in (ERROR, REJECTED, SHED) and gen.random() < 0.4:
                hint = int(gen.choice([0, int(gen.integers(1, 40)), int(gen.integers(1, 30_000))]))
            draws.u = float(gen.random())
            if outcome == OK:
                retry, lib_wait = None, None  # a 200 is never retried; the driver stops
                sim_wait = None
            else:
                retry, lib_wait = lib_decision(retry, p, outcome, hint, clock)
                sim_wait = call.next_delay(outcome, lambda: draws.u,
                                           None if hint is None else float(hint))
            check(lib_wait == sim_wait, (seed, p, call.attempts, outcome, hint, lib_wait, sim_wait))
            call.on_try()


def test_urllib3_retry(fakes: tuple[FakeTime, Draws], tally: Any) -> None:
    t = tally("urllib3 Retry vs retry preset urllib3 (+ counters, methods)",
              f"urllib3 {version('urllib3')}")
    for seed in range(160):
        run_one(seed, fakes, t.check)
    t.assert_clean()


def test_the_seed_retry_is_the_preset() -> None:
    """``Retry(total=3, backoff_factor=1, status_forcelist=[429, 500, 502, 503, 504])`` for a
    GET is the preset as it stands."""
    p = {"total": 3, "connect": None, "read": None, "status": None, "backoff_factor": 1.0,
         "backoff_max": 120.0, "backoff_jitter": 0.0, "status_forcelist": [429, 500, 502, 503, 504],
         "method": "GET", "respect_retry_after_header": True, "retry_after_max": 21600}
    ours, preset = simres_config(p).model_dump(), RetryConfig(preset="urllib3").model_dump()
    assert set(ours.pop("retry_on")) == set(preset.pop("retry_on"))
    assert ours == preset
