"""Pydantic validation errors turned into one line that names the field and what was expected.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from simres.scenario.checks import short
from simres.scenario.schema import Scenario

# ---------------------------------------------------------------------------- errors


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "required field is missing",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_type": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s); see the limits in docs/errors.md",
}


def _format_error(e: ValidationError, data: Any = None) -> str:
    err = e.errors(include_url=False)[0]
    loc = _clean_loc(err["loc"], data)
    typ = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if typ == "extra_forbidden":
        field = loc[-1] if loc else "?"
        known = _known_fields(loc[:-1])
        hint = difflib.get_close_matches(str(field), known, n=1)
        tail = f" (did you mean '{hint[0]}'?)" if hint else (f"; expected one of: {', '.join(known)}" if known else "")
        return f"{'.'.join(loc)}: unknown field{tail}"
    if typ == "union_tag_invalid":
        return f"{'.'.join(loc)}.kind: unknown kind {ctx.get('tag')!r}, expected one of: {ctx.get('expected_tags')}"
    if typ == "union_tag_not_found":
        return f"{'.'.join(loc)}: needs a 'kind' field ({ctx.get('discriminator', 'kind')})"
    if typ == "literal_error":
        return f"{'.'.join(loc)}: must be one of {ctx.get('expected')}, got {short(value)}"
    if typ in ("value_error", "assertion_error"):
        msg = str(ctx.get("error", err["msg"]))
        # Our validators already name their field relative to the model; join with the loc.
        return f"{'.'.join(loc)}: {msg}" if loc else msg
    template = _MESSAGES.get(typ)
    nice = {k: _num(v) for k, v in ctx.items()}
    msg = template.format(**nice) if template else err["msg"][0].lower() + err["msg"][1:]
    if typ == "missing":
        shown = ""
    elif typ in ("too_long", "too_short"):
        n = ctx.get("actual_length")
        shown = f", got {n if n is not None else (len(value) if hasattr(value, '__len__') else '?')}"
    else:
        shown = f", got {short(value)}"
    return f"{'.'.join(loc)}: {msg}{shown}"


def _num(v: Any) -> Any:
    """Render 0.0 as 0 in messages (bounds come from Field(gt=0) as floats)."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


_ABSENT = object()  # below a key the input does not have
_UNKNOWN = object()  # no input given


def _clean_loc(loc: tuple[Any, ...], data: Any = None) -> list[str]:
    """The user's field path from pydantic's ``loc``, walked next to the input ``data``.

    Pydantic inserts the tag of a tagged union (``exponential``, ``count``) into the loc; a
    part is dropped as a tag only where the input has no such key and its ``kind`` says
    so, so a field that shares a tag's name (``count``, ``capacity``) keeps its name.
    Without the input (or below a shorthand such as a bare number) the known tags are
    dropped by name.
    """
    out: list[str] = []
    node: Any = data if data is not None else _UNKNOWN
    for part in loc:
        s = str(part)
        if s.startswith(("function-", "tagged-union[", "union[")) or ("[" in s and s.endswith("]")):
            continue
        if isinstance(node, dict):
            if part in node or s in node:
                node = node[part] if part in node else node[s]
            elif node.get("kind") == s:
                continue  # the discriminator tag pydantic inserted; not a user key
            else:
                node = _ABSENT
            out.append(s)
            continue
        if isinstance(node, list | tuple):
            node = node[part] if isinstance(part, int) and -len(node) <= part < len(node) else _ABSENT
            out.append(s)
            continue
        if node is not _ABSENT and out and s in _DIST_TAGS and out[-1] != "kind":
            continue  # below a shorthand (a bare number for a constant): a tag pydantic inserted
        out.append(s)
    return out


_DIST_TAGS = {
    "exponential", "constant", "uniform", "normal", "lognormal", "gamma", "erlang", "empirical",
    "histogram", "mixture", "poisson", "profile", "closed", "count", "time", "rolling", "token_bucket", "grpc",
    "ratio", "concurrency", "failure_ratio", "partition", "latency", "slowdown", "capacity",
    "crash", "errors", "load", "chaos", "semaphore", "pool",
}


def _known_fields(loc: list[str]) -> list[str]:
    """Field names valid at ``loc`` in the schema (best effort, for typo hints)."""
    model: Any = Scenario
    for part in loc:
        if isinstance(model, _Container):
            model = model.value
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return []
        info = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if info is None:
            return []
        model = _unwrap(info.annotation)
    fields = getattr(model, "model_fields", None)
    if not fields:
        return []
    return [f.alias or n for n, f in fields.items()]


class _Container:
    """A dict or list level of the schema: the next loc part is a key or an index."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _unwrap(tp: Any) -> Any:
    import typing

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is dict:
        return _Container(_unwrap(args[1]))
    if origin is list:
        return _Container(_unwrap(args[0]))
    for a in args:
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    for a in args:
        inner = _unwrap(a)
        if isinstance(inner, _Container) or hasattr(inner, "model_fields"):
            return inner
    return tp
