"""Generate the option tables of ``docs/policies.md`` from the configs' field descriptions.

The document holds marked blocks::

    <!-- fields:RetryConfig -->
    ...generated table...
    <!-- /fields -->

``python -m simres.policies._doctables docs/policies.md`` rewrites every block in place;
the test suite checks that the committed document matches, so the docs cannot drift.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from simres.policies.autoscale import AutoscaleConfig, ColdStartConfig, ScaleStep
from simres.policies.aws_adaptive import AdaptiveRateConfig
from simres.policies.backoff import BackoffConfig, JitterConfig
from simres.policies.breaker import BreakerConfig
from simres.policies.budget import (
    ConcurrencyBudgetConfig,
    FailureRatioBudgetConfig,
    GrpcBudgetConfig,
    RatioBudgetConfig,
    TokenBucketBudgetConfig,
)
from simres.policies.bulkhead import BulkheadConfig
from simres.policies.envoy_concurrency import EnvoyGradientConfig
from simres.policies.hedging import HedgeConfig
from simres.policies.limits import LimitConfig, LimitWindowConfig
from simres.policies.outlier import OutlierConfig
from simres.policies.queueing import CodelConfig
from simres.policies.retry import RetryConfig
from simres.policies.shedding import SheddingConfig
from simres.policies.throttle import ThrottleConfig
from simres.policies.windows import WindowConfig

CONFIGS: dict[str, type[BaseModel]] = {
    cls.__name__: cls for cls in (
        RetryConfig, BackoffConfig, JitterConfig, TokenBucketBudgetConfig, GrpcBudgetConfig,
        RatioBudgetConfig, ConcurrencyBudgetConfig, FailureRatioBudgetConfig, BreakerConfig,
        WindowConfig, BulkheadConfig, SheddingConfig, ThrottleConfig, LimitConfig, LimitWindowConfig,
        EnvoyGradientConfig, CodelConfig, HedgeConfig, OutlierConfig, AdaptiveRateConfig,
        AutoscaleConfig, ColdStartConfig, ScaleStep,
    )
}
"""Every policy config model whose options the document lists."""

_BLOCK = re.compile(r"(<!-- fields:(\w+) -->\n)(.*?)(<!-- /fields -->)", re.S)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, BaseModel):
        return f"{type(value).__name__} defaults"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def field_table(model: type[BaseModel]) -> str:
    """A Markdown table of ``model``'s fields: name, default, description."""
    rows = ["| field | default | meaning |", "|---|---|---|"]
    for name, info in model.model_fields.items():
        if info.default is not PydanticUndefined:
            default = info.default
        elif info.default_factory is not None:
            default = info.default_factory()  # type: ignore[call-arg]
        else:
            default = "required"
        text = (info.description or "").replace("|", "\\|").replace("*", "\\*")
        rows.append(f"| `{name}` | `{_show(default)}` | {text} |")
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    """``text`` with every fields block regenerated."""
    def block(m: re.Match[str]) -> str:
        return m.group(1) + field_table(CONFIGS[m.group(2)]) + m.group(4)
    return _BLOCK.sub(block, text)


def blocks(text: str) -> dict[str, str]:
    """The current content of each fields block, by config name."""
    return {m.group(2): m.group(3) for m in _BLOCK.finditer(text)}


def main(argv: list[str] | None = None) -> int:
    """Rewrite the document given as the only argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m simres.policies._doctables docs/policies.md", file=sys.stderr)
        return 2
    path = Path(args[0])
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
