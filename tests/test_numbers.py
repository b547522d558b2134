"""Numbers you can trust: independent streams, common random numbers, one override order,
relapses seen, and a per-try frame that forms a tree with exact queue waits."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

import simres
from simres.cli import main
from simres.experiments import runs as runs_module
from simres.experiments.replications import replicate
from simres.experiments.sweeping import sweep
from simres.metrics.recovery import recovery, stable_at_end
from simres.model.world import build
from simres.rng import audit_streams
from simres.scenario import bundled_scenarios, load_scenario, resolved_dict

# ---------------------------------------------------------------------------- streams


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_no_two_components_share_a_stream(name: str) -> None:
    """Every stream (built and started lazily by the processes) has a key of its own."""
    sc = load_scenario(name)
    for variant in [None, *sc.variants]:
        with audit_streams() as keys:
            world = build(load_scenario(name, variant=variant), 1)
            world.env.run(until=1e-9)  # start the arrival processes: they create their streams
        shared = [k for k, n in Counter(keys).items() if n > 1]
        assert keys and shared == [], f"{name} [{variant}]: streams shared by several components: {shared[:5]}"


def population(count: int = 3, rate: float = 20.0) -> dict[str, Any]:
    return {"name": "pop", "duration": 60, "drain": 5,
            "network": {"default": {"latency": {"kind": "exponential", "mean": 0.01}}},
            "services": {"api": {"workers": 64, "service_time": {"kind": "constant", "value": 0.001}}},
            "clients": {"c": {"target": "api", "count": count, "arrival": {"kind": "poisson", "rate": rate}}}}


def test_members_of_a_population_draw_independent_network_delays() -> None:
    r = simres.run(population(), seed=3)
    lat = r.requests.assign(k=r.requests.groupby("member").cumcount())
    wide = lat.pivot(index="k", columns="member", values="latency").dropna()
    assert len(wide) > 800
    # the k-th round trips of two members were identical before the fix; now they are
    # independent: distinct, uncorrelated (99 % test), and equal in distribution
    assert (wide[0] != wide[1]).all() and (wide[1] != wide[2]).all()
    for a, b in ((0, 1), (0, 2), (1, 2)):
        rho, p = stats.pearsonr(wide[a], wide[b])
        assert p > 0.01, (a, b, rho)
        assert stats.ks_2samp(wide[a], wide[b]).pvalue > 0.01


def test_adding_a_client_leaves_another_clients_draws_alone() -> None:
    base = population(count=2)
    more = {**base, "clients": {**base["clients"],
                                "other": {"target": "api", "count": 4, "arrival": {"kind": "poisson", "rate": 5}}}}
    a = simres.run(base, seed=5).requests
    b = simres.run(more, seed=5).requests
    a0 = a[a["client"] == "c"].reset_index(drop=True)
    b0 = b[b["client"] == "c"].reset_index(drop=True)
    np.testing.assert_array_equal(a0["start"], b0["start"])


# ---------------------------------------------------------------------------- common random numbers


def spiky(**extra: Any) -> dict[str, Any]:
    sc = {"name": "spiky", "duration": 40, "warmup": 2, "drain": 5,
          "network": {"default": {"latency": {"kind": "exponential", "mean": 0.002}}},
          "services": {"api": {"workers": 4, "service_time": {"kind": "exponential", "mean": 0.02}}},
          "clients": {"web": {"target": "api", "count": 2, "timeout": 0.5,
                              "arrival": {"kind": "poisson", "rate": 40}}}}
    sc.update(extra)
    return sc


@pytest.mark.parametrize("factor", [3.0, 0.5])
def test_a_load_fault_does_not_change_the_world_before_it_starts(factor: float) -> None:
    at = 20.0
    quiet = simres.run(spiky(), seed=11)
    loud = simres.run(spiky(faults=[{"kind": "load", "client": "web", "at": at, "duration": 5,
                                     "factor": factor}]), seed=11)
    cols = ["request_id", "client", "member", "start", "end", "outcome", "tries"]
    before_q = quiet.requests[quiet.requests["end"] < at - 1][cols].reset_index(drop=True)
    before_l = loud.requests[loud.requests["end"] < at - 1][cols].reset_index(drop=True)
    assert len(before_q) > 1000
    pd.testing.assert_frame_equal(before_q, before_l)
    a_cols = ["request_id", "start", "end", "outcome", "instance", "service_start"]
    aq = quiet.attempts[quiet.attempts["end"] < at - 1].sort_values("request_id")[a_cols].reset_index(drop=True)
    al = loud.attempts[loud.attempts["end"] < at - 1].sort_values("request_id")[a_cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(aq, al)
    # and the fault does what it says: the offered rate in its window follows the factor
    def rate(df: pd.DataFrame) -> float:
        return float(((df["start"] >= at) & (df["start"] < at + 5)).sum() / 5)
    assert rate(loud.requests) / rate(quiet.requests) == pytest.approx(factor, rel=0.15)


def test_policy_variants_see_identical_arrivals() -> None:
    sc = spiky(variants={"retries": {"clients.web.retry": {"max_attempts": 3}},
                         "breaker": {"clients.web.breaker": {"minimum_calls": 5}}})
    starts = []
    for v in (None, "retries", "breaker"):
        req = simres.run(sc, seed=2, variant=v).requests
        starts.append(req.sort_values(["member", "start"])[["member", "start"]].to_numpy())
    np.testing.assert_array_equal(starts[0], starts[1])
    np.testing.assert_array_equal(starts[0], starts[2])


# ---------------------------------------------------------------------------- one override order


ORDER = spiky(variants={"fast": {"services.api.workers": 8, "clients.web.timeout": 0.25}})
COMBOS = [(None, {}), ("fast", {}), (None, {"services.api.workers": 2}),
          ("fast", {"services.api.workers": 2}), ("fast", {"clients.web.timeout": 0.75})]


def _expected(variant: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    data = resolved_dict(load_scenario(ORDER))
    if variant:
        for k, v in ORDER["variants"][variant].items():
            node = data
            *head, last = k.split(".")
            for h in head:
                node = node[h]
            node[last] = v
    for k, v in overrides.items():
        node = data
        *head, last = k.split(".")
        for h in head:
            node = node[h]
        node[last] = v
    return data


@pytest.fixture
def scenario_file(tmp_path):
    import yaml

    path = tmp_path / "order.yaml"
    path.write_text(yaml.safe_dump(ORDER), encoding="utf-8")
    return path


@pytest.fixture
def built(monkeypatch) -> list[dict[str, Any]]:
    """The scenarios the engine was actually asked to build, in order."""
    seen: list[dict[str, Any]] = []
    real = runs_module.build

    def spy(sc: Any, seed: int) -> Any:
        seen.append(resolved_dict(sc))
        return real(sc.model_copy(update={"duration": sc.warmup + 1.0, "drain": 0.5}), seed)

    monkeypatch.setattr(runs_module, "build", spy)
    return seen


@pytest.mark.parametrize(("variant", "overrides"), COMBOS)
def test_show_and_run_resolve_the_same_scenario(scenario_file, built, variant, overrides) -> None:
    import yaml

    flags = [f"--set={k}={v}" for k, v in overrides.items()] + (["--variant", variant] if variant else [])
    runner = CliRunner()
    shown = runner.invoke(main, ["show", str(scenario_file), *flags])
    assert shown.exit_code == 0, shown.output
    ran = runner.invoke(main, ["run", str(scenario_file), "--quiet", *flags])
    assert ran.exit_code == 0, ran.output
    expected = _expected(variant, overrides)
    assert yaml.safe_load(shown.output) == expected
    assert built == [expected]
    # the Python API, replications and sweeps resolve it the same way
    built.clear()
    simres.run(ORDER, variant=variant, overrides=overrides)
    replicate(ORDER, variants=[variant], reps=1, overrides=overrides)
    assert built == [expected, expected]


def test_compare_and_sweep_apply_the_flag_after_the_variant(built) -> None:
    from simres.experiments.executors import SerialExecutor

    sweep(ORDER, grid={"clients.web.deadline": [5.0]}, variants=["fast"],
          overrides={"services.api.workers": 2}, executor=SerialExecutor())
    assert [d["services"]["api"]["workers"] for d in built] == [2]
    assert [d["clients"]["web"]["timeout"] for d in built] == [0.25]
    built.clear()
    runner = CliRunner()
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        import yaml

        path = f"{d}/order.yaml"
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(ORDER, f)
        res = runner.invoke(main, ["compare", path, "--reps", "2", "--quiet", "--jobs", "1", "--variant", "fast",
                                   "--set", "services.api.workers=3"])
    assert res.exit_code == 0, res.output
    assert [d["services"]["api"]["workers"] for d in built] == [3, 3]


# ---------------------------------------------------------------------------- relapses and stability


def synthetic(segments: list[tuple[float, float, float]], *, rate: int = 50) -> pd.DataFrame:
    """Requests at ``rate`` per second; in each ``(t0, t1, success share)`` segment a share succeed."""
    rows = []
    rng = np.random.default_rng(4)
    for t0, t1, share in segments:
        n = int((t1 - t0) * rate)
        start = np.sort(rng.uniform(t0, t1, n))
        ok = rng.random(n) < share
        rows.append(pd.DataFrame({"request_id": 0, "start": start, "latency": np.where(ok, 0.02, 1.0),
                                  "outcome": np.where(ok, "ok", "timeout")}))
    df = pd.concat(rows, ignore_index=True)
    df["request_id"] = np.arange(len(df))
    df["end"] = df["start"] + df["latency"]
    return df


FAULT = pd.DataFrame({"time": [20.0, 25.0], "kind": ["fault_start", "fault_end"], "component": ["f", "f"],
                      "detail": ["partition", "partition"], "value": [np.nan, np.nan]})


def test_a_relapse_is_not_a_recovery() -> None:
    relapse = synthetic([(0, 20, 1.0), (20, 27, 0.1), (27, 40, 1.0), (40, 60, 0.1)])
    row = recovery(relapse, FAULT, t_end=60, warmup=2).iloc[0]
    assert row["status"] == "relapsed" and not row["recovered"]
    assert row["recovery_time"] == pytest.approx(2.0, abs=1.0)  # when it first came back
    healthy = synthetic([(0, 20, 1.0), (20, 27, 0.1), (27, 60, 1.0)])
    row = recovery(healthy, FAULT, t_end=60, warmup=2).iloc[0]
    assert row["status"] == "recovered" and row["recovered"]


def test_stable_at_end_flags_a_collapse_with_no_trigger() -> None:
    none = FAULT.iloc[0:0]
    assert stable_at_end(synthetic([(0, 30, 1.0), (30, 60, 0.05)]), none, t_end=60, warmup=2) == 0.0
    assert stable_at_end(synthetic([(0, 60, 0.99)]), none, t_end=60, warmup=2) == 1.0
    assert stable_at_end(synthetic([(0, 60, 0.3)]), none, t_end=60, warmup=2) == 1.0  # steadily bad


def test_summary_reports_stability_and_relapses() -> None:
    s = simres.run("retry-storm-metastable", seed=1, variant="naive").summary
    assert s["stable_at_end"] == 0.0
    assert s["recovered:trigger"] == 0.0 and s["relapsed:trigger"] == 0.0
    s = simres.run("retry-storm-metastable", seed=1, variant="token-bucket").summary
    assert s["stable_at_end"] == 1.0 and s["recovered:trigger"] == 1.0


# ---------------------------------------------------------------------------- the per-try frame


def test_tries_form_a_tree_per_request() -> None:
    a = simres.run("baseline", seed=4).attempts
    assert a["try_id"].is_unique
    by_id = a.set_index("try_id")
    children = a[a["parent_try"] >= 0]
    assert len(children) > 0 and (a.loc[a["depth"] == 0, "parent_try"] == -1).all()
    parents = by_id.loc[children["parent_try"]]
    np.testing.assert_array_equal(parents["request_id"].to_numpy(), children["request_id"].to_numpy())
    np.testing.assert_array_equal(parents["depth"].to_numpy() + 1, children["depth"].to_numpy())
    # a child runs inside its parent's service at the callee: after it started service there
    assert (children["start"].to_numpy() >= parents["service_start"].to_numpy() - 1e-12).all()
    assert (children["end"].to_numpy() <= parents["end"].to_numpy() + 1e-9).sum() > 0.99 * len(children)


def test_queue_wait_from_service_start_matches_mm1() -> None:
    lam, mu = 0.5, 1.0
    sc = {"duration": 20000, "warmup": 200, "drain": 200,
          "services": {"s": {"workers": 1, "service_time": {"kind": "exponential", "mean": 1 / mu}}},
          "clients": {"c": {"target": "s", "arrival": {"kind": "poisson", "rate": lam}}}}
    means = []
    for seed in range(8):
        a = simres.run(sc, seed=seed).attempts
        a = a[a["start"] >= 200]
        wait = a["service_start"] - a["start"]  # no network latency: exact time in queue
        means.append(float(wait.mean()))
    expected = lam / (mu * (mu - lam))  # M/M/1 Wq = rho / (mu - lambda)
    m, hw = np.mean(means), stats.t.ppf(0.995, len(means) - 1) * np.std(means, ddof=1) / np.sqrt(len(means))
    assert m - hw <= expected <= m + hw, (m, hw, expected)
    assert hw / expected < 0.1


def test_folded_normal_draws_absolute_values() -> None:
    from simres.dists import Normal

    d = Normal(mean=-0.5, sd=1.0, at_zero="fold")
    s = d.sampler(np.random.default_rng(2))
    draws = np.array([s() for _ in range(100_000)])
    assert stats.kstest(draws, stats.foldnorm(c=0.5, scale=1.0).cdf).pvalue > 0.01
    assert draws.mean() == pytest.approx(d.mean, rel=0.01)


def test_a_collapse_with_no_trigger_is_flagged_by_stable_at_end() -> None:
    collapse = simres.run("metastability-trigger-size", seed=1, variant="overload-no-trigger").summary
    assert not any(k.startswith("recovered:") for k in collapse)  # no fault, so no recovery verdict
    assert collapse["stable_at_end"] == 0.0
    assert simres.run("metastability-trigger-size", seed=1, variant="small").summary["stable_at_end"] == 1.0
