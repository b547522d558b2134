"""Adaptive concurrency limits in the model: a service's admission limit (Netflix's server side).

The limit algorithms themselves are pinned against the library's source in
``tests/policies/conformance/test_netflix_limits.py``; here: what the limit does to a
service under overload, that every admitted request gives its permit back on every path
(served, rejected by a full queue, dropped because its caller gave up, lost in a crash),
and that the limit over time is in the events frame.
"""

from __future__ import annotations

from typing import Any

import pytest

from simres.errors import ScenarioError
from simres.experiments.runs import run
from simres.model.world import build
from simres.scenario.loading import load_scenario


def spike(limit: dict[str, Any] | None, **api: Any) -> dict[str, Any]:
    """8 workers (800 req/s) at 700 req/s, then 1,120 req/s for 15 s: a 40 % overload."""
    svc: dict[str, Any] = {"workers": 8, "service_time": {"kind": "exponential", "mean": 0.01}, **api}
    if limit is not None:
        svc["limit"] = limit
    return {"name": "limit", "duration": 40, "warmup": 5, "drain": 2, "seed": 1,
            "services": {"api": svc},
            "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 700}, "timeout": 0.5}},
            "faults": [{"kind": "load", "client": "web", "factor": 1.6, "at": 10, "duration": 15}]}


@pytest.mark.parametrize("limit", [{"kind": "gradient2"}, {"kind": "aimd"}, {"kind": "gradient2", "window": {}}])
def test_a_limit_keeps_goodput_near_capacity_where_an_unbounded_queue_collapses(limit: dict[str, Any]) -> None:
    without = run(load_scenario(spike(None))).summary
    with_limit = run(load_scenario(spike(limit)))
    s = with_limit.summary
    # Without a limit the queue fills with work whose caller has given up: goodput collapses
    # to a fraction of the 800 req/s capacity and stays there after the spike.
    assert without["goodput"] < 300
    # With one, the excess is refused at once and what is admitted is served in time.
    assert s["goodput"] > 700
    assert s["success_rate"] > 0.8
    req = with_limit.requests
    assert (req["outcome"] == "rejected").sum() > 100
    limits = with_limit.events.query("kind == 'limit'")
    assert limits["component"].eq("api/0").all()
    assert limits["value"].iloc[0] == 20.0 and limits["detail"].iloc[0] == "initial"
    assert limits["value"].nunique() > 3
    assert limits["value"].between(20, 200).all()  # the library's min and max for these kinds


def test_envoys_gradient_controller_sheds_the_spike_and_measures_min_rtt_again() -> None:
    """Envoy's controller (preset ``envoy``) under the same 40 % overload: the excess is
    refused, goodput stays near capacity, and minRTT windows (the limit pinned at 3) recur
    every ~60-69 s, here every 6-6.9 s with interval 6."""
    without = run(load_scenario(spike(None))).summary
    res = run(load_scenario(spike({"preset": "envoy", "envoy": {"interval": 6.0}})))
    s = res.summary
    assert without["goodput"] < 300
    assert s["goodput"] > 650 and s["success_rate"] > 0.75
    assert (res.requests["outcome"] == "rejected").sum() > 100
    limits = res.events.query("kind == 'limit'")
    assert limits["value"].iloc[0] == 3.0 and limits["detail"].iloc[0] == "initial"
    assert limits["value"].between(3, 1000).all() and limits["value"].max() > 10
    # every return to the floor of 3 after a higher limit starts a minRTT window
    v = limits["value"].to_numpy()
    t = limits["time"].to_numpy()
    starts = t[1:][(v[1:] == 3) & (v[:-1] > 3)]
    gaps = starts[1:] - starts[:-1]
    assert len(starts) >= 4 and (gaps >= 6.0 - 1e-9).all(), starts


def test_envoy_gradient_is_a_services_limit_only() -> None:
    data = client_side({"kind": "envoy_gradient"})
    with pytest.raises(ScenarioError, match=r"limit\.kind: envoy_gradient is Envoy's inbound filter"):
        load_scenario(data)
    with pytest.raises(ScenarioError, match=r"services\.api\.limit.*min_limit: not an option of envoy_gradient"):
        load_scenario(spike({"kind": "envoy_gradient", "min_limit": 5}))
    with pytest.raises(ScenarioError, match=r"services\.api\.limit.*envoy: options of kind envoy_gradient"):
        load_scenario(spike({"kind": "aimd", "envoy": {}}))


def test_a_fixed_limit_bounds_what_the_instance_holds() -> None:
    """A fixed limit of 12 on 8 workers: at most 12 requests queued or in service, the rest rejected."""
    res = run(load_scenario(spike({"kind": "fixed", "initial_limit": 12})))
    assert res.timeline["inflight"].max() <= 12
    assert (res.requests["outcome"] == "rejected").sum() > 0
    assert len(res.events.query("kind == 'limit'")) == 1  # only the initial value: it never changes


@pytest.mark.parametrize("api", [{}, {"on_caller_gone": "cancel"}, {"queue": {"capacity": 5}}])
def test_every_admitted_request_gives_its_permit_back(api: dict[str, Any]) -> None:
    """Served, refused by a full queue, dropped for a gone caller, or lost in a crash: none leak."""
    data = spike({"kind": "gradient2"}, instances=2, **api)
    data["clients"]["web"]["stop"] = 36  # nothing is in flight at the end of the drain
    data["faults"].append({"kind": "crash", "service": "api", "instance": 1, "at": 15, "duration": 3})
    world = build(load_scenario(data))
    world.run()
    for inst in world.services["api"].instances:
        assert inst.limiter is not None
        assert inst.limiter.inflight == 0 and not inst.limit_tokens
        assert inst.busy == 0 and not inst.queue


def test_a_scenario_without_limits_records_no_limit_events() -> None:
    res = run(load_scenario(spike(None)))
    assert not (res.events["kind"] == "limit").any()


def test_a_services_limit_is_per_instance() -> None:
    with pytest.raises(ScenarioError, match=r"services\.api\.limit.*one per instance"):
        load_scenario(spike({"kind": "aimd", "scope": "shared"}))


def test_limit_options_are_checked() -> None:
    with pytest.raises(ScenarioError, match=r"services\.api\.limit\.backoff_ratio"):
        load_scenario(spike({"kind": "aimd", "backoff_ratio": 1.5}))
    with pytest.raises(ScenarioError, match=r"services\.api\.limit.*min_limit: must be <= max_limit"):
        load_scenario(spike({"kind": "aimd", "min_limit": 50, "max_limit": 10}))


def client_side(limit: dict[str, Any], count: int = 1) -> dict[str, Any]:
    """Clients with a limit on their tries to an api that refuses work beyond 4 workers + 2 queued."""
    return {"name": "client-limit", "duration": 30, "warmup": 2, "drain": 2, "seed": 2,
            "services": {"api": {"workers": 4, "queue": {"capacity": 2},
                                 "service_time": {"kind": "exponential", "mean": 0.02}}},
            "clients": {"web": {"target": "api", "count": count, "arrival": {"kind": "poisson", "rate": 300 / count},
                                "timeout": 1.0, "limit": limit, "stop": 26}}}


def test_a_client_side_limit_backs_off_on_refusals_and_refuses_locally() -> None:
    """gRPC client semantics: a server refusal (UNAVAILABLE) is a drop, so AIMD shrinks the limit;
    tries over the limit never leave the client (bulkhead_full, an adaptive bulkhead)."""
    world = build(load_scenario(client_side({"kind": "aimd", "initial_limit": 20, "min_limit": 1})))
    world.run()
    rec = world.recorder
    events = rec.events_frame()
    limits = events.query("kind == 'limit'")
    assert limits["component"].eq("web->api").all()
    assert limits["value"].min() < 10  # 150 % of capacity: refusals drive the limit down from 20
    assert (events["kind"] == "limit_rejected").sum() > 0
    (site,) = [s for pop in world.clients.values() for s in pop.sites]
    assert site.limiter is not None and site.limiter.inflight == 0


def test_each_member_of_a_population_has_its_own_limit() -> None:
    res = run(load_scenario(client_side({"kind": "gradient2"}, count=3)))
    comps = set(res.events.query("kind == 'limit'")["component"])
    assert comps == {"web->api#0", "web->api#1", "web->api#2"}


def test_the_timeline_carries_each_services_limit_and_the_figure_draws_it() -> None:
    """A ``limit`` column (the sum over instances at each bucket's end) only where a service
    has a limit, and a concurrency panel in the run's timeline figure."""
    import matplotlib

    matplotlib.use("Agg")
    res = run(load_scenario(spike({"kind": "fixed", "initial_limit": 12}, instances=2)))
    assert res.timeline["limit"].eq(24.0).all()  # two instances of 12, never changing
    assert "limit" not in run(load_scenario(spike(None))).timeline.columns
    envoy = run(load_scenario(spike({"preset": "envoy"})))
    tl = envoy.timeline
    during = tl[(tl["time"] >= 12) & (tl["time"] < 24)]
    assert during["limit"].max() < 40 < tl["limit"].max()  # squeezed in the overload, loose before it
    fig = envoy.plot("timeline")
    assert any(ax.get_ylabel() == "concurrency" for ax in fig.axes)
