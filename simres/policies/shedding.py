"""Server-side load shedding by priority: drop the least important work first.

Load is a number around 0..1 computed from worker utilisation and queue depth; each
priority class has a threshold above which its requests are shed (the classic recipe:
critical never, high above 0.95, medium above 0.9, low above 0.8). Google SRE's
criticality names are accepted as aliases: ``critical_plus`` -> critical, ``critical``
-> high, ``sheddable_plus`` -> medium, ``sheddable`` -> low.

Note the alias ``critical`` is also simres' own top class, so in ``thresholds`` and in
:meth:`Shedder.should_shed` the name ``critical`` always means simres' critical; use
``critical_plus`` only as an alias and spell SRE's CRITICAL as ``high``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from simres.errors import PolicyConfigError
from simres.outcomes import PRIORITIES
from simres.policies._base import PolicyModel

SRE_ALIASES: dict[str, str] = {
    "critical_plus": "critical",
    "sheddable_plus": "medium",
    "sheddable": "low",
}
"""Google SRE criticality names and the simres priority each maps to (SRE CRITICAL is
simres ``high``; it cannot be an alias because ``critical`` names simres' top class)."""

DEFAULT_THRESHOLDS: dict[str, float | None] = {
    "critical": None, "high": 0.95, "medium": 0.9, "low": 0.8,
}


class SheddingConfig(PolicyModel):
    """Options of a priority load shedder."""

    signal: Literal["utilization", "queue", "both"] = Field(
        default="both",
        description="Load signal: worker utilisation (0..1), queue length / queue_limit, or "
                    "the larger of the two.")
    thresholds: dict[str, float | None] = Field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS),
        description="Per priority: shed when load exceeds this; null = never shed. Missing "
                    "priorities keep their defaults (critical null, high 0.95, medium 0.9, "
                    "low 0.8); SRE names (critical_plus, sheddable_plus, sheddable) accepted.")
    queue_limit: int = Field(default=100, ge=1,
                             description="Queue length that counts as load 1.0.")

    @field_validator("thresholds", mode="before")
    @classmethod
    def _normalise(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        out = dict(DEFAULT_THRESHOLDS)
        for name, threshold in value.items():
            key = SRE_ALIASES.get(name, name)
            if key not in PRIORITIES:
                valid = list(PRIORITIES) + list(SRE_ALIASES)
                raise ValueError(f"thresholds: unknown priority {name!r}; valid: {valid}")
            if threshold is not None and not (isinstance(threshold, int | float)
                                              and threshold >= 0):
                raise ValueError(f"thresholds.{name}: must be a number >= 0 or null, "
                                 f"got {threshold!r}")
            out[key] = threshold
        return out

    def build(self) -> Shedder:
        """The shedder (stateless apart from its lookup table)."""
        return Shedder(self)


class Shedder:
    """Decides, per request, whether to shed it given the instance's current load."""

    __slots__ = ("_both", "_qlim", "_signal", "_thr", "config")

    def __init__(self, config: SheddingConfig) -> None:
        self.config = config
        thr = {p: config.thresholds.get(p) for p in PRIORITIES}
        for alias, target in SRE_ALIASES.items():
            thr[alias] = thr[target]
        self._thr = thr
        self._signal = config.signal
        self._qlim = float(config.queue_limit)

    def load(self, utilization: float, queue_len: int) -> float:
        """The load signal for this utilisation and queue length."""
        signal = self._signal
        if signal == "utilization":
            return utilization
        q = queue_len / self._qlim
        return q if signal == "queue" else (q if q > utilization else utilization)

    def should_shed(self, priority: str, utilization: float, queue_len: int) -> bool:
        """Shed a request of ``priority`` when the load exceeds its class threshold."""
        try:
            threshold = self._thr[priority]
        except KeyError:
            raise PolicyConfigError(f"priority: unknown priority {priority!r}; valid: "
                                    f"{list(self._thr)}") from None
        if threshold is None:
            return False
        return self.load(utilization, queue_len) > threshold

    def __repr__(self) -> str:
        return f"Shedder(config={self.config!r})"
