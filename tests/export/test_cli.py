"""`simres export-config`: from a scenario or a sweep's winner, the header, stderr notes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from simres.cli import main
from tests.conftest import single_queue


def tiny(**client: Any) -> dict[str, Any]:
    sc = single_queue(rate=20, mean=0.04, workers=2, duration=4, warmup=0.5)
    sc["clients"]["web"].update(client)
    return sc


@pytest.fixture()
def scenario(tmp_path: Path) -> Path:
    sc = tiny(timeout=0.5, retry={"max_attempts": 3, "jitter": "none", "backoff": {"base": 0.05, "cap": 1}})
    sc["services"]["api"]["handler"] = {"calls": [{"to": "db", "timeout": 0.2}]}
    sc["services"]["db"] = {"workers": 2}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(sc))
    return p


def invoke(*argv: str) -> Any:
    return CliRunner().invoke(main, ["export-config", *argv])


def test_a_scenario_call_is_written_with_a_measured_header(scenario: Path) -> None:
    r = invoke(str(scenario), "--library", "tenacity", "--call", "web->api", "-n", "2", "-j", "1", "-q")
    assert r.exit_code == 0, r.output
    assert f"# scenario: {scenario}; call web->api" in r.stdout
    assert "#   success_rate" in r.stdout and "#   latency_p99" in r.stdout and "#   tries_per_request" in r.stdout
    assert "2 replication(s)" in r.stdout
    ns: dict[str, Any] = {}
    exec(r.stdout, ns)
    assert ns["retrying"].stop.max_attempt_number == 3
    assert "not expressible in tenacity: timeout: 0.5" in r.stderr  # named on stderr too
    assert "#   - timeout: 0.5" in r.stdout


def test_no_measure_and_an_output_file(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "grpc.json"
    r = invoke(str(scenario), "--library", "grpc", "--call", "web->api", "--no-measure", "-o", str(out),
               "--set", "clients.web.retry.max_attempts=5")
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["methodConfig"][0]["retryPolicy"]["maxAttempts"] == 5
    assert "measured: not run (--no-measure)" in data["_comment"]
    assert any("--set clients.web.retry.max_attempts=5" in line for line in data["_comment"])


def test_the_only_call_with_a_policy_needs_no_call_flag(tmp_path: Path) -> None:
    p = tmp_path / "one.yaml"
    p.write_text(yaml.safe_dump(tiny(breaker={"preset": "pybreaker", "failure_threshold": 3})))
    r = invoke(str(p), "--library", "pybreaker", "--no-measure")
    assert r.exit_code == 0, r.output
    ns: dict[str, Any] = {}
    exec(r.stdout, ns)
    assert ns["breaker"].fail_max == 3 and r.stderr == ""


def test_a_sweeps_winner_is_exported_with_its_measured_result(tmp_path: Path) -> None:
    from simres.experiments.executors import SerialExecutor
    from simres.experiments.sweeping import sweep

    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(tiny(timeout=0.1, retry={"max_attempts": 1, "jitter": "none"})))
    out = tmp_path / "results"
    sweep(str(p), grid={"clients.web.retry.max_attempts": [1, 3]}, reps=2, executor=SerialExecutor(), out=out)
    r = invoke(str(out), "--library", "urllib3", "--maximize", "success_rate")
    assert r.exit_code == 0, r.output
    ns: dict[str, Any] = {}
    exec(r.stdout, ns)
    assert ns["retry"].total == 2  # the winner: 3 tries
    assert "# sweep: " in r.stdout and "maximize success_rate" in r.stdout
    assert "the sweep's runs of this setting, 2 replication(s)" in r.stdout
    assert "clients.web.retry.max_attempts=3" in r.stdout


BAD = [
    (["baseline", "--library", "hystrix"], "Invalid value for '--library': 'hystrix' is not one of"),
    (["baseline", "--library", "envoy", "--no-measure"], "--call: baseline has 3 calls with policies; expected one "
                                                         "of: web->api, api->db, api->recommendations"),
    (["baseline", "--library", "envoy", "--call", "api->nope"], "--call 'api->nope': no such call in baseline; "
                                                                "expected CALLER->TARGET, one of: web->api"),
    (["baseline", "--library", "pybreaker", "--call", "api->db"], "--library pybreaker: pybreaker exports a circuit "
                                                                  "breaker; this call has none (call api->db)"),
    (["baseline", "--library", "envoy", "--minimize", "latency_p99"], "--minimize: only with sweep results"),
    (["baseline", "--library", "envoy", "--call", "api->db", "--variant", "nope"], "unknown variant 'nope'"),
]


def test_a_directory_without_sweep_results_is_one_line(tmp_path: Path) -> None:
    r = invoke(str(tmp_path), "--library", "envoy")
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert "this holds no sweep results" in r.output


@pytest.mark.parametrize(("argv", "expected"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2(argv: list[str], expected: str) -> None:
    r = invoke(*argv)
    assert r.exit_code == 2, r.output
    assert r.output.count("\n") == 1 and r.output.startswith("error: "), r.output
    assert expected in r.output, r.output
    assert "Traceback" not in r.output


def test_the_example_in_docs_export_md_is_what_the_command_prints() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "export.md").read_text(encoding="utf-8")
    r = invoke("baseline", "--call", "api->db", "--library", "urllib3", "-n", "2", "-j", "1", "-q")
    assert r.exit_code == 0, r.output
    assert f"```python\n{r.stdout}```" in doc
