"""Mutated bundled scenarios: a valid run, or exit 2 with one line naming a field; never a traceback or a hang.

Each case takes a bundled scenario and breaks it once: a key renamed, dropped or added,
a value replaced by another type or an extreme, a mapping flattened or wrapped, or the
YAML text itself edited (a duplicated line, a stray byte, an anchor, an alias bomb, a
binary tag, a cut). ``simres show`` must then either succeed, and the scenario then
builds and simulates its first half second, or exit 2 with one ``error:`` line that
names the file and a field of it (or the line and column of the YAML problem).

CI runs a few hundred derandomised cases; set ``SIMRES_FUZZ_EXAMPLES`` (e.g. 5000) for a
long search, and ``HYPOTHESIS_PROFILE=explore`` for new random cases.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simres.cli import main
from simres.scenario.loading import bundled_scenarios, load_scenario
from simres.scenario.schema import Scenario

EXAMPLES = int(os.environ.get("SIMRES_FUZZ_EXAMPLES", "300"))
SHOW_LIMIT = 10.0  # wall seconds for `simres show` of one case
CASE_LIMIT = 30  # wall seconds for a whole case (show, then the first half second of simulation)

SOURCES = {name: path.read_text(encoding="utf-8") for name, path in bundled_scenarios().items()}
TOP_FIELDS = {f.alias or n for n, f in Scenario.model_fields.items()}

PALETTE: list[Any] = [
    True, False, None, "5", "x", "", -1, 0, 0.5, 2, 3.7, 1e12, -1e-9, math.inf, -math.inf, math.nan,
    [], {}, [1], {"kind": "nope"}, {"kind": "constant"}, "x" * 3000, "api/", "web/0",
]
TEXT_EDITS = ["dup_line", "cut", "byte", "tab", "anchor", "alias_bomb", "binary", "deep", "documents", "colon"]


def _paths(data: Any) -> list[tuple[Any, ...]]:
    """Every path to a value in ``data`` (iteratively)."""
    out: list[tuple[Any, ...]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        path, v = stack.pop()
        out.append(path)
        if isinstance(v, dict):
            stack.extend(((*path, k), x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend(((*path, i), x) for i, x in enumerate(v))
    return sorted(out, key=repr)


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    node = data
    for k in path[:-1]:
        node = node[k]
    return node


def _mutate_data(data: dict[str, Any], draw: Any) -> dict[str, Any]:
    paths = [p for p in _paths(data) if p]
    path = draw(st.sampled_from(paths))
    parent, key = _parent(data, path), path[-1]
    op = draw(st.sampled_from(["replace", "scale", "delete", "rename", "add", "wrap", "flatten"]))
    if op == "replace":
        parent[key] = draw(st.sampled_from(PALETTE))
    elif op == "scale" and isinstance(parent[key], int | float) and not isinstance(parent[key], bool):
        parent[key] = parent[key] * draw(st.sampled_from([-1, 0, 0.5, 2, 10]))
    elif op == "delete":
        del parent[key]
    elif op == "rename" and isinstance(parent, dict):
        k = str(key)
        new = draw(st.sampled_from([k + "_", k[:-1], k.upper(), k[1:] + k[:1], "_" + k]))
        if new and new not in parent:
            parent[new] = parent.pop(key)
    elif op == "add":
        target = parent[key] if isinstance(parent[key], dict) else parent
        if isinstance(target, dict):
            new_key = draw(st.sampled_from(["extra", "mean_", "kind", "count", "workers"]))
            target[new_key] = draw(st.sampled_from(PALETTE))
    elif op == "wrap":
        parent[key] = [parent[key]]
    elif op == "flatten" and isinstance(parent[key], dict) and parent[key]:
        parent[key] = next(iter(parent[key].values()))
    return data


def _edit_text(text: str, draw: Any) -> bytes:
    lines = text.splitlines()
    op = draw(st.sampled_from(TEXT_EDITS))
    i = draw(st.integers(0, max(len(lines) - 1, 0)))
    if op == "dup_line":
        lines.insert(i, lines[i])
    elif op == "cut":
        return text[: draw(st.integers(0, len(text)))].encode()
    elif op == "byte":
        raw = text.encode()
        j = draw(st.integers(0, len(raw)))
        return raw[:j] + b"\xff\xfe" + raw[j:]
    elif op == "tab":
        lines[i] = "\t" + lines[i]
    elif op == "anchor":
        lines[i] = lines[i].replace(": ", ": &a ", 1)
        lines.append("extra: *a")
    elif op == "alias_bomb":
        bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        bomb += [f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]" for k in range(1, 9)]
        lines += ["variants:", "  bomb:"] + ["    " + b for b in bomb]
    elif op == "binary":
        lines[i] = re.sub(r": (\S)", r": !!binary \1", lines[i], count=1)
    elif op == "deep":
        lines.append("description: " + "[" * 500 + "]" * 500)
    elif op == "documents":
        lines.insert(i, "---")
    elif op == "colon":
        lines[i] = lines[i] + ": :"
    return "\n".join(lines).encode()


@st.composite
def cases(draw: Any) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SOURCES)))
    text = SOURCES[name]
    if draw(st.booleans()):
        data = _mutate_data(yaml.safe_load(text), draw)
        return name, yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()
    return name, _edit_text(text, draw)


_NAMES_A_FIELD = re.compile(r"(line \d+, column \d+: |must be a mapping of scenario fields|"
                            r"(?P<field>[A-Za-z_][\w-]*)(?=[.:\s]))")


def _check_error_line(output: str, path: Path, raw: bytes) -> None:
    # warnings (one line each) may precede the error
    output = "".join(line for line in output.splitlines(keepends=True) if not line.startswith("warning: "))
    assert output.count("\n") == 1 and output.startswith("error: "), output[:2000]
    assert "Traceback" not in output
    rest = output[len("error: "):].rstrip("\n")
    assert rest.startswith(f"{path}: "), rest
    rest = rest[len(f"{path}: "):]
    m = _NAMES_A_FIELD.match(rest)
    assert m, f"does not name a field: {rest}"
    if m["field"] and m["field"] not in TOP_FIELDS:
        # else it must be a top-level key the file has (an unknown one)
        keys = set(re.findall(rb"^([A-Za-z_][\w-]*):", raw, flags=re.M))
        assert m["field"].encode() in keys, f"names no field of the file: {rest}"
    assert len(rest) <= 500


class _Enough(Exception):
    pass


def _simulate_briefly(path: Path) -> None:
    """Build the world and simulate its first half second at most (it stops at the first progress call)."""
    from simres.model.world import build

    sc = load_scenario(path)

    def stop(now: float, end: float) -> None:
        raise _Enough

    with pytest.raises(_Enough):
        build(sc, sc.seed).run(progress=stop, chunks=max(1000, math.ceil(sc.end_time / 0.5)))


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _wall_limit(seconds: int) -> Iterator[None]:
    """Fail the case (instead of stalling the suite) if it runs longer than ``seconds``."""

    def hang(signum: int, frame: Any) -> None:
        raise _Hang(f"a case ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.timeout(max(120, EXAMPLES))
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_mutated_scenarios_fail_cleanly(case: tuple[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> None:
    name, raw = case
    path = tmp_path_factory.mktemp("fuzz") / f"{name}.yaml"
    path.write_bytes(raw)
    t0 = time.perf_counter()
    with _wall_limit(CASE_LIMIT):
        result = CliRunner().invoke(main, ["show", str(path)])
        took = time.perf_counter() - t0
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{type(result.exception).__name__}: {result.exception}")
        assert took < SHOW_LIMIT, f"show took {took:.1f}s"
        event("valid: simulated" if result.exit_code == 0 else "invalid: exit 2, one line")
        if result.exit_code == 0:
            _simulate_briefly(path)
    if result.exit_code != 0:
        assert result.exit_code == 2, result.output
        _check_error_line(result.output, path, raw)
