"""``simres validate``: the engine checked against exact queueing results (docs/validation.md).

:mod:`.theory` holds the closed forms, :mod:`.cases` the small scenarios with their checks,
:mod:`.runner` runs replications and judges each check. Part of :mod:`simres.experiments`
and bound by its import rules.
"""

from simres.experiments.validation.cases import (
    CONFIDENCE,
    DEFAULT_SEED,
    QUICK_SCALE,
    Case,
    Check,
    ValidationError,
    all_cases,
    case_seed,
    select_cases,
)
from simres.experiments.validation.runner import COLUMNS, format_table, run_validation
from simres.experiments.validation.theory import (
    erlang_b,
    erlang_c,
    lognormal_params,
    mm1_sojourn,
    mm1_sojourn_quantile,
    mm1k_blocking,
    mm1k_sojourn,
    mmc_sojourn_quantile,
    mmc_sojourn_tail,
    mmc_wait,
    pk_wait,
    retry_load,
    retry_success,
)

__all__ = [
    "COLUMNS",
    "CONFIDENCE",
    "DEFAULT_SEED",
    "QUICK_SCALE",
    "Case",
    "Check",
    "ValidationError",
    "all_cases",
    "case_seed",
    "erlang_b",
    "erlang_c",
    "format_table",
    "lognormal_params",
    "mm1_sojourn",
    "mm1_sojourn_quantile",
    "mm1k_blocking",
    "mm1k_sojourn",
    "mmc_sojourn_quantile",
    "mmc_sojourn_tail",
    "mmc_wait",
    "pk_wait",
    "retry_load",
    "retry_success",
    "run_validation",
    "select_cases",
]
