"""Shared machinery for policy configs and state: preset merging and time-bucketed counters.

Configs are frozen pydantic models. A config may name a ``preset``: the preset's values
are merged *under* the fields the user wrote (nested mappings are merged key by key), so
``{"preset": "resilience4j", "threshold": 0.3}`` is Resilience4j's breaker with a 30 %
threshold. The merged model keeps the preset name and shows every resolved value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from simres.policies.presets import PRESETS


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested mappings are merged unless their ``kind`` differs.

    A nested mapping that names a different ``kind`` than the preset's (say a ``ratio``
    budget over a ``token_bucket`` preset) replaces it, because the preset's keys would not
    belong to the other kind.
    """
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if (isinstance(old, Mapping) and isinstance(value, Mapping)
                and value.get("kind", old.get("kind")) == old.get("kind", value.get("kind"))):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def apply_preset(group: str, data: Any) -> Any:
    """Merge ``PRESETS[group][data["preset"]]`` under ``data`` (a mapping); other data unchanged.

    Raises:
        ValueError: the preset name is unknown (pydantic turns it into a ValidationError
            that names the field).
    """
    if not isinstance(data, Mapping):
        return data
    name = data.get("preset")
    if name is None:
        return data
    if not isinstance(name, str):  # looked up by name: another type would fail below untidily
        raise ValueError(f"preset: must be a {group} preset name (a string), got {name!r}")
    table = PRESETS[group]
    if name not in table:
        valid = ", ".join(sorted(table))
        raise ValueError(f"preset: unknown {group} preset {name!r}; valid presets: {valid}")
    return deep_merge(table[name], data)


class PolicyModel(BaseModel):
    """Base of every policy config: frozen, no unknown keys, optional ``preset`` merging."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset_group: ClassVar[str] = ""
    """Which table of :data:`simres.policies.presets.PRESETS` the ``preset`` field names."""

    @model_validator(mode="before")
    @classmethod
    def _merge_preset(cls, data: Any) -> Any:
        if cls.preset_group:
            return apply_preset(cls.preset_group, data)
        return data


class SlidingCounts:
    """Sums of a few counters over a sliding time window, kept in time-aligned buckets.

    The window ``span`` is cut into ``buckets`` slices of equal width aligned to multiples
    of the width (Resilience4j aligns its one-second buckets to whole seconds the same
    way); the sums cover the current, partly elapsed slice and the ``buckets - 1`` before
    it. Updates and reads are O(1) amortised: advancing time clears at most ``buckets``
    slices, however long the gap.
    """

    __slots__ = ("_cur", "_n", "_slots", "_totals", "_width")

    def __init__(self, span: float, buckets: int, counters: int) -> None:
        if not span > 0 or buckets < 1:
            raise ValueError(f"span and buckets must be positive, got {span}, {buckets}")
        self._width = span / buckets
        self._n = buckets
        self._slots: list[list[float]] = [[0] * counters for _ in range(buckets)]
        self._totals: list[float] = [0] * counters
        self._cur: int | None = None

    def _advance(self, now: float) -> None:
        bid = math.floor(now / self._width)
        cur = self._cur
        if cur is None:
            self._cur = bid
            return
        if bid <= cur:
            return  # same slice, or time went backwards: count in the current slice
        n = self._n
        totals = self._totals
        if bid - cur >= n:
            for slot in self._slots:
                for i in range(len(slot)):
                    slot[i] = 0
            for i in range(len(totals)):
                totals[i] = 0
        else:
            for b in range(cur + 1, bid + 1):
                slot = self._slots[b % n]
                for i, v in enumerate(slot):
                    if v:
                        totals[i] -= v
                        slot[i] = 0
        self._cur = bid

    def add(self, now: float, counter: int, amount: float = 1) -> None:
        """Add ``amount`` to ``counter`` at time ``now``."""
        self._advance(now)
        self._slots[self._cur % self._n][counter] += amount  # type: ignore[operator]
        self._totals[counter] += amount

    def total(self, now: float, counter: int) -> float:
        """The sum of ``counter`` over the window ending at ``now``."""
        self._advance(now)
        return self._totals[counter]

    def last_total(self, counter: int) -> float:
        """The sum as of the last update or read (no time given)."""
        return self._totals[counter]

    def clear(self) -> None:
        """Forget everything."""
        for slot in self._slots:
            for i in range(len(slot)):
                slot[i] = 0
        for i in range(len(self._totals)):
            self._totals[i] = 0
        self._cur = None
