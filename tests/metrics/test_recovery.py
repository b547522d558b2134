"""Recovery after a fault: known recovery times, metastable runs and edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simres.metrics import fault_intervals, recovery

RATE = 20.0  # requests per second
END = 60.0


def _run(make_requests, *, bad_until: float, fault=(20.0, 30.0), slow_until: float = 0.0,
         gap: tuple[float, float] | None = None, rate: float = RATE):
    """Requests at ``rate``/s over [0, END): failing in [fault start, bad_until), then slow
    (successful, latency 0.5) until ``slow_until``, otherwise ok at latency 0.1."""
    start = np.arange(0.0, END, 1 / rate) + 0.001
    if gap is not None:
        start = start[(start < gap[0]) | (start >= gap[1])]
    bad = (start >= fault[0]) & (start < bad_until)
    slow = ~bad & (start >= fault[0]) & (start < slow_until)
    outcome = np.where(bad, "timeout", "ok").astype(object)
    latency = np.where(bad, 1.0, np.where(slow, 0.5, 0.1))
    return make_requests(start, latency=latency, outcome=outcome)


def _fault(make_events, start=20.0, end=30.0, name="db_down"):
    rows = [(start, "fault_start", name, "crash", np.nan)]
    if end is not None:
        rows.append((end, "fault_end", name, "crash", np.nan))
    return make_events(rows)


def test_recovers_three_seconds_after_fault_end(make_requests, make_events):
    rec = recovery(_run(make_requests, bad_until=33.0), _fault(make_events), t_end=END,
                   warmup=5.0)

    row = rec.iloc[0]
    assert row["fault"] == "db_down" and row["kind"] == "crash"
    assert row["status"] == "recovered"
    assert bool(row["recovered"]) is True
    assert row["recovery_time"] == pytest.approx(3.0)
    assert row["baseline_success_rate"] == pytest.approx(1.0)
    assert row["baseline_p99"] == pytest.approx(0.1)


def test_recovery_mid_window_reported_at_next_boundary(make_requests, make_events):
    rec = recovery(_run(make_requests, bad_until=33.5), _fault(make_events), t_end=END,
                   warmup=5.0)
    assert rec.at[0, "recovery_time"] == pytest.approx(4.0)


def test_immediate_recovery_is_zero(make_requests, make_events):
    rec = recovery(_run(make_requests, bad_until=30.0), _fault(make_events), t_end=END,
                   warmup=5.0)
    assert rec.at[0, "recovery_time"] == 0.0


def test_latency_must_come_back_too(make_requests, make_events):
    # successes return at 32 but p99 stays at 0.5 (> 1.5 x 0.1) until 36
    rec = recovery(_run(make_requests, bad_until=32.0, slow_until=36.0), _fault(make_events),
                   t_end=END, warmup=5.0)
    assert rec.at[0, "recovery_time"] == pytest.approx(6.0)
    looser = recovery(_run(make_requests, bad_until=32.0, slow_until=36.0), _fault(make_events),
                      t_end=END, warmup=5.0, p99_factor=6.0)
    assert looser.at[0, "recovery_time"] == pytest.approx(2.0)


def test_never_recovers_is_metastable(make_requests, make_events):
    rec = recovery(_run(make_requests, bad_until=END), _fault(make_events), t_end=END, warmup=5.0)

    assert rec.at[0, "status"] == "not_recovered"
    assert bool(rec.at[0, "recovered"]) is False
    assert np.isnan(rec.at[0, "recovery_time"])


def test_recovery_must_hold(make_requests, make_events):
    # good for 2 s at [31, 33), then bad again until 40
    req = _run(make_requests, bad_until=40.0)
    blip = (req["start"] >= 31.0) & (req["start"] < 33.0)
    req.loc[blip, "outcome"] = "ok"
    req.loc[blip, "latency"] = 0.1
    rec = recovery(req, _fault(make_events), t_end=END, warmup=5.0, hold=5.0)
    assert rec.at[0, "recovery_time"] == pytest.approx(10.0)
    short_hold = recovery(req, _fault(make_events), t_end=END, warmup=5.0, hold=1.0)
    assert short_hold.at[0, "recovery_time"] == pytest.approx(1.0)


def test_recovery_too_close_to_the_end_is_not_confirmed(make_requests, make_events):
    rec = recovery(_run(make_requests, bad_until=57.0), _fault(make_events), t_end=END,
                   warmup=5.0, hold=5.0)
    assert rec.at[0, "status"] == "not_recovered"


def test_small_drop_within_tolerance_counts_as_recovered(make_requests, make_events):
    # after the fault 1 request in 100 fails (success 0.99 >= 1.0 - 0.02)
    req = _run(make_requests, bad_until=30.0)
    after = np.flatnonzero(req["start"].to_numpy() >= 30.0)
    req.loc[after[::100], "outcome"] = "error"
    rec = recovery(req, _fault(make_events), t_end=END, warmup=5.0, window=5.0)
    assert rec.at[0, "recovery_time"] == 0.0
    strict = recovery(req, _fault(make_events), t_end=END, warmup=5.0, window=5.0,
                      success_tolerance=0.0)
    assert strict.at[0, "status"] == "not_recovered"


def test_empty_windows_fail_when_baseline_is_dense(make_requests, make_events):
    # clients stuck (no requests at all) in [30, 38), fine afterwards
    req = _run(make_requests, bad_until=30.0, gap=(30.0, 38.0))
    rec = recovery(req, _fault(make_events), t_end=END, warmup=5.0)
    assert rec.at[0, "recovery_time"] == pytest.approx(8.0)


def test_empty_windows_pass_when_baseline_is_sparse(make_requests, make_events):
    # 0.5 requests/s: every other 1 s window is empty even in the baseline
    req = _run(make_requests, bad_until=30.0, rate=0.5)
    rec = recovery(req, _fault(make_events), t_end=END, warmup=5.0)
    assert rec.at[0, "status"] == "recovered"
    assert rec.at[0, "recovery_time"] == 0.0


def test_no_baseline_when_fault_starts_before_warmup_ends(make_requests, make_events):
    rec = recovery(_run(make_requests, bad_until=33.0, fault=(2.0, 30.0)),
                   _fault(make_events, start=2.0), t_end=END, warmup=5.0)
    assert rec.at[0, "status"] == "no_baseline"
    assert pd.isna(rec.at[0, "recovered"]) and np.isnan(rec.at[0, "recovery_time"])


def test_fault_that_outlasts_the_run(make_requests, make_events):
    req = _run(make_requests, bad_until=END)
    no_end = recovery(req, _fault(make_events, end=None), t_end=END, warmup=5.0)
    late_end = recovery(req, _fault(make_events, end=70.0), t_end=END, warmup=5.0)
    for rec in (no_end, late_end):
        assert rec.at[0, "status"] == "not_ended"
        assert pd.isna(rec.at[0, "recovered"])
        assert rec.at[0, "baseline_success_rate"] == pytest.approx(1.0)


def test_second_fault_baseline_skips_the_first(make_requests, make_events):
    # fault A [10, 15) fails and recovers at 15; fault B [40, 45) recovers 2 s after it ends
    start = np.arange(0.0, END, 0.05) + 0.001
    bad = ((start >= 10) & (start < 15)) | ((start >= 40) & (start < 47))
    req = make_requests(start, latency=np.where(bad, 1.0, 0.1),
                        outcome=np.where(bad, "timeout", "ok").astype(object))
    ev = make_events([(10.0, "fault_start", "a", "x", np.nan),
                      (15.0, "fault_end", "a", "x", np.nan),
                      (40.0, "fault_start", "b", "y", np.nan),
                      (45.0, "fault_end", "b", "y", np.nan)])

    rec = recovery(req, ev, t_end=END, warmup=5.0).set_index("fault")

    assert rec.at["b", "baseline_success_rate"] == pytest.approx(1.0)
    assert rec.at["a", "recovery_time"] == 0.0
    assert rec.at["b", "recovery_time"] == pytest.approx(2.0)


def test_fault_intervals_pairing(make_events):
    ev = make_events([
        (5.0, "fault_start", "spike", "load_spike", np.nan),
        (1.0, "fault_start", "part", "partition", np.nan),
        (3.0, "fault_end", "part", "partition", np.nan),
        (7.0, "fault_end", "spike", "load_spike", np.nan),
        (8.0, "fault_start", "part", "partition", np.nan),
        (9.0, "fault_end", "ghost", "crash", np.nan),
        (4.0, "breaker", "web->api", "closed->open: x", 1.0),
    ])

    faults = fault_intervals(ev)

    assert faults["fault"].tolist() == ["part#1", "spike", "part#2"]
    assert faults["kind"].tolist() == ["partition", "load_spike", "partition"]
    np.testing.assert_allclose(faults["end"], [3.0, 7.0, np.nan])


def test_no_faults_gives_empty_frame(make_requests, make_events):
    rec = recovery(make_requests([1.0]), make_events([]), t_end=10.0)
    assert len(rec) == 0 and "recovery_time" in rec.columns


def test_one_noisy_window_does_not_block_recovery(make_requests, make_events):
    # After the fault every request succeeds at 0.1 s, except one slow one: its window's own
    # p99 is ~0.83 (8 x baseline, 20 requests) but the hold period's pooled p99 is ~0.11.
    req = _run(make_requests, bad_until=30.0)
    idx = req.index[(req["start"] >= 31.0) & (req["start"] < 32.0)][:1]
    req.loc[idx, "latency"] = 1.0
    rec = recovery(req, _fault(make_events), t_end=END, warmup=5.0)
    assert rec.at[0, "recovery_time"] == 0.0


def test_a_sustained_slowdown_is_not_recovered(make_requests, make_events):
    # successes come back at once, but at 5 x the baseline latency until the end
    rec = recovery(_run(make_requests, bad_until=30.0, slow_until=END), _fault(make_events),
                   t_end=END, warmup=5.0)
    assert bool(rec.at[0, "recovered"]) is False
    assert rec.at[0, "status"] == "not_recovered"
