"""Downstream calls addressed by name in every path: overrides, variants, --set, sweep axes, check."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import simres
from simres.cli import main
from simres.errors import ScenarioError, SweepError
from simres.scenario.loading import load_scenario, resolved_dict


def _api(calls: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An api calling db and cache (and whatever ``calls`` name), each a plain service."""
    targets = {c["to"] for c in calls}
    return {
        "name": "named", "duration": 5, "drain": 2, "seed": 2,
        "services": {"api": {"workers": 8, "handler": {"calls": calls}},
                     **{t: {"workers": 4, "service_time": {"kind": "exponential", "mean": 0.01}} for t in targets}},
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 50}}},
        **extra,
    }


CALLS = [{"to": "db", "timeout": 0.5}, {"to": "cache", "timeout": 0.1, "critical": False}]


def test_name_and_index_forms_give_identical_worlds_and_frames() -> None:
    by_name = load_scenario(_api(CALLS), overrides={"services.api.handler.calls.cache.timeout": 0.003,
                                                    "services.api.handler.calls.db.retry.max_attempts": 3})
    by_index = load_scenario(_api(CALLS), overrides={"services.api.handler.calls.1.timeout": 0.003,
                                                     "services.api.handler.calls.0.retry.max_attempts": 3})
    assert resolved_dict(by_name) == resolved_dict(by_index)
    assert by_name.services["api"].handler.calls[1].timeout == 0.003
    a, b = simres.run(by_name), simres.run(by_index)
    for frame in ("requests", "attempts", "timeline"):
        pd.testing.assert_frame_equal(getattr(a, frame), getattr(b, frame))


def test_reordering_the_calls_keeps_a_named_variant_on_its_target() -> None:
    variants = {"tight": {"services.api.handler.calls.cache.timeout": 0.003}}
    for calls in (CALLS, CALLS[::-1]):
        sc = load_scenario(_api(calls, variants=variants), variant="tight")
        (cache,) = [c for c in sc.services["api"].handler.calls if c.to == "cache"]
        (db,) = [c for c in sc.services["api"].handler.calls if c.to == "db"]
        assert cache.timeout == 0.003 and db.timeout == 0.5


def test_a_name_field_names_a_repeated_target_and_the_bare_target_is_ambiguous() -> None:
    calls = [{"to": "db", "name": "read"}, {"to": "cache"}, {"to": "db", "name": "write", "timeout": 1.0}]
    sc = load_scenario(_api(calls), overrides={"services.api.handler.calls.write.timeout": 0.2})
    assert [c.timeout for c in sc.services["api"].handler.calls] == [None, None, 0.2]
    twice = [{"to": "db"}, {"to": "cache"}, {"to": "db"}]
    with pytest.raises(ScenarioError) as e:
        load_scenario(_api(twice), overrides=["services.api.handler.calls.db.timeout=0.2"])
    assert str(e.value) == ("--set: services.api.handler.calls.db: ambiguous call name 'db': calls.0 and calls.2 "
                            "both call 'db'; give them distinct name: fields and use those, or address one by index")
    # the index form still reaches either one
    ok = load_scenario(_api(twice), overrides=["services.api.handler.calls.2.timeout=0.2"])
    assert [c.timeout for c in ok.services["api"].handler.calls] == [None, None, 0.2]


def test_an_unknown_call_name_is_one_line_with_the_candidates() -> None:
    with pytest.raises(ScenarioError) as e:
        load_scenario(_api(CALLS), overrides=["services.api.handler.calls.cahce.timeout=0.2"])
    assert str(e.value) == ("--set: services.api.handler.calls.cahce: unknown call 'cahce' (did you mean 'cache'?); "
                            "calls: db, cache (by name, or by index 0-1)")
    variants = {"v": {"services.api.handler.calls.queue.timeout": 0.1}}
    with pytest.raises(ScenarioError) as e:
        load_scenario(_api(CALLS, variants=variants))
    assert str(e.value) == ("<mapping>: variants.v: services.api.handler.calls.queue: unknown call 'queue'; "
                            "calls: db, cache (by name, or by index 0-1)")


@pytest.mark.parametrize(("name", "expected"), [
    ("0", "services.api.handler.calls.0.name: must be a name with no dots that is not a whole number (an index), "
          "got '0'"),
    ("a.b", "services.api.handler.calls.0.name: must be a name with no dots that is not a whole number (an index), "
            "got 'a.b'"),
])
def test_bad_call_names_are_refused(name: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as e:
        load_scenario(_api([{"to": "db", "name": name}]))
    assert str(e.value) == f"<mapping>: {expected}"


def test_two_calls_may_not_share_an_explicit_name() -> None:
    calls = [{"to": "db", "name": "x"}, {"to": "cache", "name": "x"}]
    with pytest.raises(ScenarioError, match=r"services\.api\.handler\.calls\.1\.name: 'x' already names calls\.0"):
        load_scenario(_api(calls))


def test_cli_set_show_and_check_take_names(tmp_path) -> None:
    import yaml

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(_api(CALLS)), encoding="utf-8")
    runner = CliRunner()
    shown = runner.invoke(main, ["show", str(f), "--set", "services.api.handler.calls.cache.timeout=0.007"])
    assert shown.exit_code == 0, shown.output
    assert yaml.safe_load(shown.output)["services"]["api"]["handler"]["calls"][1]["timeout"] == 0.007
    bad = runner.invoke(main, ["run", str(f), "--set", "services.api.handler.calls.nope.timeout=1"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines()[-1].endswith(
        "services.api.handler.calls.nope: unknown call 'nope'; calls: db, cache (by name, or by index 0-1)")
    assert "Traceback" not in bad.output
    check = runner.invoke(main, ["check", str(f), "--set", "services.api.handler.calls.db.timeout=0.001"])
    assert check.exit_code == 0, check.output


def test_sweep_axes_take_names() -> None:
    from simres.experiments.design import plan_sweep, validate_spec

    spec = validate_spec({"scenario": _api(CALLS), "grid": {"services.api.handler.calls.cache.timeout": [0.01, 0.2]}})
    plan = plan_sweep(spec)
    assert [c["services.api.handler.calls.cache.timeout"] for c in plan.combinations] == [0.01, 0.2]
    bad = validate_spec({"scenario": _api(CALLS), "grid": {"services.api.handler.calls.cach.timeout": [0.01]}})
    with pytest.raises(SweepError, match=r"services\.api\.handler\.calls\.cach: unknown call 'cach' \(did you mean"):
        plan_sweep(bad)


def test_preflight_names_calls_by_name_when_unique() -> None:
    from simres.scenario.preflight import preflight

    sc = load_scenario(_api([{"to": "db", "timeout": 5.0, "deadline": 1.0}]))
    lines = [str(f) for f in preflight(sc)]
    assert any("services.api.handler.calls.db" in line for line in lines), lines


def test_a_whole_call_can_be_replaced_by_name() -> None:
    sc = load_scenario(_api(CALLS), overrides={"services.api.handler.calls.cache": {"to": "cache", "timeout": 0.05}})
    calls = sc.services["api"].handler.calls
    assert [(c.to, c.timeout, c.critical) for c in calls] == [("db", 0.5, True), ("cache", 0.05, True)]
