"""Bad scenarios give one line naming the file, the field path and what was expected."""

from __future__ import annotations

import subprocess
import sys

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
    ("discipline.yaml", "services.api.queue.discipline: must be one of 'fifo' or 'lifo', got 'stack'"),
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
