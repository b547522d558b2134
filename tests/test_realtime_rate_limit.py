"""botocore adaptive mode's client rate limiter around real calls (``Resilient`` with a
``retry.rate_limiter``, e.g. the ``aws_adaptive`` preset): sends wait for tokens once a
throttling reply was seen, from threads and from asyncio, bounded by the deadline."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from simres.policies import RetryConfig
from simres.realtime.errors import DeadlineExceeded
from simres.realtime.resilient import Resilient


class Throttled(Exception):
    """What the service answers: a throttling error (classified ``rejected``)."""


def classify(value: object) -> str:
    return "rejected" if isinstance(value, Throttled) else "ok"


def throttle() -> None:
    raise Throttled


def guard(rate: float = 20.0, **kw: object) -> Resilient:
    # one try per call, and a 20 tokens/s floor so that the waits are short
    retry = RetryConfig(preset="aws_adaptive", max_attempts=1, rate_limiter={"min_rate": rate})
    return Resilient(retry=retry, classify=classify, **kw)  # type: ignore[arg-type]


def test_before_any_throttling_calls_do_not_wait() -> None:
    g = guard()
    t = time.monotonic()
    for _ in range(50):
        g.call(lambda: None)
    assert time.monotonic() - t < 0.5
    assert g.rate_limiter is not None and not g.rate_limiter.enabled


def test_after_a_throttling_reply_sends_are_spaced_at_the_fill_rate() -> None:
    g = guard()
    with pytest.raises(Throttled):
        g.call(throttle)
    assert g.rate_limiter.enabled and g.rate_limiter.fill_rate == 20.0  # type: ignore[union-attr]
    t = time.monotonic()
    for _ in range(8):
        with pytest.raises(Throttled):
            g.call(throttle)
    took = time.monotonic() - t
    assert 8 / 20.0 * 0.9 < took < 8 / 20.0 + 0.4  # one token per 50 ms (bucket of 1)


def test_threads_share_the_clients_tokens() -> None:
    g = guard()
    with pytest.raises(Throttled):
        g.call(throttle)
    done: list[float] = []

    def worker() -> None:
        for _ in range(3):
            try:
                g.call(throttle)
            except Throttled:
                done.append(time.monotonic())

    t = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert len(done) == 12
    assert max(done) - t > 12 / 20.0 * 0.9  # 12 tokens at 20/s, whoever takes them


def test_the_deadline_bounds_the_wait() -> None:
    retry = RetryConfig(preset="aws_adaptive", max_attempts=1)  # botocore's 0.5 tokens/s floor
    g = Resilient(retry=retry, classify=classify, deadline=0.2)
    with pytest.raises(Throttled):
        g.call(throttle)
    t = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="rate-limit token"):
        g.call(throttle)
    assert 0.15 < time.monotonic() - t < 1.0


def test_asyncio_callers_wait_too() -> None:
    g = guard()

    async def athrottle() -> None:
        raise Throttled

    async def main() -> float:
        with pytest.raises(Throttled):
            await g.acall(athrottle)
        t = time.monotonic()
        for _ in range(6):
            with pytest.raises(Throttled):
                await g.acall(athrottle)
        return time.monotonic() - t

    took = asyncio.run(main())
    assert 6 / 20.0 * 0.9 < took < 6 / 20.0 + 0.4
