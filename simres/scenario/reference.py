"""Generate ``docs/scenario-reference.md`` from the pydantic schema itself.

The reference cannot drift from the code: a test regenerates it and compares. Run
``python -m simres.scenario.reference > docs/scenario-reference.md`` after changing the schema.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from simres.scenario.schema import Scenario

_INTRO = """# Scenario reference

Generated from the schema by `python -m simres.scenario.reference`; do not edit by hand.

A scenario is a YAML mapping validated by these models. Every model rejects unknown keys,
so a typo is an error naming the field. `simres show SCENARIO` prints a scenario with every
default filled in. Durations and latencies are in seconds, rates in requests per second.

Start from a commented template (`simres init three-tier`, `fan-out` or `batch-herd`); for
completion and checking in an editor, point its YAML support at `simres schema --out
simres.schema.json` (the JSON Schema of these same models).

Any field can be overridden from the CLI or Python with a dotted path:
`--set services.db.workers=4`, `--set clients.web.retry.max_attempts=5`,
`--set faults.0.duration=30` (list items by index).

**One order everywhere.** A run resolves its scenario as: the scenario file, then the
selected variant's overrides, then the `--set` flags (or `overrides=` in Python), so the
explicit flag wins. `run`, `show`, `compare`, `sweep`, `report` and the Python API
(`simres.run`, `simres.replicate`, `simres.compare`, `simres.sweep`,
`simres.build_report`) all apply it; a sweep applies its axes last, after `--set`.
`simres show SCENARIO --variant V --set K=X` prints exactly what `simres run` with the same
arguments simulates.

A *distribution* (`Dist`) is `{kind: ..., ...}` or a bare number (a constant); the kinds
are [Exponential](#exponential), [Constant](#constant), [Uniform](#uniform),
[Normal](#normal) (truncated or folded at 0), [LogNormal](#lognormal), [Gamma](#gamma) (`gamma` or
`erlang`), [Empirical](#empirical) and [Mixture](#mixture).
"""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [_type_name(a) for a in args if a is not type(None)]
        if len(names) > 3 and all(n.startswith("[") for n in names):
            names = ["Dist" if "Exponential" in " ".join(names) else " \\| ".join(names)]
        out = " \\| ".join(dict.fromkeys(names))
        return out + (" \\| null" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is tuple:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    return getattr(tp, "__name__", str(tp))


def _models_in(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    out: list[type[BaseModel]] = []
    for a in typing.get_args(tp):
        out += _models_in(a)
    return out


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        d = field.default
        if isinstance(d, BaseModel):
            return "see type"
        return f"`{d!r}`" if d is not None else "`null`"
    if field.default_factory is not None:
        try:
            v = field.default_factory()
        except TypeError:
            return "see type"
        if isinstance(v, BaseModel):
            return "see type"
        return f"`{v!r}`"
    return "**required**"


def _collect(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    stack = [root]
    while stack:
        m = stack.pop(0)
        if m in seen:
            continue
        seen.append(m)
        for f in m.model_fields.values():
            stack += [x for x in _models_in(f.annotation) if x not in seen]
    return seen


def scenario_reference_markdown() -> str:
    """The full reference as Markdown."""
    lines = [_INTRO]
    for model in _collect(Scenario):
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        lines.append(f"## {model.__name__}\n")
        if doc:
            lines.append(doc + "\n")
        lines.append("| field | type | default | description |")
        lines.append("|---|---|---|---|")
        for name, f in model.model_fields.items():
            key = f.alias or name
            desc = (f.description or "").replace("\n", " ").replace("|", "\\|")
            lines.append(f"| `{key}` | {_type_name(f.annotation)} | {_default(f)} | {desc} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(scenario_reference_markdown(), end="")
