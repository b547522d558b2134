"""Event-sourced replication: write log, in-order streams, apply backlog, staleness, read-your-writes, CAP modes."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from simpy import Environment

from simres.errors import ScenarioError
from simres.experiments.runs import run
from simres.model.replication import Stream, WriteLog
from simres.scenario.loading import load_scenario
from simres.scenario.services import ReplicaConfig


class FakeLink:
    """A link with a fixed latency that a test can cut (``blocked``)."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.blocked = False

    def delay(self) -> float | None:
        return None if self.blocked else self.latency


def make_stream(cfg: dict[str, Any], latency: float = 0.0) -> tuple[Environment, WriteLog, Stream, FakeLink]:
    env = Environment()
    log = WriteLog("db")
    link = FakeLink(latency)
    s = Stream(env, log, link, ReplicaConfig.model_validate({"of": "db", **cfg}), node="r/0",  # type: ignore[arg-type]
               seed=1, step=1.0)
    log.streams.append(s)
    return env, log, s, link


def at(env: Environment, t: float) -> None:
    if t > env.now:
        env.run(until=t)


def test_writes_arrive_in_order_after_link_and_delay_and_staleness_is_the_oldest_missing_commit() -> None:
    env, log, s, _ = make_stream({"delay": 0.05}, latency=0.01)
    at(env, 1.0)
    log.append(env.now, 1)  # committed at 1.0, applied at 1.06
    at(env, 1.02)
    log.append(env.now, 2)  # committed at 1.02, applied at 1.08
    at(env, 1.03)
    s.advance(env.now)
    assert s.applied == 0
    assert s.staleness(env.now) == pytest.approx(0.03)  # the write of 1.0 is missing
    at(env, 1.07)
    s.advance(env.now)
    assert s.applied == 1
    assert s.staleness(env.now) == pytest.approx(0.05)  # now the write of 1.02 is the oldest missing
    at(env, 1.081)
    s.advance(env.now)
    assert (s.applied, s.staleness(env.now)) == (2, 0.0)
    assert s.fresh == pytest.approx(1.02)


def test_a_slow_consumer_applies_one_write_at_a_time_and_falls_behind() -> None:
    env, log, s, _ = make_stream({"apply_time": 0.1})
    for k in range(10):  # ten writes at t = 0 .. 0.45, faster than 10/s
        at(env, 0.05 * k)
        log.append(env.now, k)
    at(env, 0.55)
    s.advance(env.now)
    assert s.applied == 5  # done at 0.1, 0.2, ..., 0.5
    assert s.staleness(env.now) == pytest.approx(0.55 - 0.25)  # write 6 was committed at 0.25
    at(env, 1.0)
    s.advance(env.now)
    assert s.applied == 10


def test_a_cut_stream_stalls_and_the_backlog_flows_after_the_reconnect() -> None:
    env, log, s, link = make_stream({"reconnect": 1.0, "heartbeat": 10.0})
    link.blocked = True
    at(env, 0.5)
    log.append(env.now, 1)  # lost: the stream stalls, probes at 1.5, 2.5, ...
    at(env, 0.7)
    log.append(env.now, 2)  # held back behind the stall
    assert s.stalled
    at(env, 2.0)
    link.blocked = False
    at(env, 2.49)
    s.advance(env.now)
    assert s.applied == 0
    assert s.staleness(env.now) == pytest.approx(2.49 - 0.5)
    at(env, 2.51)  # the probe at 2.5 got through: both writes, in order
    s.advance(env.now)
    assert (s.applied, s.stalled) == (2, False)
    assert s.fresh == pytest.approx(2.5)  # the reconnect's heartbeat vouches for 2.5


def test_heartbeats_let_an_idle_replica_vouch_for_the_present() -> None:
    env, _log, s, link = make_stream({"heartbeat": 0.5})
    env.process(s.heartbeats())
    at(env, 1.7)
    s.advance(env.now)
    assert s.fresh == pytest.approx(1.5)
    link.blocked = True
    at(env, 4.0)
    s.advance(env.now)
    assert s.fresh == pytest.approx(1.5)  # cut at 1.7: it can vouch for nothing later
    assert s.staleness(env.now) == 0.0  # though nothing was written: the true staleness is 0


def test_replica_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="max_staleness: mode: consistent needs"):
        ReplicaConfig.model_validate({"of": "db", "mode": "consistent"})
    with pytest.raises(ValidationError, match="max_staleness: only used with mode: consistent"):
        ReplicaConfig.model_validate({"of": "db", "max_staleness": 2.0})
    with pytest.raises(ValidationError, match=r"max_staleness: must exceed heartbeat \(0.5\)"):
        ReplicaConfig.model_validate({"of": "db", "mode": "consistent", "max_staleness": 0.5})
    with pytest.raises(ValidationError, match="sessions"):
        ReplicaConfig.model_validate({"of": "db", "sessions": 0})


def scenario(**over: Any) -> dict[str, Any]:
    """Writers through ``edit`` (write, then read back from a replica) and readers of the replicas."""
    replica = {"of": "accounts", "delay": {"kind": "constant", "value": 0.05}, **over.pop("replica", {})}
    sc: dict[str, Any] = {
        "name": "replication", "duration": 60, "warmup": 5, "drain": 5, "seed": 1, "timeline_step": 1.0,
        "network": {"default": {"latency": {"kind": "constant", "value": 0.0}}},
        "services": {
            "edit": {"workers": 32, "service_time": {"kind": "exponential", "mean": 0.002},
                     "handler": {"steps": ["accounts", "replica"],
                                 "calls": [{"to": "accounts", "timeout": 1.0}, {"to": "replica", "timeout": 1.0}]}},
            "accounts": {"workers": 16, "service_time": {"kind": "exponential", "mean": 0.005}},
            "replica": {"instances": 3, "workers": 16, "service_time": {"kind": "exponential", "mean": 0.002},
                        "replica": replica},
        },
        "clients": {"writers": {"target": "edit", "arrival": {"kind": "poisson", "rate": 50}},
                    "readers": {"target": "replica", "arrival": {"kind": "poisson", "rate": 200}, "timeout": 1.0}},
    }
    sc.update(over)
    return sc


PARTITION = [{"name": "partition", "kind": "partition", "from": ["accounts"], "to": ["replica/0"], "at": 20,
              "duration": 20}]


def test_scenario_references_are_checked() -> None:
    bad = scenario(replica={"of": "nope"})
    with pytest.raises(ScenarioError, match=re.escape("services.replica.replica.of: unknown service 'nope'")):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="a service cannot be a replica of itself"):
        load_scenario(scenario(replica={"of": "replica"}))
    two = scenario()
    two["services"]["second"] = {"replica": {"of": "replica"}}
    with pytest.raises(ScenarioError, match=re.escape("services.second.replica.of: 'replica' is itself a replica")):
        load_scenario(two)
    calls = scenario()
    calls["services"]["replica"]["handler"] = {"calls": [{"to": "accounts"}]}
    with pytest.raises(ScenarioError, match=re.escape("services.replica.handler.calls: a replica serves reads")):
        load_scenario(calls)


def test_stale_reads_and_their_staleness_match_poisson_writes_and_a_fixed_delay() -> None:
    """Writes leave the primary as a Poisson stream (Burke: departures of an M/M/c queue), so a
    read at a random instant is stale iff a write came in the last D seconds: P = 1 - e^(-lam D);
    its staleness is D - E for the first write E ~ Exp(lam) after t - D, so
    E[staleness] = D - (1 - e^(-lam D)) / lam. Five seeds, 95 % intervals."""
    lam, d = 50.0, 0.05
    p_stale = 1 - math.exp(-lam * d)
    mean_st = d - p_stale / lam
    rates, means = [], []
    for seed in range(1, 6):
        sc = scenario(seed=seed)
        sc["clients"]["writers"]["target"] = "accounts"  # no read-backs: every read is at a random instant
        res = run(load_scenario(sc))
        rates.append(res.summary["stale_read_rate:replica"])
        means.append(res.summary["read_staleness_mean:replica"])
    for xs, expect in ((rates, p_stale), (means, mean_st)):
        m, half = float(np.mean(xs)), 2.776 * float(np.std(xs, ddof=1)) / math.sqrt(len(xs))
        assert half > 0
        assert abs(m - expect) < max(half, 0.01 * expect), (m, half, expect)


def test_the_read_back_misses_its_own_write_behind_a_delay_and_sees_it_without_one() -> None:
    late = run(load_scenario(scenario(duration=20))).summary
    assert late["ryw_violation_rate:replica"] == 1.0  # a 2 ms read-back never beats the 50 ms delay
    res = run(load_scenario(scenario(replica={"delay": 0.0}, duration=20)))
    s = res.summary
    assert s["stale_read_rate:replica"] == 0.0
    assert s["ryw_violation_rate:replica"] == 0.0
    assert s["read_staleness_max:replica"] == 0.0
    assert s["replication_lag_max:replica"] == 0.0


def test_a_consumer_slower_than_the_writes_falls_behind_linearly() -> None:
    res = run(load_scenario(scenario(replica={"delay": 0.0, "apply_time": {"kind": "constant", "value": 0.025}},
                                     duration=40)))
    tl = res.timeline[res.timeline["service"] == "replica"].set_index("time")
    behind_10, behind_30 = tl.loc[10.0, "replication_lag_writes"], tl.loc[30.0, "replication_lag_writes"]
    # 50 writes/s against 40 applied/s: 10 more writes behind each second (Poisson noise ~ +-45 over 20 s)
    assert 100 < behind_30 - behind_10 < 300
    assert tl.loc[30.0, "replication_lag"] > tl.loc[10.0, "replication_lag"] + 2


def test_available_replica_serves_stale_reads_during_a_partition_and_consistent_refuses_them() -> None:
    ap = run(load_scenario(scenario(faults=PARTITION)))
    cp = run(load_scenario(scenario(faults=PARTITION, replica={"mode": "consistent", "max_staleness": 1.0,
                                                                "heartbeat": 0.25})))
    for res in (ap, cp):
        tl = res.timeline[res.timeline["service"] == "replica"].set_index("time")
        assert tl.loc[35.0, "replication_lag"] > 14  # replica 0 is cut off from 20 s
        assert tl.loc[45.0, "replication_lag"] < 1  # and catches up once the partition heals
    assert ap.summary["read_refused_rate:replica"] == 0.0
    assert ap.summary["read_staleness_max:replica"] > 19
    # replica 0 takes a third of the reads; for the 19 s after it notices, it refuses them
    assert cp.summary["read_refused_rate:replica"] == pytest.approx(19 / 55 / 3, rel=0.15)
    # a served read is never staler than what the replica vouched for plus its own service time
    assert cp.summary["read_staleness_max:replica"] < 1.0 + 0.1
    tl = cp.timeline[cp.timeline["service"] == "replica"].set_index("time")
    assert tl.loc[10.0:19.0, "reads_refused"].sum() == 0
    assert tl.loc[22.0:39.0, "reads_refused"].min() > 0
    assert tl.loc[42.0:, "reads_refused"].sum() == 0


def test_sessions_hash_requests_into_users_whose_later_reads_see_their_writes() -> None:
    """With 10 sessions, the readers' requests share sessions with the writers': a reader's read is
    a read-your-writes violation only when its session's last write is not yet applied."""
    res = run(load_scenario(scenario(replica={"sessions": 10}, duration=20)))
    rate = res.summary["ryw_violation_rate:replica"]
    # the write-then-read requests violate always, a reader only if its session wrote in the last 50 ms
    assert 0.05 < rate < 0.5


def test_summary_mode_has_the_same_replica_keys() -> None:
    sc = load_scenario(scenario(faults=PARTITION, duration=30))
    full = run(sc).summary
    summ = run(sc.model_copy(update={"record": "summary"})).summary
    keys = [k for k in full if k.split(":")[0] in ("read_staleness_p99", "stale_read_rate", "read_refused_rate",
                                                   "ryw_violation_rate", "replication_lag_max")]
    assert len(keys) == 5
    assert {k: summ[k] for k in keys} == {k: full[k] for k in keys}


def test_preflight_warns_when_the_consumer_cannot_keep_up_with_the_writes() -> None:
    from simres.scenario.preflight import preflight

    slow = load_scenario(scenario(replica={"apply_time": {"kind": "constant", "value": 0.025}}))
    found = [f for f in preflight(slow) if f.path == "services.replica.replica.apply_time"]
    assert len(found) == 1 and found[0].level == "warning"
    assert "applies at most 40 writes/s but accounts is offered 50 req/s" in found[0].message
    fast = load_scenario(scenario(replica={"apply_time": {"kind": "constant", "value": 0.01}}))
    assert not [f for f in preflight(fast) if f.path.endswith("replica.apply_time")]
