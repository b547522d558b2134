"""Client populations and their arrival processes (open loop: poisson, constant, profile; closed loop).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, model_validator

from simres.dists import Dist
from simres.policies import (
    ThrottleConfig,
)
from simres.scenario import limits
from simres.scenario._base import PositiveFloat, Priority, _Model
from simres.scenario.services import CallPolicy

# ---------------------------------------------------------------------------- clients


class RatePoint(_Model):
    """A point of a rate profile: from ``at`` the rate is ``rate`` (or ramps to it)."""

    at: float = Field(ge=0, description="Time (seconds).")
    rate: float = Field(ge=0, description="Requests per second per client member.")


class PoissonArrivals(_Model):
    """Open loop: a Poisson process."""

    kind: Literal["poisson"] = "poisson"
    rate: PositiveFloat = Field(description="Requests per second per client member.")


class ConstantArrivals(_Model):
    """Open loop: evenly spaced arrivals."""

    kind: Literal["constant"] = "constant"
    rate: PositiveFloat = Field(description="Requests per second per client member.")


class ProfileArrivals(_Model):
    """Open loop: a Poisson process whose rate follows a piecewise profile (steps, spikes, ramps)."""

    kind: Literal["profile"] = "profile"
    points: list[RatePoint] = Field(min_length=1, description="Rate points sorted by time; the first applies from t=0.")
    shape: Literal["step", "linear"] = Field(
        default="step",
        description="Hold each rate until the next point (step), or interpolate (linear ramps).",
    )

    @model_validator(mode="after")
    def _sorted(self) -> ProfileArrivals:
        ats = [p.at for p in self.points]
        if ats != sorted(ats):
            raise ValueError("points: must be sorted by 'at'")
        if max(p.rate for p in self.points) <= 0:
            raise ValueError("points: at least one rate must be > 0")
        return self

    def rate_at(self, t: float) -> float:
        """The profile's rate at time ``t``."""
        pts = self.points
        if t < pts[0].at:
            return pts[0].rate
        for a, b in itertools.pairwise(pts):
            if a.at <= t < b.at:
                if self.shape == "linear" and b.at > a.at:
                    return a.rate + (b.rate - a.rate) * (t - a.at) / (b.at - a.at)
                return a.rate
        return pts[-1].rate

    @property
    def max_rate(self) -> float:
        """The highest rate in the profile (the thinning bound)."""
        return max(p.rate for p in self.points)


class ClosedArrivals(_Model):
    """Closed loop: ``users`` per client member, each waiting for its answer, then thinking."""

    kind: Literal["closed"] = "closed"
    users: int = Field(ge=1, le=limits.MAX_WORKERS, description="Concurrent users per client member.")
    think_time: Dist = Field(default=0.0, description="Pause between a response and the next request (seconds).")


Arrivals = Annotated[
    PoissonArrivals | ConstantArrivals | ProfileArrivals | ClosedArrivals,
    Field(discriminator="kind"),
]


class ClientConfig(CallPolicy):
    """A client population: ``count`` independent members with the same policy stack."""

    target: str = Field(description="Service the clients call.")
    count: int = Field(
        default=1, ge=1, le=limits.MAX_CLIENT_COUNT,
        description="Independent client members (each with its own arrivals and, with per_client scope, its own "
        "policy state).",
    )
    arrival: Arrivals = Field(description="Arrival process of each member.")
    priority: Priority = Field(
        default="high",
        description="Priority class of its requests: critical, high, medium, low.",
    )
    throttle: ThrottleConfig | None = Field(default=None, description="Client-side adaptive throttling.")
    workflow: Literal["call", "read_then_write"] = Field(
        default="call",
        description="call: one logical call per request. read_then_write: against an occ_row service, read the "
        "version then write conditionally; a conflict backs off (retry policy) and starts over with a read.",
    )
    requests_per_member: int | None = Field(
        default=None, ge=1,
        description="Closed loop only: each user stops after this many requests (e.g. 1 for 'N clients each want "
        "one successful write').",
    )
    start: float = Field(default=0.0, ge=0, description="When the clients start sending (seconds).")
    stop: float | None = Field(default=None, gt=0, description="When they stop sending; none = at the end of the run.")

    @model_validator(mode="after")
    def _hedge_needs_call_workflow(self) -> ClientConfig:
        if self.hedge is not None and self.workflow != "call":
            raise ValueError("hedge: only with workflow: call (a read_then_write round is not hedged)")
        return self
