"""Shared fixtures: a manual clock, a seeded rng, a SimPy env, and small scenario builders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simpy
from hypothesis import settings

from simres.clock import ManualClock

DATA = Path(__file__).parent / "data"

# Property tests draw the same examples on every run (and in CI): a failure is reproducible
# and a green suite stays green for the same code. Set HYPOTHESIS_PROFILE=explore to search.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock at t=0 (no sleeping in tests)."""
    return ManualClock()


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator."""
    return np.random.default_rng(12345)


@pytest.fixture
def env() -> simpy.Environment:
    """A fresh SimPy environment."""
    return simpy.Environment()


def single_queue(*, rate: float, mean: float, workers: int = 1, duration: float = 1000.0,
                 warmup: float = 0.0, dist: str = "exponential", **service: Any) -> dict[str, Any]:
    """A one-service scenario mapping: Poisson arrivals into ``workers`` servers."""
    st: Any = {"kind": "exponential", "mean": mean} if dist == "exponential" else {"kind": "constant", "value": mean}
    return {
        "name": "single-queue",
        "duration": duration,
        "warmup": warmup,
        "drain": 0.0,
        "services": {"api": {"workers": workers, "service_time": st, **service}},
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": rate}}},
    }
