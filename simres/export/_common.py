"""What every exporter shares: the policy as flat dotted paths, a record of what was mapped, and the
check that names every setting left unmapped (nothing is dropped silently).

A mapper reads fields through :class:`Mapping` (``m.v("retry.backoff.base")`` marks the path as
used), compares the library's fixed behaviour with :meth:`Mapping.fixed` (each difference is a
note), and at the end :meth:`Mapping.leftovers` names every remaining field that differs from its
neutral value (the value meaning "no such feature"). Settings that cannot matter for the
policy as configured (the rate window of a consecutive breaker, the jitter fraction of a
full jitter) are marked irrelevant first, so they are neither mapped nor named.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

import yaml

from simres.outcomes import RETRYABLE_KINDS

REMOTE = tuple(RETRYABLE_KINDS)
"""Every remote failure outcome a retry may handle: timeout, connection, error, rejected, shed."""

POLICY_KEYS = ("timeout", "deadline", "retry", "breaker", "bulkhead", "limit", "outlier_detection", "hedge",
               "order", "connect_timeout", "read_timeout")
"""The fields of a CallPolicy, outermost first as the call driver applies them by default (then ``order``,
which changes that, and the connect and read timeouts: a library that cannot express one gets a note)."""

HTTP_STATUS: dict[str, tuple[int, ...]] = {"error": (500, 502, 504), "rejected": (503,), "shed": (429,)}
"""The HTTP statuses a simulated reply outcome stands for (a full queue answers 503, a shedder 429)."""

GRPC_CODE: dict[str, str] = {"timeout": "DEADLINE_EXCEEDED", "connection": "UNAVAILABLE", "error": "INTERNAL",
                             "rejected": "RESOURCE_EXHAUSTED", "shed": "UNAVAILABLE"}
"""The gRPC status code each outcome stands for (a refused connection and a shed request are both UNAVAILABLE)."""

NEUTRAL: dict[str, Any] = {
    **dict.fromkeys(POLICY_KEYS),
    "retry.first_retry_index": 0, "retry.honor_retry_after": False, "retry.retry_after_max": None,
    "retry.retry_on_hint": [], "retry.throttling_outcomes": [], "retry.throttling_backoff": None,
    "retry.connect_retries": None, "retry.read_retries": None, "retry.status_retries": None,
    "retry.budget": None, "retry.backoff.floor": 0.0, "retry.backoff.zero_first": False,
    "retry.jitter.kind": "none", "breaker.open_for_multiplier": 1.0, "breaker.open_for_jitter": "none",
    "breaker.half_open_max_wait": None, "hedge.budget": None, "retry.rate_limiter": None,
}
"""The value of a field that means the feature is off: a field at it needs no setting in any library."""

IGNORED = ("preset", "scope", "timespan")
"""Leaf names never named: a preset's name, a state's scope (the library object is shared as you share it),
Polly's tick arithmetic (how a wait is rounded, not how long it is)."""

ROOTS = ("retry.budget", "retry.throttling_backoff", "retry.rate_limiter", "hedge.budget", *POLICY_KEYS)
"""The objects a whole-object note names at once, when none of their fields could be mapped."""


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"retry.backoff.base": 0.1, ...}``: nested mappings become dotted paths; lists and None are leaves."""
    if isinstance(value, MappingABC) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: list(value) if isinstance(value, tuple) else value}


def show(value: Any) -> str:
    """A value as YAML flow text (``[timeout, error]``, ``{kind: ratio, percent: 0.2}``, ``null``)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).removesuffix(
        "\n...\n").strip()


def num(x: float) -> str:
    """A number without a trailing ``.0`` (3, 0.25, 1e-05)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def seconds(x: float) -> str:
    """A protobuf JSON Duration (Envoy, Istio, gRPC): ``0.1s``, ``2s``, at most 9 decimals."""
    text = f"{x:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def millis(x: float) -> str:
    """A Spring Boot duration (Resilience4j): ``500ms`` for whole milliseconds, else ISO-8601 ``PT0.0005S``."""
    ms = x * 1000
    if abs(ms - round(ms)) < 1e-9:
        return f"{round(ms)}ms"
    return f"PT{f'{x:.9f}'.rstrip('0').rstrip('.')}S"


def timespan(x: float) -> str:
    """A .NET TimeSpan string (Polly): ``00:00:02``, ``00:00:00.0500000``, ``1.00:00:00``; -1 ms is Infinite."""
    ticks = round(x * 10**7)
    sign = "-" if ticks < 0 else ""
    ticks = abs(ticks)
    days, rem = divmod(ticks, 864_000_000_000)
    h, rem = divmod(rem, 36_000_000_000)
    m, rem = divmod(rem, 600_000_000)
    s, frac = divmod(rem, 10**7)
    text = f"{h:02d}:{m:02d}:{s:02d}" + (f".{frac:07d}" if frac else "")
    return sign + (f"{days}." if days else "") + text


def codes_for(outcomes: Iterable[str], table: MappingABC[str, Any]) -> tuple[list[Any], list[str]]:
    """The library codes for ``outcomes`` (in table order) and the other outcomes those codes also cover."""
    wanted = set(outcomes)
    codes: list[Any] = []
    for kind in REMOTE:
        if kind in wanted and kind in table:
            for c in table[kind] if isinstance(table[kind], tuple) else (table[kind],):
                if c not in codes:
                    codes.append(c)
    also = [k for k in REMOTE if k not in wanted and k in table
            and set(table[k] if isinstance(table[k], tuple) else (table[k],)) & set(codes)]
    return codes, also


@dataclass
class Exported:
    """One call's policy stack in one library's format."""

    library: str
    text: str
    unexpressed: list[str] = field(default_factory=list)
    """One sentence per setting the library cannot express (also printed on stderr by the CLI)."""
    language: str = "yaml"
    """yaml, json or python: what the text parses as."""


class NothingToExport(ValueError):
    """The call has no policy in the library's domain (pybreaker asked for a call without a breaker)."""


class Mapping:
    """The flat policy of one call, what a mapper has used of it, and the notes it made."""

    def __init__(self, policy: Any, library: str) -> None:
        self.policy = policy
        self.library = library
        dumped = {k: getattr(policy, k) for k in POLICY_KEYS}
        self.data = {k: (None if v is None else v.model_dump(mode="json")) if hasattr(v, "model_dump") or v is None
                     else v for k, v in dumped.items()}
        self.flat = flatten(self.data)
        self.used: set[str] = set()
        self.skipped: set[str] = set(irrelevant(self.data))
        self.notes: list[str] = []
        self.instance = "backend"
        """The name of the library object (Resilience4j instance, Envoy cluster, gRPC service)."""

    # -- reading
    def has(self, key: str) -> bool:
        """Whether the policy ``key`` (retry, breaker, ...) or a nested object (retry.budget) is set."""
        return self.raw(key) is not None

    def raw(self, path: str) -> Any:
        """The value at ``path`` (a leaf or a whole sub-mapping), without marking it used."""
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, MappingABC) or part not in node:
                return None
            node = node[part]
        return node

    def v(self, path: str) -> Any:
        """The value at ``path``, marked as mapped (a sub-mapping marks every field under it)."""
        self.used.add(path)
        return self.raw(path)

    def use(self, *paths: str) -> None:
        """Mark paths as handled (mapped, or named by a note already)."""
        self.used.update(paths)

    def note(self, text: str) -> None:
        """Name a setting the library cannot express, or expresses only approximately.

        A note about a setting that cannot matter as configured (its path, before the first
        ``:``, is irrelevant: the backoff of a single try) is dropped.
        """
        path = text.split(":", 1)[0]
        if any(path == s or path.startswith(s + ".") for s in self.skipped):
            return
        if text not in self.notes:
            self.notes.append(text)

    def cannot(self, path: str, why: str) -> None:
        """Name ``path`` (with its value) as not expressible, and mark it handled."""
        self.note(f"{path}: {show(self.shown(path))}: {why}")
        self.use(path)

    def shown(self, path: str) -> Any:
        """The value at ``path`` as a note shows it: a mapping without its preset, scope and irrelevant fields."""
        value = self.raw(path)
        if not isinstance(value, MappingABC):
            return value
        return {k: self.shown(f"{path}.{k}") for k in value if k not in IGNORED and value[k] is not None
                and not any(f"{path}.{k}" == s or f"{path}.{k}".startswith(s + ".") for s in self.skipped)}

    def fixed(self, prefix: str, library_values: MappingABC[str, Any], what: str | None = None) -> None:
        """Compare every unused field under ``prefix`` with the library's fixed behaviour; name each difference.

        ``library_values`` is the resolved config of the library's preset (``RetryConfig(preset=...)``
        dumped), i.e. what the library does with no knob to change it.
        """
        what = what or self.library
        lib = flatten(library_values, prefix)
        # a sub-object (a budget) of another kind than the library's, or missing where the library
        # always has one, is named once as a whole
        for sub in [p.rsplit(".", 1)[0] for p in lib if p.endswith(".budget.kind")]:
            mine, theirs = self.raw(sub), _unflat(lib, sub)
            mapped = any(self._is_used(p, mapped_only=True) for p in self.flat if _under(p, sub))
            if mapped or (isinstance(mine, MappingABC) and mine.get("kind") == theirs.get("kind")):
                continue
            theirs = {k: v for k, v in theirs.items() if k not in IGNORED and v is not None}
            self.note(f"{sub}: {show(self.shown(sub))}: {what} always has {show(theirs)}")
            self.used.add(sub)
        for path in [p for p in self.flat if _under(p, prefix) and not self._is_used(p)]:
            if path.rsplit(".", 1)[-1] in IGNORED:
                continue
            if path in lib and not same(self.flat[path], lib[path]):
                self.note(f"{path}: {show(self.flat[path])}: {what} always has {show(lib[path])}")
                self.used.add(path)
                if path.endswith(".honor_retry_after"):  # how a hint is read no longer matters
                    base = path.rsplit(".", 1)[0]
                    self.used.update(f"{base}.{k}" for k in ("retry_after_mode", "retry_after_max", "retry_on_hint"))
            elif path in lib:
                self.used.add(path)

    # -- the guard
    def _is_used(self, path: str, *, mapped_only: bool = False) -> bool:
        done = self.used if mapped_only else self.used | self.skipped
        return any(path == u or path.startswith(u + ".") for u in done)

    def leftovers(self) -> list[str]:
        """Notes for every unused field that differs from its neutral value; the notes, in order."""
        pending = [p for p in self.flat if not self._is_used(p) and p.rsplit(".", 1)[-1] not in IGNORED
                   and not (p in NEUTRAL and same(self.flat[p], NEUTRAL[p]))]
        done: set[str] = set()
        for root in ROOTS:
            value = self.raw(root)
            if value is None or not isinstance(value, MappingABC):
                continue
            leaves = [p for p in self.flat if _under(p, root)]
            if leaves and not any(self._is_used(p, mapped_only=True) for p in leaves) and \
                    any(p in pending for p in leaves):
                self.note(f"{root}: {show(self.shown(root))}: {self.library} has no equivalent")
                done.update(leaves)
        for p in pending:
            if p not in done:
                self.note(f"{p}: {show(self.flat[p])}: not expressible in {self.library}")
        return self.notes


def _unflat(flat: MappingABC[str, Any], prefix: str) -> dict[str, Any]:
    return {p[len(prefix) + 1:]: v for p, v in flat.items() if p.startswith(prefix + ".")}


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def same(a: Any, b: Any) -> bool:
    """Equal as settings: numbers by value (3 == 3.0), lists as sets of outcomes, otherwise ==."""
    if isinstance(a, list) and isinstance(b, list):
        return set(map(str, a)) == set(map(str, b))
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0)
    return bool(a == b)


def irrelevant(data: MappingABC[str, Any]) -> list[str]:
    """Paths that cannot change what the policy does as configured, so no library needs them."""
    out: list[str] = []
    r = data.get("retry")
    if r:
        if not r["honor_retry_after"]:
            out += ["retry.retry_after_mode", "retry.retry_after_max", "retry.retry_on_hint"]
        if not r["throttling_outcomes"]:
            out.append("retry.throttling_backoff")
        out += _backoff_irrelevant("retry.backoff", r["backoff"], r["jitter"])
        out += _jitter_irrelevant("retry.jitter", r["jitter"])
        if r["max_attempts"] == 1:
            out += [f"retry.{k}" for k in r if k != "max_attempts"]
    b = data.get("breaker")
    if b:
        if b["trip"] == "consecutive":
            out += [f"breaker.{k}" for k in ("threshold", "window", "minimum_calls", "slow_call_duration",
                                             "slow_threshold", "rate_rule", "check_rate_on", "rate_denominator",
                                             "minimum_rps")]
        else:
            out.append("breaker.failure_threshold")
            if b["slow_threshold"] is None:
                out.append("breaker.slow_call_duration")
            w = b["window"]
            if w["kind"] != "sampling":
                out.append("breaker.minimum_rps")
            if w["kind"] not in ("rolling", "sampling"):
                out.append("breaker.window.buckets")
            if w["kind"] != "time":
                out.append("breaker.window.bucket_width")
        if b["half_open"] != "permits":
            out.append("breaker.half_open_permits")
        else:
            out += ["breaker.close_after_successes", "breaker.half_open_waits"]
        if b["half_open"] != "single_probe":
            out.append("breaker.half_open_waits")
        if b["open_for_multiplier"] == 1:
            out.append("breaker.open_for_max")
        if not b["count_late_results"]:
            out.append("breaker.late_result_state")
    bh = data.get("bulkhead")
    if bh:
        out.append("bulkhead.queue_size" if bh["kind"] == "semaphore" else "bulkhead.max_wait")
    h = data.get("hedge")
    if h and not isinstance(h["delay"], str):
        out += ["hedge.window", "hedge.refresh", "hedge.min_delay"]
    o = data.get("outlier_detection")
    if o:
        envoy_only = [k for k in o if k not in ("kind", "consecutive_failures", "min_penalty", "max_penalty",
                                                "healthy_panic_threshold", "scope", "preset")]
        out += [f"outlier_detection.{k}" for k in (
            envoy_only if o["kind"] == "linkerd" else ("consecutive_failures", "min_penalty", "max_penalty"))]
    return out


def _backoff_irrelevant(prefix: str, backoff: MappingABC[str, Any], jitter: MappingABC[str, Any]) -> list[str]:
    kind = backoff["kind"]
    out = []
    if kind != "exponential":
        out.append(f"{prefix}.multiplier")
    if kind == "none" and jitter["kind"] not in ("decorrelated", "decorrelated_finagle"):
        out += [f"{prefix}.base", f"{prefix}.cap"]
    return out


def _jitter_irrelevant(prefix: str, jitter: MappingABC[str, Any]) -> list[str]:
    kind = jitter["kind"]
    return [f"{prefix}.{k}" for k, used_by in (("fraction", "proportional"), ("amount", "additive"),
                                               ("over_cap", "additive")) if kind != used_by]


def resolved(config_cls: Any, preset: str, **extra: Any) -> dict[str, Any]:
    """A library's fixed behaviour: the resolved preset as plain data."""
    return dict(config_cls(preset=preset, **extra).model_dump(mode="json"))
