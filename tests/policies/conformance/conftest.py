"""Conformance suite: simres policies driven side by side with the libraries they mirror.

Every test feeds the same randomised outcome sequences (with overlapping calls and late
results where the policy has shared state), on the same fake clock and the same uniform
draws, to the library (or a transcription of its source) and to the simres preset, and
compares them decision by decision. Seeds are fixed, so a run is reproducible.

``tally`` collects (pair, version, steps, divergences) for the table printed at the end of
the run and quoted in ``docs/policies.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

MIN_STEPS = 10_000
"""Randomised decisions compared per library pair (the issue's bar)."""


@dataclass
class Tally:
    """Steps and divergences of one library pair."""

    pair: str
    version: str
    steps: int = 0
    divergences: int = 0
    examples: list[str] = field(default_factory=list)

    def check(self, same: bool, what: Any) -> None:
        """Count one compared decision; keep the first few divergences for the message."""
        self.steps += 1
        if not same:
            self.divergences += 1
            if len(self.examples) < 5:
                self.examples.append(str(what))

    def assert_clean(self, min_steps: int = MIN_STEPS) -> None:
        """Zero divergences over at least ``min_steps`` decisions."""
        assert self.divergences == 0, f"{self.pair}: {self.divergences} divergences, e.g. {self.examples}"
        assert self.steps >= min_steps, f"{self.pair}: only {self.steps} steps"


_RESULTS: list[Tally] = []


@pytest.fixture
def tally() -> Any:
    """``tally(pair, version)`` makes a :class:`Tally` that is reported at the end of the run."""
    def make(pair: str, version: str) -> Tally:
        t = Tally(pair, version)
        _RESULTS.append(t)
        return t
    return make


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the table of library pairs, steps and divergences."""
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("policy conformance")
    tr.write_line(f"{'library pair':58} {'version':24} {'steps':>8} {'divergences':>11}")
    for t in _RESULTS:
        tr.write_line(f"{t.pair:58} {t.version:24} {t.steps:>8} {t.divergences:>11}")
