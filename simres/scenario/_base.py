"""What every scenario model shares: frozen, unknown keys rejected, defaults validated.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Priority = Literal["critical", "high", "medium", "low"]
PositiveFloat = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, validate_default=True)
