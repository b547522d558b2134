"""The ``aws_standard_2_0`` preset against botocore's standard retry mode 2.0 (an old botocore).

botocore moved standard mode to 2.1 (1 s / 50 ms bases, ``x-amz-retry-after``, quota
costs 14 / throttling 5) behind the ``AWS_NEW_RETRIES_2026`` switch in 1.43.3 and for
good in 1.44.0; the newest release whose standard mode is 2.0 is the one pinned in
``legacy-botocore.txt`` (1.43.127, switch off, its default). ``make legacy-libs`` (run by
``make test``) installs it with ``pip --target`` into ``.venv/legacy/botocore-<version>``,
beside the venv's current botocore; plain ``pytest`` without it skips these tests.

The old botocore runs in a subprocess (``_botocore_legacy_driver.py``, its directory first
on ``PYTHONPATH``), once for every run: the same randomised runs as ``test_botocore.py``
(several calls in flight sharing the quota, every kind of reply, the same U[0, 1) draws),
drawn here and sent as JSON. Its decisions come back and are replayed through
``RetryConfig(preset="aws_standard_2_0")`` and its budget, decision by decision: retry or
stop, the wait, the quota balance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simres.realtime import aws_classify, aws_classify_2_0

from .botocore_standard import compare_simres, mode_2_0, mode_2_1, sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DRIVER = HERE / "_botocore_legacy_driver.py"
VERSION = (HERE / "legacy-botocore.txt").read_text().strip()
"""The pinned botocore version whose standard mode is 2.0 (read by the Makefile too)."""

RUNS = 30
"""Randomised runs of 400 tries each."""


def legacy_dir() -> Path | None:
    """Where ``make legacy-libs`` put the old botocore: the repo's .venv, else this interpreter's."""
    for venv in (REPO / ".venv", Path(sys.prefix)):
        where = venv / "legacy" / f"botocore-{VERSION}"
        if (where / "botocore" / "__init__.py").is_file():
            return where
    return None


@pytest.fixture(scope="module")
def legacy_runs() -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(run, old botocore's record of it) for every run, from one driver process."""
    where = legacy_dir()
    if where is None:
        pytest.skip(f"botocore {VERSION} (standard retry mode 2.0) is not installed: run `make legacy-libs`")
    runs = [sequence(seed) for seed in range(RUNS)]
    env = {k: v for k, v in os.environ.items() if k != "AWS_NEW_RETRIES_2026"}
    env["PYTHONPATH"] = os.pathsep.join([str(where), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    done = subprocess.run([sys.executable, str(DRIVER)], input=json.dumps(runs), capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["botocore"] == VERSION, out["botocore"]
    assert Path(out["path"]).resolve().is_relative_to(where.resolve()), f"imported {out['path']}, not {where}"
    return list(zip(runs, out["records"], strict=True))


def test_botocore_mode_2_0_with_a_shared_quota(tally: Any, legacy_runs: Any) -> None:
    t = tally("botocore standard mode 2.0 (shared quota) vs retry preset aws_standard_2_0",
              f"botocore {VERSION}")
    for run, record in legacy_runs:
        compare_simres(run, record, mode_2_0, t.check, classify=aws_classify_2_0)
    t.assert_clean()


def divergences(legacy_runs: Any, preset: Any = mode_2_0, overrides: dict[str, Any] | None = None,
                classify: Any = aws_classify_2_0) -> int:
    """Decisions on which simres (``preset`` with ``overrides``) and the old botocore differ."""
    bad = [0]

    def check(same: bool, what: Any) -> None:
        bad[0] += not same

    for run, record in legacy_runs:
        compare_simres(run, record, preset, check, classify=classify, overrides=overrides)
    return bad[0]


def test_the_comparison_notices_the_2_1_classifier(legacy_runs: Any) -> None:
    """Mode 2.1's classifier retries a 429 with an unknown code, which mode 2.0 does not."""
    assert divergences(legacy_runs, classify=aws_classify) > 0


def test_the_comparison_notices_mode_2_1(legacy_runs: Any) -> None:
    """The harness is sharp: the current-mode presets diverge from the old botocore."""
    assert divergences(legacy_runs, mode_2_1) > 0


@pytest.mark.parametrize("overrides", [
    {"budget": {"preset": "aws_standard_2_0", "timeout_cost": 5.0}},
    {"honor_retry_after": True},
    {"backoff": {"kind": "exponential", "base": 1.0, "cap": 10.0}},
    {"max_attempts": 4},
], ids=["no-timeout-cost", "retry-after", "cap-10", "4-tries"])
def test_the_comparison_notices_one_rule_changed(legacy_runs: Any, overrides: dict[str, Any]) -> None:
    """``aws_standard_2_0`` with one rule changed diverges from the old botocore."""
    assert divergences(legacy_runs, overrides=overrides) > 0
