"""What "better" means for a scenario: a primary objective, tie-breakers, constraints, controls.

The direction of each metric (higher or lower is better) is not written here: it is the
one registered in :mod:`simres.metrics.directions`, so a scenario cannot call utilisation
a goal. Comparisons, verdicts and ``simres best`` read these fields.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from simres.scenario._base import _Model

DEFAULT_PRIMARY = "success_rate"
DEFAULT_THEN = ("latency_all_p99",)

_CONSTRAINT = re.compile(r"^\s*[A-Za-z_][\w:=.>\-@#]*?\s*(>=|<=|>|<)\s*[-+0-9.eE]+\s*$")


class Objective(_Model):
    """The primary metric, the tie-breakers in order, and the constraints a choice must meet."""

    primary: str = Field(default=DEFAULT_PRIMARY,
                         description="The metric that decides first (default: the success rate).")
    then: list[str] = Field(default_factory=lambda: list(DEFAULT_THEN),
                            description="Tie-breakers in order, used among variants indistinguishable on "
                                        "the primary (default: p99 latency of all requests, a failure "
                                        "counted when its client gave up).")
    subject_to: list[str] = Field(default_factory=list,
                                  description="Constraints 'METRIC OP NUMBER' (OP one of >=, <=, >, <), "
                                              "e.g. 'success_rate >= 0.99'.")

    @field_validator("subject_to")
    @classmethod
    def _constraints(cls, v: list[str]) -> list[str]:
        for text in v:
            if not _CONSTRAINT.match(text):
                raise ValueError(f"expected METRIC OP NUMBER with OP one of >=, <=, >, <, got {text!r}")
        return v

    @property
    def metrics(self) -> list[str]:
        """The primary metric, then the tie-breakers, without repeats."""
        return list(dict.fromkeys([self.primary, *self.then]))
