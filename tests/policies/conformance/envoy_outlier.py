# ruff: noqa: SIM102  (nested ifs kept as in the C++ source, line by line)
"""A line-by-line transcription of Envoy's outlier detector and Linkerd's consecutive-failures
breaker, the references for ``test_outlier.py``.

Envoy: github.com/envoyproxy/envoy at 00c7146d, ``source/common/upstream/outlier_detection_impl.cc``
and ``.h``; the runtime's ``SnapshotImpl::featureEnabled(key, default)`` (no PRNG at 0 or 100,
else ``random() % 100 < cutoff``). Each class keeps its C++ shape: ``DetectorHostMonitorImpl``
with its two ``SuccessRateMonitor``\\ s of swapped bucket objects, ``putResult`` dispatching to
the split or non-split handler by a bound function, ``Result`` codes, the host health flag,
the ``ejections_active`` helper, ``MonotonicTime`` as integer nanoseconds and configured
durations in milliseconds, and the router's reports (``LocalOriginConnectSuccess`` before a
reply, ``LocalOriginTimeout`` with 504, ``LocalOriginConnectFailed``).

Linkerd: github.com/linkerd/linkerd2-proxy at a7cdecc1,
``linkerd/app/outbound/src/http/breaker/consecutive_failures.rs``: the ``run`` loop of
``open``/``closed``/``probation`` is kept as a Python generator that yields what it awaits
(a response, or a response-or-sleep), driven by a tiny executor.

``mutant`` flips one comparison per class, so the comparison can be shown to catch it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

# envoy::data::cluster::v3::OutlierEjectionType
CONSECUTIVE_5XX = "consecutive_5xx"
CONSECUTIVE_GATEWAY_FAILURE = "consecutive_gateway_failure"
SUCCESS_RATE = "success_rate"
CONSECUTIVE_LOCAL_ORIGIN_FAILURE = "consecutive_local_origin_failure"
SUCCESS_RATE_LOCAL_ORIGIN = "success_rate_local_origin"
FAILURE_PERCENTAGE = "failure_percentage"
FAILURE_PERCENTAGE_LOCAL_ORIGIN = "failure_percentage_local_origin"

# Upstream::Outlier::Result
LocalOriginConnectSuccess = "LocalOriginConnectSuccess"
LocalOriginConnectSuccessFinal = "LocalOriginConnectSuccessFinal"
LocalOriginTimeout = "LocalOriginTimeout"
LocalOriginConnectFailed = "LocalOriginConnectFailed"
ExtOriginRequestSuccess = "ExtOriginRequestSuccess"
ExtOriginRequestFailed = "ExtOriginRequestFailed"

MS = 1_000_000  # ns per ms


def is5xx(code: int) -> bool:
    return 500 <= code < 600


def isGatewayError(code: int) -> bool:
    return 502 <= code < 505


class Host:
    """A host with its FAILED_OUTLIER_CHECK health flag."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.failed_outlier_check = False


class SuccessRateAccumulatorBucket:
    def __init__(self) -> None:
        self.success_request_counter_ = 0
        self.total_request_counter_ = 0


class SuccessRateAccumulator:
    def __init__(self) -> None:
        self.current_success_rate_bucket_ = SuccessRateAccumulatorBucket()
        self.backup_success_rate_bucket_ = SuccessRateAccumulatorBucket()

    def updateCurrentWriter(self) -> SuccessRateAccumulatorBucket:
        self.backup_success_rate_bucket_.success_request_counter_ = 0
        self.backup_success_rate_bucket_.total_request_counter_ = 0
        self.current_success_rate_bucket_, self.backup_success_rate_bucket_ = (
            self.backup_success_rate_bucket_, self.current_success_rate_bucket_)
        return self.current_success_rate_bucket_

    def getSuccessRateAndVolume(self) -> tuple[float, int] | None:
        if not self.backup_success_rate_bucket_.total_request_counter_:
            return None
        success_rate = (self.backup_success_rate_bucket_.success_request_counter_ * 100.0
                        / self.backup_success_rate_bucket_.total_request_counter_)
        return success_rate, self.backup_success_rate_bucket_.total_request_counter_


class SuccessRateMonitor:
    def __init__(self, ejection_type: str) -> None:
        self.ejection_type_ = ejection_type
        self.success_rate_ = -1.0
        self.success_rate_accumulator_ = SuccessRateAccumulator()
        self.updateCurrentSuccessRateBucket()

    def updateCurrentSuccessRateBucket(self) -> None:
        self.success_rate_accumulator_bucket_ = self.success_rate_accumulator_.updateCurrentWriter()

    def incTotalReqCounter(self) -> None:
        self.success_rate_accumulator_bucket_.total_request_counter_ += 1

    def incSuccessReqCounter(self) -> None:
        self.success_rate_accumulator_bucket_.success_request_counter_ += 1


class DetectorHostMonitorImpl:
    def __init__(self, detector: DetectorImpl, host: Host) -> None:
        self.detector_ = detector
        self.host_ = host
        self.external_origin_sr_monitor_ = SuccessRateMonitor(SUCCESS_RATE)
        self.local_origin_sr_monitor_ = SuccessRateMonitor(SUCCESS_RATE_LOCAL_ORIGIN)
        self.num_ejections_ = 0
        self.eject_time_backoff_ = 0
        self.jitter_ = 0  # ms
        self.last_ejection_time_: int | None = None
        self.last_unejection_time_: int | None = None
        self.consecutive_5xx_ = 0
        self.consecutive_gateway_failure_ = 0
        self.consecutive_local_origin_failure_ = 0
        self.put_result_func_ = (DetectorHostMonitorImpl.putResultWithLocalExternalSplit
                                 if detector.config.split_external_local_origin_errors
                                 else DetectorHostMonitorImpl.putResultNoLocalExternalSplit)

    def eject(self, ejection_time: int) -> None:
        assert not self.host_.failed_outlier_check
        self.host_.failed_outlier_check = True
        self.num_ejections_ += 1
        self.last_ejection_time_ = ejection_time

    def uneject(self, unejection_time: int) -> None:
        self.last_unejection_time_ = unejection_time

    def updateCurrentSuccessRateBucket(self) -> None:
        self.external_origin_sr_monitor_.updateCurrentSuccessRateBucket()
        self.local_origin_sr_monitor_.updateCurrentSuccessRateBucket()

    def getSRMonitor(self, local: bool) -> SuccessRateMonitor:
        return self.local_origin_sr_monitor_ if local else self.external_origin_sr_monitor_

    def putHttpResponseCode(self, response_code: int) -> None:
        self.external_origin_sr_monitor_.incTotalReqCounter()
        detector = self.detector_
        if is5xx(response_code):
            if isGatewayError(response_code):
                self.consecutive_gateway_failure_ += 1
                if self.consecutive_gateway_failure_ == detector.config.consecutive_gateway_failure:
                    detector.onConsecutiveGatewayFailure(self.host_)
            else:
                self.consecutive_gateway_failure_ = 0
            self.consecutive_5xx_ += 1
            if self.consecutive_5xx_ == detector.config.consecutive_5xx:
                detector.onConsecutive5xx(self.host_)
        else:
            self.external_origin_sr_monitor_.incSuccessReqCounter()
            self.consecutive_5xx_ = 0
            self.consecutive_gateway_failure_ = 0

    @staticmethod
    def resultToHttpCode(result: str) -> int | None:
        http_code = 500
        if result in (ExtOriginRequestSuccess, LocalOriginConnectSuccessFinal):
            http_code = 200
        elif result == LocalOriginTimeout:
            http_code = 504
        elif result == LocalOriginConnectFailed:
            http_code = 503
        elif result == ExtOriginRequestFailed:
            http_code = 500
        elif result == LocalOriginConnectSuccess:
            return None
        return http_code

    def putResultNoLocalExternalSplit(self, result: str, code: int | None) -> None:
        if code is not None:
            self.putHttpResponseCode(code)
        else:
            http_code = self.resultToHttpCode(result)
            if http_code is not None:
                self.putHttpResponseCode(http_code)

    def putResultWithLocalExternalSplit(self, result: str, code: int | None) -> None:
        if result in (LocalOriginConnectSuccess, LocalOriginConnectSuccessFinal):
            return self.localOriginNoFailure()
        if result in (LocalOriginTimeout, LocalOriginConnectFailed):
            return self.localOriginFailure()
        if result == ExtOriginRequestFailed:
            return self.putHttpResponseCode(503)
        if result == ExtOriginRequestSuccess:
            self.putHttpResponseCode(200)
            self.localOriginNoFailure()
        return None

    def putResult(self, result: str, code: int | None = None) -> None:
        self.put_result_func_(self, result, code)

    def localOriginFailure(self) -> None:
        self.local_origin_sr_monitor_.incTotalReqCounter()
        self.consecutive_local_origin_failure_ += 1
        if self.consecutive_local_origin_failure_ == self.detector_.config.consecutive_local_origin_failure:
            self.detector_.onConsecutiveLocalOriginFailure(self.host_)

    def localOriginNoFailure(self) -> None:
        self.local_origin_sr_monitor_.incTotalReqCounter()
        self.local_origin_sr_monitor_.incSuccessReqCounter()
        self.consecutive_local_origin_failure_ = 0


class Config:
    """``DetectorConfig``: the options, durations in ms."""

    def __init__(self, **kw: Any) -> None:
        self.interval_ms = 10_000
        self.base_ejection_time_ms = 30_000
        self.consecutive_5xx = 5
        self.consecutive_gateway_failure = 5
        self.max_ejection_percent = 10
        self.always_eject_one_host = False
        self.success_rate_minimum_hosts = 5
        self.success_rate_request_volume = 100
        self.success_rate_stdev_factor = 1900
        self.failure_percentage_threshold = 85
        self.failure_percentage_minimum_hosts = 5
        self.failure_percentage_request_volume = 50
        self.enforcing_consecutive_5xx = 100
        self.enforcing_consecutive_gateway_failure = 0
        self.enforcing_success_rate = 100
        self.enforcing_failure_percentage = 0
        self.enforcing_failure_percentage_local_origin = 0
        self.split_external_local_origin_errors = False
        self.consecutive_local_origin_failure = 5
        self.enforcing_consecutive_local_origin_failure = 100
        self.enforcing_local_origin_success_rate = 100
        self.max_ejection_time_ms: int | None = None
        self.max_ejection_time_jitter_ms = 0
        for k, v in kw.items():
            assert hasattr(self, k), k
            setattr(self, k, v)
        if self.max_ejection_time_ms is None:
            self.max_ejection_time_ms = max(10 * 30_000, self.base_ejection_time_ms)


class DetectorImpl:
    """``DetectorImpl`` with a fake time source, runtime generator and cluster random generator."""

    def __init__(self, n_hosts: int, config: Config, runtime_random: Callable[[], int],
                 random_generator: Callable[[], int], *, mutant: bool = False) -> None:
        self.config = config
        self.now = 0  # ns
        self.runtime_random = runtime_random
        self.random_generator_ = random_generator
        self.mutant = mutant
        self.ejections_active = 0
        self.log: list[tuple[int, int, str]] = []  # (time ns, host, "eject <type>" / "uneject")
        self.hosts = [Host(i) for i in range(n_hosts)]
        self.host_monitors_: dict[Host, DetectorHostMonitorImpl] = {}
        for h in self.hosts:
            self.host_monitors_[h] = DetectorHostMonitorImpl(self, h)
        self.timer_at = self.now + config.interval_ms * MS  # armIntervalTimer

    def featureEnabled(self, default_value: int) -> bool:
        cutoff = min(default_value, 100)
        if cutoff == 0:
            return False
        if cutoff == 100:
            return True
        return self.runtime_random() % 100 < cutoff

    def checkHostForUneject(self, host: Host, monitor: DetectorHostMonitorImpl, now: int) -> None:
        if not host.failed_outlier_check:
            return
        base_eject_time = self.config.base_ejection_time_ms
        max_eject_time = self.config.max_ejection_time_ms
        jitter = monitor.jitter_
        assert monitor.num_ejections_ > 0
        assert monitor.last_ejection_time_ is not None and max_eject_time is not None
        if (min(base_eject_time * monitor.eject_time_backoff_, max_eject_time) + jitter) * MS <= \
                now - monitor.last_ejection_time_:
            self.unejectHost(host)

    def unejectHost(self, host: Host) -> None:
        self.ejections_active -= 1
        host.failed_outlier_check = False
        m = self.host_monitors_[host]
        m.consecutive_5xx_ = 0
        m.consecutive_gateway_failure_ = 0
        m.consecutive_local_origin_failure_ = 0
        m.uneject(self.now)
        self.log.append((self.now, host.index, "uneject"))

    def enforceEjection(self, type_: str) -> bool:
        c = self.config
        pct = {CONSECUTIVE_5XX: c.enforcing_consecutive_5xx,
               CONSECUTIVE_GATEWAY_FAILURE: c.enforcing_consecutive_gateway_failure,
               SUCCESS_RATE: c.enforcing_success_rate,
               CONSECUTIVE_LOCAL_ORIGIN_FAILURE: c.enforcing_consecutive_local_origin_failure,
               SUCCESS_RATE_LOCAL_ORIGIN: c.enforcing_local_origin_success_rate,
               FAILURE_PERCENTAGE: c.enforcing_failure_percentage,
               FAILURE_PERCENTAGE_LOCAL_ORIGIN: c.enforcing_failure_percentage_local_origin}[type_]
        return self.featureEnabled(pct)

    def ejectHost(self, host: Host, type_: str) -> None:
        max_ejection_percent = min(100, self.config.max_ejection_percent)
        ejected_percent = 100.0 * (self.ejections_active + 1) / len(self.host_monitors_)
        should_eject = (ejected_percent < max_ejection_percent) if self.mutant \
            else (ejected_percent <= max_ejection_percent)
        if self.config.always_eject_one_host:
            should_eject = (self.ejections_active == 0) or should_eject
        if should_eject:
            if self.enforceEjection(type_):
                self.ejections_active += 1
                m = self.host_monitors_[host]
                m.eject(self.now)
                base_eject_time = self.config.base_ejection_time_ms
                max_eject_time = self.config.max_ejection_time_ms
                assert max_eject_time is not None
                jitter = self.random_generator_() % (self.config.max_ejection_time_jitter_ms + 1)
                m.jitter_ = jitter
                if m.eject_time_backoff_ * base_eject_time < max_eject_time + base_eject_time:
                    m.eject_time_backoff_ += 1
                self.log.append((self.now, host.index, f"eject {type_}"))

    def onConsecutive5xx(self, host: Host) -> None:
        self.onConsecutiveErrorWorker(host, CONSECUTIVE_5XX)  # the post to the main thread, run at once

    def onConsecutiveGatewayFailure(self, host: Host) -> None:
        self.onConsecutiveErrorWorker(host, CONSECUTIVE_GATEWAY_FAILURE)

    def onConsecutiveLocalOriginFailure(self, host: Host) -> None:
        self.onConsecutiveErrorWorker(host, CONSECUTIVE_LOCAL_ORIGIN_FAILURE)

    def onConsecutiveErrorWorker(self, host: Host, type_: str) -> None:
        if host not in self.host_monitors_:
            return
        if host.failed_outlier_check:
            return
        self.ejectHost(host, type_)
        m = self.host_monitors_[host]
        if type_ == CONSECUTIVE_5XX:
            m.consecutive_5xx_ = 0
        elif type_ == CONSECUTIVE_GATEWAY_FAILURE:
            m.consecutive_gateway_failure_ = 0
        elif type_ == CONSECUTIVE_LOCAL_ORIGIN_FAILURE:
            m.consecutive_local_origin_failure_ = 0

    @staticmethod
    def successRateEjectionThreshold(success_rate_sum: float, valid: list[tuple[Host, float]],
                                     success_rate_stdev_factor: float) -> tuple[float, float]:
        mean = success_rate_sum / len(valid)
        variance = 0.0
        for _, rate in valid:
            variance += math.pow(rate - mean, 2)
        variance /= len(valid)
        stdev = math.sqrt(variance)
        return mean, mean - (success_rate_stdev_factor * stdev)

    def processSuccessRateEjections(self, local: bool) -> None:
        c = self.config
        if len(self.host_monitors_) < c.success_rate_minimum_hosts and \
                len(self.host_monitors_) < c.failure_percentage_minimum_hosts:
            return
        valid_success_rate_hosts: list[tuple[Host, float]] = []
        valid_failure_percentage_hosts: list[tuple[Host, float]] = []
        success_rate_sum = 0.0
        for host, monitor in self.host_monitors_.items():
            if not host.failed_outlier_check:
                rv = monitor.getSRMonitor(local).success_rate_accumulator_.getSuccessRateAndVolume()
                if rv is None:
                    continue
                success_rate, request_volume = rv
                if request_volume >= c.success_rate_request_volume:
                    valid_success_rate_hosts.append((host, success_rate))
                    success_rate_sum += success_rate
                if request_volume >= c.failure_percentage_request_volume:
                    valid_failure_percentage_hosts.append((host, success_rate))
        if valid_success_rate_hosts and len(valid_success_rate_hosts) >= c.success_rate_minimum_hosts:
            factor = c.success_rate_stdev_factor / 1000.0
            _, threshold = self.successRateEjectionThreshold(success_rate_sum, valid_success_rate_hosts, factor)
            for host, rate in valid_success_rate_hosts:
                if rate < threshold:
                    self.ejectHost(host, SUCCESS_RATE_LOCAL_ORIGIN if local else SUCCESS_RATE)
        if valid_failure_percentage_hosts and \
                len(valid_failure_percentage_hosts) >= c.failure_percentage_minimum_hosts:
            failure_percentage_threshold = float(c.failure_percentage_threshold)
            for host, rate in valid_failure_percentage_hosts:
                if (100.0 - rate) >= failure_percentage_threshold:
                    # simres skips a host the success-rate pass has just ejected (Envoy asserts in eject())
                    if host.failed_outlier_check:
                        continue
                    self.ejectHost(host, FAILURE_PERCENTAGE_LOCAL_ORIGIN if local else FAILURE_PERCENTAGE)

    def onIntervalTimer(self) -> None:
        now = self.now
        for host, monitor in self.host_monitors_.items():
            self.checkHostForUneject(host, monitor, now)
            monitor.updateCurrentSuccessRateBucket()
        self.processSuccessRateEjections(False)
        self.processSuccessRateEjections(True)
        for host, monitor in self.host_monitors_.items():
            if not host.failed_outlier_check:
                if monitor.last_unejection_time_ is not None and \
                        now - monitor.last_unejection_time_ >= self.config.interval_ms * MS:
                    if monitor.eject_time_backoff_ != 0:
                        monitor.eject_time_backoff_ -= 1
        self.timer_at = now + self.config.interval_ms * MS

    # -- the router's reports of one try (upstream_request.cc / router.cc) ---------------

    def reply(self, host: int, code: int) -> None:
        m = self.host_monitors_[self.hosts[host]]
        m.putResult(LocalOriginConnectSuccess)  # onPoolReady
        m.putHttpResponseCode(code)  # the response headers

    def timeout(self, host: int) -> None:
        self.host_monitors_[self.hosts[host]].putResult(LocalOriginTimeout, 504)

    def connect_failed(self, host: int) -> None:
        self.host_monitors_[self.hosts[host]].putResult(LocalOriginConnectFailed)


# ----------------------------------------------------------------------------- linkerd


class Gate:
    """``gate::Tx``: open, shut, or limited by a semaphore of permits."""

    def __init__(self) -> None:
        self.state = "open"
        self.permits = 0

    def ready(self) -> bool:
        return self.state == "open" or (self.state == "limited" and self.permits > 0)

    def acquire(self) -> None:
        if self.state == "limited":
            assert self.permits > 0
            self.permits -= 1


class ConsecutiveFailures:
    """``ConsecutiveFailures::run`` as a generator: it yields ``("recv",)`` to await a response, or
    ``("recv_or_sleep", deadline_ns)``; it is sent the response class (True = success) or None
    (the sleep elapsed)."""

    def __init__(self, max_failures: int, init_ejection_backoff: int, max_ejection_backoff: int, gate: Gate,
                 *, mutant: bool = False) -> None:
        self.max_failures = max_failures
        self.init_ejection_backoff = init_ejection_backoff
        self.max_ejection_backoff = max_ejection_backoff
        self.gate = gate
        self.mutant = mutant
        self.now = 0

    def run(self) -> Generator[tuple[Any, ...], bool | None, None]:
        while True:
            yield from self.open()
            yield from self.closed()

    def open(self) -> Generator[tuple[Any, ...], bool | None, None]:
        self.gate.state = "open"
        failures = 0
        while True:
            is_success = yield ("recv",)
            if is_success:
                failures = 0
            else:
                failures += 1
                if failures == self.max_failures:
                    return

    def closed(self) -> Generator[tuple[Any, ...], bool | None, None]:
        backoff = self.init_ejection_backoff
        while True:
            self.gate.state = "shut"
            deadline = self.now + backoff
            while True:
                got = yield ("recv_or_sleep", deadline)
                if got is None:
                    break  # _ = &mut self.sleep => break
                continue  # ignore responses while the breaker is shut
            is_success = yield from self.probation()
            if is_success:
                return
            backoff = min(self.max_ejection_backoff, backoff * 2 if not self.mutant else backoff * 3)

    def probation(self) -> Generator[tuple[Any, ...], bool | None, bool]:
        self.gate.permits += 1
        self.gate.state = "limited"
        rsp = yield ("recv",)
        assert rsp is not None
        return rsp


class Executor:
    """Drives one :class:`ConsecutiveFailures` task with a fake clock (tokio's paused time)."""

    def __init__(self, breaker: ConsecutiveFailures) -> None:
        self.breaker = breaker
        self.task = breaker.run()
        self.waiting = next(self.task)

    def advance(self, now: int) -> None:
        """Time moves to ``now``: a sleep whose deadline has passed fires."""
        self.breaker.now = now
        while self.waiting[0] == "recv_or_sleep" and self.waiting[1] <= now:
            self.waiting = self.task.send(None)

    def response(self, now: int, success: bool) -> None:
        self.advance(now)
        self.waiting = self.task.send(success)
