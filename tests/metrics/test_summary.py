"""The one-row run summary on a hand-built run with known values, and on a large one."""

from __future__ import annotations

import numpy as np
import pytest

from simres.metrics import summarize
from simres.metrics._common import MetricsError

WARMUP, DURATION = 2.0, 10.0


@pytest.fixture
def small_run(make_requests, make_attempts, make_timeline, make_events):
    """20 requests every 0.5 s; the 4 in the warm-up [0, 2) all fail with 5 tries each.

    Measured [2, 10): 16 requests: 2 timeouts (t=3, 3.5; 3 tries each), 1 shed (t=8,
    priority low), 1 unfinished (t=9.5), 12 ok with latency 0.1 (each made one db call).
    """
    start = np.arange(0.0, 10.0, 0.5)
    outcome = np.array(["error"] * 4 + ["ok"] * 16, dtype=object)
    outcome[start == 3.0] = outcome[start == 3.5] = "timeout"
    outcome[start == 8.0] = "shed"
    outcome[start == 9.5] = "unfinished"
    latency = np.where(outcome == "timeout", 2.0, 0.1)
    priority = np.where(start == 8.0, "low", "high").astype(object)
    requests = make_requests(start, latency=latency, outcome=outcome, priority=priority)

    rid, t, attempt, service, depth = [], [], [], [], []
    for i, (s, o) in enumerate(zip(start, outcome, strict=True)):
        tries = 5 if s < WARMUP else 3 if o == "timeout" else 1
        for k in range(tries):
            rid.append(i), t.append(s if s < WARMUP else s + k), attempt.append(k + 1)
            service.append("api"), depth.append(0)
        if o == "ok":
            rid.append(i), t.append(s), attempt.append(1), service.append("db"), depth.append(1)
    attempts = make_attempts(request_id=rid, start=t, attempt=attempt, service=service,
                             depth=depth)
    steps = np.arange(10.0)
    timeline = make_timeline(time=steps, busy=1.0, workers=2.0, queue_len=steps)
    events = make_events([
        (4.0, "fault_start", "spike", "load_spike", np.nan),
        (5.0, "breaker", "web->api", "closed->open: failures", 1.0),
        (6.0, "fault_end", "spike", "load_spike", np.nan),
        (7.0, "breaker", "web->api", "open->closed: reset", 0.0),
    ])
    return requests, attempts, timeline, events


def test_headline_metrics(small_run):
    s = summarize(*small_run, warmup=WARMUP, duration=DURATION)

    assert s["count"] == 16 and s["ok"] == 12
    assert s["success_rate"] == pytest.approx(12 / 16)
    assert s["goodput"] == pytest.approx(12 / 8)
    assert s["throughput"] == pytest.approx(15 / 8)
    assert s["latency_p50"] == pytest.approx(0.1) and s["latency_max"] == pytest.approx(0.1)
    assert s["latency_all_max"] == pytest.approx(2.0)
    assert s["error_rate"] == 0.0  # every error was in the warm-up
    assert s["timeout_rate"] == pytest.approx(2 / 16)
    assert s["shed_rate"] == pytest.approx(1 / 16)
    assert s["unfinished_rate"] == pytest.approx(1 / 16)
    assert "slo_attainment" not in s


def test_per_group_keys(small_run):
    s = summarize(*small_run, warmup=WARMUP, duration=DURATION)

    assert s["success_rate:priority=low"] == 0.0
    assert s["shed_rate:priority=low"] == 1.0
    assert s["success_rate:priority=high"] == pytest.approx(12 / 15)
    assert np.isnan(s["success_rate:priority=critical"])  # no critical traffic
    assert s["success_rate:client=web"] == pytest.approx(12 / 16)
    assert s["latency_p99:client=web"] == pytest.approx(0.1)


def test_amplification_excludes_warmup_tries(small_run):
    s = summarize(*small_run, warmup=WARMUP, duration=DURATION)

    assert s["amplification:api"] == pytest.approx(20 / 16)
    assert s["amplification:db"] == pytest.approx(1.0)
    assert s["tries_per_request"] == pytest.approx(20 / 16)
    assert s["tries_per_success"] == pytest.approx((20 + 12) / 12)
    # the hand-built db tries name no parent try, so only the 12 successful client tries
    # are on a successful path
    assert s["work_per_success"] == pytest.approx((20 + 12) / 12)
    assert s["tries_per_s:api"] == pytest.approx(20 / 8)
    assert s["tries_per_s:db"] == pytest.approx(12 / 8)


def test_service_load_breakers_and_faults(small_run):
    s = summarize(*small_run, warmup=WARMUP, duration=DURATION, slo=0.5)

    assert s["utilization:api"] == pytest.approx(0.5)
    assert s["queue_len:api"] == pytest.approx(5.5)  # mean of 2..9
    assert s["breaker_open_share:web->api"] == pytest.approx(2 / 8)
    assert s["breaker_transitions:web->api"] == 2
    # 4 post-fault windows of 1 s cannot hold a 5 s recovery: not recovered
    assert s["recovered:spike"] == 0.0 and np.isnan(s["recovery_time:spike"])
    assert np.isfinite(s["herd_peak_to_mean:api@spike"])
    assert "herd_synchrony:db@spike" in s
    assert s["slo_attainment"] == pytest.approx(12 / 16)


def test_all_values_are_floats_and_names_are_stable(small_run):
    s = summarize(*small_run, warmup=WARMUP, duration=DURATION)
    assert all(isinstance(v, float) for v in s.values())
    for key in ("count", "ok", "success_rate", "goodput", "throughput", "latency_mean",
                "latency_p50", "latency_p90", "latency_p99", "latency_p999", "latency_max",
                "latency_all_mean", "latency_all_p50", "latency_all_p90", "latency_all_p99",
                "latency_all_p999", "tries_per_request", "error_rate", "timeout_rate",
                "shed_rate", "rejected_rate", "throttled_rate", "breaker_open_rate",
                "utilization:api", "queue_len:api", "amplification:db", "tries_per_s:db",
                "peak_to_mean:api", "breaker_open_share:web->api",
                "breaker_transitions:web->api", "recovered:spike", "recovery_time:spike",
                "herd_peak_to_mean:api@spike", "herd_synchrony:api@spike"):
        assert key in s, key


def test_empty_measurement_gives_nan_not_zero(small_run):
    requests, attempts, timeline, events = small_run
    s = summarize(requests.iloc[:0], attempts.iloc[:0], timeline, events.iloc[:0],
                  warmup=WARMUP, duration=DURATION)
    assert s["count"] == 0 and s["goodput"] == 0.0
    assert np.isnan(s["success_rate"]) and np.isnan(s["latency_p99"])
    assert np.isnan(s["tries_per_request"])


def test_bad_warmup_is_rejected(small_run):
    with pytest.raises(MetricsError, match="warmup"):
        summarize(*small_run, warmup=10.0, duration=10.0)


def test_summarize_200k_requests_is_vectorised(make_synthetic_run):
    # Would take minutes with per-row Python loops; no timing assert (CI machines vary).
    run = make_synthetic_run(200_000)
    s = summarize(run["requests"], run["attempts"], run["timeline"], run["events"],
                  warmup=10.0, duration=100.0, slo=0.2)
    assert s["count"] == pytest.approx(180_000, rel=0.01)
    assert s["success_rate"] == pytest.approx(0.95, abs=0.005)
    assert s["latency_p50"] == pytest.approx(0.05 * np.log(2), rel=0.05)
    assert s["amplification:api"] == pytest.approx(1 + 2 * 0.05, abs=0.01)
    assert s["breaker_open_share:web->api"] == pytest.approx(5 / (50 * 90))
    assert s["recovered:spike"] == 1.0


def test_breaker_keys_read_zero_when_no_breaker_moved(small_run):
    requests, attempts, timeline, events = small_run
    quiet = events[events["kind"] != "breaker"]
    s = summarize(requests, attempts, timeline, quiet, warmup=WARMUP, duration=DURATION)
    assert s["breaker_open_share:web->api"] == 0.0
    assert s["breaker_transitions:web->api"] == 0.0
    assert s["breaker_open_share:web->db"] == 0.0  # every caller->callee pair has the keys
