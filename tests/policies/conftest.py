"""Fixtures for policy tests: a manual clock and a fixed-seed generator (no sleeping)."""

from __future__ import annotations

import numpy as np
import pytest

from simres.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so."""
    return ManualClock()


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator."""
    return np.random.default_rng(12345)
