"""Autoscaling decisions: a Kubernetes HPA's target tracking, and step scaling on queue length.

The objects are pure: no clock (:meth:`Autoscaler.decide` takes ``now``), no SimPy. The
model (``simres.model.autoscale``) measures the metric over each sync period, asks for a
decision, and starts or drains instances.

``target_tracking`` follows the Kubernetes HorizontalPodAutoscaler algorithm
(kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details and
``pkg/controller/podautoscaler/horizontal.go``, ``replica_calculator.go``):

- the raw recommendation is ``ceil(ready * metric / target)``, where ``metric`` is the mean
  over the ready instances (the controller's ``readyPodCount`` and usage ratio); when
  ``|metric / target - 1| <= tolerance`` the recommendation is the current replica count
  (no change); when scaling up with instances still starting, those count as idle
  (``replica_calculator.go``'s unready pods at zero usage): the ratio over all of them must
  still exceed ``1 + tolerance``, and the recommendation is ``ceil(current * ratio)``;
- the recommendation is stabilised (``stabilizeRecommendationWithBehaviors``): every raw
  recommendation is kept with its time; the up recommendation is the *lowest* of those within
  ``scale_up_stabilization`` seconds (the new one included), the down recommendation the
  *highest* within ``scale_down_stabilization``; the result is the current count raised to
  the up recommendation and lowered to the down recommendation (defaults 0 s up and 300 s
  down, as the HPA's);
- the result is clamped to ``[min, max]``.

Not modelled: the HPA's scaling-rate policies (``behavior.*.policies``: by default at most
double or +4 pods per 15 s up), its CPU initialisation period, missing metrics, and the
metric-collection delay.

``step`` is step scaling on the queue length (AWS Application Auto Scaling step
adjustments): the metric is the mean queue length per ready instance; the step with the
highest ``lower`` bound at or below it applies its ``change`` (instances added, or removed
when negative) to the current count; the same stabilisation windows and bounds then apply.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simres.policies._base import PolicyModel


class ColdStartConfig(BaseModel):
    """A new instance's slowdown once ready (caches empty, JIT cold)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    factor: float = Field(default=2.0, gt=0, description="Service-time multiplier while cold.")
    duration: float = Field(default=30.0, gt=0, description="How long a new instance stays cold (seconds).")


class ScaleStep(BaseModel):
    """One step adjustment: from ``lower`` (mean queue length per ready instance) up, ``change`` instances."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    lower: float = Field(ge=0, description="Lower bound of the step (mean queue length per ready instance).")
    change: int = Field(description="Instances added (negative: removed) when the metric is in this step.")


class AutoscaleConfig(PolicyModel):
    """A service's autoscaler (Kubernetes HPA target tracking, or step scaling on queue length)."""

    kind: Literal["target_tracking", "step"] = Field(
        default="target_tracking", description="target_tracking (HPA) or step (queue-length step adjustments).")
    metric: Literal["utilization", "inflight"] = Field(
        default="utilization",
        description="target_tracking's metric: busy workers / workers over the sync period, or in-flight "
        "requests (queued and in service) per instance at the sync; both averaged over the ready instances.")
    target: float = Field(default=0.6, gt=0, description="target_tracking's target value of the metric.")
    sync_period: float = Field(default=15.0, gt=0, description="Seconds between decisions (the HPA's sync period).")
    tolerance: float = Field(default=0.1, ge=0, description="No change while |metric/target - 1| <= tolerance.")
    scale_up_stabilization: float = Field(
        default=0.0, ge=0, description="Scale up to the lowest recommendation of this many seconds.")
    scale_down_stabilization: float = Field(
        default=300.0, ge=0, description="Scale down to the highest recommendation of this many seconds.")
    min: int = Field(default=1, ge=1, description="Fewest instances (instances ready at the start).")
    max: int = Field(default=10, ge=1, description="Most instances (the pool built at the start).")
    startup_delay: float = Field(default=30.0, ge=0, description="Seconds from scale-up to the instance being ready.")
    cold_start: ColdStartConfig | None = Field(default=None, description="Slowdown of a new instance once ready.")
    steps: tuple[ScaleStep, ...] = Field(default=(), description="step's adjustments, by lower bound.")

    @model_validator(mode="after")
    def _check(self) -> AutoscaleConfig:
        if self.min > self.max:
            raise ValueError(f"min: must be at most max ({self.max}), got {self.min}")
        if self.kind == "step" and not self.steps:
            raise ValueError("steps: kind step needs at least one step")
        if self.kind != "step" and self.steps:
            raise ValueError("steps: only used with kind: step")
        return self

    def build(self) -> Autoscaler:
        """A fresh decision object."""
        return Autoscaler(self)


class Autoscaler:
    """The decision state: the recommendations of the stabilisation windows."""

    def __init__(self, cfg: AutoscaleConfig) -> None:
        self.cfg = cfg
        self.recommendations: deque[tuple[float, int]] = deque()
        """(time, raw recommendation) within the longer stabilisation window."""
        self._steps = sorted(cfg.steps, key=lambda s: s.lower)

    def raw(self, current: int, ready: int, metric: float) -> int:
        """The recommendation before stabilisation and bounds."""
        cfg = self.cfg
        if cfg.kind == "step":
            change = 0
            for s in self._steps:
                if metric >= s.lower:
                    change = s.change
            return current + change
        ratio = metric / cfg.target
        if abs(ratio - 1.0) <= cfg.tolerance:
            return current
        if ratio > 1.0 and current > ready > 0:
            # Instances still starting count as idle (the HPA's unready pods when scaling up):
            # the ratio over all of them must still ask for more, beyond the tolerance.
            ratio = ready * metric / (current * cfg.target)
            if ratio <= 1.0 + cfg.tolerance:
                return current
            return math.ceil(current * ratio)
        return math.ceil(ready * ratio)

    def decide(self, now: float, current: int, ready: int, metric: float) -> int:
        """The desired instance count at ``now``, from the current desired count, the ready
        instances and the metric (averaged over the ready instances)."""
        cfg = self.cfg
        rec = self.raw(current, ready, metric)
        recs = self.recommendations
        recs.append((now, rec))
        keep = max(cfg.scale_up_stabilization, cfg.scale_down_stabilization)
        while recs and recs[0][0] < now - keep:
            recs.popleft()
        up_cut = now - cfg.scale_up_stabilization
        down_cut = now - cfg.scale_down_stabilization
        up = min(r for t, r in recs if t >= up_cut)
        down = max(r for t, r in recs if t >= down_cut)
        out = current
        if out < up:
            out = up
        if out > down:
            out = down
        return max(cfg.min, min(cfg.max, out))
