"""Outlier ejection, rule by rule, on a manual clock (the pure detector; no simulation)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from simres.outcomes import BREAKER_OPEN, CONNECTION, ERROR, OK, REJECTED, TIMEOUT
from simres.policies.outlier import EnvoyOutlierDetector, LinkerdFailureAccrual, OutlierConfig


def envoy(hosts: int = 10, **opts: Any) -> tuple[EnvoyOutlierDetector, list[tuple[float, int, str, str]]]:
    log: list[tuple[float, int, str, str]] = []
    det = OutlierConfig(preset="envoy", **opts).build(hosts, rng=lambda: 0.5, jitter_rng=lambda: 0.5,
                                                      listener=lambda *e: log.append(e))
    assert isinstance(det, EnvoyOutlierDetector)
    return det, log


def test_five_consecutive_5xx_eject_and_a_success_resets_the_count() -> None:
    det, log = envoy()
    for t in range(4):
        det.on_result(t, 2, ERROR)
    det.on_result(4, 2, OK)
    for t in range(5, 9):
        det.on_result(t, 2, ERROR)
    assert not det.ejected[2]
    det.on_result(9, 2, ERROR)
    assert det.ejected[2] and log == [(9, 2, "ejected", "consecutive_5xx")]
    assert 2 not in (det.candidates() or [])


def test_locally_refused_tries_are_not_reported() -> None:
    det, _ = envoy()
    for t in range(10):
        det.on_result(t, 1, BREAKER_OPEN)
    assert not det.ejected[1] and det.monitors[1].ext[1] == 0


def test_gateway_failures_are_detected_but_not_enforced_by_default() -> None:
    # A run of 503s is a gateway failure (consecutive_5xx is set out of reach here): detected, enforced 0 %.
    det, _ = envoy(consecutive_gateway_failure=2, consecutive_5xx=100)
    for t in range(5):
        det.on_result(t, 0, REJECTED)
    assert not det.ejected[0] and det.not_enforced >= 1
    det2, log2 = envoy(consecutive_gateway_failure=2, consecutive_5xx=100, enforcing_consecutive_gateway_failure=100)
    det2.on_result(0, 0, TIMEOUT)
    det2.on_result(1, 0, CONNECTION)
    assert log2 == [(1, 0, "ejected", "consecutive_gateway_failure")]


def test_max_ejection_percent_counts_the_host_to_eject() -> None:
    # Envoy at 00c7146d: 100 x (ejected + 1) / hosts <= max_ejection_percent, so with the
    # default 10 % a cluster of fewer than 10 hosts ejects nothing...
    det, _ = envoy(hosts=4)
    for t in range(5):
        det.on_result(t, 0, ERROR)
    assert not det.ejected[0] and det.overflow == 1
    # ...unless always_eject_one_host; and 10 hosts allow exactly one.
    det, _ = envoy(hosts=4, always_eject_one_host=True)
    for t in range(5):
        det.on_result(t, 0, ERROR)
        det.on_result(t, 1, ERROR)
    assert det.ejected == [True, False, False, False]
    det, _ = envoy(hosts=10)
    for t in range(5):
        det.on_result(t, 0, ERROR)
        det.on_result(t, 1, ERROR)
    assert sum(det.ejected) == 1


def test_ejection_time_grows_with_each_ejection_and_decays_when_healthy() -> None:
    det, log = envoy()

    def eject(t: float) -> None:
        for k in range(5):
            det.on_result(t + k * 0.01, 3, ERROR)

    eject(1.0)
    assert det.ejection_time(3) == 30.0
    for tick in (10, 20, 30):
        det.on_timer(tick)
    assert det.ejected[3]
    det.on_timer(40)  # 40 - 1.04 >= 30: back at the first tick after 30 s
    assert not det.ejected[3] and log[-1] == (40, 3, "unejected", "ejection_time_elapsed")
    eject(41.0)
    assert det.ejection_time(3) == 60.0  # backoff 2
    for tick in range(50, 110, 10):
        det.on_timer(tick)
    assert det.ejected[3]
    det.on_timer(110)
    assert not det.ejected[3]  # 110 - 41.04 >= 60
    assert det.monitors[3].backoff == 2  # not lowered at the tick that unejects
    for tick in (120, 130):  # one per interval while healthy
        det.on_timer(tick)
    assert det.monitors[3].backoff == 0
    # the cap: backoff grows while backoff x base < max + base, and the time is min(base x backoff, max)
    det, _ = envoy(max_ejection_time=60.0)
    for i in range(5):
        for k in range(5):
            det.on_result(i * 1000 + k, 0, ERROR)
        det.monitors[0].last_ejection = 0
        det.on_timer(i * 1000 + 500)
    assert det.monitors[0].backoff == 3 and det.ejection_time(0) == 60.0


def test_success_rate_threshold_is_envoys_worked_example() -> None:
    det, _ = envoy()
    # outlier_detection_impl.cc: {50, 100, 100, 100, 100} -> mean 90, stdev 20, threshold 52
    assert det.success_rate_threshold([50, 100, 100, 100, 100]) == pytest.approx((90.0, 52.0))


def test_success_rate_rule_ejects_on_the_interval_after_the_volume() -> None:
    det, log = envoy()
    for k in range(100):  # 100 requests per host in the first interval; host 4 at 50 %
        for h in range(10):
            bad = h == 4 and k % 2 == 0 and k % 10 != 8  # never 5 in a row
            det.on_result(1 + k * 0.05, h, ERROR if bad else OK)
    assert not any(det.ejected)
    det.on_timer(10)  # the bucket of the interval just ended is read now
    assert log[-1] == (10, 4, "ejected", "success_rate")


def test_split_errors_count_timeouts_as_local_origin() -> None:
    det, log = envoy(split_external_local_origin_errors=True, consecutive_local_origin_failure=3)
    for t in range(3):
        det.on_result(t, 5, TIMEOUT)
    assert log == [(2, 5, "ejected", "consecutive_local_origin_failure")]
    assert det.monitors[5].c5xx == 0  # not a 5xx when split


def test_panic_threshold_picks_among_all() -> None:
    det, _ = envoy(hosts=2, max_ejection_percent=100)
    for t in range(5):
        det.on_result(t, 0, ERROR)
    assert det.ejected[0] and det.candidates() == [1]  # 50 % healthy is not under the 50 % threshold
    det, _ = envoy(hosts=2, max_ejection_percent=100, healthy_panic_threshold=60.0)
    for t in range(5):
        det.on_result(t, 0, ERROR)
    assert det.ejected[0] and det.candidates() is None  # panic: pick among all


def test_linkerd_penalty_doubles_to_the_cap_and_a_probe_success_reopens() -> None:
    log: list[tuple[float, int, str, str]] = []
    wakes: list[float] = []
    det = OutlierConfig(preset="linkerd", max_penalty=3.0).build(3, listener=lambda *e: log.append(e),
                                                                  wake=wakes.append)
    assert isinstance(det, LinkerdFailureAccrual)
    for t in range(7):
        det.on_result(t * 0.1, 1, ERROR)
    assert log[-1][2:] == ("ejected", "consecutive_failures") and wakes[-1] == pytest.approx(1.6)
    det.on_result(1.0, 1, OK)  # ignored while shut
    for penalty in (2.0, 3.0, 3.0):
        det.on_timer(wakes[-1])
        assert det.available[1] and log[-1][2] == "probation"
        det.on_pick(1)
        assert not det.available[1] and det.candidates() == [0, 2]
        t = wakes[-1] + 0.01
        det.on_result(t, 1, TIMEOUT)
        assert wakes[-1] == pytest.approx(t + penalty)
    det.on_timer(wakes[-1])
    det.on_pick(1)
    det.on_result(wakes[-1] + 0.01, 1, OK)
    assert log[-1][2:] == ("unejected", "probe_succeeded") and det.candidates() is None


@pytest.mark.parametrize(("opts", "message"), [
    ({"kind": "istio"}, "kind"),
    ({"max_ejection_percent": 120}, "max_ejection_percent"),
    ({"base_ejection_time": 30, "max_ejection_time": 10}, "max_ejection_time: must be >= base_ejection_time"),
    ({"min_penalty": 5, "max_penalty": 1}, "min_penalty"),
    ({"preset": "istio"}, "unknown outlier preset"),
    ({"consecutive_5xxx": 3}, "consecutive_5xxx"),
])
def test_bad_options_are_refused(opts: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OutlierConfig(**opts)
