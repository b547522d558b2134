"""Client-side adaptive throttling: reject locally when the backend keeps refusing.

- ``sre`` (Google SRE book, "Handling Overload"): over the last ``window`` seconds the
  client counts ``requests`` (every request the application attempted, including those
  the throttle rejected) and ``accepts``; it rejects with probability
  ``max(0, (requests - k * accepts) / (requests + 1))``.
- ``envoy`` (Envoy admission control filter): the same rule with ``k = 1 / sr_threshold``,
  raised to ``1 / aggression``, capped at ``max_rejection``, and off while the request
  rate is below ``rps_threshold``; only requests sent upstream are counted.

Driver protocol: ``if throttle.should_reject(now, u):`` fail locally and call
``record_rejection(now)`` (it counts the request in ``sre`` mode and nothing in ``envoy``
mode); otherwise send and, when the try ends, ``record(now, accepted)`` or
``record_outcome(now, outcome)``. ``should_reject`` itself records nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from simres.outcomes import RETRYABLE_KINDS
from simres.policies._base import PolicyModel, SlidingCounts

_REQ = 0
_ACC = 1


class ThrottleConfig(PolicyModel):
    """Options of an adaptive client-side throttle."""

    preset_group = "throttle"
    mode: Literal["sre", "envoy"] = Field(
        default="sre", description="sre: Google SRE client-side throttling; envoy: Envoy "
                                   "admission control.")
    k: float = Field(default=2.0, gt=0,
                     description="sre: requests allowed per accept before rejecting (SRE K=2).")
    window: float = Field(default=120.0, gt=0,
                          description="Seconds of history counted (SRE 120, Envoy 30).")
    buckets: int = Field(default=120, ge=1,
                         description="Time slices the window is kept in.")
    sr_threshold: float = Field(
        default=0.95, gt=0, le=1,
        description="envoy: success rate below which rejection starts (k = 1/sr_threshold).")
    aggression: float = Field(
        default=1.0, gt=0,
        description="envoy: the rejection probability is raised to 1/aggression.")
    max_rejection: float = Field(default=0.8, ge=0, le=1,
                                 description="envoy: largest rejection probability.")
    rps_threshold: float = Field(
        default=0.0, ge=0,
        description="envoy: no rejection while requests per second in the window are below.")
    not_accepted: tuple[str, ...] = Field(
        default=RETRYABLE_KINDS,
        description="Outcomes that count as not accepted for record_outcome (default every "
                    "remote failure).")
    scope: Literal["per_client", "shared"] = Field(
        default="per_client",
        description="per_client: one throttle per client instance; shared: one for every "
                    "client with this config.")
    preset: str | None = Field(
        default=None,
        description="Name of a library preset whose values fill every field not given here.")

    @field_validator("not_accepted")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [o for o in value if o not in RETRYABLE_KINDS]
        if bad:
            raise ValueError(f"not_accepted: must be among {list(RETRYABLE_KINDS)}, got {bad}")
        return value

    def build(self) -> AdaptiveThrottle:
        """Fresh throttle state."""
        return AdaptiveThrottle(self)


class AdaptiveThrottle:
    """Requests and accepts over a sliding window, and the rejection rule of its mode."""

    __slots__ = ("_counts", "_envoy", "_exp", "_k", "_maxp", "_min_req", "_not_acc",
                 "config", "rejected_count")

    def __init__(self, config: ThrottleConfig) -> None:
        self.config = config
        self._envoy = config.mode == "envoy"
        self._k = 1.0 / config.sr_threshold if self._envoy else config.k
        self._exp = 1.0 / config.aggression
        self._maxp = config.max_rejection
        self._min_req = config.rps_threshold * config.window
        self._not_acc = frozenset(config.not_accepted)
        self._counts = SlidingCounts(config.window, config.buckets, 2)
        self.rejected_count = 0

    def reject_probability(self, now: float) -> float:
        """The probability that a request starting now is rejected locally."""
        c = self._counts
        requests = c.total(now, _REQ)
        accepts = c.last_total(_ACC)
        p = (requests - self._k * accepts) / (requests + 1)
        if p <= 0:
            return 0.0
        if self._envoy:
            if requests < self._min_req:
                return 0.0
            if self._exp != 1.0:
                p = p**self._exp
            return p if p < self._maxp else self._maxp
        return p

    def should_reject(self, now: float, u: float) -> bool:
        """Reject a request now, given ``u``, a U[0, 1) draw? Records nothing by itself."""
        if u < self.reject_probability(now):
            self.rejected_count += 1
            return True
        return False

    def record_rejection(self, now: float) -> None:
        """Count a request this throttle rejected: a not-accepted request in ``sre`` mode
        (SRE counts every request the application attempted), nothing in ``envoy`` mode
        (Envoy counts only requests sent upstream)."""
        if not self._envoy:
            self._counts.add(now, _REQ)

    def record(self, now: float, accepted: bool) -> None:
        """A request that was sent ended; ``accepted``: the backend took it."""
        c = self._counts
        c.add(now, _REQ)
        if accepted:
            c.add(now, _ACC)

    def record_outcome(self, now: float, outcome: str) -> None:
        """:meth:`record` with ``accepted`` derived from the outcome (see ``not_accepted``)."""
        self.record(now, outcome not in self._not_acc)

    @property
    def requests(self) -> float:
        """Requests counted in the window as of the last update."""
        return self._counts.last_total(_REQ)

    @property
    def accepts(self) -> float:
        """Accepts counted in the window as of the last update."""
        return self._counts.last_total(_ACC)

    def __repr__(self) -> str:
        return (f"AdaptiveThrottle(requests={self.requests}, accepts={self.accepts}, "
                f"config={self.config!r})")
