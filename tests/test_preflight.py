"""The pre-flight check (simres check): load against capacity, policies that cannot work, the README scenario."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from simres.cli import main
from simres.experiments.runs import run
from simres.scenario.loading import load_scenario
from simres.scenario.preflight import offered_load, preflight, warnings_of

ROOT = Path(__file__).resolve().parents[1]


def readme_scenario() -> tuple[dict[str, Any], str]:
    """The README's minimal scenario and the `simres check` output it shows."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## A minimal scenario", 1)[1].split("\n## ", 1)[0]
    data = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, flags=re.S).group(1))
    shown = re.search(r"`simres check` shows.*?```\n(.*?)```", section, flags=re.S).group(1)
    return data, shown


def overloaded() -> dict[str, Any]:
    """The README's minimal scenario as it used to be: 8 api workers, ~107 % of capacity before the fault."""
    data, _ = readme_scenario()
    data["services"]["api"]["workers"] = 8
    return data


def short_partition(**client: Any) -> dict[str, Any]:
    """Twenty clients at 3 req/s each, cut off from the api for 10 s of a 30 s run."""
    web = {"target": "api", "count": 20, "arrival": {"kind": "poisson", "rate": 3.0}, "timeout": 0.5,
           "retry": {"max_attempts": 2}, **client}
    return {"name": "short-partition", "duration": 30, "warmup": 2, "drain": 2,
            "services": {"api": {"workers": 4, "service_time": {"kind": "exponential", "mean": 0.01}}},
            "clients": {"web": web},
            "faults": [{"kind": "partition", "name": "cut", "from": ["web"], "to": ["api"], "at": 10,
                        "duration": 10}]}


def test_readme_scenario_is_healthy_then_degrades_during_the_fault(tmp_path: Path) -> None:
    data, shown = readme_scenario()
    path = tmp_path / "my-service.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = CliRunner().invoke(main, ["check", str(path)])
    assert out.exit_code == 0, out.output
    assert out.output == shown
    sc = load_scenario(data)
    assert not warnings_of(sc)
    assert max(offered_load(sc).values()) < 0.6
    res = run(sc)
    req = res.requests
    ok = req["outcome"].isin(["ok", "degraded"])
    before = (req["start"] >= 5) & (req["start"] < 20)
    during = (req["start"] >= 20) & (req["start"] < 30)
    after = req["start"] >= 40
    assert ok[before].mean() > 0.999
    assert ok[during].mean() < 0.2
    assert ok[after].mean() > 0.999
    assert res.summary["recovered:slowdown#0"] == 1.0
    assert res.summary["recovery_time:slowdown#0"] == 7.0


def test_overloaded_readme_scenario_is_flagged_before_it_runs(tmp_path: Path) -> None:
    sc = load_scenario(overloaded())
    (w,) = warnings_of(sc)
    assert w.path == "services.api"
    assert w.message.startswith("overloaded before any fault, at 107 % of capacity: offered 200 req/s, "
                                "capacity 188 req/s")
    # and it is true: without the fault, almost every request fails too
    nofault = run(load_scenario(overloaded(), overrides={"faults": [], "duration": 15}))
    assert nofault.summary["success_rate"] < 0.2
    path = tmp_path / "overloaded.yaml"
    path.write_text(yaml.safe_dump(overloaded()), encoding="utf-8")
    strict = CliRunner().invoke(main, ["check", str(path), "--strict"])
    assert strict.exit_code == 2
    assert "warning: services.api: overloaded before any fault, at 107 % of capacity" in strict.output


def test_an_empty_breaker_in_a_short_partition_is_flagged() -> None:
    found = {f.path: f for f in preflight(load_scenario(short_partition(breaker={})))}
    assert found["clients.web.breaker.minimum_calls"].level == "warning"
    assert found["clients.web.breaker.minimum_calls"].message.startswith("needs 100 calls before it can trip")
    assert found["clients.web.breaker.open_for"].message.startswith("stays open 60 s, longer than cut lasts (10 s)")
    tuned = short_partition(breaker={"minimum_calls": 10, "open_for": 2})
    assert not [f for f in preflight(load_scenario(tuned)) if f.path.startswith("clients.web.breaker")]


def test_policies_that_cannot_work_and_faults_outside_the_run() -> None:
    sc = short_partition(timeout=3.0, deadline=2.0,
                         retry={"max_attempts": 3, "budget": {"kind": "token_bucket", "refund": 0}})
    sc["faults"].append({"kind": "slowdown", "service": "api", "at": 40, "duration": 5, "factor": 2})
    sc["faults"].append({"kind": "slowdown", "service": "api", "at": 1, "duration": 5, "factor": 2})
    sc["clients"]["late"] = {"target": "api", "arrival": {"kind": "poisson", "rate": 1}, "start": 31}
    paths = {f.path for f in warnings_of(load_scenario(sc))}
    assert {"clients.web.timeout", "clients.web.retry.budget", "faults.1.at", "faults.2.at",
            "clients.late.start"} <= paths
    # a connect or read timeout the per-try timeout always beats can never fire; a shorter one can
    never = load_scenario(short_partition(timeout=1.0, connect_timeout=1.0, read_timeout=0.5))
    assert {f.path for f in warnings_of(never)} >= {"clients.web.connect_timeout"}
    assert "clients.web.read_timeout" not in {f.path for f in warnings_of(never)}


def test_warnings_are_printed_once_before_run_and_never_change_results(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(short_partition(breaker={})), encoding="utf-8")
    runner = CliRunner()
    plain = runner.invoke(main, ["run", str(path), "--quiet"])
    assert plain.exit_code == 0, plain.output
    assert plain.stderr.count("pre-flight: clients.web.breaker.open_for:") == 1
    # warnings never change results: the summary is the one the API computes, which prints nothing
    api = run(load_scenario(short_partition(breaker={})))
    as_json = runner.invoke(main, ["run", str(path), "--quiet", "--json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["summary"]["success_rate"] == api.summary["success_rate"]
    same = runner.invoke(main, ["run", str(path), "--quiet"])
    assert plain.stdout.splitlines()[1:] == same.stdout.splitlines()[1:]
    strict = runner.invoke(main, ["run", str(path), "--quiet", "--strict"])
    assert strict.exit_code == 2 and strict.stdout == ""
    assert "--strict" in strict.stderr


def closed_loop(users: int, think: float) -> dict[str, Any]:
    """``users`` closed-loop users (think ``think`` s) against one worker with 10 ms of work."""
    return {"name": "closed", "duration": 60, "warmup": 5, "drain": 2, "seed": 3,
            "network": {"default": {"latency": 0.001}},
            "services": {"api": {"workers": 1, "service_time": {"kind": "exponential", "mean": 0.01}}},
            "clients": {"users": {"target": "api", "arrival": {"kind": "closed", "users": users,
                                                                "think_time": {"kind": "exponential",
                                                                               "mean": think}}}}}


def test_closed_loop_offered_load_is_the_response_time_law_bound() -> None:
    """N users send at most N / (Z + R0): at low load the simulated throughput meets the bound."""
    data = closed_loop(users=20, think=1.0)
    data["duration"] = 200
    sc = load_scenario(data)
    bound = 20 / (1.0 + 0.002 + 0.01)
    assert abs(offered_load(sc)["api"] - bound * 0.01) < 1e-9
    res = run(sc)
    measured = res.summary["throughput"]
    # Utilisation is ~20 %, so queueing adds ~2.5 ms to a 1.012 s cycle (0.25 %); about 3,900
    # requests give ~1.6 % sampling sd, so the measured rate sits within 5 % below / 3 % above.
    assert 0.95 * bound < measured < 1.03 * bound
    assert not warnings_of(sc)


def test_a_saturated_closed_loop_is_a_note_not_an_overload_warning() -> None:
    """200 users thinking 0.1 s offer ~2,000 req/s to 100 req/s of capacity: the loop slows, nothing fails."""
    sc = load_scenario(closed_loop(users=200, think=0.1))
    found = [f for f in preflight(sc) if f.path == "services.api"]
    assert [f.level for f in found] == ["note"]
    assert "saturated" in found[0].message and "upper bound" in found[0].message
    assert not warnings_of(sc)
    res = run(sc)
    assert res.summary["success_rate"] == 1.0
    assert res.summary["utilization:api"] > 0.95


def test_a_closed_loop_batch_is_reported_as_a_burst_in_seconds_of_capacity() -> None:
    """A finite closed-loop batch is not a steady rate: its size is given in seconds of the target's capacity."""
    data = closed_loop(users=1, think=1.0)
    data["clients"]["users"].update(count=300, requests_per_member=1)
    data["clients"]["users"]["arrival"]["think_time"] = 0.0
    sc = load_scenario(data)
    assert offered_load(sc)["api"] == 0.0
    (note,) = [f for f in preflight(sc) if f.path == "clients.users"]
    assert "a batch of 300 requests" in note.message and "3 s of api's capacity" in note.message
