"""Package rules: documented fields, docs in sync, exports, presets, and no SimPy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel, TypeAdapter

import simres.policies as policies
from simres.policies import PRESETS, preset_names
from simres.policies._doctables import CONFIGS, blocks, field_table, render
from simres.policies.budget import BudgetConfig

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "policies.md"
PACKAGE = ROOT / "simres" / "policies"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_field_is_described(name: str) -> None:
    for field, info in CONFIGS[name].model_fields.items():
        assert info.description and len(info.description) > 10, f"{name}.{field}"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_is_frozen_and_strict(name: str) -> None:
    config = CONFIGS[name].model_config
    assert config.get("frozen") is True and config.get("extra") == "forbid"


def test_docs_tables_are_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "run: python -m simres.policies._doctables docs/policies.md"
    assert set(blocks(text)) == set(CONFIGS)
    for name, table in blocks(text).items():
        assert table == field_table(CONFIGS[name])


def test_every_field_name_appears_in_the_docs() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, model in CONFIGS.items():
        for field in model.model_fields:
            assert f"`{field}`" in text, f"{name}.{field} missing from docs/policies.md"


def test_every_preset_is_in_the_docs() -> None:
    text = DOC.read_text(encoding="utf-8")
    for group, table in PRESETS.items():
        for name in table:
            assert f"| {group} | `{name}` |" in text, f"{group} preset {name}"


def test_all_exports_exist() -> None:
    for name in policies.__all__:
        assert hasattr(policies, name), name
    assert len(set(policies.__all__)) == len(policies.__all__)


def test_no_simpy_or_clock_in_policies() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for module in names:
                assert not module.startswith("simpy"), path.name
                assert module not in ("time", "random", "simres.model"), path.name


MODELS_BY_GROUP: dict[str, type[BaseModel] | TypeAdapter] = {
    "retry": policies.RetryConfig,
    "budget": TypeAdapter(BudgetConfig),
    "breaker": policies.BreakerConfig,
    "bulkhead": policies.BulkheadConfig,
    "throttle": policies.ThrottleConfig,
    "limit": policies.LimitConfig,
    "hedge": policies.HedgeConfig,
    "outlier": policies.OutlierConfig,
}


@pytest.mark.parametrize(("group", "name"), [(g, n) for g in PRESETS for n in PRESETS[g]])
def test_every_preset_validates(group: str, name: str) -> None:
    model = MODELS_BY_GROUP[group]
    config = model.validate_python({"preset": name}) if isinstance(model, TypeAdapter) \
        else model.model_validate({"preset": name})
    assert config.preset == name


def test_preset_names() -> None:
    assert preset_names("breaker") == ("cockatiel", "cockatiel_sampling", "finagle", "opossum", "polly",
                                      "pybreaker", "resilience4j")
