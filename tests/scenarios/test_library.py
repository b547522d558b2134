"""The bundled scenario library: every scenario has the header the issue asks for, every
variant validates and runs by name, and every scenario has a test asserting its claim."""

from __future__ import annotations

from pathlib import Path

import pytest

from simres.experiments.replications import replicate
from simres.scenario.loading import bundled_scenarios, load_scenario

SCENARIOS = sorted(bundled_scenarios())
HEADER = ("Failure mode:", "What to look at:", "Expected outcome:", "Source:")
# aws-backoff-jitter is tested by the test written with its model feature (not part of this library test).
TESTED_ELSEWHERE = {"aws-backoff-jitter"}

REQUIRED = (
    "baseline", "retry-storm-metastable", "thundering-herd-after-partition",
    "slow-dependency-bulkhead", "dependency-outage-breaker", "priority-shedding-overload",
    "partial-partition", "chaos-error-injection", "brooker-retries-independent-failures",
    "metastability-trigger-size", "congestive-collapse",
)


def test_the_issue_list_is_bundled() -> None:
    missing = [name for name in REQUIRED if name not in SCENARIOS]
    assert not missing


@pytest.mark.parametrize("name", SCENARIOS)
def test_header(name: str) -> None:
    sc = load_scenario(name)
    assert sc.name == name
    lines = sc.description.strip().splitlines()
    assert lines and len(lines[0]) <= 120 and not lines[0].startswith(HEADER)
    text = " ".join(lines)
    positions = [text.find(label) for label in HEADER]
    assert all(p > 0 for p in positions), f"{name}: header needs {HEADER}"
    assert positions == sorted(positions), f"{name}: header labels out of order"


@pytest.mark.parametrize("name", SCENARIOS)
def test_variants_validate(name: str) -> None:
    sc = load_scenario(name)
    assert len(sc.variants) >= 2
    for variant in sc.variants:
        load_scenario(name, variant=variant)


@pytest.mark.parametrize("name", sorted(set(SCENARIOS) - TESTED_ELSEWHERE))
def test_every_scenario_has_a_claim_test(name: str) -> None:
    path = Path(__file__).parent / f"test_{name.replace('-', '_')}.py"
    assert path.is_file(), f"no test module for {name}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_runs_by_name_with_all_variants(name: str) -> None:
    # A smoke run: every variant for 1 simulated second (the faults start later).
    sc = load_scenario(name)
    df = replicate(name, variants=list(sc.variants), reps=1,
                   overrides={"duration": 1.0, "warmup": 0.0, "drain": 1.0})
    assert list(df["variant"]) == list(sc.variants)
    assert (df["count"] > 0).all()
