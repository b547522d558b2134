"""Checks of scenario input that pydantic's lax mode does not make, applied to every source.

Before validation, :func:`plain_data` walks the input once (iteratively): it bounds depth
and size, turns numpy scalars into Python numbers and refuses non-finite numbers and
binary data anywhere, naming the field. After validation, :func:`check_strict_types`
walks the validated model next to the input and refuses what lax mode coerced: a
boolean or a quoted string where a number is expected (``workers: true``,
``rate: "5"``), a number where a boolean or a string is expected. Integers are still
numbers where a float is expected.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

from pydantic import BaseModel

from simres.scenario import limits

_short_repr = reprlib.Repr()
_short_repr.maxstring = 40
_short_repr.maxother = 40
_short_repr.maxlist = _short_repr.maxtuple = _short_repr.maxdict = _short_repr.maxset = 4
_short_repr.maxlevel = 2


def short(value: Any) -> str:
    """``repr(value)`` cut to a few dozen characters, at a cost independent of its size (YAML spelling
    for booleans and null, as the user wrote them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return _short_repr.repr(value)


def _join(path: list[str]) -> str:
    return ".".join(path)


def plain_data(data: Any, *, root: list[str] | None = None) -> Any:
    """A copy of ``data`` made of plain Python values; raises ValueError naming the field.

    Depth and the number of values (shared references counted each time) are bounded by
    :data:`limits.MAX_DEPTH` and :data:`limits.MAX_NODES`.
    """
    import numpy as np

    base = list(root or [])
    holder: list[Any] = [None]
    # (value, path, container to fill, key in it)
    stack: list[tuple[Any, list[str], Any, Any]] = [(data, base, holder, 0)]
    seen = 0
    while stack:
        value, path, parent, key = stack.pop()
        seen += 1
        if seen > limits.MAX_NODES:
            raise ValueError(f"{_join(base) or 'scenario'}: more than {limits.MAX_NODES:,} values; "
                             "see the limits in docs/errors.md")
        if len(path) - len(base) > limits.MAX_DEPTH:
            raise ValueError(f"{_join(path[:len(base) + limits.MAX_DEPTH])}: nested deeper than "
                             f"{limits.MAX_DEPTH} levels")
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{_join(path) or 'value'}: must be a finite number, got {value}")
        if isinstance(value, bytes | bytearray):
            raise ValueError(f"{_join(path) or 'value'}: must be text, got binary data")
        if isinstance(value, dict):
            out: Any = {}
            for k, v in value.items():
                k = k.item() if isinstance(k, np.generic) else k
                if k == "preset" and v is not None and not isinstance(v, str):
                    # a policy preset is looked up by name; another type would fail there untidily
                    raise ValueError(f"{_join([*path, 'preset'])}: must be a preset name (a string), got {short(v)}")
                if k == "le" and isinstance(v, float) and v == math.inf:
                    v = "+Inf"  # a histogram bucket's bound written `.inf`: Prometheus spells it +Inf
                out[k] = None
                stack.append((v, [*path, str(k)], out, k))
        elif isinstance(value, list | tuple):
            out = [None] * len(value)
            for i, v in enumerate(value):
                stack.append((v, [*path, str(i)], out, i))
        else:
            out = value
        parent[key] = out
    return holder[0]


def check_strict_types(model: BaseModel, raw: Any, path: list[str] | None = None) -> None:
    """Raise ValueError where lax validation coerced the input's type (see the module doc)."""
    if not isinstance(raw, dict):
        return  # a shorthand (a bare number for a distribution, a preset name) built this model
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        if key in raw:
            _check_value(getattr(model, name), raw[key], [*(path or []), key])


def _check_value(value: Any, raw: Any, path: list[str]) -> None:
    if isinstance(value, BaseModel):
        check_strict_types(value, raw, path)
    elif isinstance(value, bool):
        if not isinstance(raw, bool):
            raise ValueError(f"{_join(path)}: must be true or false, got {short(raw)}")
    elif isinstance(value, int | float):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            what = "a whole number" if isinstance(value, int) else "a number"
            hint = " (a quoted string; write the number without quotes)" if isinstance(raw, str) else ""
            raise ValueError(f"{_join(path)}: must be {what}, got {short(raw)}{hint}")
    elif isinstance(value, str):
        if not isinstance(raw, str):
            raise ValueError(f"{_join(path)}: must be a string, got {short(raw)}")
    elif isinstance(value, list | tuple) and isinstance(raw, list | tuple):
        for i, (v, r) in enumerate(zip(value, raw)):
            _check_value(v, r, [*path, str(i)])
    elif isinstance(value, dict) and isinstance(raw, dict):
        for k, v in value.items():
            if k in raw:
                _check_value(v, raw[k], [*path, str(k)])
