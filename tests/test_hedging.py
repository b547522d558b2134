"""Hedged requests in simulation: the tail they cut, the load they cost, and the rules
(cancellation, gRPC throttling, fatal statuses, the deadline) the driver must keep."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from simres.errors import ScenarioError
from simres.experiments.runs import run
from simres.rng import replication_seeds
from simres.scenario.loading import load_scenario

SEEDS = replication_seeds(7, 3)
SLOW_MIX = {"kind": "mixture", "components": [
    {"weight": 0.95, "dist": {"kind": "lognormal", "median": 0.01, "p99": 0.03}},
    {"weight": 0.05, "dist": {"kind": "lognormal", "median": 0.15, "p99": 0.4}},
]}


def tail_scenario(hedge: dict[str, Any] | None, **client: Any) -> dict[str, Any]:
    """A service whose tries are slow 5 % of the time whatever the load (4 x 8 workers, ~25 %)."""
    web: dict[str, Any] = {"target": "search", "arrival": {"kind": "poisson", "rate": 400}, "timeout": 1.0}
    if hedge is not None:
        web["hedge"] = hedge
    web.update(client)
    return {
        "name": "hedge-test", "duration": 20, "warmup": 2, "drain": 2,
        "services": {"search": {"instances": 4, "workers": 8, "on_caller_gone": "cancel",
                                "service_time": SLOW_MIX}},
        "clients": {"web": web},
    }


def summaries(hedge: dict[str, Any] | None, **client: Any) -> list[dict[str, float]]:
    sc = load_scenario(tail_scenario(hedge, **client))
    return [run(sc, seed=s).summary for s in SEEDS]


@pytest.fixture(scope="module")
def none() -> list[dict[str, float]]:
    return summaries(None)


@pytest.fixture(scope="module")
def p95() -> list[dict[str, float]]:
    return summaries({"delay": "p95"})


def test_a_hedge_at_p95_cuts_p99(none: list[dict[str, float]], p95: list[dict[str, float]]) -> None:
    for plain, hedged in zip(none, p95):
        assert plain["latency_p99"] > 0.15  # the slow mode (measured ~0.21 s)
        assert hedged["latency_p99"] < 0.4 * plain["latency_p99"]  # measured ~0.06 s
        assert hedged["latency_p999"] < plain["latency_p999"]
        assert hedged["success_rate"] == 1.0


def test_extra_load_is_the_share_slower_than_the_delay() -> None:
    """A fixed 50 ms hedge is sent for the requests whose first try takes longer: about the
    share of un-hedged requests slower than 50 ms (same seeds: common random numbers)."""
    sc0 = load_scenario(tail_scenario(None))
    sc1 = load_scenario(tail_scenario({"delay": 0.05}))
    for seed in SEEDS:
        plain = run(sc0, seed=seed)
        req = plain.requests
        measured = req[(req["start"] >= 2) & (req["start"] < 20)]
        lat = (measured["end"] - measured["start"]).to_numpy()
        share = float(np.mean(lat > 0.05))
        n = len(lat)
        half = 4 * np.sqrt(share * (1 - share) / n) + 0.005  # binomial CI, plus the changed queueing
        extra = run(sc1, seed=seed).summary["hedge_extra_load"]
        assert abs(extra - share) < half, (extra, share, half)
        assert 0.03 < extra < 0.07


def test_hedge_summary_keys(p95: list[dict[str, float]]) -> None:
    for s in p95:
        assert s["hedges_sent"] > 0 and 0 < s["hedges_won"] <= s["hedges_sent"]
        assert s["hedge_extra_load"] == pytest.approx(s["tries_per_request"] - 1.0)
        assert 0.03 < s["hedge_extra_load"] < 0.08  # ~5 %: the p95


def test_leaving_losers_running_loads_the_server_more(p95: list[dict[str, float]]) -> None:
    kept = summaries({"delay": "p95", "cancel_losers": False})
    for cancel, no_cancel in zip(p95, kept):
        assert no_cancel["utilization:search"] > cancel["utilization:search"] * 1.1


def test_attempts_and_events_record_every_hedge() -> None:
    res = run(load_scenario(tail_scenario({"delay": 0.05})), seed=1)
    att, ev = res.attempts, res.events
    kinds = ev["kind"].astype(str)
    assert set(att["attempt"].unique()) == {1, 2}
    assert (kinds == "hedge").sum() == (att["attempt"] == 2).sum()
    assert (kinds == "hedge_won").sum() <= (kinds == "hedge").sum()
    # each hedged request: one winner ok, the loser cancelled at the winner's end
    outcomes = att.groupby("request_id", observed=True)["outcome"].agg(lambda s: sorted(map(str, s)))
    two = outcomes[outcomes.map(len) == 2]
    assert len(two) > 0 and all(o == ["cancelled", "ok"] for o in two)
    tries = res.requests.set_index("request_id")["tries"]
    assert (tries.loc[two.index] == 2).all()


def test_hedge_with_retry_is_a_one_line_error() -> None:
    data = tail_scenario({"delay": "p95"}, retry={"max_attempts": 2})
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    msg = str(info.value)
    assert "\n" not in msg and "clients.web" in msg and "hedge" in msg and "retry" in msg


def _failing(hedge: dict[str, Any]) -> dict[str, Any]:
    """One client, one request a second, every try answered with an error at once."""
    return {
        "name": "hedge-fail", "duration": 20, "warmup": 0, "drain": 1,
        "services": {"s": {"error_rate": 1.0, "service_time": {"kind": "constant", "value": 0.001}}},
        "clients": {"web": {"target": "s", "arrival": {"kind": "constant", "rate": 1}, "hedge": hedge}},
    }


def test_grpc_throttling_stops_hedges_at_half_the_tokens() -> None:
    """maxTokens 10: each failed try costs a token, and a hedge needs token_count > 5. Two
    requests fail twice each (10 -> 6); the third's original leaves 5: no more hedges."""
    res = run(load_scenario(_failing({"preset": "grpc", "max_attempts": 2, "delay": 0.5})), seed=1)
    kinds = res.events["kind"].astype(str)
    assert (kinds == "hedge").sum() == 2
    n = len(res.requests)
    denied = res.events[kinds == "budget_denied"]
    assert len(denied) == n - 2 and (denied["detail"].astype(str) == "hedge").all()
    assert (res.requests["outcome"].astype(str) == "error").all()


def test_a_fatal_status_ends_the_call() -> None:
    fatal = run(load_scenario(_failing({"max_attempts": 3, "delay": 0.5, "non_fatal": ["timeout"]})), seed=1)
    assert (fatal.requests["tries"] == 1).all()
    assert (fatal.events["kind"].astype(str) != "hedge").all()
    non_fatal = run(load_scenario(_failing({"max_attempts": 3, "delay": 0.5, "non_fatal": ["error"]})), seed=1)
    assert (non_fatal.requests["tries"] == 3).all()  # each failure sends the next hedge at once
    assert (non_fatal.requests["outcome"].astype(str) == "error").all()


def test_a_fatal_hedge_cancels_the_others() -> None:
    """The original is slow; the hedge fails fatally (a crashed instance refuses it): the
    call ends with that failure and the original is cancelled."""
    data = {
        "name": "hedge-fatal", "duration": 3, "warmup": 0, "drain": 2,
        "services": {"s": {"instances": 2, "load_balancer": "round_robin", "on_caller_gone": "cancel",
                           "service_time": {"kind": "constant", "value": 0.5}}},
        "clients": {"web": {"target": "s", "arrival": {"kind": "constant", "rate": 1},
                            "hedge": {"max_attempts": 2, "delay": 0.1, "non_fatal": ["timeout"]}}},
        "faults": [{"kind": "crash", "service": "s", "instance": 1, "at": 0, "duration": 100, "mode": "refuse"},
                   ],
    }
    try:
        sc = load_scenario(data)
    except ScenarioError:
        pytest.skip("crash fault options differ")
    res = run(sc, seed=1)
    att = res.attempts
    conn = res.requests["outcome"].astype(str) == "connection"
    assert conn.any()
    ids = res.requests.loc[conn, "request_id"]
    rows = att[att["request_id"].isin(ids)]
    assert set(rows["outcome"].astype(str)) == {"connection", "cancelled"}


def test_the_deadline_still_applies() -> None:
    res = run(load_scenario(tail_scenario({"max_attempts": 4, "delay": 0.02}, deadline=0.05)), seed=1)
    lat = (res.requests["end"] - res.requests["start"]).to_numpy()
    assert np.nanmax(lat) <= 0.05 + 1e-9
    assert (res.requests["tries"] <= 4).all()


def test_hedges_on_the_generator_path() -> None:
    """A hedged downstream call in a parallel handler runs in a SimPy process."""
    data = {
        "name": "hedge-proc", "duration": 10, "warmup": 1, "drain": 2,
        "services": {
            "api": {"workers": 64, "service_time": {"kind": "constant", "value": 0.001},
                    "handler": {"mode": "parallel", "calls": [
                        {"to": "search", "hedge": {"max_attempts": 2, "delay": 0.05}},
                        {"to": "other"}]}},
            "search": {"instances": 4, "workers": 8, "on_caller_gone": "cancel", "service_time": SLOW_MIX},
            "other": {"workers": 8, "service_time": {"kind": "constant", "value": 0.001}},
        },
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 200}}},
    }
    hedged = run(load_scenario(data), seed=1)
    data["services"]["api"]["handler"]["calls"][0].pop("hedge")
    plain = run(load_scenario(data), seed=1)
    assert hedged.summary["success_rate"] == 1.0
    assert hedged.summary["hedges_sent"] > 0
    assert hedged.summary["latency_p99"] < 0.5 * plain.summary["latency_p99"]


def test_finagle_preset_hedges_at_p99_within_its_budget() -> None:
    """Finagle: one backup at the p99 of recent latencies, at most ~1 % of requests plus 10/s."""
    res = run(load_scenario(tail_scenario({"preset": "finagle"})), seed=1)
    s = res.summary
    n = s["count"]
    assert 0 < s["hedges_sent"] <= 0.01 * n + 10 * 18 + 1
    assert s["hedge_extra_load"] < 0.03  # p99: ~1 % of first tries are that slow
    hedged = res.attempts[res.attempts["attempt"] == 2]
    first = res.attempts[(res.attempts["attempt"] == 1)
                         & res.attempts["request_id"].isin(hedged["request_id"])].set_index("request_id")
    waited = hedged.set_index("request_id")["start"] - first["start"]
    assert waited.min() > 0.1  # the p99 of the mixture is in its slow mode (~0.2 s), not 50 ms


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_a_hedged_downstream_call_in_either_handler(mode: str) -> None:
    data = {
        "name": "hedge-handler", "duration": 6, "warmup": 1, "drain": 2,
        "services": {
            "api": {"workers": 64, "service_time": {"kind": "constant", "value": 0.001},
                    "handler": {"mode": mode, "calls": [{"to": "search", "hedge": {"delay": 0.05}}]}},
            "search": {"instances": 4, "workers": 8, "on_caller_gone": "cancel", "service_time": SLOW_MIX},
        },
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 200}}},
    }
    res = run(load_scenario(data), seed=1)
    assert res.summary["success_rate"] == 1.0
    assert 0.03 < res.summary["hedge_extra_load"] < 0.08
    assert res.summary["latency_p99"] < 0.1


def test_a_zero_delay_sends_every_try_at_once() -> None:
    """gRPC hedgingDelay 0s / Polly Delay TimeSpan.Zero: all max_attempts tries together."""
    res = run(load_scenario(tail_scenario({"max_attempts": 3, "delay": 0})), seed=1)
    att = res.attempts
    starts = att.groupby("request_id", observed=True)["start"].agg(["min", "max", "count"])
    assert (starts["count"] == 3).all() and (starts["max"] == starts["min"]).all()
    hedge = res.events[res.events["kind"].astype(str) == "hedge"]
    assert (hedge["detail"].astype(str) == "parallel").all()


def test_an_infinite_delay_hedges_only_after_a_failure() -> None:
    """Polly Delay InfiniteTimeSpan (-1): the next action only when the previous one failed."""
    ok = run(load_scenario(tail_scenario({"max_attempts": 3, "delay": -1})), seed=1)
    assert (ok.requests["tries"] == 1).all()  # nothing fails: never a hedge
    failing = run(load_scenario(_failing({"max_attempts": 3, "delay": -1, "non_fatal": ["error"]})), seed=1)
    att = failing.attempts
    assert (failing.requests["tries"] == 3).all()
    # one after another: each try starts when the previous one ended
    for _, g in att.groupby("request_id", observed=True):
        g = g.sort_values("attempt")
        assert (g["start"].to_numpy()[1:] == g["end"].to_numpy()[:-1]).all()


def test_hedge_needs_the_call_workflow() -> None:
    data = tail_scenario({"delay": 0.05}, workflow="read_then_write")
    with pytest.raises(ScenarioError, match="workflow"):
        load_scenario(data)


def test_envoy_hedges_after_the_soft_per_try_timeout_and_a_retry_backoff() -> None:
    """preset envoy: the hedge goes the retry path, so it leaves a full-jitter backoff
    (U[0, 25 ms) for the first retry) after the 0.05 s per-try timeout; polly's hedge with the
    same delay leaves exactly at it. The backoff is drawn per hedge from the site's stream."""
    def gaps(hedge: dict[str, Any]) -> np.ndarray:
        r = run(load_scenario(tail_scenario(hedge)), seed=SEEDS[0])
        a = r.attempts
        first = a[a.attempt == 1].set_index("request_id").start
        second = a[a.attempt == 2].set_index("request_id").start
        return (second - first.loc[second.index]).to_numpy()

    envoy = gaps({"preset": "envoy", "delay": 0.05})
    polly = gaps({"preset": "polly", "delay": 0.05})
    assert len(envoy) > 300 and len(polly) > 300
    np.testing.assert_allclose(polly, 0.05, atol=1e-9)
    wait = envoy - 0.05
    assert wait.min() >= -1e-9 and wait.max() < 0.025
    # uniform on [0, 25 ms): mean 12.5 ms within 4 standard errors
    assert abs(wait.mean() - 0.0125) < 4 * 0.025 / np.sqrt(12 * len(wait))
    assert load_scenario(tail_scenario({"preset": "envoy"})).clients["web"].hedge.budget.kind == "concurrency"
