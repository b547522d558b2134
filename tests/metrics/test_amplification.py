"""Retry amplification with known retry counts."""

from __future__ import annotations

import numpy as np
import pytest

from simres.metrics import (
    attempts_of,
    retry_amplification,
    tries_per_request,
    tries_per_success,
    useful_tries,
    work_per_success,
)


def _retry_tree(make_attempts):
    """10 root requests; api gets 25 tries for 10 calls; db gets 30 tries for 20 calls.

    Each request i makes 1 call to api with tries 1..k_i (k = 3,3,3,3,3,2,2,2,2,2: 25).
    It also makes 2 calls to db, of which 10 needed one retry (30 tries, 20 calls).
    Request 0 also has one extra api try that was rejected locally (breaker_open, unsent).
    """
    rid, attempt, service, sent, depth = [], [], [], [], []
    for i in range(10):
        for k in range(1, (3 if i < 5 else 2) + 1):
            rid.append(i), attempt.append(k), service.append("api"), sent.append(True)
            depth.append(0)
        for call in range(2):
            tries = 2 if call == 0 else 1
            for k in range(1, tries + 1):
                rid.append(i), attempt.append(k), service.append("db"), sent.append(True)
                depth.append(1)
    rid.append(0), attempt.append(4), service.append("api"), sent.append(False), depth.append(0)
    return make_attempts(request_id=rid, attempt=attempt, service=service, sent=sent,
                         depth=depth)


def test_amplification_per_service(make_attempts):
    amp = retry_amplification(_retry_tree(make_attempts))

    assert amp.at["api", "calls"] == 10
    assert amp.at["api", "tries"] == 25
    assert amp.at["api", "amplification"] == pytest.approx(2.5)
    assert amp.at["db", "amplification"] == pytest.approx(30 / 20)


def test_first_try_rejected_locally_gives_amplification_below_one(make_attempts):
    att = make_attempts(request_id=[0, 1, 2, 3], sent=[True, True, True, False])
    assert retry_amplification(att).at["api", "amplification"] == pytest.approx(0.75)


def test_tries_per_request_and_work_per_success(make_attempts, make_requests):
    att = _retry_tree(make_attempts)
    req = make_requests(np.arange(10.0), outcome=["ok"] * 8 + ["error"] * 2)

    assert tries_per_request(req, att) == pytest.approx(25 / 10)
    assert tries_per_success(req, att) == pytest.approx((25 + 30) / 8)


def test_work_per_success_counts_exactly_the_tries_on_successful_paths(make_attempts, make_requests):
    # request 0: client try 0 times out, its handler's db try 4 succeeded (wasted work);
    # the retry, try 1, succeeds after its handler retried db (try 2 error, try 3 ok).
    # request 1: client try 5 fails although its db try 6 succeeded.
    att = make_attempts(
        request_id=[0, 0, 0, 0, 0, 1, 1], try_id=[0, 1, 2, 3, 4, 5, 6],
        parent_try=[-1, -1, 1, 1, 0, -1, 5], depth=[0, 0, 1, 1, 1, 0, 1],
        attempt=[1, 2, 1, 2, 1, 1, 1], service=["api", "api", "db", "db", "db", "api", "db"],
        outcome=["timeout", "ok", "error", "ok", "ok", "error", "ok"])
    req = make_requests([0.0, 1.0], outcome=["ok", "error"])

    assert useful_tries(req, att).tolist() == [False, True, False, True, False, False, False]
    assert work_per_success(req, att) == pytest.approx(7 / 2)
    assert tries_per_success(req, att) == pytest.approx(7 / 1)


def test_work_per_success_is_one_when_nothing_is_wasted(make_attempts, make_requests):
    att = make_attempts(request_id=[0, 0, 1, 1], try_id=[0, 1, 2, 3], parent_try=[-1, 0, -1, 2],
                        depth=[0, 1, 0, 1], service=["api", "db", "api", "db"])
    assert work_per_success(make_requests([0.0, 1.0]), att) == pytest.approx(1.0)


def test_work_per_success_is_nan_without_success(make_attempts, make_requests):
    req = make_requests([0.0], outcome="error")
    assert np.isnan(work_per_success(req, make_attempts(request_id=[0])))


def test_attempts_of_selects_by_root_request(make_attempts, make_requests):
    att = _retry_tree(make_attempts)
    req = make_requests([5.0, 6.0], request_id=[5, 6])

    own = attempts_of(att, req)

    assert set(own["request_id"]) == {5, 6}
    assert retry_amplification(own).at["api", "amplification"] == pytest.approx(2.0)
    assert tries_per_request(req, att) == pytest.approx(2.0)
