"""Hedged requests and the adaptive concurrency limit around real calls (``Resilient(hedge=...)``,
``Resilient(limit=...)``) against a real HTTP server on 127.0.0.1.

The server's behaviour is chosen per request by its path: ``/slowfirst/ID`` answers the
first request for an ID after ``SLOW`` seconds and every later one at once, ``/slowfail/ID``
answers the first with a 503 after 0.3 s and the others with 200 at once,
``/pushback/SECONDS/ID`` the first with a 503 and ``Retry-After: SECONDS``, ``/status/CODE``
answers CODE, ``/sleep/SECONDS`` sleeps then answers 200. Margins are wide (a slow reply is
ten times the hedging delay) so a loaded 2-core machine does not flake.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from simres.clock import ManualClock
from simres.outcomes import OK, REJECTED, TIMEOUT
from simres.policies import BreakerConfig, BulkheadConfig, LimitConfig, RetryConfig, TokenBucketBudgetConfig
from simres.policies.hedging import HedgeConfig
from simres.policies.limits import to_nanos
from simres.realtime import ConcurrencyLimitError, Resilient
from simres.realtime.errors import (
    AbandonedCallsError,
    AttemptTimeout,
    BreakerOpenError,
    BulkheadFullError,
    DeadlineExceeded,
)

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never use a proxy
SLOW = 1.0
IDS = itertools.count()


class Server:
    """A loopback HTTP server that counts requests per path and can be released early."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.done: Counter[str] = Counter()
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                with server.lock:
                    server.hits[self.path] += 1
                    n = server.hits[self.path]
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    code = 200
                    if parts[0] == "slowfirst" and n == 1:
                        server.release.wait(SLOW)
                    elif parts[0] == "pushback" and n == 1:
                        code = 503
                    elif parts[0] == "slowfail" and n == 1:
                        time.sleep(0.3)
                        code = 503
                    elif parts[0] == "sleep":
                        server.release.wait(float(parts[1]))
                    elif parts[0] == "status":
                        code = int(parts[1])
                    self.send_response(code)
                    if code == 503 and parts[0] == "pushback":
                        self.send_header("Retry-After", parts[1])
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass
                finally:
                    with server.lock:
                        server.inflight -= 1
                        server.done[self.path] += 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def get(url: str, timeout: float = 5.0) -> bytes:
    with OPENER.open(url, timeout=timeout) as reply:
        return reply.read()


def slowfirst(server: Server) -> str:
    return f"/slowfirst/{next(IDS)}"


def wait_for(predicate: Any, limit: float = 3.0) -> None:
    end = time.monotonic() + limit
    while not predicate() and time.monotonic() < end:
        time.sleep(0.005)
    assert predicate()


# ---------------------------------------------------------------- hedging, threads


def test_hedge_answers_from_the_fast_second_try(server: Server) -> None:
    guard = Resilient(hedge=HedgeConfig(delay=0.05, max_attempts=2))
    path = slowfirst(server)
    t = time.monotonic()
    assert guard.call(get, server.url + path) == b"ok"
    took = time.monotonic() - t
    assert took < SLOW / 2  # the slow first reply was not waited for
    assert server.hits[path] == 2
    assert guard.abandoned == 1  # the slow loser runs on in its thread ...
    server.release.set()
    wait_for(lambda: guard.abandoned == 0)  # ... and is counted out when it returns


def test_an_envoy_hedge_waits_its_retry_backoff_after_the_delay(server: Server) -> None:
    """preset envoy's hedge leaves a backoff after the per-try timeout: with a constant 0.2 s
    backoff (no jitter) the hedge reaches the server no earlier than 0.05 + 0.2 s."""
    from simres.policies.backoff import BackoffConfig

    guard = Resilient(hedge=HedgeConfig(preset="envoy", delay=0.05,
                                        backoff=BackoffConfig(kind="constant", base=0.2), jitter="none"))
    path = slowfirst(server)
    t = time.monotonic()
    assert guard.call(get, server.url + path) == b"ok"
    took = time.monotonic() - t
    assert 0.25 <= took < SLOW / 2 and server.hits[path] == 2
    server.release.set()
    wait_for(lambda: guard.abandoned == 0)


def test_without_hedging_the_same_call_waits_for_the_slow_reply(server: Server) -> None:
    path = slowfirst(server)
    t = time.monotonic()
    assert Resilient().call(get, server.url + path) == b"ok"
    assert time.monotonic() - t >= SLOW * 0.9 and server.hits[path] == 1


def test_fast_first_reply_sends_no_hedge(server: Server) -> None:
    guard = Resilient(hedge=HedgeConfig(delay=0.3, max_attempts=3))
    assert guard.call(get, server.url + "/status/200") == b"ok"
    time.sleep(0.4)  # past the delay: no timer fires after the call
    assert server.hits["/status/200"] == 1 and guard.abandoned == 0


def test_max_attempts_bounds_the_tries(server: Server) -> None:
    # every request sleeps: hedges every 50 ms, but never more than 3 tries in all
    guard = Resilient(hedge=HedgeConfig(delay=0.05, max_attempts=3))
    path = "/sleep/0.6"
    assert guard.call(get, server.url + path) == b"ok"
    assert server.hits[path] == 3


def test_non_fatal_failure_hedges_at_once(server: Server) -> None:
    # 503 is an `error` (non-fatal by default): the next try is sent at once, not after 1 s
    calls: list[str] = []

    def fetch(base: str) -> bytes:
        calls.append("x")
        return get(base + ("/status/503" if len(calls) == 1 else "/status/200"))

    guard = Resilient(hedge=HedgeConfig(delay=1.0, max_attempts=2))
    t = time.monotonic()
    assert guard.call(fetch, server.url) == b"ok"
    assert time.monotonic() - t < 0.5 and len(calls) == 2


def test_server_pushback_delays_the_next_hedge(server: Server) -> None:
    # a 503 with Retry-After: 0.3 (gRFC A6 pushback): the hedge goes out 0.3 s later, not at once
    guard = Resilient(hedge=HedgeConfig(delay=-1, max_attempts=2))
    path = f"/pushback/0.3/{next(IDS)}"
    t = time.monotonic()
    assert guard.call(get, server.url + path) == b"ok"
    assert 0.28 < time.monotonic() - t < 0.9 and server.hits[path] == 2


def test_fatal_failure_ends_the_call_and_sends_no_more(server: Server) -> None:
    # `error` is not in non_fatal: the 503 ends the call at once, the slow first try is dropped
    guard = Resilient(hedge=HedgeConfig(delay=0.05, max_attempts=3, non_fatal=("timeout", "connection")))
    paths = [slowfirst(server), "/status/503", "/status/200"]
    calls: list[str] = []

    def fetch(base: str) -> bytes:
        p = paths[len(calls)]
        calls.append(p)
        return get(base + p)

    t = time.monotonic()
    with pytest.raises(urllib.error.HTTPError) as info:
        guard.call(fetch, server.url)
    assert info.value.code == 503
    assert time.monotonic() - t < SLOW / 2
    time.sleep(0.15)  # past two more delays: nothing else was sent
    assert calls == paths[:2] and server.hits["/status/200"] == 0


def test_budget_refusal_stops_hedging(server: Server) -> None:
    # 5 tokens, a hedge costs 5 and no reply refunds: the first call hedges, the second cannot
    budget = TokenBucketBudgetConfig(capacity=5, cost=5, refund=0, refund_retry_cost=False)
    guard = Resilient(hedge=HedgeConfig(delay=0.05, max_attempts=3, budget=budget))
    first, second = slowfirst(server), slowfirst(server)
    t = time.monotonic()
    guard.call(get, server.url + first)
    assert time.monotonic() - t < SLOW / 2 and server.hits[first] == 2
    assert guard.budget.tokens == 0  # type: ignore[union-attr]
    t = time.monotonic()
    guard.call(get, server.url + second)
    assert time.monotonic() - t >= SLOW * 0.9  # no hedge: the slow original was waited for
    assert server.hits[second] == 1
    assert guard.budget.retries_denied == 1  # type: ignore[union-attr]  # refused once, then no more asked


def test_per_try_timeout_is_a_non_fatal_failure_that_hedges(server: Server) -> None:
    # no timer (delay -1): the first try's 0.1 s timeout sends the hedge
    guard = Resilient(timeout=0.1, hedge=HedgeConfig(delay=-1, max_attempts=2))
    path = slowfirst(server)
    t = time.monotonic()
    assert guard.call(get, server.url + path) == b"ok"
    assert 0.09 < time.monotonic() - t < SLOW / 2 and server.hits[path] == 2


def test_deadline_bounds_a_hedged_call(server: Server) -> None:
    guard = Resilient(deadline=0.3, hedge=HedgeConfig(delay=0.05, max_attempts=3))
    t = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        guard.call(get, server.url + "/sleep/2")
    assert time.monotonic() - t < 1.0 and server.hits["/sleep/2"] == 3


def test_max_abandoned_refuses_the_hedge(server: Server) -> None:
    # the timed-out first try runs on abandoned; with max_abandoned=1 the hedge is refused locally
    guard = Resilient(timeout=0.1, hedge=HedgeConfig(delay=-1, max_attempts=3), max_abandoned=1)
    with pytest.raises(AbandonedCallsError) as info:
        guard.call(get, server.url + "/sleep/0.5")
    assert isinstance(info.value.__cause__, AttemptTimeout)
    assert server.hits["/sleep/0.5"] == 1 and guard.abandoned == 1
    server.release.set()
    wait_for(lambda: guard.abandoned == 0)
    assert guard.call(get, server.url + "/status/200") == b"ok"  # admitted again


def test_breaker_sees_every_try_and_a_cancelled_loser_gives_back_its_permit(server: Server) -> None:
    breaker = BreakerConfig(trip="consecutive", failure_threshold=1)
    guard = Resilient(hedge=HedgeConfig(delay=0.05, max_attempts=2), breaker=breaker)
    for _ in range(3):
        assert guard.call(get, server.url + slowfirst(server)) == b"ok"
    assert guard.breaker.state == "closed"  # type: ignore[union-attr]  # cancelled losers are no failures
    # a 503 trips the breaker; the hedge it sends at once passes the breaker too, which refuses it
    with pytest.raises(BreakerOpenError) as info:
        guard.call(get, server.url + "/status/503")
    assert isinstance(info.value.__cause__, urllib.error.HTTPError)
    assert server.hits["/status/503"] == 1


@pytest.mark.parametrize("cancel", [True, False])
def test_a_loser_left_running_reports_its_own_outcome_later(server: Server, cancel: bool) -> None:
    # the original fails with a 503 after 0.3 s, long after the hedge won: cancelled, the
    # breaker never sees it; left running (cancel_losers false), its failure trips the breaker
    guard = Resilient(hedge=HedgeConfig(delay=0.05, max_attempts=2, cancel_losers=cancel),
                      breaker=BreakerConfig(trip="consecutive", failure_threshold=1))
    path = f"/slowfail/{next(IDS)}"
    assert guard.call(get, server.url + path) == b"ok"
    assert guard.breaker.state == "closed"  # type: ignore[union-attr]
    wait_for(lambda: server.done[path] == 2 and guard.abandoned == 0)
    time.sleep(0.05)
    assert guard.breaker.state == ("closed" if cancel else "open")  # type: ignore[union-attr]


def test_percentile_delay_learns_from_recent_tries(server: Server) -> None:
    # before any sample there is no hedge by timer; after fast tries the p50 delay is a few ms
    guard = Resilient(hedge=HedgeConfig(delay="p50", refresh=0, max_attempts=2))
    for _ in range(5):
        guard.call(get, server.url + "/status/200")
    path = slowfirst(server)
    t = time.monotonic()
    assert guard.call(get, server.url + path) == b"ok"
    assert time.monotonic() - t < SLOW / 2 and server.hits[path] == 2
    assert guard.hedge.percentile() < 0.2  # type: ignore[union-attr]


def test_hedge_with_retry_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^hedge: give either retry or hedge, not both") as info:
        Resilient(hedge=HedgeConfig(), retry=RetryConfig())
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"^hedge: not supported with a bulkhead or a limit"):
        Resilient(hedge=HedgeConfig(), bulkhead=BulkheadConfig(max_concurrent=2))
    with pytest.raises(ValueError, match=r"^hedge: breaker_serialize"):
        Resilient(hedge=HedgeConfig(), breaker_serialize=True)


# ---------------------------------------------------------------- hedging, asyncio


async def aget(server: Server, path: str, log: list[str]) -> str:
    """An HTTP GET in a worker thread, awaited: the task can be cancelled while it waits."""
    log.append("start")
    try:
        return (await asyncio.to_thread(get, server.url + path)).decode()
    except asyncio.CancelledError:
        log.append("cancelled")
        raise


def test_async_hedge_wins_and_cancels_the_loser_task(server: Server) -> None:
    guard = Resilient(hedge=HedgeConfig(delay=0.05, max_attempts=2))
    path = slowfirst(server)
    log: list[str] = []

    async def main() -> tuple[str, float]:
        t = time.monotonic()
        out = await guard.acall(aget, server, path, log)
        took = time.monotonic() - t
        await asyncio.sleep(0.01)  # let the cancellation be delivered
        server.release.set()  # the cancelled task's thread ends too (asyncio.run waits for it)
        return out, took

    out, took = asyncio.run(main())
    assert out == "ok" and took < SLOW / 2
    assert log == ["start", "start", "cancelled"]
    assert server.hits[path] == 2


def test_async_fatal_ends_the_call_and_cancels_the_others(server: Server) -> None:
    guard = Resilient(hedge=HedgeConfig(delay=0.05, max_attempts=3, non_fatal=("timeout",)))
    log: list[str] = []
    paths = iter([slowfirst(server), "/status/503"])

    async def fetch() -> str:
        return await aget(server, next(paths), log)

    async def main() -> float:
        t = time.monotonic()
        with pytest.raises(urllib.error.HTTPError):
            await guard.acall(fetch)
        took = time.monotonic() - t
        await asyncio.sleep(0.15)  # past two more delays
        server.release.set()
        return took

    assert asyncio.run(main()) < SLOW / 2
    assert log == ["start", "start", "cancelled"]  # no third try


def test_async_per_try_timeout_cancels_and_hedges(server: Server) -> None:
    guard = Resilient(timeout=0.1, hedge=HedgeConfig(delay=-1, max_attempts=2))
    path = slowfirst(server)
    log: list[str] = []

    async def main() -> str:
        out = await guard.acall(aget, server, path, log)
        server.release.set()
        return out

    assert asyncio.run(main()) == "ok" and log == ["start", "cancelled", "start"]


def test_cancelling_the_async_caller_cancels_every_try(server: Server) -> None:
    guard = Resilient(hedge=HedgeConfig(delay=0.05, max_attempts=3))
    log: list[str] = []

    async def main() -> None:
        call = asyncio.ensure_future(guard.acall(aget, server, "/sleep/2", log))
        await asyncio.sleep(0.3)  # all three tries are out
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.sleep(0.01)
        server.release.set()

    asyncio.run(main())
    assert log == ["start"] * 3 + ["cancelled"] * 3


# ---------------------------------------------------------------- concurrency limit


def run_in_threads(guard: Resilient, url: str, n: int) -> list[Any]:
    results: list[Any] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            out: Any = guard.call(get, url)
        except Exception as exc:
            out = exc
        with lock:
            results.append(out)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_limit_rejects_beyond_its_limit(server: Server) -> None:
    guard = Resilient(limit=LimitConfig(kind="fixed", initial_limit=3))
    results = run_in_threads(guard, server.url + "/sleep/0.5", 8)
    assert sum(r == b"ok" for r in results) == 3
    rejected = [r for r in results if isinstance(r, ConcurrencyLimitError)]
    assert len(rejected) == 5 and isinstance(rejected[0], BulkheadFullError)
    assert server.max_inflight == 3 and guard.limiter.rejected_count == 5  # type: ignore[union-attr]
    assert guard.limiter.inflight == 0  # type: ignore[union-attr]


def test_limit_rejection_is_not_retried(server: Server) -> None:
    retry = RetryConfig(max_attempts=5, retry_on=("error", "rejected"), backoff={"base": 0.01})
    guard = Resilient(limit=LimitConfig(kind="fixed", initial_limit=1), retry=retry)
    started = threading.Event()

    def slow() -> bytes:
        started.set()
        return get(server.url + "/sleep/0.4")

    th = threading.Thread(target=guard.call, args=(slow,), daemon=True)
    th.start()
    started.wait(2)
    with pytest.raises(ConcurrencyLimitError, match="concurrency limit of 1"):
        guard.call(get, server.url + "/status/200")
    assert server.hits["/status/200"] == 0
    assert guard.limiter.rejected_count == 1  # type: ignore[union-attr]  # asked once: no retry
    th.join(5)


def test_aimd_limit_grows_on_fast_successes_and_shrinks_on_drops(server: Server) -> None:
    cfg = LimitConfig(kind="aimd", initial_limit=4, min_limit=1, max_limit=50)
    guard = Resilient(limit=cfg)
    # 4 concurrent fast successes: in flight >= limit / 2, so each adds one
    results = run_in_threads(guard, server.url + "/sleep/0.2", 4)
    assert results == [b"ok"] * 4
    grown = guard.concurrency_limit
    assert grown is not None and grown > 4
    # a 429 is `rejected`: a drop, so the limit backs off by 0.9 each time
    for _ in range(3):
        with pytest.raises(urllib.error.HTTPError):
            guard.call(get, server.url + "/status/429")
    assert guard.concurrency_limit == int(int(int(grown * 0.9) * 0.9) * 0.9)


def test_aimd_slow_success_over_its_timeout_backs_off(server: Server) -> None:
    guard = Resilient(limit=LimitConfig(kind="aimd", initial_limit=10, min_limit=1, timeout=0.1))
    assert guard.call(get, server.url + "/sleep/0.3") == b"ok"
    assert guard.concurrency_limit == 9  # an RTT over `timeout` counts as a drop


def test_per_try_timeout_gives_the_limit_no_sample(server: Server) -> None:
    # as the simulation's driver (Netflix's gRPC interceptor): a timeout is ignored, not a drop
    guard = Resilient(timeout=0.1, limit=LimitConfig(kind="aimd", initial_limit=10, min_limit=1))
    with pytest.raises(TimeoutError):
        guard.call(get, server.url + "/sleep/0.5")
    assert guard.concurrency_limit == 10 and guard.limiter.inflight == 0  # type: ignore[union-attr]


class Reply(Exception):
    """A scripted try's outcome, raised out of an ``attempt()`` block."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def outcome_of(value: object) -> str:
    return value.outcome if isinstance(value, Reply) else OK


@pytest.mark.parametrize("kind", ["aimd", "vegas", "gradient2"])
def test_limit_equals_the_pure_limiter_fed_the_same_samples(kind: str) -> None:
    # overlapping attempt() blocks on a manual clock: the same admissions, RTTs, in-flight
    # counts and drops reach Resilient's limiter and a pure LimitConfig.build() one
    clock = ManualClock(50.0)
    cfg = LimitConfig(kind=kind, initial_limit=4, min_limit=1, max_limit=5)
    guard = Resilient(limit=cfg, clock=clock, rng=np.random.default_rng(7), classify=outcome_of)
    pure = cfg.build(rng=np.random.default_rng(7))
    script = [(0.010, OK), (0.020, OK), (0.005, REJECTED), (0.030, OK), (0.012, TIMEOUT), (0.008, OK)]
    seen, rejections = [], 0
    for rnd in range(40):
        width = 2 + rnd % 6  # 2..7 tries at once: sometimes more than the limit
        open_, tokens = [], []
        for _ in range(width):
            token = pure.acquire(to_nanos(clock.now()))
            block = guard.attempt()
            if token is None:
                with pytest.raises(ConcurrencyLimitError):
                    block.__enter__()
                rejections += 1
                continue
            block.__enter__()
            open_.append(block)
            tokens.append(token)
        for i, (block, token) in enumerate(zip(open_, tokens, strict=True)):
            rtt, outcome = script[(rnd + i) % len(script)]
            clock.advance(rtt)
            if outcome == OK:
                block.__exit__(None, None, None)
                pure.success(token, to_nanos(clock.now()))
            else:
                block.__exit__(Reply, Reply(outcome), None)
                if outcome == REJECTED:
                    pure.dropped(token, to_nanos(clock.now()))
                else:
                    pure.ignore(token)
            assert guard.concurrency_limit == pure.limit, (kind, rnd, i)
            seen.append(pure.limit)
    assert guard.limiter.inflight == 0 and guard.limiter.rejected_count == rejections > 0  # type: ignore[union-attr]
    assert len(set(seen)) >= 2  # the limit really moved


def test_limit_in_asyncio(server: Server) -> None:
    guard = Resilient(limit=LimitConfig(kind="fixed", initial_limit=2))

    async def main() -> list[Any]:
        async def one() -> str:
            return (await asyncio.to_thread(get, server.url + "/sleep/0.3")).decode()

        return await asyncio.gather(*(guard.acall(one) for _ in range(5)), return_exceptions=True)

    results = asyncio.run(main())
    assert results.count("ok") == 2
    assert sum(isinstance(r, ConcurrencyLimitError) for r in results) == 3


def test_envoy_gradient_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^limit: envoy_gradient is Envoy's inbound") as info:
        Resilient(limit=LimitConfig(kind="envoy_gradient"))
    assert "\n" not in str(info.value)


def test_breaker_open_refuses_before_the_limit_is_asked(server: Server) -> None:
    guard = Resilient(limit=LimitConfig(kind="fixed", initial_limit=5),
                      breaker=BreakerConfig(trip="consecutive", failure_threshold=2))
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError):
            guard.call(get, server.url + "/status/503")
    with pytest.raises(BreakerOpenError):
        guard.call(get, server.url + "/status/200")
    assert guard.limiter.inflight == 0 and guard.limiter.rejected_count == 0  # type: ignore[union-attr]
