"""Outlier ejection: a caller stops sending to the instances that fail, until their ejection ends.

Two detectors, each transcribed from its source:

- ``envoy``: Envoy's outlier detection (``Upstream::Outlier::DetectorImpl``). Per host, it
  counts consecutive 5xx replies, consecutive gateway failures (502/503/504) and, with
  ``split_external_local_origin_errors``, consecutive local-origin failures (connect
  failures and timeouts); reaching a threshold ejects the host at once. Every ``interval``
  the timer (1) un-ejects each host whose ejection has lasted
  ``min(base_ejection_time * backoff, max_ejection_time) + jitter``, (2) swaps each host's
  success-rate bucket (the rules below read the interval just ended), (3) runs the
  success-rate rule (eject a host whose success rate is under ``mean - stdev_factor/1000 *
  stdev`` of the hosts with ``success_rate_request_volume`` requests, if at least
  ``success_rate_minimum_hosts`` have them) and the failure-percentage rule (eject a host
  whose failure percentage is at least ``failure_percentage_threshold``), and (4) lowers the
  ``backoff`` of each host that has been back for at least one interval. An ejection raises
  ``backoff`` by one while ``backoff * base < max + base``. A host is ejected only while
  ``100 * (ejected + 1) / hosts <= max_ejection_percent`` (or none is ejected and
  ``always_eject_one_host``), and only if the rule's ``enforcing_*`` percentage lets it (a
  draw ``< percent`` of 100).
  Source: github.com/envoyproxy/envoy at 00c7146d, ``source/common/upstream/
  outlier_detection_impl.cc`` (``DetectorHostMonitorImpl::putHttpResponseCode``,
  ``putResultNoLocalExternalSplit``, ``putResultWithLocalExternalSplit``,
  ``DetectorImpl::ejectHost``, ``checkHostForUneject``, ``onIntervalTimer``,
  ``processSuccessRateEjections``, ``successRateEjectionThreshold``,
  ``SuccessRateAccumulator``) and ``outlier_detection_impl.h`` (``DEFAULT_*``).
- ``linkerd``: the Linkerd2 proxy's consecutive-failures failure accrual
  (``linkerd/app/outbound/src/http/breaker/consecutive_failures.rs`` at a7cdecc1): after
  ``consecutive_failures`` failed responses in a row an endpoint is shut for ``min_penalty``;
  then it is on probation and admits one request (one more permit in its semaphore: a
  permit no probe took stays for the next probation); the next response decides: a success
  opens it, a failure shuts it again for twice the last penalty, at most ``max_penalty``.
  Responses while shut are ignored. Defaults from the policy controller's
  ``parse_accrual_config`` (``policy-controller/k8s/index/src/outbound/index.rs``: 7, 1 s,
  60 s). Its ``jitter-ratio`` (0.5) is parsed by the controller but the proxy's ``Params``
  has no jitter (``// TODO Use ExponentialBackoff``), so there is none here.

Which simres outcomes are which HTTP results (the router reports a timeout as
``LocalOriginTimeout``/504 and a connect failure as ``LocalOriginConnectFailed``/503):

================  ========================  ==========================  ===========
outcome           envoy (not split)         envoy (split)               linkerd
================  ========================  ==========================  ===========
ok, degraded      200: success              connect ok, then 200        success
error             500: 5xx                  connect ok, then 500        failure
rejected, shed    503: 5xx and gateway      connect ok, then 503        failure
connection        503: 5xx and gateway      local-origin failure        failure
timeout           504: 5xx and gateway      local-origin failure        failure
================  ========================  ==========================  ===========

Tries refused locally (throttled, breaker_open, bulkhead_full), cancelled work and
unfinished tries are not reported.

Simplifications, documented in docs/policies.md: Envoy posts a consecutive-error ejection
to its main thread; here it happens at the time of the result. Envoy iterates its hosts in
hash-map order; here in instance order. Envoy's failure-percentage pass may eject a host
that the success-rate pass has just ejected (a debug-build assertion); here it skips it.

The objects are pure: no clock (every method takes ``now``), no SimPy, no global random
state (enforcement and jitter draws come from the ``rng`` the driver passes, keyed like
every other stream).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from pydantic import Field, model_validator

from simres.outcomes import CONNECTION, DEGRADED, ERROR, OK, REJECTED, SHED, TIMEOUT
from simres.policies._base import PolicyModel
from simres.policies.backoff import Uniform, draw

NANOS = 1_000_000_000
_TWO64 = 18446744073709551616.0


def to_nanos(seconds: float) -> int:
    """Simulated seconds as integer nanoseconds (Envoy's MonotonicTime, tokio's Instant)."""
    return round(seconds * NANOS)


def to_millis(seconds: float) -> int:
    """A configured duration in whole milliseconds (``PROTOBUF_GET_MS_OR_DEFAULT``)."""
    return round(seconds * 1000)


def random_u64(rng: Uniform) -> int:
    """``Random::RandomGenerator::random()``: a uint64, here from one U[0, 1) draw."""
    return int(draw(rng) * _TWO64)


# The HTTP status Envoy sees for each outcome when errors are not split (see module doc).
_HTTP_CODE: dict[str, int] = {OK: 200, DEGRADED: 200, ERROR: 500, REJECTED: 503, SHED: 503,
                              CONNECTION: 503, TIMEOUT: 504}
_LOCAL_ORIGIN: frozenset[str] = frozenset({CONNECTION, TIMEOUT})
"""Outcomes that are local-origin failures when errors are split (no reply came)."""

Listener = Callable[[float, int, str, str], None]
"""``listener(now, host, action, reason)``; action is ``ejected``, ``unejected`` or ``probation``."""


def http_code(outcome: str) -> int | None:
    """The HTTP status Envoy's router reports for a try's outcome, or None (not reported)."""
    return _HTTP_CODE.get(outcome)


def is_gateway_error(code: int) -> bool:
    """``Http::CodeUtility::isGatewayError``: 502, 503 or 504."""
    return 502 <= code <= 504


class OutlierConfig(PolicyModel):
    """Options of outlier ejection on one caller's calls to a service (one detector per caller)."""

    preset_group = "outlier"
    kind: Literal["envoy", "linkerd"] = Field(
        default="envoy",
        description="envoy (Envoy outlier detection) or linkerd (Linkerd2 proxy consecutive-failures "
                    "failure accrual).")
    interval: float = Field(default=10.0, gt=0, description="envoy: time between ejection sweeps, s (10 s).")
    base_ejection_time: float = Field(default=30.0, gt=0,
                                      description="envoy: ejection time per unit of backoff, s (30 s).")
    max_ejection_time: float | None = Field(
        default=None, gt=0, description="envoy: longest ejection, s (default max(300 s, base_ejection_time)).")
    max_ejection_time_jitter: float = Field(
        default=0.0, ge=0, description="envoy: random extra ejection time, up to this, in whole ms (0).")
    max_ejection_percent: int = Field(
        default=10, ge=0, le=100,
        description="envoy: an ejection needs 100 x (ejected + 1) / hosts <= this (10).")
    always_eject_one_host: bool = Field(
        default=False, description="envoy: allow one ejection whatever max_ejection_percent says (false).")
    consecutive_5xx: int = Field(default=5, ge=1, description="envoy: 5xx replies in a row that eject (5).")
    consecutive_gateway_failure: int = Field(
        default=5, ge=1, description="envoy: 502/503/504 in a row that eject (5; enforced 0 % by default).")
    consecutive_local_origin_failure: int = Field(
        default=5, ge=1, description="envoy, split errors: connect failures/timeouts in a row that eject (5).")
    split_external_local_origin_errors: bool = Field(
        default=False,
        description="envoy: count timeouts and connect failures apart from the server's replies (false).")
    enforcing_consecutive_5xx: int = Field(default=100, ge=0, le=100,
                                           description="envoy: % of consecutive_5xx detections enforced (100).")
    enforcing_consecutive_gateway_failure: int = Field(
        default=0, ge=0, le=100, description="envoy: % of gateway-failure detections enforced (0).")
    enforcing_consecutive_local_origin_failure: int = Field(
        default=100, ge=0, le=100, description="envoy: % of local-origin detections enforced (100).")
    enforcing_success_rate: int = Field(default=100, ge=0, le=100,
                                        description="envoy: % of success-rate detections enforced (100).")
    enforcing_local_origin_success_rate: int = Field(
        default=100, ge=0, le=100, description="envoy: % of local-origin success-rate detections enforced (100).")
    enforcing_failure_percentage: int = Field(
        default=0, ge=0, le=100, description="envoy: % of failure-percentage detections enforced (0).")
    enforcing_failure_percentage_local_origin: int = Field(
        default=0, ge=0, le=100, description="envoy: % of local-origin failure-percentage detections enforced (0).")
    success_rate_minimum_hosts: int = Field(
        default=5, ge=1, description="envoy: hosts with enough volume the success-rate rule needs (5).")
    success_rate_request_volume: int = Field(
        default=100, ge=1, description="envoy: requests in the last interval a host needs for that rule (100).")
    success_rate_stdev_factor: int = Field(
        default=1900, ge=0, description="envoy: ejected below mean - factor / 1000 x stdev (1900).")
    failure_percentage_threshold: int = Field(
        default=85, ge=0, le=100, description="envoy: failure % of the last interval that ejects (85).")
    failure_percentage_minimum_hosts: int = Field(
        default=5, ge=1, description="envoy: hosts with enough volume the failure-percentage rule needs (5).")
    failure_percentage_request_volume: int = Field(
        default=50, ge=1, description="envoy: requests in the last interval a host needs for that rule (50).")
    healthy_panic_threshold: float = Field(
        default=50.0, ge=0, le=100,
        description="Balancer: under this % of available hosts it picks among all of them (Envoy 50; "
                    "linkerd preset 0). With none available it always picks among all.")
    consecutive_failures: int = Field(
        default=7, ge=1, description="linkerd: failed responses in a row that shut an endpoint (7).")
    min_penalty: float = Field(default=1.0, gt=0, description="linkerd: first penalty before probation, s (1 s).")
    max_penalty: float = Field(default=60.0, gt=0, description="linkerd: longest penalty, s (60 s).")
    scope: Literal["per_client"] = Field(
        default="per_client",
        description="One detector per calling instance (or client member), as each Envoy or Linkerd proxy "
                    "keeps its own.")
    preset: str | None = Field(default=None, description="Name of a library preset whose values fill every field "
                                                         "not given here.")

    @model_validator(mode="after")
    def _bounds(self) -> OutlierConfig:
        if self.max_ejection_time is not None and self.max_ejection_time < self.base_ejection_time:
            raise ValueError(f"max_ejection_time: must be >= base_ejection_time ({self.base_ejection_time}), "
                             f"got {self.max_ejection_time}")
        if self.min_penalty > self.max_penalty:
            raise ValueError(f"min_penalty: must be <= max_penalty ({self.max_penalty}), got {self.min_penalty}")
        return self

    @property
    def max_ejection(self) -> float:
        """``max_ejection_time`` or its default, max(300 s, base_ejection_time)."""
        if self.max_ejection_time is not None:
            return self.max_ejection_time
        return max(300.0, self.base_ejection_time)

    def build(self, hosts: int, rng: Uniform | None = None, listener: Listener | None = None,
              wake: Callable[[float], None] | None = None, jitter_rng: Uniform | None = None) -> OutlierDetector:
        """A fresh detector over ``hosts`` instances (see :class:`OutlierDetector`).

        Envoy draws from two generators: the runtime's, for the ``enforcing_*`` percentages
        (``rng``; no draw at 0 % or 100 %), and the cluster's, for the ejection jitter
        (``jitter_rng``; one draw per ejection, even with no jitter configured).
        """
        if self.kind == "envoy":
            return EnvoyOutlierDetector(self, hosts, rng=rng, listener=listener, wake=wake, jitter_rng=jitter_rng)
        return LinkerdFailureAccrual(self, hosts, rng=rng, listener=listener, wake=wake)


class OutlierDetector:
    """Which of a caller's ``hosts`` instances its balancer may pick.

    The driver reports each try's outcome with :meth:`on_result`, calls :meth:`on_timer`
    at (or after) each time the detector passed to ``wake``, and calls :meth:`on_pick` with
    each instance its balancer picked. :meth:`candidates` is the list to pick from (``None``:
    every instance); ``on_change()`` (if set) runs whenever it may have changed.
    """

    def __init__(self, cfg: OutlierConfig, hosts: int, rng: Uniform | None = None,
                 listener: Listener | None = None, wake: Callable[[float], None] | None = None) -> None:
        self.cfg = cfg
        self.hosts = hosts
        self.rng = rng
        self.listener = listener
        self.wake = wake
        self.on_change: Callable[[], None] | None = None
        self.available = [True] * hosts
        """Whether each instance may be picked (not ejected, or on probation with its permit free)."""
        self.ejected = [False] * hosts
        """Whether each instance is out (ejected, shut or on probation): the timeline's count."""
        self._panic = cfg.healthy_panic_threshold

    needs_pick = False
    """Whether the driver must call :meth:`on_pick` after each pick (Linkerd's probation permit)."""

    def start(self, now: float) -> None:
        """The detector exists from ``now`` (Envoy arms its interval timer here)."""

    def on_result(self, now: float, host: int, outcome: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def on_timer(self, now: float) -> None:  # pragma: no cover
        raise NotImplementedError

    def on_pick(self, host: int) -> None:
        """The balancer picked ``host`` (Linkerd takes the probation permit)."""

    def candidates(self) -> list[int] | None:
        """The instances to pick from; ``None`` for every one (nothing out, or panic)."""
        avail = [i for i, a in enumerate(self.available) if a]
        n = len(avail)
        if n == self.hosts or n == 0 or 100.0 * n / self.hosts < self._panic:
            return None
        return avail

    @property
    def ejected_count(self) -> int:
        """Instances out now."""
        return sum(self.ejected)

    def _emit(self, now: float, host: int, action: str, reason: str) -> None:
        if self.listener is not None:
            self.listener(now, host, action, reason)
        if self.on_change is not None:
            self.on_change()


# ----------------------------------------------------------------------------- envoy


class _HostMonitor:
    """``DetectorHostMonitorImpl``: one host's counters, success-rate buckets and ejection state."""

    __slots__ = ("backoff", "c5xx", "cgw", "clocal", "ext", "jitter", "last_ejection", "last_unejection",
                 "local", "num_ejections")

    def __init__(self) -> None:
        self.c5xx = 0
        self.cgw = 0
        self.clocal = 0
        self.num_ejections = 0
        self.backoff = 0
        """``ejectTimeBackoff``: the ejection time is base x backoff (capped)."""
        self.jitter = 0
        """This ejection's jitter, ms."""
        self.last_ejection: int | None = None
        """ns."""
        self.last_unejection: int | None = None
        """ns."""
        # success-rate accumulators: [current success, current total, backup success, backup total]
        self.ext = [0, 0, 0, 0]
        self.local = [0, 0, 0, 0]


def _swap(acc: list[int]) -> None:
    """``SuccessRateAccumulator::updateCurrentWriter``: the current bucket becomes the backup."""
    acc[2], acc[3] = acc[0], acc[1]
    acc[0] = acc[1] = 0


CONSECUTIVE_5XX = "consecutive_5xx"
CONSECUTIVE_GATEWAY_FAILURE = "consecutive_gateway_failure"
CONSECUTIVE_LOCAL_ORIGIN_FAILURE = "consecutive_local_origin_failure"
SUCCESS_RATE = "success_rate"
SUCCESS_RATE_LOCAL_ORIGIN = "success_rate_local_origin"
FAILURE_PERCENTAGE = "failure_percentage"
FAILURE_PERCENTAGE_LOCAL_ORIGIN = "failure_percentage_local_origin"


class EnvoyOutlierDetector(OutlierDetector):
    """Envoy's ``DetectorImpl`` (see the module doc for the rules and the source).

    Times are kept in integer nanoseconds and configured durations in whole milliseconds,
    as Envoy keeps them, so every comparison is exact; ``now`` arguments are seconds.
    """

    def __init__(self, cfg: OutlierConfig, hosts: int, rng: Uniform | None = None,
                 listener: Listener | None = None, wake: Callable[[float], None] | None = None,
                 jitter_rng: Uniform | None = None) -> None:
        super().__init__(cfg, hosts, rng, listener, wake)
        self.jitter_rng = jitter_rng
        self.monitors = [_HostMonitor() for _ in range(hosts)]
        self.active = 0
        """``ejections_active``."""
        self.overflow = 0
        """``ejections_overflow``: detections refused by max_ejection_percent."""
        self.not_enforced = 0
        """Detections an ``enforcing_*`` draw let pass."""
        self._base = to_millis(cfg.base_ejection_time)
        self._max = to_millis(cfg.max_ejection_time) if cfg.max_ejection_time is not None \
            else max(300_000, self._base)
        self._interval = to_millis(cfg.interval)
        self._jitter_max = int(cfg.max_ejection_time_jitter * 1000)
        self._enforcing = {
            CONSECUTIVE_5XX: cfg.enforcing_consecutive_5xx,
            CONSECUTIVE_GATEWAY_FAILURE: cfg.enforcing_consecutive_gateway_failure,
            CONSECUTIVE_LOCAL_ORIGIN_FAILURE: cfg.enforcing_consecutive_local_origin_failure,
            SUCCESS_RATE: cfg.enforcing_success_rate,
            SUCCESS_RATE_LOCAL_ORIGIN: cfg.enforcing_local_origin_success_rate,
            FAILURE_PERCENTAGE: cfg.enforcing_failure_percentage,
            FAILURE_PERCENTAGE_LOCAL_ORIGIN: cfg.enforcing_failure_percentage_local_origin,
        }

    def start(self, now: float) -> None:
        """``initialize``: arm the interval timer."""
        if self.wake is not None:
            self.wake(now + self._interval / 1000)

    # -- results ------------------------------------------------------------------

    def on_result(self, now: float, host: int, outcome: str) -> None:
        """``putResult``/``putHttpResponseCode`` for one try's outcome (mapping in the module doc)."""
        code = _HTTP_CODE.get(outcome)
        if code is None:
            return
        if not self.cfg.split_external_local_origin_errors:
            self.put_http(now, host, code)
            return
        if outcome in _LOCAL_ORIGIN:
            self._local_failure(now, host)
            return
        self._local_success(host)
        self.put_http(now, host, code)

    def put_http(self, now: float, host: int, code: int) -> None:
        """``putHttpResponseCode``: one HTTP status from ``host``."""
        m = self.monitors[host]
        m.ext[1] += 1
        cfg = self.cfg
        if 500 <= code < 600:
            if is_gateway_error(code):
                m.cgw += 1
                if m.cgw == cfg.consecutive_gateway_failure:
                    self._consecutive(now, host, CONSECUTIVE_GATEWAY_FAILURE)
            else:
                m.cgw = 0
            m.c5xx += 1
            if m.c5xx == cfg.consecutive_5xx:
                self._consecutive(now, host, CONSECUTIVE_5XX)
        else:
            m.ext[0] += 1
            m.c5xx = 0
            m.cgw = 0

    def _local_failure(self, now: float, host: int) -> None:
        """``localOriginFailure``."""
        m = self.monitors[host]
        m.local[1] += 1
        m.clocal += 1
        if m.clocal == self.cfg.consecutive_local_origin_failure:
            self._consecutive(now, host, CONSECUTIVE_LOCAL_ORIGIN_FAILURE)

    def _local_success(self, host: int) -> None:
        """``localOriginNoFailure``."""
        m = self.monitors[host]
        m.local[1] += 1
        m.local[0] += 1
        m.clocal = 0

    def _consecutive(self, now: float, host: int, kind: str) -> None:
        """``onConsecutiveErrorWorker`` (run at once, not posted to a main thread)."""
        if self.ejected[host]:
            return
        self._eject(now, host, kind)
        m = self.monitors[host]
        if kind == CONSECUTIVE_5XX:
            m.c5xx = 0
        elif kind == CONSECUTIVE_GATEWAY_FAILURE:
            m.cgw = 0
        else:
            m.clocal = 0

    def _enforce(self, kind: str) -> bool:
        """``Runtime::Snapshot::featureEnabled(key, percent)``: no draw at 0 or 100, else
        ``random() % 100 < percent``."""
        pct = min(self._enforcing[kind], 100)
        if pct == 0:
            return False
        if pct == 100:
            return True
        if self.rng is None:
            return False
        return random_u64(self.rng) % 100 < pct

    def _eject(self, now: float, host: int, kind: str) -> None:
        """``ejectHost``."""
        cfg = self.cfg
        pct = 100.0 * (self.active + 1) / self.hosts
        should = pct <= min(100, cfg.max_ejection_percent)
        if cfg.always_eject_one_host:
            should = self.active == 0 or should
        if not should:
            self.overflow += 1
            return
        if not self._enforce(kind):
            self.not_enforced += 1
            return
        self.active += 1
        m = self.monitors[host]
        self.ejected[host] = True
        self.available[host] = False
        m.num_ejections += 1
        m.last_ejection = to_nanos(now)
        r = random_u64(self.jitter_rng) if self.jitter_rng is not None else 0
        m.jitter = r % (self._jitter_max + 1)
        if m.backoff * self._base < self._max + self._base:
            m.backoff += 1
        self._emit(now, host, "ejected", kind)

    def _uneject(self, now: float, host: int) -> None:
        """``unejectHost``: back in, with the consecutive counters reset."""
        self.active -= 1
        m = self.monitors[host]
        self.ejected[host] = False
        self.available[host] = True
        m.c5xx = m.cgw = m.clocal = 0
        m.last_unejection = to_nanos(now)
        self._emit(now, host, "unejected", "ejection_time_elapsed")

    def ejection_time(self, host: int) -> float:
        """How long ``host``'s current (or last) ejection lasts, s: min(base x backoff, max) + jitter."""
        m = self.monitors[host]
        return (min(self._base * m.backoff, self._max) + m.jitter) / 1000

    # -- the interval timer -----------------------------------------------------------

    def on_timer(self, now: float) -> None:
        """``onIntervalTimer``: un-eject, swap buckets, success-rate rules, backoff decrements, re-arm."""
        t = to_nanos(now)
        for h, m in enumerate(self.monitors):
            if self.ejected[h] and m.last_ejection is not None and \
                    (min(self._base * m.backoff, self._max) + m.jitter) * 1_000_000 <= t - m.last_ejection:
                self._uneject(now, h)
            _swap(m.ext)
            _swap(m.local)
        self._success_rate(now, local=False)
        self._success_rate(now, local=True)
        interval_ns = self._interval * 1_000_000
        for h, m in enumerate(self.monitors):
            if not self.ejected[h] and m.last_unejection is not None and t - m.last_unejection >= interval_ns \
                    and m.backoff != 0:
                m.backoff -= 1
        if self.wake is not None:
            self.wake(now + self._interval / 1000)

    def success_rate_threshold(self, rates: list[float]) -> tuple[float, float]:
        """``successRateEjectionThreshold``: (mean, mean - stdev_factor / 1000 x stdev)."""
        n = len(rates)
        mean = sum(rates) / n
        variance = 0.0
        for r in rates:
            variance += (r - mean) ** 2
        variance /= n
        return mean, mean - (self.cfg.success_rate_stdev_factor / 1000.0) * math.sqrt(variance)

    def _success_rate(self, now: float, *, local: bool) -> None:
        """``processSuccessRateEjections`` for the external (or local-origin) monitors."""
        cfg = self.cfg
        sr_hosts, fp_hosts = cfg.success_rate_minimum_hosts, cfg.failure_percentage_minimum_hosts
        if self.hosts < sr_hosts and self.hosts < fp_hosts:
            return
        sr_volume, fp_volume = cfg.success_rate_request_volume, cfg.failure_percentage_request_volume
        valid_sr: list[tuple[int, float]] = []
        valid_fp: list[tuple[int, float]] = []
        total = 0.0
        for h, m in enumerate(self.monitors):
            if self.ejected[h]:
                continue
            acc = m.local if local else m.ext
            volume = acc[3]
            if not volume:
                continue
            rate = acc[2] * 100.0 / volume
            if volume >= sr_volume:
                valid_sr.append((h, rate))
                total += rate
            if volume >= fp_volume:
                valid_fp.append((h, rate))
        if valid_sr and len(valid_sr) >= sr_hosts:
            _, threshold = self.success_rate_threshold([r for _, r in valid_sr])
            kind = SUCCESS_RATE_LOCAL_ORIGIN if local else SUCCESS_RATE
            for h, rate in valid_sr:
                if rate < threshold:
                    self._eject(now, h, kind)
        if valid_fp and len(valid_fp) >= fp_hosts:
            kind = FAILURE_PERCENTAGE_LOCAL_ORIGIN if local else FAILURE_PERCENTAGE
            threshold_fp = float(cfg.failure_percentage_threshold)
            for h, rate in valid_fp:
                if 100.0 - rate >= threshold_fp and not self.ejected[h]:
                    self._eject(now, h, kind)


# ----------------------------------------------------------------------------- linkerd

OPEN, SHUT, PROBATION = 0, 1, 2
"""Linkerd endpoint states (its gate): open; shut; on probation (limited by its semaphore of permits)."""


class LinkerdFailureAccrual(OutlierDetector):
    """``ConsecutiveFailures`` per endpoint (see the module doc for the rules and the source).

    Penalties are kept in integer nanoseconds (tokio ``Duration``), so doubling and the cap
    are exact; ``now`` arguments are seconds.
    """

    needs_pick = True

    def __init__(self, cfg: OutlierConfig, hosts: int, rng: Uniform | None = None,
                 listener: Listener | None = None, wake: Callable[[float], None] | None = None) -> None:
        super().__init__(cfg, hosts, rng, listener, wake)
        self.state = [OPEN] * hosts
        self.failures = [0] * hosts
        self._min = to_nanos(cfg.min_penalty)
        self._max = to_nanos(cfg.max_penalty)
        self.backoff = [self._min] * hosts
        """The current (or last) penalty of each endpoint, ns."""
        self.until = [0] * hosts
        """When each shut endpoint goes on probation, ns."""
        self.permits = [0] * hosts
        """Each endpoint's probation semaphore: one permit is added per probation and a pick takes
        one; a permit no probe took (a straggler's response decided first) stays for the next."""

    def _shut(self, now: float, host: int, backoff: int, reason: str) -> None:
        self.state[host] = SHUT
        self.backoff[host] = backoff
        self.until[host] = to_nanos(now) + backoff
        self.available[host] = False
        first = not self.ejected[host]
        self.ejected[host] = True
        if self.wake is not None:
            self.wake(self.until[host] / NANOS)
        self._emit(now, host, "ejected" if first else "probe_failed", reason)

    def on_result(self, now: float, host: int, outcome: str) -> None:
        """One response: ``open`` counts failures, ``closed`` ignores them, ``probation`` decides."""
        if outcome not in _HTTP_CODE:
            return
        self.put(now, host, outcome is OK or outcome is DEGRADED)

    def put(self, now: float, host: int, success: bool) -> None:
        """One classified response from ``host`` (``Class::is_success``)."""
        state = self.state[host]
        if state == OPEN:
            if success:
                self.failures[host] = 0
                return
            self.failures[host] += 1
            if self.failures[host] == self.cfg.consecutive_failures:
                self._shut(now, host, self._min, "consecutive_failures")
        elif state == SHUT:
            return
        elif success:  # the first response after probation began
            self.state[host] = OPEN
            self.failures[host] = 0
            self.available[host] = True
            self.ejected[host] = False
            self._emit(now, host, "unejected", "probe_succeeded")
        else:
            self._shut(now, host, min(self._max, self.backoff[host] * 2), "probe_failed")

    def on_timer(self, now: float) -> None:
        """Every shut endpoint whose penalty has elapsed goes on probation (one permit)."""
        t = to_nanos(now)
        for h, state in enumerate(self.state):
            if state == SHUT and self.until[h] <= t:
                self.state[h] = PROBATION
                self.permits[h] += 1
                self.available[h] = True
                self._emit(now, h, "probation", "penalty_elapsed")

    def on_pick(self, host: int) -> None:
        """A probe takes a permit: with none left the endpoint is not ready until a response."""
        if self.state[host] == PROBATION and self.permits[host] > 0:
            self.permits[host] -= 1
            if self.permits[host] == 0:
                self.available[host] = False
                if self.on_change is not None:
                    self.on_change()
