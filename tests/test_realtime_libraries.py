"""The real-clock wrappers decide as the libraries do: pybreaker's serialised ``call()``,
and the classifiers on real exceptions and responses (urllib, urllib3, botocore).

pybreaker, urllib3 and botocore are dev extras (test dependencies only).
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime
from typing import Any

import pybreaker
import pytest
import urllib3
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from simres.outcomes import CONNECTION, ERROR, OK, REJECTED, TIMEOUT
from simres.policies import BreakerConfig, RetryConfig
from simres.realtime import BreakerOpenError, Resilient, aws_classify, default_classify, http_classify

# ---------------------------------------------------------------- serialised breaker


class Gate:
    """A protected function that fails (or not), takes ``hold`` seconds, and counts overlap."""

    def __init__(self, fail: bool, hold: float = 0.03) -> None:
        self.fail, self.hold = fail, hold
        self.lock = threading.Lock()
        self.running = self.most = self.runs = 0

    def __call__(self) -> str:
        with self.lock:
            self.running += 1
            self.runs += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.hold)
            if self.fail:
                raise RuntimeError("down")
            return "ok"
        finally:
            with self.lock:
                self.running -= 1


def crowd(call: Any, n: int) -> list[str]:
    """``n`` threads start ``call()`` together; what each got: 'ok', 'failed' or 'rejected'."""
    got: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(n)

    def one() -> None:
        start.wait()
        try:
            call()
            what = "ok"
        except (pybreaker.CircuitBreakerError, BreakerOpenError):
            what = "rejected"
        except RuntimeError:
            what = "failed"
        with lock:
            got.append(what)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(got)


# pybreaker's throw_new_error_on_trip=False: the call that trips raises its own error, as
# Resilient does (by default pybreaker raises CircuitBreakerError from it instead).


def simres_breaker(fail_max: int, reset: float) -> BreakerConfig:
    return BreakerConfig(preset="pybreaker", failure_threshold=fail_max, open_for=reset)


@pytest.mark.parametrize("fail_max", [1, 2, 3])
def test_serialised_breaker_trips_like_pybreaker_call(fail_max: int) -> None:
    """Six callers at once on a failing dependency: pybreaker's call() lets fail_max run, one at a time."""
    lib = pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=60, throw_new_error_on_trip=False)
    lib_gate = Gate(fail=True)
    lib_got = crowd(lambda: lib.call(lib_gate), 6)

    sim = Resilient(breaker=simres_breaker(fail_max, 60.0), breaker_serialize=True)
    sim_gate = Gate(fail=True)
    sim_got = crowd(lambda: sim.call(sim_gate), 6)

    assert lib_got == sim_got
    assert lib_got.count("failed") == fail_max and lib_got.count("rejected") == 6 - fail_max
    assert (lib_gate.most, lib_gate.runs) == (sim_gate.most, sim_gate.runs) == (1, fail_max)
    assert (lib.current_state, sim.breaker.state) == ("open", "open")


def test_serialised_half_open_probe_like_pybreaker() -> None:
    """After the reset timeout, the first serialised caller's failure re-opens; the rest are rejected."""
    lib = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=0.05, throw_new_error_on_trip=False)
    sim = Resilient(breaker=simres_breaker(1, 0.05), breaker_serialize=True)
    free = Resilient(breaker=simres_breaker(1, 0.05))  # calling()-like: not serialised
    got = []
    for call_of, gate in ((lambda g: lib.call(g), Gate(fail=True, hold=0.1)),
                          (lambda g: sim.call(g), Gate(fail=True, hold=0.1)),
                          (lambda g: free.call(g), Gate(fail=True, hold=0.1))):
        with pytest.raises(RuntimeError):
            call_of(gate)
        time.sleep(0.08)
        got.append((crowd(lambda g=gate, c=call_of: c(g), 5), gate.most))
    (lib_got, lib_most), (sim_got, sim_most), (free_got, free_most) = got
    assert lib_got == sim_got == ["failed"] + ["rejected"] * 4
    assert lib_most == sim_most == 1
    assert free_most > 1 and free_got.count("failed") > 1  # without the lock, half-open admits all


def test_serialised_successes_run_one_at_a_time() -> None:
    sim = Resilient(breaker=simres_breaker(5, 60.0), breaker_serialize=True)
    gate = Gate(fail=False, hold=0.01)
    assert crowd(lambda: sim.call(gate), 5) == ["ok"] * 5
    assert gate.most == 1
    decorated = sim(gate)
    assert decorated() == "ok"


def test_serialised_lock_is_reentrant_and_async() -> None:
    sim = Resilient(breaker=simres_breaker(5, 60.0), breaker_serialize=True)
    assert sim.call(lambda: sim.call(lambda: "inner")) == "inner"  # pybreaker's RLock

    running = [0, 0]

    async def work() -> str:
        running[0] += 1
        running[1] = max(running)
        await asyncio.sleep(0.01)
        running[0] -= 1
        return "ok"

    async def main() -> list[str]:
        return list(await asyncio.gather(*(sim.acall(work) for _ in range(4))))

    assert asyncio.run(main()) == ["ok"] * 4
    assert running[1] == 1
    assert asyncio.run(main()) == ["ok"] * 4  # a second event loop gets its own lock


def test_breaker_serialize_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="breaker_serialize"):
        Resilient(breaker_serialize="yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------- classifiers


def http_error(code: int, retry_after: str | None = None) -> urllib.error.HTTPError:
    headers = Message()
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return urllib.error.HTTPError("http://x/", code, "x", headers, None)


def urllib3_response(status: int, headers: dict[str, str] | None = None) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(body=b"", status=status, headers=headers or {}, preload_content=False)


def client_error(status: int, code: str, headers: dict[str, str] | None = None) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}}},
                       "GetObject")


def test_http_classify_on_urllib_errors() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert http_classify(http_error(429, "7")) == (REJECTED, 7.0)
    outcome, hint = http_classify(http_error(503, later))  # type: ignore[misc]
    assert outcome == ERROR and 25 < hint <= 30
    assert http_classify(http_error(500)) == (ERROR, None)
    assert http_classify(http_error(404)) == (ERROR, None, False)  # a raised 4xx is a failure
    assert http_classify(http_error(501)) == (ERROR, None, False)  # never retried
    assert http_classify(http_error(505)) == (ERROR, None, False)
    assert http_classify(urllib.error.URLError(ConnectionRefusedError())) == (CONNECTION, None)
    assert http_classify(TimeoutError()) == (TIMEOUT, None)
    # the default keeps its documented behaviour: a raised 404 is a success for the policies
    assert default_classify(http_error(404)) == (OK, None)


def test_http_classify_on_urllib3() -> None:
    assert http_classify(urllib3_response(200)) == (OK, None)
    assert http_classify(urllib3_response(404)) == (OK, None)  # returned, not raised
    assert http_classify(urllib3_response(429, {"Retry-After": "3"})) == (REJECTED, 3.0)
    assert http_classify(urllib3_response(502)) == (ERROR, None)
    assert http_classify(urllib3_response(501)) == (ERROR, None, False)
    pool = urllib3.HTTPConnectionPool("127.0.0.1", 1)
    assert http_classify(urllib3.exceptions.ReadTimeoutError(pool, "/", "slow")) == (TIMEOUT, None)
    assert http_classify(urllib3.exceptions.ConnectTimeoutError("slow connect")) == (CONNECTION, None)
    assert http_classify(urllib3.exceptions.NewConnectionError(None, "refused")) == (CONNECTION, None)


def test_aws_classify_and_x_amz_retry_after() -> None:
    assert aws_classify(client_error(400, "ThrottlingException", {"x-amz-retry-after": "250"})) == (REJECTED, 0.25)
    assert aws_classify(client_error(503, "SlowDown")) == (REJECTED, None)
    assert aws_classify(client_error(500, "InternalError")) == (ERROR, None)
    assert aws_classify(client_error(404, "NoSuchKey")) == (ERROR, None, False)
    assert aws_classify(client_error(501, "NotImplemented")) == (ERROR, None, False)
    assert aws_classify(ReadTimeoutError(endpoint_url="https://s3")) == (TIMEOUT, None)
    assert aws_classify(EndpointConnectionError(endpoint_url="https://s3")) == (CONNECTION, None)
    assert aws_classify(http_error(429, "1")) == (REJECTED, 1.0)  # not botocore: http_classify


class Script:
    """Raises the given exceptions in turn, then returns 'ok'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def quick_aws(**kw: Any) -> RetryConfig:
    return RetryConfig(preset="aws_standard", backoff={"base": 0.001}, throttling_backoff={"base": 0.001}, **kw)


def test_aws_501_is_not_retried_and_404_refunds_nothing() -> None:
    guard = Resilient(retry=quick_aws(), classify=aws_classify)
    fn = Script(client_error(501, "NotImplemented"))
    with pytest.raises(ClientError):
        guard.call(fn)
    assert fn.calls == 1 and guard.budget.tokens == 500  # type: ignore[union-attr]

    fn = Script(client_error(400, "ThrottlingException"), client_error(404, "NoSuchKey"))
    with pytest.raises(ClientError):
        guard.call(fn)
    assert fn.calls == 2
    assert guard.budget.tokens == 495  # type: ignore[union-attr]  # the throttling retry's 5, kept

    # the default classifier calls the 404 a success, so the 5 tokens would come back
    loose = Resilient(retry=quick_aws())
    with pytest.raises(urllib.error.HTTPError):
        loose.call(Script(http_error(429), http_error(404)))
    assert loose.budget.tokens == 500  # type: ignore[union-attr]


def test_a_raised_404_counts_as_a_breaker_failure_as_in_pybreaker() -> None:
    lib = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=60, throw_new_error_on_trip=False)
    sim = Resilient(breaker=simres_breaker(2, 60.0), classify=aws_classify)
    for _ in range(2):
        with pytest.raises(ClientError):
            lib.call(Script(client_error(404, "NoSuchKey")))
        with pytest.raises(ClientError):
            sim.call(Script(client_error(404, "NoSuchKey")))
    assert (lib.current_state, sim.breaker.state) == ("open", "open")


def test_retryable_false_stops_the_retry_loop_whatever_retry_on_says() -> None:
    guard = Resilient(retry=RetryConfig(max_attempts=5, backoff={"base": 0.001}, jitter="none"),
                      classify=lambda value: (ERROR, None, False) if isinstance(value, BaseException) else OK)
    fn = Script(RuntimeError("x"))
    with pytest.raises(RuntimeError):
        guard.call(fn)
    assert fn.calls == 1


def test_http_classify_on_requests_like_errors() -> None:
    """requests is not installed: its shapes (an IOError carrying ``response``; Timeout classes)."""

    class Response:
        def __init__(self, status_code: int, headers: dict[str, str]) -> None:
            self.status_code, self.headers = status_code, headers

    class RequestException(OSError):
        def __init__(self, response: Response | None = None) -> None:
            super().__init__("x")
            self.response = response

    class HTTPError(RequestException):
        pass

    class Timeout(RequestException):
        pass

    class ReadTimeout(Timeout):
        pass

    class ConnectionError(RequestException):  # requests' own name, shadowing the builtin
        pass

    class ConnectTimeout(ConnectionError, Timeout):
        pass

    assert http_classify(HTTPError(Response(404, {}))) == (ERROR, None, False)
    assert http_classify(HTTPError(Response(429, {"retry-after": "2"}))) == (REJECTED, 2.0)
    assert http_classify(HTTPError(Response(503, {"Retry-After": "1"}))) == (ERROR, 1.0)
    assert http_classify(ReadTimeout()) == (TIMEOUT, None)
    assert http_classify(ConnectTimeout()) == (CONNECTION, None)
    assert http_classify(ConnectionError()) == (CONNECTION, None)
    assert http_classify(Response(404, {})) == (OK, None)
