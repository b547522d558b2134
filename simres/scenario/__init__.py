"""Scenarios: the schema of a scenario file, loading it with variants and overrides, and its reference.

Owns the validated, frozen description of a world: the network, services and their
handlers, client populations and arrivals, faults, and named variants, split by concept
(:mod:`.network`, :mod:`.services`, :mod:`.clients`, :mod:`.faults`, the top-level
:mod:`.schema`); the policy configs themselves belong to :mod:`simres.policies`.
:mod:`.loading` reads YAML safely and applies variants and dotted-path overrides,
:mod:`.messages` turns validation errors into one line naming the field, and
:mod:`.reference` generates ``docs/scenario-reference.md``. May import the foundations and
:mod:`simres.policies`; never the model, experiments, reporting or the CLI.
"""

from simres.scenario.clients import (
    ClientConfig,
    ClosedArrivals,
    ConstantArrivals,
    PoissonArrivals,
    ProfileArrivals,
    RatePoint,
)
from simres.scenario.faults import FaultConfig
from simres.scenario.loading import (
    apply_overrides,
    bundled_scenarios,
    load_scenario,
    parse_overrides,
    read_raw,
    resolve_path,
    resolved_dict,
    scenarios_dir,
    validate,
)
from simres.scenario.network import LinkConfig, LinkDefaults, NetworkConfig
from simres.scenario.schema import Scenario
from simres.scenario.services import (
    CallPolicy,
    DownstreamCall,
    FallbackConfig,
    HandlerConfig,
    QueueConfig,
    ServiceConfig,
)

__all__ = [
    "CallPolicy", "ClientConfig", "ClosedArrivals", "ConstantArrivals", "DownstreamCall", "FallbackConfig",
    "FaultConfig", "HandlerConfig", "LinkConfig", "LinkDefaults", "NetworkConfig", "PoissonArrivals",
    "ProfileArrivals", "QueueConfig", "RatePoint", "Scenario", "ServiceConfig", "apply_overrides",
    "bundled_scenarios", "load_scenario", "parse_overrides", "read_raw", "resolve_path", "resolved_dict",
    "scenarios_dir", "validate",
]
