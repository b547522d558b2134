"""Bad scenarios give one line naming the file, the field path and what was expected."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from simres.cli import main
from simres.errors import ScenarioError
from simres.scenario.loading import load_scenario

from .conftest import DATA

BAD = DATA / "bad"

CASES = [
    ("workers_zero.yaml", "services.api.workers: must be >= 1, got 0"),
    ("typo_field.yaml", "services.api.wokers: unknown field (did you mean 'workers'?)"),
    ("unknown_target.yaml", "clients.web.target: unknown service 'apii', expected one of: api (did you mean 'api'?)"),
    ("unknown_dist.yaml", "services.api.service_time.kind: unknown kind 'expo'"),
    ("exp_both.yaml", "services.api.service_time: give exactly one of 'mean' or 'rate'"),
    ("negative_duration.yaml", "duration: must be > 0, got -5"),
    ("warmup_too_long.yaml", "warmup: must be < duration (10.0), got 10.0"),
    ("cycle.yaml", "services: downstream calls form a cycle: a -> b -> a"),
    ("bad_yaml.yaml", "invalid YAML"),
    ("top_list.yaml", "must be a mapping of scenario fields at the top level"),
    ("missing_arrival.yaml", "clients.web.arrival: required field is missing"),
    ("error_rate.yaml", "services.api.error_rate: must be <= 1, got 1.5"),
    ("discipline.yaml", "services.api.queue.discipline: must be one of 'fifo', 'lifo' or 'adaptive_lifo', got 'stack'"),
    ("fault_service.yaml", "faults.0.service: unknown service 'dbx'"),
    ("workers_string.yaml", "services.api.workers: must be a whole number, got 'many'"),
    ("no_services.yaml", "services: must have at least 1 item(s)"),
]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_file_message(name: str, expected: str) -> None:
    path = BAD / name
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(str(path)), msg
    assert expected in msg, msg


@pytest.mark.parametrize(("name", "expected"), CASES[:4], ids=[c[0] for c in CASES[:4]])
def test_cli_exit_2_one_line(name: str, expected: str) -> None:
    result = CliRunner().invoke(main, ["run", str(BAD / name)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert expected in result.output
    assert "Traceback" not in result.output


def test_cli_subprocess_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "simres.cli", "run", str(BAD / "typo_field.yaml")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: ")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_override_typo_in_name_is_an_error() -> None:
    base = {"services": {"db": {}}, "clients": {"web": {"target": "db", "arrival": {"kind": "poisson", "rate": 1}}}}
    with pytest.raises(ScenarioError, match=r"services.dbb: unknown key 'dbb' \(did you mean 'db'\?\)"):
        load_scenario(base, overrides=["services.dbb.workers=2"])


def test_override_typo_in_field_is_an_error() -> None:
    base = {"services": {"db": {}}, "clients": {"web": {"target": "db", "arrival": {"kind": "poisson", "rate": 1}}}}
    with pytest.raises(ScenarioError, match=r"services.db.wrkers: unknown field \(did you mean 'workers'\?\)"):
        load_scenario(base, overrides={"services.db.wrkers": 2})


def test_override_is_type_checked() -> None:
    base = {"services": {"db": {}}, "clients": {"web": {"target": "db", "arrival": {"kind": "poisson", "rate": 1}}}}
    with pytest.raises(ScenarioError, match=r"services\.db\.workers: must be >= 1, got -1"):
        load_scenario(base, overrides=["services.db.workers=-1"])
    with pytest.raises(ScenarioError, match="expected KEY=VALUE"):
        load_scenario(base, overrides=["services.db.workers"])


def test_override_applies_and_creates_optional_sections() -> None:
    base = {"services": {"db": {}}, "clients": {"web": {"target": "db", "arrival": {"kind": "poisson", "rate": 1}}}}
    sc = load_scenario(base, overrides=["services.db.workers=4", "clients.web.retry.max_attempts=5"])
    assert sc.services["db"].workers == 4
    assert sc.clients["web"].retry is not None and sc.clients["web"].retry.max_attempts == 5


def test_unknown_bundled_name() -> None:
    with pytest.raises(ScenarioError, match="no such file or bundled scenario"):
        load_scenario("no-such-scenario-anywhere")


def test_unknown_variant() -> None:
    base = {"services": {"db": {}}, "clients": {"web": {"target": "db", "arrival": {"kind": "poisson", "rate": 1}}},
            "variants": {"fast": {"services.db.workers": 2}}}
    with pytest.raises(ScenarioError, match=r"unknown variant 'slow' \(variants: fast\)"):
        load_scenario(base, variant="slow")
    assert load_scenario(base, variant="fast").services["db"].workers == 2


def test_resolved_scenario_round_trips() -> None:
    from simres.scenario.loading import resolved_dict, validate

    sc = load_scenario({"services": {"db": {"service_time": {"kind": "lognormal", "median": 0.01, "p99": 0.1}}},
                        "clients": {"web": {"target": "db", "arrival": {"kind": "poisson", "rate": 1}}}})
    again = validate(resolved_dict(sc))
    assert again == sc


# ---------------------------------------------------------------------------- issue 14: every class of bad input

INPUT_CASES = [
    # (file, expected fragment): one small bad file per class, each an error naming the field
    ("duplicate_key.yaml", "line 4, column 5: invalid YAML: duplicate key 'workers' (first given at line 3)"),
    ("variant_typo.yaml", "variants.typo: services.api.wrkers: unknown field (did you mean 'workers'?)"),
    ("inf_duration.yaml", "duration: must be a finite number, got inf"),
    ("inf_slo.yaml", "slo: must be a finite number, got inf"),
    ("normal_negative_mean.yaml", "services.api.service_time: mean: must be >= -3 x sd"),
    ("deep_nesting.yaml", "invalid YAML: nested deeper than 64 levels"),
    ("not_utf8.yaml", "line 1, column 10: not UTF-8 text (byte 0xe9)"),
    ("alias_bomb.yaml", "invalid YAML: the document expands to more than 100,000 values"),
    ("count_zero.yaml", "clients.web.count: must be >= 1, got 0"),
    ("near_miss_key.yaml", "services.api.service_time.mean_: unknown field (did you mean 'mean'?)"),
    ("workers_bool.yaml", "services.api.workers: must be a whole number, got true"),
    ("rate_quoted.yaml", "clients.web.arrival.rate: must be a number, got '5' (a quoted string"),
    ("client_starts_late.yaml", "clients.web.start: must be < duration (10.0), got 20.0; arrivals end at duration, "
                                "so no client would send"),
    ("partition_empty_index.yaml", "faults.0.to: unknown instance 'api/', expected api/0 to api/0"),
    ("binary_name.yaml", "line 1, column 7: invalid YAML: binary data (!!binary) is not allowed"),
    ("huge_instances.yaml", "services.api.instances: must be <= 10000, got 1000000000000"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("name", "expected"), INPUT_CASES, ids=[c[0] for c in INPUT_CASES])
def test_bad_input_class(name: str, expected: str) -> None:
    path = BAD / name
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) <= 500, msg
    assert msg.startswith(str(path)), msg
    assert expected in msg, msg


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", [c[0] for c in INPUT_CASES])
def test_bad_input_class_cli_show_one_line(name: str) -> None:
    result = CliRunner().invoke(main, ["show", str(BAD / name)])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    assert "Traceback" not in result.output


def _base(**extra: object) -> dict[str, object]:
    return {"services": {"api": {}}, "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 1}}},
            **extra}


def test_duplicate_key_in_override_value_is_an_error() -> None:
    with pytest.raises(ScenarioError, match="duplicate key 'a'"):
        load_scenario(_base(), overrides=["variants={a: {}, a: {}}"])


def test_merge_keys_may_be_overridden() -> None:
    from simres.scenario.yamlio import loads

    assert loads("base: &b {x: 1, y: 2}\nuse: {<<: *b, x: 3}")["use"] == {"x": 3, "y": 2}


def test_long_call_chain_validates_without_recursion() -> None:
    sc = load_scenario(BAD / "long_chain.yaml")
    assert len(sc.services) == 1500


def test_long_cycle_is_found_iteratively() -> None:
    n = 3000
    services = {f"s{i}": {"handler": {"calls": [{"to": f"s{(i + 1) % n}"}]}} for i in range(n)}
    data = {"services": services, "clients": {"web": {"target": "s0", "arrival": {"kind": "poisson", "rate": 1}}}}
    with pytest.raises(ScenarioError, match=r"downstream calls form a cycle: s0 -> s1 -> .* -> s0"):
        load_scenario(data)


def test_deep_python_mapping_is_bounded() -> None:
    deep: object = 1
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(ScenarioError, match="nested deeper than 64 levels"):
        load_scenario(_base(variants={"v": {"x": deep}}))


def test_nan_and_inf_rejected_everywhere() -> None:
    for path in ("drain", "clients.web.arrival.rate", "services.api.service_time.mean", "slo"):
        for bad in (float("inf"), float("nan"), "-.inf"):
            with pytest.raises(ScenarioError, match="must be a finite number"):
                load_scenario(_base(), overrides=[f"{path}={bad}"] if isinstance(bad, str) else {path: bad})


def test_load_fault_factor_inf_is_rejected() -> None:
    with pytest.raises(ScenarioError, match=r"faults\.0\.factor: must be a finite number"):
        load_scenario(_base(faults=[{"kind": "load", "client": "web", "at": 1, "factor": float("inf")}]))


@pytest.mark.parametrize("value", ["true", "'5'", "yes", "[1]"])
def test_override_values_are_type_strict(value: str) -> None:
    with pytest.raises(ScenarioError, match=r"services\.api\.workers: must be a whole number"):
        load_scenario(_base(), overrides=[f"services.api.workers={value}"])


def test_ints_are_numbers_and_numpy_scalars_are_plain() -> None:
    import numpy as np

    sc = load_scenario(_base(), overrides={"clients.web.arrival.rate": 5, "services.api.workers": np.int64(3),
                                           "duration": np.float64(20.0)})
    assert sc.clients["web"].arrival.rate == 5.0 and sc.services["api"].workers == 3 and sc.duration == 20.0


def test_bool_field_rejects_number_and_string_field_rejects_number() -> None:
    with pytest.raises(ScenarioError, match=r"clients\.web\.retry: .*|services\.api\.handler\.calls\.0\.critical"):
        load_scenario(_base(services={"api": {"handler": {"calls": [{"to": "db", "critical": 1}]}}, "db": {}}))
    with pytest.raises(ScenarioError, match=r"name: must be a string"):
        load_scenario(_base(name=5))


def test_policy_fields_are_type_strict() -> None:
    with pytest.raises(ScenarioError, match=r"clients\.web\.retry\.max_attempts: must be a whole number, got true"):
        load_scenario(_base(), overrides=["clients.web.retry.max_attempts=true"])


def test_field_named_like_a_kind_tag_keeps_its_name() -> None:
    with pytest.raises(ScenarioError, match=r"services\.api\.queue\.capacity: must be >= 0, got -1"):
        load_scenario(_base(), overrides=["services.api.queue.capacity=-1"])
    with pytest.raises(ScenarioError, match=r"services\.api\.service_time\.mean: must be > 0"):
        load_scenario(_base(), overrides=["services.api.service_time.mean=0"])


def test_normal_with_zero_sd_and_negative_mean_is_refused() -> None:
    from simres.dists import Normal

    with pytest.raises(ValueError, match="mean: must be >= 0 when sd is 0"):
        Normal(mean=-1, sd=0)
    assert Normal(mean=-2.9, sd=1).sample(np.random.default_rng(1), 100).min() >= 0


def test_lognormal_whose_mean_overflows_is_refused() -> None:
    with pytest.raises(ScenarioError, match="infinite or undefined mean"):
        load_scenario(_base(), overrides={"services.api.service_time": {"kind": "lognormal", "mu": 800, "sigma": 1}})


def test_fault_after_the_run_warns_on_one_line() -> None:
    # A warning, not an error: a shortened run (smoke test, sweep over duration) drops later faults.
    result = CliRunner().invoke(main, ["show", str(BAD / "fault_after_run.yaml")])
    assert result.exit_code == 0
    assert ("warning: faults.0.at: 500.0 is after the run ends (duration + drain = 20.0); the fault never happens\n"
            in result.output)


def test_one_late_client_among_others_warns() -> None:
    from simres.errors import ScenarioWarning

    data = _base(duration=10)
    data["clients"]["late"] = {"target": "api", "start": 10, "arrival": {"kind": "poisson", "rate": 1}}
    with pytest.warns(ScenarioWarning, match=r"clients\.late\.start: .*so this client never sends"):
        load_scenario(data)


def test_fault_within_drain_or_warmup_warns() -> None:
    from simres.errors import ScenarioWarning

    with pytest.warns(ScenarioWarning, match=r"faults\.0: starts at 65.0, after arrivals end"):
        load_scenario(_base(faults=[{"kind": "crash", "service": "api", "at": 65, "duration": 1}]))
    with pytest.warns(ScenarioWarning, match=r"faults\.0: ends at 2.0, within the warmup"):
        load_scenario(_base(warmup=5, faults=[{"kind": "crash", "service": "api", "at": 1, "duration": 1}]))


def test_client_node_with_instance_and_link_index_are_checked() -> None:
    with pytest.raises(ScenarioError, match=r"network\.links\.0\.to: unknown instance 'api/7'"):
        load_scenario(_base(network={"links": [{"from": "web", "to": "api/7"}]}))
    with pytest.raises(ScenarioError, match=r"only a service has instances \('web' is a client\)"):
        load_scenario(_base(faults=[{"kind": "partition", "from": ["web/0"], "to": ["api"], "at": 1}]))


def test_unquoted_date_is_a_string_and_timestamp_tag_refused() -> None:
    assert load_scenario(_base(), overrides=["name=2024-01-01"]).name == "2024-01-01"
    with pytest.raises(ScenarioError, match=r"a timestamp is not allowed"):
        load_scenario(_base(), overrides=["name=!!timestamp 2024-01-01"])


def test_too_many_faults_is_refused_quickly() -> None:
    import time

    faults = [{"kind": "errors", "service": "api", "at": 1, "duration": 1, "probability": 0.1}] * 100_000
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"more than 100,000 values|faults: must have at most 1000"):
        load_scenario(_base(faults=faults))
    assert time.perf_counter() - t0 < 10


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(_base(), overrides={"services.api.workers": "x" * 100_000})
    assert len(str(info.value)) < 300


def test_bundled_scenarios_and_variants_still_load() -> None:
    from simres.scenario.loading import bundled_scenarios

    for name in bundled_scenarios():
        sc = load_scenario(name)
        for v in sc.variants:
            load_scenario(name, variant=v)


def test_exponent_without_a_dot_is_a_number() -> None:
    from simres.scenario.yamlio import loads

    assert loads("a: 1e6\nb: -2.5E-3\nc: 1e\nd: 10") == {"a": 1e6, "b": -0.0025, "c": "1e", "d": 10}
    assert load_scenario(_base(), overrides=["duration=1e3"]).duration == 1000.0


@pytest.mark.timeout(30)
def test_long_run_reports_progress_early() -> None:
    import time

    import simres

    class Seen(Exception):
        pass

    calls: list[tuple[float, float]] = []

    def progress(now: float, end: float) -> None:
        calls.append((now, end))
        raise Seen

    t0 = time.perf_counter()
    with pytest.raises(Seen):
        simres.run("baseline", overrides={"duration": 1e6}, progress=progress)
    (now, end), = calls
    assert now <= end / 10_000 + 1e-6 and time.perf_counter() - t0 < 30  # the whole run: hours


def test_preset_must_be_a_name() -> None:
    # found by tests/test_fuzz_scenarios.py: a list as a preset name raised TypeError in the policy
    with pytest.raises(ScenarioError, match=r"clients\.web\.retry\.preset: must be a preset name \(a string\)"):
        load_scenario(_base(), overrides={"clients.web.retry": {"preset": ["aws"]}})


@pytest.mark.parametrize(("override", "expected"), [
    ("duration=1e12", r"timeline_step: \(duration \+ drain\) / timeline_step is 1e\+12 buckets, at most 10,000,000"),
    ("clients.web.arrival.rate=1e12", r"clients\.web: about 6e\+13 arrivals expected"),
])
def test_absurd_run_sizes_are_refused(override: str, expected: str) -> None:
    with pytest.raises(ScenarioError, match=expected):
        load_scenario(_base(), overrides=[override])


def test_huge_yaml_document_is_refused_early(tmp_path) -> None:
    import time

    path = tmp_path / "faults.yaml"
    lines = ["services: {api: {}}", "clients: {web: {target: api, arrival: {kind: poisson, rate: 1}}}", "faults:"]
    lines += ["  - {kind: errors, service: api, at: 1, duration: 1, probability: 0.1}"] * 30_000
    path.write_text("\n".join(lines))
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="invalid YAML: more than 100,000 values in the document"):
        load_scenario(path)
    assert time.perf_counter() - t0 < 15


def test_closed_loop_where_nothing_takes_time_is_refused() -> None:
    # it would spin at t=0 forever, without a word
    with pytest.raises(ScenarioError, match=r"clients\.web\.arrival\.think_time: must be > 0 when the network latency"):
        load_scenario(BAD / "closed_loop_zero_time.yaml")
    ok = {"duration": 5, "services": {"api": {"service_time": 0}},
          "clients": {"web": {"target": "api", "arrival": {"kind": "closed", "users": 1, "think_time": 0.1}}}}
    load_scenario(ok)


@pytest.mark.parametrize("preset", [["aws"], 3, {"a": 1}])
def test_apply_preset_itself_refuses_a_non_string_preset(preset: object) -> None:
    # the policy layer guards itself too, not only the scenario loader (#14 leftover)
    from simres.policies import RetryConfig
    from simres.policies._base import apply_preset

    with pytest.raises(ValueError, match=r"^preset: must be a retry preset name \(a string\), got "):
        apply_preset("retry", {"preset": preset})
    with pytest.raises(ValueError, match=r"preset: must be a retry preset name \(a string\)"):
        RetryConfig.model_validate({"preset": preset})


@pytest.mark.parametrize(("data", "expected"), [
    ({"reps": True}, "sweep: reps: must be a whole number, got true"),
    ({"reps": "3"}, "sweep: reps: must be a whole number, got '3' (a quoted string; write the number without "
                    "quotes)"),
    ({"seed": False}, "sweep: seed: must be a whole number, got false"),
    ({"grid": {}, "sample": {"n": True, "ranges": {"services.db.workers": {"low": 1, "high": 4}}}},
     "sweep: sample.n: must be a whole number, got true"),
    ({"grid": {}, "sample": {"n": 2, "ranges": {"services.db.workers": {"low": 1, "high": 4, "log": 1}}}},
     "sweep: sample.ranges.services.db.workers.log: must be true or false, got 1"),
])
def test_sweep_files_are_type_strict_like_scenario_files(data: dict, expected: str) -> None:
    from simres.errors import SweepError
    from simres.experiments.design import validate_spec

    with pytest.raises(SweepError) as e:
        validate_spec({"scenario": "baseline", "grid": {"services.db.workers": [2, 4]}, **data})
    assert str(e.value) == expected
    # ints stay numbers where floats are expected, as in scenario files
    ranges = {"services.db.workers": {"low": 1, "high": 4}}
    assert validate_spec({"scenario": "baseline", "sample": {"n": 2, "ranges": ranges}}).sample.ranges[
        "services.db.workers"].low == 1.0


def test_overrides_never_write_into_the_callers_objects() -> None:
    """An override whose value is a mapping, then a deeper override under it: the second
    writes into the scenario's copy, not into the mapping the caller passed (a tuner or a
    sweep that reuses one value for many points would otherwise see it change)."""
    base = {"services": {"db": {}}, "clients": {"web": {"target": "db", "arrival": {"kind": "poisson", "rate": 1}}}}
    retry = {"max_attempts": 3}
    sc = load_scenario(base, overrides={"clients.web.retry": retry, "clients.web.retry.max_attempts": 5})
    assert sc.clients["web"].retry.max_attempts == 5
    assert retry == {"max_attempts": 3}
