"""Every section of the scenario reference has a YAML example, and every example validates."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from simres.scenario.checks import check_strict_types
from simres.scenario.loading import load_scenario
from simres.scenario.reference import EXAMPLES, _collect, scenario_reference_markdown
from simres.scenario.schema import Scenario
from simres.scenario.services import HandlerConfig
from simres.scenario.yamlio import loads

MODELS = {m.__name__: m for m in _collect(Scenario)}


def test_every_section_has_an_example_and_no_example_is_orphaned() -> None:
    assert sorted(EXAMPLES) == sorted(MODELS)
    text = scenario_reference_markdown()
    for name, example in EXAMPLES.items():
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert f"```yaml\n{example.rstrip()}\n```" in section, name


def _validate(model: type[BaseModel], item: Any) -> BaseModel:
    obj = model.model_validate(item)
    check_strict_types(obj, item)  # as strict as a scenario file: no coerced types
    if isinstance(obj, HandlerConfig):
        obj.check("handler")  # names and steps are checked with the whole scenario otherwise
    return obj


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_reference_example_validates_against_its_model(name: str) -> None:
    data = loads(EXAMPLES[name])  # the project's strict YAML reader (duplicate keys are errors)
    if name == "Scenario":
        sc = load_scenario(data)  # a whole file: references, cycles and every variant checked
        for variant in sc.variants:
            load_scenario(data, variant=variant)
        return
    assert isinstance(data, dict) and len(data) == 1, "an example is one key: where the section goes"
    (value,) = data.values()
    items = value if isinstance(value, list) else [value]
    assert items
    for item in items:
        _validate(MODELS[name], item)


def test_an_example_that_rots_fails() -> None:
    # the check is real: a renamed field in an example is caught
    bad = loads(EXAMPLES["BreakerConfig"].replace("open_for", "open_four"))
    with pytest.raises(ValueError, match="open_four"):
        _validate(MODELS["BreakerConfig"], bad["breaker"])
