"""Outlier ejection in the simulation: the call driver acts on the detector's decisions.

One of ten backend instances fails (an error burst on one instance): its callers eject it,
its share of their tries drops to about zero while ejected, success improves against no
detection, max_ejection_percent holds, ejections grow longer, and a scenario without
outlier detection has no trace of it (no column, no events, no timer).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult, run
from simres.outcomes import SUCCESS_OUTCOMES
from simres.scenario.loading import load_scenario


def scenario(outlier: dict[str, Any] | None = None, *, bad: tuple[int, ...] = (3,), probability: float = 0.8,
             duration: float = 200.0, caller: str = "client") -> Any:
    """Ten backend instances; the ``bad`` ones fail ``probability`` of requests from 20 s to 180 s."""
    data: dict[str, Any] = {
        "name": "outlier-test", "duration": duration, "warmup": 0, "drain": 2, "seed": 5, "timeline_step": 1.0,
        "services": {"backend": {"instances": 10, "workers": 4, "service_time": {"kind": "exponential", "mean": 0.01}}},
        "clients": {"web": {"target": "backend", "arrival": {"kind": "poisson", "rate": 200}, "timeout": 1.0}},
        "faults": [{"kind": "errors", "service": "backend", "instance": i, "probability": probability, "at": 20,
                    "duration": 160} for i in bad],
    }
    if caller == "service":  # api (2 instances, each its own detector) calls backend
        data["services"]["api"] = {"instances": 2, "workers": 50, "service_time": {"kind": "constant", "value": 0.001},
                                   "handler": {"calls": [{"to": "backend"}]}}
        data["clients"]["web"]["target"] = "api"
        if outlier is not None:
            data["services"]["api"]["handler"]["calls"][0]["outlier_detection"] = outlier
    elif outlier is not None:
        data["clients"]["web"]["outlier_detection"] = outlier
    return load_scenario(data)


def success(res: RunResult, t0: float = 21, t1: float = 179) -> float:
    r = res.requests
    w = r[(r["start"] >= t0) & (r["start"] < t1)]
    return float(w["outcome"].astype(str).isin(SUCCESS_OUTCOMES).mean())


def ejections(res: RunResult, kind: str = "ejected") -> pd.DataFrame:
    e = res.events
    return e[e["kind"] == kind]


@pytest.fixture(scope="module")
def none() -> RunResult:
    return run(scenario())


@pytest.fixture(scope="module")
def envoy() -> RunResult:
    return run(scenario({"preset": "envoy"}))


def test_without_detection_there_is_no_trace_of_it(none: RunResult) -> None:
    assert "ejected" not in none.timeline.columns
    assert not none.events["kind"].isin(["ejected", "unejected", "probation", "probe_failed"]).any()
    assert success(none) == pytest.approx(1 - 0.08, abs=0.01)


def test_the_bad_instance_is_ejected_and_gets_no_traffic_while_out(envoy: RunResult) -> None:
    ej, un = ejections(envoy), ejections(envoy, "unejected")
    assert len(ej) >= 2 and set(ej["value"]) == {3.0} and ej["detail"].str.contains("consecutive_5xx").all()
    assert ej["detail"].iloc[0].startswith("backend/3")
    first = float(ej["time"].iloc[0])
    assert 20 < first < 22  # five errors in a row come fast at 80 %
    a = envoy.attempts
    out = a[(a["start"] > first + 0.1) & (a["start"] < float(un["time"].iloc[0]))]
    share = float((out["instance"] == 3).mean())
    assert share < 0.002  # only tries already on their way (none here: replies are fast)
    before = a[(a["start"] < 20)]
    assert float((before["instance"] == 3).mean()) == pytest.approx(0.1, abs=0.01)


def test_success_rate_improves_against_no_detection(none: RunResult, envoy: RunResult) -> None:
    assert success(envoy) > 0.99 > success(none) + 0.05


def test_ejection_time_grows_with_repeated_ejections(envoy: RunResult) -> None:
    ej, un = ejections(envoy), ejections(envoy, "unejected")
    spans = un["time"].to_numpy() - ej["time"].to_numpy()[: len(un)]
    # 30 s, then 60 s (backoff 2): each ends at the first 10 s sweep after base x backoff
    assert len(spans) >= 2
    for k, span in enumerate(spans[:2], start=1):
        assert 30 * k <= span < 30 * k + 10


def test_the_timeline_counts_the_ejected_hosts(envoy: RunResult) -> None:
    tl = envoy.timeline
    be = tl[tl["service"].astype(str) == "backend"]
    assert be["ejected"].max() == 1 and be["ejected"].iloc[:19].sum() == 0
    first = float(ejections(envoy)["time"].iloc[0])
    assert be[be["time"] == np.floor(first) + 1]["ejected"].iloc[0] == 1


def test_max_ejection_percent_is_respected() -> None:
    res = run(scenario({"preset": "envoy"}, bad=(3, 7), duration=100))
    be = res.timeline[res.timeline["service"].astype(str) == "backend"]
    assert be["ejected"].max() == 1  # 10 % of 10 hosts
    res = run(scenario({"preset": "envoy", "max_ejection_percent": 20}, bad=(3, 7), duration=100))
    be = res.timeline[res.timeline["service"].astype(str) == "backend"]
    assert be["ejected"].max() == 2
    assert set(ejections(res)["value"]) == {3.0, 7.0}


def test_every_calling_instance_has_its_own_detector() -> None:
    res = run(scenario({"preset": "envoy"}, caller="service", duration=60))
    ej = ejections(res)
    assert set(ej["component"]) == {"api->backend#0", "api->backend#1"}
    be = res.timeline[res.timeline["service"].astype(str) == "backend"]
    assert be["ejected"].max() == 2  # one host, out of two callers' balancers


def test_linkerd_probes_with_growing_penalties() -> None:
    res = run(scenario({"preset": "linkerd"}, duration=100))
    e = res.events
    kinds = set(e["kind"])
    assert {"ejected", "probation", "unejected"} <= kinds
    assert e[e["kind"] == "ejected"]["detail"].str.contains("consecutive_failures").all()
    none = run(scenario(duration=100))
    assert success(res, 21, 99) > success(none, 21, 99) + 0.05


@pytest.mark.parametrize("lb", ["random", "least_outstanding", "power_of_two"])
def test_every_balancer_skips_the_ejected_instance(lb: str) -> None:
    sc = scenario({"preset": "envoy"}, duration=60)
    sc = load_scenario(sc, overrides={"services.backend.load_balancer": lb})
    res = run(sc)
    ej, un = ejections(res), ejections(res, "unejected")
    t0 = float(ej["time"].iloc[0])
    t1 = float(un["time"].iloc[0]) if len(un) else 60.0
    a = res.attempts
    out = a[(a["start"] > t0 + 0.1) & (a["start"] < t1)]
    assert float((out["instance"] == 3).mean()) < 0.002
    assert out["instance"].nunique() == 9


def test_panic_sends_to_every_instance() -> None:
    # both of 2 instances bad, one ejectable (max 50 %); panic at 60 % healthy: 1 of 2 is under it
    data = {"preset": "envoy", "max_ejection_percent": 50, "healthy_panic_threshold": 60.0}
    sc = load_scenario(scenario(data, bad=(0, 1), duration=60), overrides={"services.backend.instances": 2})
    res = run(sc)
    ej = ejections(res)
    assert len(ej)
    a = res.attempts
    t0 = float(ej["time"].iloc[0])
    out = a[(a["start"] > t0 + 0.1) & (a["start"] < t0 + 5)]
    assert out["instance"].nunique() == 2  # panic: the ejected instance still gets traffic


def test_a_bad_option_is_one_line_naming_the_field() -> None:
    from simres.errors import ScenarioError

    with pytest.raises(ScenarioError) as info:
        scenario({"preset": "envoy", "max_ejection_percent": 200})
    text = str(info.value)
    assert "clients.web.outlier_detection.max_ejection_percent" in text and "\n" not in text.strip()


def test_spans_and_per_caller_counts_from_the_events() -> None:
    from simres.metrics import ejected_hosts, ejection_spans

    res = run(scenario({"preset": "envoy"}, caller="service", duration=120))
    spans = ejection_spans(res.events, t_end=120)
    assert set(spans["component"]) == {"api->backend#0", "api->backend#1"}
    assert (spans["instance"] == 3).all() and (spans["reason"] == "consecutive_5xx").all()
    closed = spans.dropna()
    assert ((closed["duration"] >= 30) & (closed["duration"] < 100)).all()
    per = ejected_hosts(res.events, step=1.0, t_end=res.scenario.end_time)
    tl = res.timeline[res.timeline["service"].astype(str) == "backend"].set_index("time")["ejected"]
    total = per.groupby("time")["ejected"].sum()
    assert total.reindex(tl.index, fill_value=0).tolist() == tl.tolist()
    assert per["ejected"].max() == 1
