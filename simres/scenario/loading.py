"""Scenario files in, validated :class:`Scenario` out: bundled names, safe YAML, variants and dotted-path overrides.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from simres.errors import ScenarioError
from simres.scenario.checks import check_strict_types, plain_data, short
from simres.scenario.messages import _format_error
from simres.scenario.schema import Scenario
from simres.scenario.yamlio import load_file, loads, yaml_problem

# ---------------------------------------------------------------------------- loading


def scenarios_dir() -> Path:
    """Where bundled scenarios live (``SIMRES_SCENARIOS`` overrides)."""
    env = os.environ.get("SIMRES_SCENARIOS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "scenarios"


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario names and their files."""
    d = scenarios_dir()
    if not d.is_dir():
        return {}
    return {p.stem: p for p in sorted(d.glob("*.yaml"))}


def resolve_path(path_or_name: str | os.PathLike[str]) -> Path:
    """A scenario file path from a path or a bundled scenario name."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    bundled = bundled_scenarios()
    if str(path_or_name) in bundled:
        return bundled[str(path_or_name)]
    hint = difflib.get_close_matches(str(path_or_name), list(bundled), n=1)
    tail = f"; did you mean '{hint[0]}'?" if hint else ""
    raise ScenarioError(
        f"no such file or bundled scenario (bundled: {', '.join(bundled) or 'none'}){tail}",
        source=str(path_or_name),
    )


def read_raw(path_or_name: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """Read a scenario file as a plain mapping (safe YAML loader); returns (data, source)."""
    path = resolve_path(path_or_name)
    data = load_file(path)
    if not isinstance(data, dict):
        raise ScenarioError("must be a mapping of scenario fields at the top level", source=str(path))
    return data, str(path)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` strings (VALUE is YAML) into a dotted-path mapping."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ScenarioError(f"override '{item}': expected KEY=VALUE, e.g. services.db.workers=4",
                                source="--set")
        key, _, raw = item.partition("=")
        key = key.strip()
        if not key:
            raise ScenarioError(f"override '{item}': the key before '=' is empty", source="--set")
        try:
            out[key] = loads(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ScenarioError(f"override '{short(item)}': the value is not valid YAML ({yaml_problem(e)})",
                                source="--set") from None
    return out


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any], *, source: str = "--set") -> dict[str, Any]:
    """Return a copy of ``data`` with dotted-path overrides applied.

    Paths are checked against the fully resolved scenario: every step but the last must
    exist (so ``services.dbb.workers`` with no service ``dbb`` is an error, not a new
    service); an unset optional section (``retry: null``) is created on demand; list items
    are addressed by index (``faults.0.duration``), and a handler's downstream calls also by
    name (``services.api.handler.calls.payments.timeout``, see :func:`call_index`). This is
    the one resolver of every path: variants, ``--set``, sweep axes, ``show`` and the
    pre-flight check all come through here. The result is validated by the caller.
    """
    out = copy.deepcopy(data)
    for path, value in overrides.items():
        value = copy.deepcopy(value)  # a later, deeper override must not write into the caller's object
        keys = path.split(".")
        node: Any = out
        for depth, k in enumerate(keys[:-1]):
            where = ".".join(keys[: depth + 1])
            node = _step(node, k, where, source, create=True, calls=_is_calls(keys, depth))
        last = keys[-1]
        if isinstance(node, list):
            idx = call_index(node, last, path, source) if _is_calls(keys, len(keys) - 1) else _index(
                node, last, path, source)
            node[idx] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ScenarioError(f"cannot set a field inside a {type(node).__name__}", source=source, path=path)
    return out


def _index(node: list[Any], k: str, where: str, source: str) -> int:
    try:
        idx = int(k)
    except ValueError:
        raise ScenarioError(f"expected a list index, got '{k}'", source=source, path=where) from None
    if not -len(node) <= idx < len(node):
        raise ScenarioError(f"index {idx} out of range (list has {len(node)} items)", source=source, path=where)
    return idx


def _is_calls(keys: list[str], depth: int) -> bool:
    """Whether ``keys[depth]`` indexes a handler's call list (``...handler.calls.<here>``)."""
    return depth >= 2 and keys[depth - 1] == "calls" and keys[depth - 2] == "handler"


def call_name(call: Any) -> str | None:
    """A downstream call's name in paths: its ``name:``, else its target (``to``)."""
    if not isinstance(call, Mapping):
        return None
    name = call.get("name")
    return name if isinstance(name, str) else call.get("to") if isinstance(call.get("to"), str) else None


def call_index(calls: list[Any], k: str, where: str, source: str) -> int:
    """The index of the call ``k`` in a handler's ``calls``: an index, or a call's name.

    A whole number is an index (as for every list). Otherwise ``k`` must name exactly one
    call: a name two calls share (the same target twice, unnamed) is ambiguous, and the
    error names the candidates and the fix (a ``name:`` on one of them).
    """
    if k.strip().lstrip("+-").isdigit():
        return _index(calls, k, where, source)
    names = [call_name(c) for c in calls]
    hits = [i for i, n in enumerate(names) if n == k]
    if len(hits) == 1:
        return hits[0]
    if hits:
        listed = " and ".join(f"calls.{i}" for i in hits)
        raise ScenarioError(f"ambiguous call name '{k}': {listed} both call '{k}'; give them distinct name: "
                            f"fields and use those, or address one by index", source=source, path=where)
    known = [n for n in names if n is not None]
    hint = difflib.get_close_matches(k, known, n=1)
    tail = f" (did you mean '{hint[0]}'?)" if hint else ""
    opts = ", ".join(known) or "none"
    raise ScenarioError(f"unknown call '{k}'{tail}; calls: {opts} (by name, or by index 0-{len(calls) - 1})"
                        if calls else f"unknown call '{k}': this handler has no calls", source=source, path=where)


def _step(node: Any, k: str, where: str, source: str, *, create: bool, calls: bool = False) -> Any:
    if isinstance(node, list):
        return node[call_index(node, k, where, source) if calls else _index(node, k, where, source)]
    if not isinstance(node, dict):
        raise ScenarioError(f"cannot descend into a {type(node).__name__}", source=source, path=where)
    if k not in node:
        hint = difflib.get_close_matches(k, [str(x) for x in node], n=1)
        tail = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ScenarioError(f"unknown key '{k}'{tail}", source=source, path=where)
    if node[k] is None and create:
        node[k] = {}
    return node[k]


def validate(data: Mapping[str, Any], *, source: str = "<scenario>",
             base_dir: str | os.PathLike[str] | None = None, pinned: bool = False) -> Scenario:
    """Validate a mapping into a :class:`Scenario`, turning pydantic errors into one line.

    ``base_dir`` is where relative data-file paths (``file:`` of an empirical distribution
    or a rate profile) are looked up: the scenario file's directory; the current one if None.
    A validated scenario holds those paths absolute, so its resolved dict validates anywhere.
    ``pinned``: the data's ``sha256`` fields must match the files (a scenario re-validated
    from a :class:`Scenario` object must not draw from a file changed since).
    """
    try:
        plain = plain_data(data)
        ctx = {"base_dir": str(base_dir) if base_dir is not None else None, "pinned": pinned}
        scenario = Scenario.model_validate(plain, by_name=False, context=ctx)
        check_strict_types(scenario, plain)
    except ValidationError as e:
        raise ScenarioError(_format_error(e, plain), source=source) from None
    except ValueError as e:
        raise ScenarioError(str(e), source=source) from None
    except (TypeError, KeyError, AttributeError) as e:
        # A validator that failed untidily (it should raise ValueError): still one line, never a traceback.
        raise ScenarioError(f"invalid value ({type(e).__name__}: {e})", source=source) from None
    return scenario


def check_variants(scenario: Scenario, *, source: str, base_dir: str | os.PathLike[str] | None = None) -> None:
    """Validate every variant of ``scenario`` applied alone, so a typo in any of them is an error now.

    The error names the variant: ``<source>: variants.<name>: <field>: <what was expected>``.
    """
    if not scenario.variants:
        return
    data = resolved_dict(scenario)  # variants stay: reference and controls name them
    for name, ov in scenario.variants.items():
        try:
            validate(apply_overrides(data, ov, source=source), source=source, base_dir=base_dir)
        except ScenarioError as e:
            inner = f"{e.path}: {e.detail}" if e.path else e.detail
            raise ScenarioError(inner, source=source, path=f"variants.{name}") from None


def _plain_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A bounded, plain copy of a caller's mapping (``copy.deepcopy`` would recurse without limit)."""
    try:
        return plain_data(dict(data))
    except ValueError as e:
        raise ScenarioError(str(e), source="<mapping>") from None


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain data with every default filled in (round-trips through validate)."""
    return scenario.model_dump(mode="json", by_alias=True)


def load_scenario(
    path_or_name: str | os.PathLike[str] | Mapping[str, Any] | Scenario,
    *,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    variant: str | None = None,
) -> Scenario:
    """Load a scenario from a path, a bundled name, a mapping or a Scenario.

    ``overrides`` are dotted paths (a mapping, or ``KEY=VALUE`` strings as on the CLI);
    ``variant`` applies one of the scenario's named variants first.
    """
    base_dir: Path | None = None  # data files: a scenario file's own directory, else the current one
    if isinstance(path_or_name, Scenario):
        base, source = resolved_dict(path_or_name), f"<scenario {path_or_name.name}>"
    elif isinstance(path_or_name, Mapping):
        base, source = _plain_mapping(path_or_name), "<mapping>"
    else:
        base, source = read_raw(path_or_name)
        base_dir = Path(source).resolve().parent
    scenario = validate(base, source=source, base_dir=base_dir, pinned=isinstance(path_or_name, Scenario))
    if not isinstance(path_or_name, Scenario):
        check_variants(scenario, source=source, base_dir=base_dir)
    if variant is None and not overrides:
        return scenario
    data = resolved_dict(scenario)
    if variant is not None:
        if variant not in scenario.variants:
            opts = ", ".join(scenario.variants) or "none defined"
            raise ScenarioError(f"unknown variant '{variant}' (variants: {opts})", source=source, path="variant")
        data = apply_overrides(data, scenario.variants[variant], source=f"{source} variant {variant}")
    if overrides:
        ov = overrides if isinstance(overrides, Mapping) else parse_overrides(overrides)
        data = apply_overrides(data, ov)
    return validate(data, source=source, base_dir=base_dir)
