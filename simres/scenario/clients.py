"""Client populations and their arrival processes (open loop: poisson, constant, profile; closed loop).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from simres import datafiles
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
    """Open loop: a Poisson process whose rate follows a piecewise profile (steps, spikes, ramps).

    The points are inline (``points``) or a time series in a CSV or Parquet ``file``
    (relative to the scenario file), its ``time`` column in seconds from the start of the
    run and its ``rate`` column in requests per second per member, one point per row. A
    file builds the very points the same numbers inline would, so both give the same run;
    a resolved scenario shows the file's absolute path and ``sha256`` instead of the points.
    """

    kind: Literal["profile"] = "profile"
    shape: Literal["step", "linear"] = Field(
        default="step",
        description="Hold each rate until the next point (step), or interpolate (linear ramps).",
    )
    time: str | None = Field(default=None, description="With file: the column of times (seconds from the start).")
    rate: str | None = Field(default=None, description="With file: the column of rates (requests per second per "
                             "member).")
    file: str | None = Field(default=None, description="CSV or Parquet time series of rates, relative to the "
                             "scenario file; instead of points.")
    sha256: str | None = Field(default=None, description="The file's SHA-256, filled in on load (a given value "
                               "is replaced).")
    points: list[RatePoint] | None = Field(
        default=None, min_length=1,
        description="Rate points sorted by time; the first applies from t=0. Or give file.")

    @field_validator("file")
    @classmethod
    def _read_file(cls, file: str | None, info: ValidationInfo) -> str | None:
        # Read and check both columns now (errors name this field); the table stays cached by content.
        if file is None or "time" not in info.data or "rate" not in info.data:
            return file
        missing = [k for k in ("time", "rate") if info.data[k] is None]
        if missing:
            raise ValueError(f"name the file's columns of times and rates in 'time' and 'rate' "
                             f"(missing: {', '.join(missing)})")
        path, _, _ = datafiles.series(file, datafiles.base_dir_of(info), info.data["time"], info.data["rate"],
                                      x_what="time", y_what="rate")
        return str(path)

    _digest = field_validator("sha256")(datafiles.file_digest)

    @field_validator("points", mode="before")
    @classmethod
    def _points_from_file(cls, points: Any, info: ValidationInfo) -> Any:
        file = info.data.get("file")
        if file is None:
            return points
        if points is not None:
            raise ValueError("give either 'points' or 'file', not both")
        _, ats, rates = datafiles.series(file, None, info.data["time"], info.data["rate"],
                                         x_what="time", y_what="rate")
        return [{"at": a, "rate": r} for a, r in zip(ats.tolist(), rates.tolist())]

    @model_validator(mode="after")
    def _sorted(self) -> ProfileArrivals:
        if self.points is None:
            raise ValueError("give either 'points' (a list of {at, rate}) or 'file' (a CSV or Parquet time series)")
        if self.file is None:
            for key in ("time", "rate", "sha256"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: only with 'file'")
        ats = [p.at for p in self.points]
        if ats != sorted(ats):
            raise ValueError("points: must be sorted by 'at'")
        if max(p.rate for p in self.points) <= 0:
            where = f"file: rate column '{self.rate}' of {self.file}" if self.file else "points"
            raise ValueError(f"{where}: at least one rate must be > 0")
        return self

    @model_serializer(mode="wrap")
    def _points_or_file(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Inline profiles dump as before; a file's points are never inlined (the sha256 stands for them).
        out: dict[str, Any] = handler(self)
        if self.file is not None:
            del out["points"]
        for key in ("file", "time", "rate", "sha256"):
            if out.get(key, 0) is None:
                del out[key]
        return out

    def rate_at(self, t: float) -> float:
        """The profile's rate at time ``t``."""
        pts = self.points
        assert pts is not None  # filled from the file when one is given
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
        return max(p.rate for p in self.points or ())


class ClosedArrivals(_Model):
    """Closed loop: ``users`` per client member, each waiting for its answer, then thinking."""

    kind: Literal["closed"] = "closed"
    users: int = Field(ge=1, le=limits.MAX_WORKERS, description="Concurrent users per client member.")
    think_time: Dist = Field(default=0.0, description="Pause between a response and the next request (seconds).")


Arrivals = Annotated[
    PoissonArrivals | ConstantArrivals | ProfileArrivals | ClosedArrivals,
    Field(discriminator="kind"),
]


class SagaCompensation(CallPolicy):
    """The compensation of a saga step: a call with its own policy stack (e.g. retries)."""

    to: str = Field(description="Service that undoes the step (e.g. inventory for a release).")


class SagaStep(CallPolicy):
    """One forward step of a saga: a logical call with this step's policy stack."""

    name: str = Field(min_length=1, description="The step's name (unique in the saga; in the saga events).")
    to: str = Field(description="Service the step calls.")
    compensate: SagaCompensation | None = Field(
        default=None,
        description="The call that undoes this step once it succeeded, run when a later step fails; none = "
        "nothing to undo.")


class SagaConfig(_Model):
    """A saga: steps run forward; when one fails (after its retries) the compensations of the steps
    already done run in reverse order, each with its own policies."""

    steps: list[SagaStep] = Field(min_length=1, description="The forward steps, in order.")

    @model_validator(mode="after")
    def _unique_names(self) -> SagaConfig:
        names = [s.name for s in self.steps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"steps: step names must be unique, repeated: {', '.join(dup)}")
        for i, step in enumerate(self.steps):
            if step.hedge is not None:
                raise ValueError(f"steps.{i}.hedge: a saga step is not hedged")
        return self


SAGA_UNUSED = ("timeout", "connect_timeout", "read_timeout", "deadline", "retry", "breaker", "bulkhead", "limit",
               "outlier_detection", "throttle")
"""A client's own policy fields, which a saga client does not use (each step has its own)."""


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
    workflow: Literal["call", "read_then_write", "saga"] = Field(
        default="call",
        description="call: one logical call per request. read_then_write: against an occ_row service, read the "
        "version then write conditionally; a conflict backs off (retry policy) and starts over with a read. "
        "saga: the steps of ``saga`` (each with its own policies; the client's own are not used).",
    )
    saga: SagaConfig | None = Field(
        default=None,
        description="With workflow: saga: the steps and their compensations. ``target`` names the service "
        "the requests frame reports (usually the first step's).")
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
        if self.workflow == "saga" and self.saga is None:
            raise ValueError("saga: workflow: saga needs saga: {steps: [...]}")
        if self.workflow == "saga":
            for key in SAGA_UNUSED:
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: a saga client's policies go on its steps (saga.steps.N.{key}, "
                                     f"saga.steps.N.compensate.{key})")
        if self.workflow != "saga" and self.saga is not None:
            raise ValueError(f"saga: only with workflow: saga (this client has workflow: {self.workflow})")
        return self
