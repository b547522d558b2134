"""The real-time wrappers against a real HTTP server on 127.0.0.1 (short timeouts only)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from simres.clock import ManualClock
from simres.errors import SimresError
from simres.outcomes import CONNECTION, ERROR, OK, REJECTED, TIMEOUT
from simres.policies import (
    BackoffConfig,
    BreakerConfig,
    BulkheadConfig,
    JitterConfig,
    RetryConfig,
    ThrottleConfig,
    TokenBucketBudgetConfig,
)
from simres.realtime.classify import default_classify
from simres.realtime.errors import AttemptTimeout, BreakerOpenError, BulkheadFullError, DeadlineExceeded, ThrottledError
from simres.realtime.resilient import Resilient

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never use a proxy


class Server:
    """A scripted HTTP server: each request takes the next mode, else the default mode.

    Modes: ("ok",), ("status", code, retry_after or None), ("stall", seconds), ("drop",),
    ("drip", n_bytes, seconds_between_bytes). ``max_inflight`` is the most requests it held at once.
    """

    def __init__(self) -> None:
        self.script: deque[tuple[Any, ...]] = deque()
        self.default: tuple[Any, ...] = ("ok",)
        self.hits = 0
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server.lock:
                    server.hits += 1
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                    mode = server.script.popleft() if server.script else server.default
                try:
                    self._serve(mode)
                finally:
                    with server.lock:
                        server.inflight -= 1

            def _serve(self, mode: tuple[Any, ...]) -> None:
                with contextlib.suppress(OSError):
                    if mode[0] == "drip":  # ("drip", n_bytes, seconds between bytes)
                        self.send_response(200)
                        self.send_header("Content-Length", str(mode[1]))
                        self.end_headers()
                        for _ in range(mode[1]):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                            if server.release.wait(mode[2]):
                                return
                        return
                    if mode[0] == "drop":
                        self.close_connection = True
                        return
                    if mode[0] == "stall":
                        server.release.wait(mode[1])
                    if mode[0] == "status":
                        self.send_response(mode[1])
                        if mode[2] is not None:
                            self.send_header("Retry-After", str(mode[2]))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def plan(self, *modes: tuple[Any, ...], default: tuple[Any, ...] | None = None) -> None:
        with self.lock:
            self.script.extend(modes)
            if default is not None:
                self.default = default

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def get(url: str, timeout: float = 2.0) -> bytes:
    with OPENER.open(url, timeout=timeout) as reply:
        return reply.read()


def quick_retry(max_attempts: int = 3, **kw: Any) -> RetryConfig:
    return RetryConfig(max_attempts=max_attempts, retry_on=("timeout", "connection", "error",
                                                            "rejected"),
                       backoff=BackoffConfig(base=0.01, cap=0.05), jitter=JitterConfig(
                           kind="none"), **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- retries


def test_retries_then_success(server: Server) -> None:
    server.plan(("status", 503, None), ("status", 500, None))
    guard = Resilient(retry=quick_retry(), rng=np.random.default_rng(0))
    assert guard.call(get, server.url) == b"ok"
    assert server.hits == 3


def test_retries_run_out_and_raise_the_last_error(server: Server) -> None:
    server.plan(default=("status", 503, None))
    guard = Resilient(retry=quick_retry(max_attempts=2))
    with pytest.raises(urllib.error.HTTPError) as info:
        guard.call(get, server.url)
    assert info.value.code == 503 and server.hits == 2


def test_retry_after_is_honoured(server: Server) -> None:
    server.plan(("status", 429, 0.2))
    guard = Resilient(retry=quick_retry())
    start = time.monotonic()
    assert guard.call(get, server.url) == b"ok"
    assert time.monotonic() - start >= 0.19
    assert server.hits == 2


def test_client_errors_are_not_retried(server: Server) -> None:
    server.plan(default=("status", 404, None))
    guard = Resilient(retry=quick_retry(), breaker=BreakerConfig(trip="consecutive",
                                                                 failure_threshold=1))
    with pytest.raises(urllib.error.HTTPError):
        guard.call(get, server.url)
    assert server.hits == 1
    assert guard.breaker.state == "closed"  # a 404 is a success for the policies


def test_refused_connection_is_retried_then_raised() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    seen: list[str] = []

    def classify(value: Any) -> Any:
        outcome = default_classify(value)
        seen.append(outcome[0])
        return outcome

    guard = Resilient(retry=quick_retry(max_attempts=2), classify=classify)
    with pytest.raises(urllib.error.URLError):
        guard.call(get, url)
    assert seen == [CONNECTION, CONNECTION]


def test_dropped_connection_is_a_connection_failure(server: Server) -> None:
    server.plan(("drop",))
    guard = Resilient(retry=quick_retry())
    assert guard.call(get, server.url) == b"ok"
    assert server.hits == 2


def test_budget_stops_retries(server: Server) -> None:
    server.plan(default=("status", 503, None))
    budget = TokenBucketBudgetConfig(capacity=5, cost=5, refund=0)
    guard = Resilient(retry=quick_retry(max_attempts=5, budget=budget))
    with pytest.raises(urllib.error.HTTPError):
        guard.call(get, server.url)
    assert server.hits == 2  # one retry paid for, then the bucket is empty
    assert guard.budget.tokens == 0  # type: ignore[union-attr]


# ---------------------------------------------------------------- breaker


def test_breaker_opens_and_fails_fast_then_recovers(server: Server) -> None:
    clock = ManualClock(100.0)
    guard = Resilient(breaker=BreakerConfig(trip="consecutive", failure_threshold=3,
                                            open_for=5.0, half_open="single_probe"),
                      clock=clock)
    server.plan(default=("status", 503, None))
    for _ in range(3):
        with pytest.raises(urllib.error.HTTPError):
            guard.call(get, server.url)
    assert guard.breaker.state == "open"  # type: ignore[union-attr]
    for _ in range(5):
        with pytest.raises(BreakerOpenError):
            guard.call(get, server.url)
    assert server.hits == 3  # failing fast never reached the server
    clock.advance(5.0)
    server.plan(default=("ok",))
    assert guard.call(get, server.url) == b"ok"  # the half-open probe
    assert guard.breaker.state == "closed" and server.hits == 4  # type: ignore[union-attr]


def test_half_open_probe_failure_reopens(server: Server) -> None:
    clock = ManualClock()
    guard = Resilient(breaker=BreakerConfig(preset="pybreaker", failure_threshold=1,
                                            open_for=1.0), clock=clock)
    server.plan(default=("status", 500, None))
    with pytest.raises(urllib.error.HTTPError):
        guard.call(get, server.url)
    clock.advance(1.0)
    with pytest.raises(urllib.error.HTTPError):
        guard.call(get, server.url)
    assert guard.breaker.state == "open" and guard.breaker.opened_count == 2  # type: ignore


# ---------------------------------------------------------------- timeouts and deadline


def test_per_try_timeout_on_a_stall(server: Server) -> None:
    server.plan(default=("stall", 1.0))
    guard = Resilient(timeout=0.1)
    start = time.monotonic()
    with pytest.raises(AttemptTimeout):
        guard.call(get, server.url)
    assert time.monotonic() - start < 0.8  # well before the 1 s stall ends


def test_stall_then_retry_succeeds(server: Server) -> None:
    server.plan(("stall", 1.0))
    guard = Resilient(timeout=0.1, retry=quick_retry())
    assert guard.call(get, server.url) == b"ok"
    assert server.hits == 2


def test_timeout_passed_as_argument(server: Server) -> None:
    server.plan(default=("stall", 1.0))
    guard = Resilient(timeout=0.1, timeout_via="argument")
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        guard.call(get, server.url)  # get(url, timeout=0.1): urllib enforces it
    assert time.monotonic() - start < 0.8


def test_deadline_bounds_total_time(server: Server) -> None:
    server.plan(default=("stall", 1.0))
    guard = Resilient(timeout=0.1, deadline=0.3, retry=quick_retry(max_attempts=50))
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        guard.call(get, server.url)
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 0.8  # the stalls would take 50 s
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, SimresError)
    assert 2 <= server.hits <= 4


def test_deadline_stops_a_long_retry_wait(server: Server) -> None:
    server.plan(("status", 503, 5))  # Retry-After 5 s is past the deadline
    guard = Resilient(deadline=0.3, retry=quick_retry())
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        guard.call(get, server.url)
    assert time.monotonic() - start < 0.28 and server.hits == 1


def test_argument_timeout_is_per_read_but_both_bounds_the_try(server: Server) -> None:
    # urllib's timeout bounds each socket read: a body dripped one byte per 50 ms outlives a 0.3 s timeout
    server.plan(("drip", 16, 0.05), ("drip", 16, 0.05), ("drip", 16, 0.05))
    start = time.monotonic()
    assert Resilient(timeout=0.3, timeout_via="argument").call(get, server.url) == b"x" * 16
    assert time.monotonic() - start > 0.6
    for via in ("both", "thread"):
        start = time.monotonic()
        with pytest.raises(AttemptTimeout):
            Resilient(timeout=0.3, timeout_via=via).call(get, server.url)  # type: ignore[arg-type]
        assert time.monotonic() - start < 0.6


# ---------------------------------------------------------------- bulkhead


def test_bulkhead_counts_abandoned_calls_still_running(server: Server) -> None:
    server.plan(default=("stall", 0.5))
    guard = Resilient(timeout=0.05, bulkhead=BulkheadConfig(max_concurrent=2), retry=quick_retry(max_attempts=3))
    threads, results = run_in_threads(guard, server.url, 10)
    for t in threads:
        t.join(3.0)
    assert server.max_inflight <= 2  # timed-out calls kept their slots until they really ended
    assert any(isinstance(r, BulkheadFullError) for r in results)
    wait_for(lambda: guard.abandoned == 0 and guard.bulkhead.active == 0)  # type: ignore[union-attr]


def test_bulkhead_counting_tries_frees_the_slot_at_the_timeout(server: Server) -> None:
    server.plan(default=("stall", 0.5))
    guard = Resilient(timeout=0.05, bulkhead=BulkheadConfig(max_concurrent=1), bulkhead_counts="tries")
    for _ in range(3):
        with pytest.raises(AttemptTimeout):
            guard.call(get, server.url)
    assert server.max_inflight == 3 and guard.abandoned == 3


def test_abandoned_calls_are_bounded_and_counted(server: Server) -> None:
    server.plan(default=("stall", 1.0))
    guard = Resilient(timeout=0.02, max_abandoned=8)
    errors = []
    for _ in range(60):
        try:
            guard.call(get, server.url)
        except (AttemptTimeout, BulkheadFullError) as e:
            errors.append(type(e).__name__)
    assert guard.abandoned == 8 and errors.count("AttemptTimeout") == 8
    assert errors.count("AbandonedCallsError") == 52
    assert sum(t.name == "simres-try" for t in threading.enumerate()) <= 8
    server.release.set()
    wait_for(lambda: guard.abandoned == 0)


def run_in_threads(guard: Resilient, url: str, n: int) -> tuple[list[threading.Thread],
                                                                 list[Any]]:
    results: list[Any] = []

    def work() -> None:
        try:
            results.append(guard.call(get, url))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


def wait_for(predicate: Any, limit: float = 2.0) -> None:
    end = time.monotonic() + limit
    while not predicate() and time.monotonic() < end:
        time.sleep(0.005)
    assert predicate()


def test_bulkhead_rejects_the_extra_concurrent_call(server: Server) -> None:
    server.plan(default=("stall", 0.2))
    guard = Resilient(bulkhead=BulkheadConfig(max_concurrent=2))
    threads, results = run_in_threads(guard, server.url, 2)
    wait_for(lambda: server.hits == 2)
    with pytest.raises(BulkheadFullError):
        guard.call(get, server.url)
    for t in threads:
        t.join(2.0)
    assert results == [b"ok", b"ok"] and server.hits == 2
    assert guard.bulkhead.active == 0  # type: ignore[union-attr]


def test_bulkhead_waiter_gets_the_freed_slot(server: Server) -> None:
    server.plan(("stall", 0.1))
    guard = Resilient(bulkhead=BulkheadConfig(max_concurrent=1, max_wait=1.0))
    threads, results = run_in_threads(guard, server.url, 1)
    wait_for(lambda: server.hits == 1)
    assert guard.call(get, server.url) == b"ok"
    threads[0].join(2.0)
    assert results == [b"ok"] and server.hits == 2


def test_bulkhead_wait_expires(server: Server) -> None:
    server.plan(("stall", 0.3))
    guard = Resilient(bulkhead=BulkheadConfig(max_concurrent=1, max_wait=0.05))
    threads, _ = run_in_threads(guard, server.url, 1)
    wait_for(lambda: server.hits == 1)
    with pytest.raises(BulkheadFullError):
        guard.call(get, server.url)
    threads[0].join(2.0)
    assert guard.bulkhead.waiting == 0  # type: ignore[union-attr]


# ---------------------------------------------------------------- throttle, decorator, with


def test_throttle_rejects_locally(server: Server) -> None:
    guard = Resilient(throttle=ThrottleConfig(), rng=np.random.default_rng(1))
    for _ in range(1000):
        guard.throttle.record(time.monotonic(), accepted=False)  # type: ignore[union-attr]
    with pytest.raises(ThrottledError):
        guard.call(get, server.url)
    assert server.hits == 0


def test_decorator_on_a_function(server: Server) -> None:
    server.plan(("status", 502, None))
    guard = Resilient(retry=quick_retry())

    @guard
    def fetch() -> bytes:
        return get(server.url)

    assert fetch() == b"ok" and fetch.__name__ == "fetch"


def test_attempt_block_feeds_the_breaker(server: Server) -> None:
    server.plan(default=("status", 500, None))
    guard = Resilient(breaker=BreakerConfig(trip="consecutive", failure_threshold=2,
                                            open_for=60))
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError), guard.attempt():
            get(server.url)
    with pytest.raises(BreakerOpenError), guard.attempt():
        get(server.url)
    assert server.hits == 2


def test_classifier_may_fail_a_returned_value(server: Server) -> None:
    replies = iter(["busy", "busy", "done"])

    def classify(value: Any) -> Any:
        if isinstance(value, BaseException):
            return ERROR
        return (ERROR, 0.0) if value == "busy" else OK

    guard = Resilient(retry=quick_retry(), classify=classify)
    assert guard.call(lambda: next(replies)) == "done"
    exhausted = Resilient(retry=quick_retry(max_attempts=1), classify=classify)
    assert exhausted.call(lambda: "busy") == "busy"  # returned as it is once retries run out


# ---------------------------------------------------------------- asyncio


async def aget(url: str) -> bytes:
    return await asyncio.to_thread(get, url)


def test_asyncio_retries_then_success(server: Server) -> None:
    server.plan(("status", 503, None))
    guard = Resilient(retry=quick_retry())
    assert asyncio.run(guard.acall(aget, server.url)) == b"ok"
    assert server.hits == 2


def test_asyncio_timeout_and_decorator() -> None:
    guard = Resilient(timeout=0.1, retry=quick_retry(max_attempts=2))
    calls = 0

    @guard
    async def slow() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(1.0)
        return "late"

    start = time.monotonic()
    with pytest.raises(AttemptTimeout):
        asyncio.run(slow())
    assert calls == 2 and time.monotonic() - start < 0.8


def test_asyncio_bulkhead_and_breaker(server: Server) -> None:
    server.plan(default=("stall", 0.15))
    guard = Resilient(bulkhead=BulkheadConfig(max_concurrent=1, max_wait=0.01),
                      breaker=BreakerConfig(trip="consecutive", failure_threshold=1))

    async def main() -> list[Any]:
        return await asyncio.gather(guard.acall(aget, server.url),
                                    guard.acall(aget, server.url), return_exceptions=True)

    results = asyncio.run(main())
    assert sorted(type(r).__name__ for r in results) == ["BulkheadFullError", "bytes"]
    assert guard.breaker.state == "closed"  # type: ignore[union-attr]


def test_cancelled_async_waiter_leaves_the_bulkhead_clean(server: Server) -> None:
    server.plan(("stall", 0.1))
    guard = Resilient(bulkhead=BulkheadConfig(max_concurrent=1, max_wait=1.0))

    async def main() -> Any:
        first = asyncio.ensure_future(guard.acall(aget, server.url))
        await asyncio.sleep(0.02)
        second = asyncio.ensure_future(guard.acall(aget, server.url))
        await asyncio.sleep(0.02)
        assert guard.bulkhead.waiting == 1  # type: ignore[union-attr]
        second.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await second
        return await first

    assert asyncio.run(main()) == b"ok"
    assert guard.bulkhead.active == 0 and guard.bulkhead.waiting == 0  # type: ignore[union-attr]
    assert server.hits == 1


def test_async_attempt_block() -> None:
    guard = Resilient(breaker=BreakerConfig(trip="consecutive", failure_threshold=1))

    async def main() -> None:
        with contextlib.suppress(ConnectionError):
            async with guard.aattempt():
                raise ConnectionRefusedError("refused")
        async with guard.aattempt():
            pass

    with pytest.raises(BreakerOpenError):
        asyncio.run(main())


# ---------------------------------------------------------------- classification


def http_error(code: int, retry_after: str | None = None) -> urllib.error.HTTPError:
    headers = Message()
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return urllib.error.HTTPError("http://x/", code, "x", headers, None)


@pytest.mark.parametrize(("value", "expected"), [
    (http_error(429, "2"), (REJECTED, 2.0)),
    (http_error(503), (ERROR, None)),
    (http_error(404), (OK, None)),
    (urllib.error.URLError(ConnectionRefusedError()), (CONNECTION, None)),
    (urllib.error.URLError("unknown host"), (CONNECTION, None)),
    (TimeoutError(), (TIMEOUT, None)),
    (ConnectionResetError(), (CONNECTION, None)),
    (ValueError("bad"), (ERROR, None)),
    ("a plain value", (OK, None)),
])
def test_default_classify(value: Any, expected: tuple[str, float | None]) -> None:
    assert default_classify(value) == expected


def test_classify_reads_status_codes_of_returned_responses() -> None:
    class Reply:
        def __init__(self) -> None:
            self.status_code = 503
            self.headers = {"Retry-After": "1.5"}

    assert default_classify(Reply()) == (ERROR, 1.5)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Resilient(timeout=0)
    with pytest.raises(ValueError, match="timeout_via"):
        Resilient(timeout_via="signal")  # type: ignore[arg-type]
