"""Autoscaling in simulation: instances join the balancers when ready (not before), a
drained instance finishes its queue and gets nothing new, a new instance is cold for a
while, and services without autoscale have no desired/ready columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult, run
from simres.scenario.loading import load_scenario


def scenario(autoscale: dict[str, Any], *, rate: float = 200.0, faults: list[dict[str, Any]] | None = None,
             duration: float = 60.0, service_time: dict[str, Any] | None = None, workers: int = 50) -> Any:
    data: dict[str, Any] = {
        "name": "autoscale-test", "duration": duration, "warmup": 0, "drain": 5, "seed": 3, "timeline_step": 1.0,
        "services": {"api": {"workers": workers, "load_balancer": "round_robin",
                             "service_time": service_time or {"kind": "constant", "value": 0.01},
                             "autoscale": autoscale},
                     "db": {"service_time": {"kind": "constant", "value": 0.001}}},
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": rate}}},
        "faults": faults or [],
    }
    return load_scenario(data)


def events(res: RunResult, kind: str) -> pd.DataFrame:
    ev = res.events
    return ev[ev["kind"].astype(str) == kind]


def tries(res: RunResult, instance: int) -> pd.DataFrame:
    a = res.attempts
    return a[(a["instance"] == instance) & a["sent"].astype(bool) & (a["service"].astype(str) == "api")]


UP = {"metric": "inflight", "target": 0.5, "sync_period": 5, "min": 1, "max": 3, "startup_delay": 10,
      "scale_down_stabilization": 0, "cold_start": {"factor": 3, "duration": 10}}


@pytest.fixture(scope="module")
def up() -> RunResult:
    return run(scenario(UP))


def test_the_pool_is_max_instances() -> None:
    sc = scenario(UP)
    assert sc.services["api"].instances == 3
    with pytest.raises(Exception, match=r"autoscale\.max"):
        load_scenario({"name": "x", "duration": 1, "services": {"api": {"instances": 2, "autoscale": {"max": 3}}},
                       "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 5}}}})


def test_instances_get_traffic_only_once_ready(up: RunResult) -> None:
    ready = events(up, "instance_ready").drop_duplicates("detail")  # the first time each is ready
    assert len(ready) == 2
    first_scale = events(up, "scale")
    first_up = float(first_scale.loc[first_scale["value"] > 1, "time"].iloc[0])
    for _, ev in ready.iterrows():
        k = int(str(ev["detail"]).rsplit("/", 1)[1])
        t = tries(up, k)
        assert len(t) > 0
        assert t["start"].min() >= ev["time"]  # nothing before it was ready
        assert ev["time"] >= first_up + 10.0 - 1e-9  # the start-up delay
    assert len(tries(up, 0)) > 0 and tries(up, 0)["start"].min() < 1.0


def test_a_new_instance_is_cold_then_warm(up: RunResult) -> None:
    ev = events(up, "instance_ready").iloc[0]
    k, t0 = int(str(ev["detail"]).rsplit("/", 1)[1]), float(ev["time"])
    t = tries(up, k)
    lat = t["end"] - t["start"]
    cold = lat[(t["start"] >= t0) & (t["end"] < t0 + 10)]
    warm = lat[t["start"] >= t0 + 10.5]
    assert len(cold) > 50 and len(warm) > 50
    assert cold.median() == pytest.approx(0.03)  # 0.01 s x factor 3, no queueing with 50 workers
    assert warm.median() == pytest.approx(0.01)


def test_timeline_has_desired_and_ready(up: RunResult) -> None:
    tl = up.timeline
    api = tl[tl["service"].astype(str) == "api"].set_index("time")
    db = tl[tl["service"].astype(str) == "db"]
    assert api["ready"].iloc[0] == 1 and api["ready"].max() == 3
    assert (api["desired"] >= api["ready"]).all()
    assert (db["ready"] == 1).all() and (db["desired"] == 1).all()
    s = up.summary
    assert s["instances_max:api"] == 3.0
    assert 1.0 < s["instances_mean:api"] < 3.0
    assert s["scale_events:api"] >= 1.0


def test_a_drained_instance_finishes_its_queue() -> None:
    # Step scaling that removes two instances while the mean queue is under 30: a spike
    # (10x for 10 s) builds queues on slow work (0.5 s, one worker), the new instances get
    # some, and are drained with work still queued.
    cfg = {"kind": "step", "steps": [{"lower": 0, "change": -2}, {"lower": 30, "change": 2}], "sync_period": 5,
           "min": 1, "max": 3, "startup_delay": 1, "scale_down_stabilization": 0}
    sc = scenario(cfg, rate=1.0, workers=1, service_time={"kind": "constant", "value": 0.5},
                  faults=[{"kind": "load", "client": "web", "factor": 10.0, "at": 5, "duration": 10}], duration=60)
    res = run(sc)
    drained = events(res, "instance_drained")
    assert len(drained) >= 1
    ev = drained.iloc[0]
    k, t0 = int(str(ev["detail"]).rsplit("/", 1)[1]), float(ev["time"])
    t = tries(res, k)
    later = t[t["start"] > t0]
    ready_again = events(res, "instance_ready")
    back = ready_again[(ready_again["detail"] == ev["detail"]) & (ready_again["time"] > t0)]
    t_back = float(back["time"].iloc[0]) if len(back) else np.inf
    assert (later["start"] >= t_back).all()  # nothing new until it is ready again
    held = t[(t["start"] <= t0) & (t["end"] > t0)]
    assert len(held) > 0  # it still had work when it left the balancer
    assert (held["outcome"].astype(str) == "ok").all()  # and finished it


def test_no_columns_without_autoscale() -> None:
    sc = load_scenario({"name": "x", "duration": 5, "services": {"api": {}},
                        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 5}}}})
    res = run(sc)
    assert "ready" not in res.timeline.columns and "desired" not in res.timeline.columns
    assert not any(k.startswith("instances_") for k in res.summary)


def test_decisions_are_logged(tmp_path: Any) -> None:
    from simres.metrics.decisions import EVENTS, read_log

    res = run(scenario(UP), decision_log=tmp_path / "d.jsonl")
    lines = list(read_log(tmp_path / "d.jsonl"))
    kinds = {d["event"] for d in lines}
    assert {"scale", "instance_ready"} <= kinds <= set(EVENTS)
    scale = [d for d in lines if d["event"] == "scale"]
    assert len(scale) == len(events(res, "scale"))
    assert scale[0]["metric"] == "inflight" and "desired" in scale[0]


@pytest.mark.parametrize("lb", ["random", "least_outstanding", "power_of_two"])
def test_every_balancer_and_outlier_detection_skip_starting_instances(lb: str) -> None:
    sc = scenario(UP)
    data = sc.model_dump(mode="json", exclude_none=True)
    data["services"]["api"]["load_balancer"] = lb
    data["clients"]["web"]["outlier_detection"] = {"preset": "envoy"}
    res = run(load_scenario(data))
    ready = events(res, "instance_ready").drop_duplicates("detail")
    assert len(ready) == 2
    for _, ev in ready.iterrows():
        k = int(str(ev["detail"]).rsplit("/", 1)[1])
        t = tries(res, k)
        assert len(t) > 0 and t["start"].min() >= ev["time"]


def test_utilization_is_over_the_ready_instances() -> None:
    # 200 req/s x 10 ms (no cold start here): 2 busy workers of 50 per ready instance.
    res = run(scenario({k: v for k, v in UP.items() if k != "cold_start"}))
    tl = res.timeline
    api = tl[(tl["service"].astype(str) == "api") & (tl["time"] < 60)]
    ready_mean = float(api["ready"].mean())
    assert ready_mean > 1.5
    assert res.summary["utilization:api"] == pytest.approx(2.0 / (50 * ready_mean), rel=0.05)
