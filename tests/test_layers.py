"""The layers of docs/architecture.md, kept honest: no import ever runs back up.

Every module under ``simres/`` is parsed (imports at the top, inside functions and under
``TYPE_CHECKING`` alike) and each ``simres.*`` import is checked against the layer table.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "simres"

FOUNDATIONS = {"simres", "simres.errors", "simres.outcomes", "simres.dists", "simres.datafiles", "simres.rng",
               "simres.clock", "simres.progress"}

ALLOWED: dict[str, set[str]] = {
    "foundations": {"foundations"},
    "policies": {"foundations", "policies"},
    "metrics": {"foundations", "metrics"},
    "scenario": {"foundations", "policies", "scenario"},
    "model": {"foundations", "policies", "metrics", "scenario", "model"},
    "experiments": {"foundations", "policies", "metrics", "scenario", "model", "experiments"},
    "reporting": {"foundations", "policies", "metrics", "scenario", "model", "experiments", "reporting"},
    "realtime": {"foundations", "policies", "realtime"},
    "export": {"foundations", "policies", "export"},
    "cli": {"foundations", "policies", "metrics", "scenario", "model", "experiments", "reporting", "realtime",
            "export", "cli"},
}
"""Which layers a module of each layer may import (itself included)."""

NO_SIMPY = {"foundations", "policies", "metrics", "scenario", "realtime", "export"}
"""Layers that must not import SimPy: the policies are driven by the model and by real calls alike."""


def layer_of(module: str) -> str:
    """The layer of a dotted module name under ``simres``."""
    if module in FOUNDATIONS:
        return "foundations"
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in ALLOWED:
        return parts[1]
    raise AssertionError(f"{module}: not in any layer; add it to the table in tests/test_layers.py and "
                         "docs/architecture.md")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """``(line, imported module)`` for every import in ``source``, relative ones resolved."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield node.lineno, name
            for alias in node.names:  # `from simres import plots` imports the submodule simres.plots
                if name == "simres" and alias.name != "__version__":
                    yield node.lineno, f"simres.{alias.name}"


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Every import in ``source`` that breaks the layer rules for ``module``."""
    mine = layer_of(module)
    out = []
    for line, name in imports_of(source, module, is_package=is_package):
        if name == "simpy" or name.startswith("simpy."):
            if mine in NO_SIMPY:
                out.append(f"{module}:{line} imports {name} (layer {mine} must not use SimPy)")
            continue
        if not name.startswith("simres"):
            continue
        target = layer_of(name)
        if target not in ALLOWED[mine]:
            out.append(f"{module}:{line} imports {name} (layer {mine} may not import layer {target})")
    return out


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", all_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_back_up(path: Path) -> None:
    module = module_name(path)
    assert violations(path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py") == []


def test_every_module_has_a_layer() -> None:
    layers = {layer_of(module_name(p)) for p in all_modules()}
    assert layers == set(ALLOWED)


def test_the_check_catches_a_policy_that_imports_the_model() -> None:
    bad = "from simres.model.world import build\n"
    assert violations(bad, "simres.policies.retry") == [
        "simres.policies.retry:1 imports simres.model.world (layer policies may not import layer model)"]
    lazy = "def f():\n    import simpy\n"
    assert violations(lazy, "simres.policies.breaker")[0].endswith("(layer policies must not use SimPy)")
    assert violations("from simres.reporting import plots\n", "simres.experiments.runs")
    assert violations("from simres.experiments.runs import run\n", "simres.realtime.resilient")
    assert not violations("from simres.policies import RetryConfig\n", "simres.scenario.services")
    assert violations("from ..model import world\n", "simres.metrics.summary")


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(doc) > 200, f"{init.parent.name}/__init__.py needs a docstring saying what it owns"
        assert "import" in doc, f"{init.parent.name}/__init__.py: say what the package may import"
