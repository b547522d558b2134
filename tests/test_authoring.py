"""simres init writes starter scenarios that run; simres schema describes the files editors see."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

import simres
from simres.cli import main
from simres.cli.authoring import scenario_json_schema, templates
from simres.scenario import bundled_scenarios


@pytest.mark.parametrize("name", sorted(templates()))
def test_every_template_is_written_and_runs_healthy_before_its_fault(tmp_path, name: str) -> None:
    out = tmp_path / f"{name}.yaml"
    res = CliRunner().invoke(main, ["init", name, "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("#") and text.count("#") > 5  # commented
    data = yaml.safe_load(text)
    first_fault = min(f["at"] for f in data["faults"])
    short = {**data, "duration": first_fault, "faults": []}
    for variant in data["variants"]:
        r = simres.run(short, seed=1, variant=variant)
        assert r.summary["success_rate"] > 0.99, (name, variant)  # a healthy system before the fault
        assert r.summary["stable_at_end"] == 1.0


def test_init_refuses_to_overwrite_and_names_unknown_templates(tmp_path) -> None:
    out = tmp_path / "s.yaml"
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--out", str(out)]).exit_code == 0
    again = runner.invoke(main, ["init", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(main, ["init", "nope", "--out", str(tmp_path / "x.yaml")])
    assert bad.exit_code == 2 and "fan-out" in bad.output


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_the_json_schema_accepts_every_bundled_scenario(name: str) -> None:
    data = yaml.safe_load(bundled_scenarios()[name].read_text(encoding="utf-8"))
    jsonschema.validate(data, scenario_json_schema())


def test_the_json_schema_rejects_what_the_loader_rejects() -> None:
    schema = scenario_json_schema()
    good = yaml.safe_load(bundled_scenarios()["baseline"].read_text(encoding="utf-8"))
    typo = {**good, "services": {**good["services"], "db": {**good["services"]["db"], "workerz": 3}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(typo, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "duration": -1}, schema)


def test_schema_command_prints_json(tmp_path) -> None:
    res = CliRunner().invoke(main, ["schema"])
    assert res.exit_code == 0
    assert json.loads(res.output)["title"] == "simres scenario"


def test_the_json_schema_accepts_named_calls_and_mixed_steps() -> None:
    from simres.scenario.loading import load_scenario

    calls = [{"to": "auth"}, {"to": "db", "name": "read"}, {"to": "db", "name": "write"}]
    sc = {"services": {"api": {"handler": {"calls": calls, "steps": ["auth", ["read", "write"]]}},
                       "auth": {}, "db": {}},
          "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 5}}}}
    load_scenario(sc)
    schema = scenario_json_schema()
    jsonschema.validate(sc, schema)
    bad = {**sc, "services": {**sc["services"], "api": {"handler": {"calls": calls, "steps": [3]}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
