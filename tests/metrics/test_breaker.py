"""Breaker state time shares and transition counts from known transition sequences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simres.metrics import breaker_link_shares, breaker_time_shares, breaker_transitions
from simres.metrics._common import MetricsError


@pytest.fixture
def sequence(make_events):
    """web->api: closed 0-10, open 10-15, half_open 15-16, closed 16-20; plus a fault row."""
    return make_events([
        (10.0, "breaker", "web->api", "closed->open: failure rate 0.6 >= 0.5", 1.0),
        (12.0, "fault_end", "db_down", "crash", np.nan),
        (15.0, "breaker", "web->api", "open->half_open: wait elapsed", 2.0),
        (16.0, "breaker", "web->api", "half_open->closed: probes ok", 0.0),
    ])


def test_time_shares_over_the_whole_run(sequence):
    shares = breaker_time_shares(sequence, t_end=20.0)

    row = shares.loc["web->api"]
    assert row["closed"] == pytest.approx(14 / 20)
    assert row["open"] == pytest.approx(5 / 20)
    assert row["half_open"] == pytest.approx(1 / 20)
    assert row["transitions"] == 3 and row["opens"] == 1


def test_time_shares_after_warmup(sequence):
    row = breaker_time_shares(sequence, t0=5.0, t_end=20.0).loc["web->api"]
    assert (row["closed"], row["open"], row["half_open"]) == pytest.approx((9 / 15, 5 / 15, 1 / 15))


def test_time_shares_window_inside_the_open_state(sequence):
    row = breaker_time_shares(sequence, t0=11.0, t_end=14.0).loc["web->api"]
    assert row["open"] == pytest.approx(1.0)
    assert row["transitions"] == 0


def test_unsorted_events_and_several_breakers(make_events):
    ev = make_events([
        (8.0, "breaker", "b", "open->closed: x", 0.0),
        (2.0, "breaker", "a", "closed->open: x", 1.0),
        (4.0, "breaker", "b", "closed->open: x", 1.0),
    ])
    shares = breaker_time_shares(ev, t_end=10.0)
    assert shares.at["a", "open"] == pytest.approx(0.8)
    assert shares.at["b", "open"] == pytest.approx(0.4)
    assert shares[["closed", "open", "half_open"]].sum(axis=1).tolist() == pytest.approx([1, 1])


def test_transition_counts(make_events):
    ev = make_events([
        (1.0, "breaker", "web->api", "closed->open: a", 1.0),
        (2.0, "breaker", "web->api", "open->half_open: b", 2.0),
        (3.0, "breaker", "web->api", "half_open->open: probe failed", 1.0),
        (4.0, "breaker", "web->api", "open->half_open: b", 2.0),
        (5.0, "breaker", "web->api", "half_open->closed: ok", 0.0),
    ])
    counts = breaker_transitions(ev, t_end=10.0)
    table = {(r.from_state, r.to_state): r.count for r in counts.itertuples()}
    assert table == {("open", "half_open"): 2, ("closed", "open"): 1, ("half_open", "open"): 1,
                     ("half_open", "closed"): 1}


def test_link_shares_count_quiet_members_as_closed(make_events):
    # one of four per-member breakers is open half of the time; the others never moved
    ev = make_events([(5.0, "breaker", "web->api#2", "closed->open: x", 1.0)])

    seen_only = breaker_link_shares(ev, t_end=10.0)
    all_members = breaker_link_shares(ev, t_end=10.0, members={"web->api": 4})

    assert seen_only.at["web->api", "open"] == pytest.approx(0.5)
    assert all_members.at["web->api", "open"] == pytest.approx(0.125)
    assert all_members.at["web->api", "breakers"] == 4
    assert all_members.at["web->api", "transitions"] == 1


def test_bad_state_code_is_rejected(make_events):
    ev = make_events([(1.0, "breaker", "x->y", "closed->open: a", 7.0)])
    with pytest.raises(MetricsError, match="breaker state"):
        breaker_time_shares(ev, t_end=10.0)


def test_no_breaker_events(make_events):
    assert len(breaker_time_shares(make_events([]), t_end=1.0)) == 0
    assert len(breaker_link_shares(make_events([]), t_end=1.0)) == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 20, allow_nan=False), st.sampled_from([0.0, 1.0, 2.0]),
                          st.sampled_from(["a", "b#1", "b#2"])), max_size=12),
       st.floats(0, 10, allow_nan=False), st.floats(0.5, 15, allow_nan=False))
def test_shares_always_sum_to_one(rows, t0, length):
    ev = pd.DataFrame([(t, "breaker", comp, "x->y: z", v) for t, v, comp in rows],
                      columns=["time", "kind", "component", "detail", "value"])
    shares = breaker_time_shares(ev, t0=t0, t_end=t0 + length)
    totals = shares[["closed", "open", "half_open"]].sum(axis=1).to_numpy()
    np.testing.assert_allclose(totals, 1.0, rtol=1e-9)
    assert ((shares[["closed", "open", "half_open"]] >= 0).all()).all()
