"""The autoscaler's decisions with a manual clock: HPA arithmetic, tolerance, stabilisation
windows, bounds, and step scaling."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from simres.policies.autoscale import AutoscaleConfig, Autoscaler


def hpa(**kw: Any) -> Autoscaler:
    base: dict[str, Any] = {"target": 0.5, "scale_down_stabilization": 0, "min": 1, "max": 20}
    return AutoscaleConfig(**{**base, **kw}).build()


def test_desired_is_ceil_of_ready_times_ratio() -> None:
    a = hpa()
    assert a.decide(0, 4, 4, 0.9) == 8  # ceil(4 * 0.9 / 0.5) = ceil(7.2)
    a = hpa()
    assert a.decide(0, 3, 3, 0.8) == 5  # ceil(4.8)
    a = hpa()
    assert a.decide(0, 10, 10, 0.12) == 3  # ceil(2.4)


def test_the_ratio_uses_the_ready_instances() -> None:
    # Desired 6 of which 2 are ready at 20 % of a 50 % target: ceil(2 * 0.4) = 1.
    assert hpa().decide(0, 6, 2, 0.2) == 1


def test_starting_instances_count_as_idle_when_scaling_up() -> None:
    # 2 ready at 100 % of 50 %, 4 starting: over all 6 the ratio is 2/3 < 1, no change.
    assert hpa().decide(0, 6, 2, 1.0) == 6
    # 2 ready at 150 %, 1 starting: ratio 2 * 1.5 / (3 * 0.5) = 2, so ceil(3 * 2) = 6.
    assert hpa().decide(0, 3, 2, 1.5) == 6
    # within tolerance over all of them: 2 * 0.8 / (3 * 0.5) = 1.067
    assert hpa(tolerance=0.1).decide(0, 3, 2, 0.8) == 3


def test_within_tolerance_nothing_changes() -> None:
    a = hpa(tolerance=0.1)
    assert a.decide(0, 4, 4, 0.54) == 4  # ratio 1.08
    assert a.decide(15, 4, 4, 0.46) == 4  # ratio 0.92
    assert a.decide(30, 4, 4, 0.56) == 5  # ratio 1.12: ceil(4.48)
    assert hpa(tolerance=0.0).decide(0, 4, 4, 0.51) == 5


def test_scale_down_takes_the_highest_recommendation_of_the_window() -> None:
    a = hpa(scale_down_stabilization=60)
    assert a.decide(0, 10, 10, 0.5) == 10  # recommendation 10
    assert a.decide(15, 10, 10, 0.3) == 10  # 6, but 10 is in the window
    assert a.decide(30, 10, 10, 0.4) == 10  # 8
    assert a.decide(61, 10, 10, 0.35) == 8  # 0 s has left: highest of 6, 8, 7
    assert a.decide(76, 8, 8, 0.1) == 8  # highest of 8 (30 s), 7 (61 s), 2
    assert a.decide(91, 8, 8, 0.1) == 7  # 30 s has left: highest of 7 (61 s), 2, 2
    assert a.decide(200, 7, 7, 0.1) == 2


def test_scale_up_takes_the_lowest_recommendation_of_the_window() -> None:
    a = hpa(scale_up_stabilization=30)
    assert a.decide(0, 2, 2, 0.5) == 2
    assert a.decide(15, 2, 2, 1.0) == 2  # 4, but 2 is in the window
    assert a.decide(31, 2, 2, 1.5) == 4  # lowest of 4 (15 s) and 6 (31 s)
    assert a.decide(46, 4, 4, 1.5) == 6  # lowest of 6 and 12
    # with no window the new recommendation applies at once
    assert hpa().decide(0, 2, 2, 1.5) == 6


def test_bounds() -> None:
    assert hpa(max=5).decide(0, 4, 4, 2.0) == 5
    assert hpa(min=3).decide(0, 4, 4, 0.01) == 3
    with pytest.raises(ValidationError):
        AutoscaleConfig(min=5, max=4)


def test_step_scaling_on_queue_length() -> None:
    cfg = AutoscaleConfig(kind="step", steps=[{"lower": 0, "change": -1}, {"lower": 5, "change": 0},
                                              {"lower": 20, "change": 2}, {"lower": 100, "change": 4}],
                          scale_down_stabilization=0, min=1, max=10)
    a = cfg.build()
    assert a.decide(0, 3, 3, 30.0) == 5
    assert a.decide(10, 5, 5, 500.0) == 9
    assert a.decide(20, 9, 9, 7.0) == 9
    assert a.decide(30, 9, 9, 1.0) == 8
    assert a.decide(40, 10, 10, 1000.0) == 10  # at max
    with pytest.raises(ValidationError):
        AutoscaleConfig(kind="step")
    with pytest.raises(ValidationError):
        AutoscaleConfig(steps=[{"lower": 0, "change": 1}])


def test_old_recommendations_are_forgotten() -> None:
    a = hpa(scale_down_stabilization=30)
    for t in range(0, 300, 15):
        a.decide(float(t), 4, 4, 0.5)
    assert all(t >= 285 - 30 for t, _ in a.recommendations)
