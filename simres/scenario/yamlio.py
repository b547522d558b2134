"""The one YAML loader for scenario, sweep and override input: safe, strict and bounded.

It is PyYAML's safe loader plus the checks a configuration file needs and YAML does not
give: a key given twice in one mapping is an error (not "the last one wins"), binary and
other non-text tags are refused, ``1e6`` is a number and ``2024-01-01`` a string (as in
YAML 1.2), and nesting depth, alias count and the expanded size of
the document are bounded (:mod:`simres.scenario.limits`), so an alias bomb or a deeply
nested file fails at once with the line it is on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from simres.errors import ScenarioError
from simres.scenario import limits

_MERGE = "tag:yaml.org,2002:merge"
_REFUSED_TAGS = {
    "tag:yaml.org,2002:binary": "binary data (!!binary)",
    "tag:yaml.org,2002:set": "a set (!!set)",
    "tag:yaml.org,2002:omap": "an ordered map (!!omap)",
    "tag:yaml.org,2002:pairs": "pairs (!!pairs)",
    "tag:yaml.org,2002:timestamp": "a timestamp",
}


class _LimitError(yaml.MarkedYAMLError):
    """A bound of :mod:`limits` was exceeded while composing the document."""


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects duplicate keys and non-text tags and bounds the document."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > limits.MAX_ALIASES:
                raise _LimitError(None, None, f"more than {limits.MAX_ALIASES} aliases",
                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        self._nodes += 1
        if self._nodes > limits.MAX_NODES:  # stop a huge document early, not after parsing all of it
            raise _LimitError(None, None, f"more than {limits.MAX_NODES:,} values in the document",
                              self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > limits.MAX_DEPTH:
                raise _LimitError(None, None, f"nested deeper than {limits.MAX_DEPTH} levels",
                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Node | None:
        node = super().get_single_node()
        if node is not None and self._aliases:
            _check_expanded_size(node)
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        seen: dict[Any, Node] = {}
        if isinstance(node, MappingNode):
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=deep)  # type: ignore[arg-type]
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable key: the safe constructor reports it
                if first is not None:
                    raise ConstructorError(
                        None, None,
                        f"duplicate key {_short_key(key)} (first given at line {first.start_mark.line + 1})",
                        key_node.start_mark)
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _refuse(what: str) -> Any:
    def construct(loader: StrictLoader, node: Node) -> Any:
        raise ConstructorError(None, None, f"{what} is not allowed here; write plain text or numbers",
                               node.start_mark)

    return construct


for _tag, _what in _REFUSED_TAGS.items():
    StrictLoader.add_constructor(_tag, _refuse(_what))

# Unquoted dates stay strings (YAML 1.2 core schema): `name: 2024-01-01` is a name, not a date.
StrictLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# `1e6` is a number (YAML 1.2); PyYAML's YAML 1.1 rules read an exponent without a dot as a string.
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _short_key(key: Any) -> str:
    r = repr(key)
    return r if len(r) <= 60 else r[:57] + "..."


def _check_expanded_size(root: Node) -> None:
    """Count the document's values with every alias expanded (iteratively, memoised per node)."""
    size: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        total = 1 + sum(size.get(id(c), 1) for c in children)
        if total > limits.MAX_NODES:
            raise _LimitError(None, None,
                              f"the document expands to more than {limits.MAX_NODES:,} values (aliases)",
                              node.start_mark)
        size[id(node)] = total


def loads(text: str) -> Any:
    """Parse one YAML document with :class:`StrictLoader` (raises ``yaml.YAMLError``)."""
    loader = StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_problem(e: yaml.YAMLError) -> str:
    """One line for a YAML error: ``line L, column C: invalid YAML: problem``."""
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(e, "problem", None) or (str(e).splitlines() or ["unreadable"])[0]
    return f"{where}invalid YAML: {problem}"


def read_text(path: Path) -> str:
    """A file's text, or a ScenarioError naming it: missing, unreadable, too large or not UTF-8."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > limits.MAX_FILE_BYTES:
            raise ScenarioError(f"file is {size / 1e6:.1f} MB; the limit is {limits.MAX_FILE_BYTES / 1e6:.0f} MB",
                                source=source)
        raw = path.read_bytes()
    except OSError as e:
        raise ScenarioError(f"cannot read: {e.strerror or e}", source=source) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ScenarioError(f"line {line}, column {column}: not UTF-8 text (byte 0x{raw[e.start]:02x}); "
                            "save the file as UTF-8", source=source) from None


def load_file(path: Path) -> Any:
    """Read and parse a YAML file; every failure is one ScenarioError line naming the file."""
    text = read_text(path)
    try:
        return loads(text)
    except yaml.YAMLError as e:
        raise ScenarioError(yaml_problem(e), source=str(path)) from None
