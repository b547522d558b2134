"""outlier-ejection-bad-host: one of ten instances fails 80 % of its requests; Envoy's outlier
detection ejects it for 30 s, 60 s, 90 s (success ~0.92 -> > 0.99), Linkerd's failure accrual
shuts and probes it (in between)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from simres.experiments.runs import RunResult

from ._helpers import fault_window, of, replicate_frames, success_share

NAME = "outlier-ejection-bad-host"
VARIANTS = ("none", "envoy", "linkerd")
REPS = 2
BAD = 3


def measure(res: RunResult) -> Mapping[str, float]:
    start, end = fault_window(res, "bad-host")
    t0, t1 = start + 1, end - 1
    a = res.attempts
    w = a[(a["start"] >= t0) & (a["start"] < t1)]
    e = res.events
    ej, un = e[e["kind"] == "ejected"], e[e["kind"] == "unejected"]
    spans = un["time"].to_numpy() - ej["time"].to_numpy()[: len(un)]
    tl = res.timeline
    return {"during_success": success_share(res.requests, t0, t1),
            "bad_share": float((w["instance"] == BAD).mean()),
            "before_share": float((a[a["start"] < start]["instance"] == BAD).mean()),
            "after_success": success_share(res.requests, end + 1, res.scenario.duration),
            "ejections": float(len(ej)),
            "first_delay": float(ej["time"].iloc[0] - start) if len(ej) else np.nan,
            "span1": float(spans[0]) if len(spans) > 0 else np.nan,
            "span2": float(spans[1]) if len(spans) > 1 else np.nan,
            "other_hosts": float(ej["value"].ne(BAD).sum()),
            "max_ejected": float(tl["ejected"].max()) if "ejected" in tl else 0.0}


@pytest.fixture(scope="module")
def reps() -> pd.DataFrame:
    return replicate_frames(NAME, VARIANTS, REPS, measure)


def test_without_ejection_the_bad_host_keeps_its_share(reps: pd.DataFrame) -> None:
    # ~31,600 requests in the window: 1 - 0.1 x 0.8 = 0.92 within 0.01.
    assert np.all(np.abs(of(reps, "none", "during_success") - 0.92) < 0.01)
    assert np.all(np.abs(of(reps, "none", "bad_share") - 0.1) < 0.005)
    assert np.all(of(reps, "none", "ejections") == 0)


def test_envoy_ejects_the_bad_host_and_success_recovers(reps: pd.DataFrame) -> None:
    assert np.all(of(reps, "envoy", "first_delay") < 2)
    assert np.all(of(reps, "envoy", "bad_share") < 0.01)
    assert np.all(of(reps, "envoy", "during_success") > 0.99)
    assert np.all(of(reps, "envoy", "other_hosts") == 0)
    assert np.all(of(reps, "envoy", "max_ejected") == 1)  # max_ejection_percent 10 % of 10


def test_envoy_ejection_time_grows(reps: pd.DataFrame) -> None:
    # base 30 s x backoff, ending at the first 10 s sweep after it
    assert np.all((of(reps, "envoy", "span1") >= 30) & (of(reps, "envoy", "span1") < 40))
    assert np.all((of(reps, "envoy", "span2") >= 60) & (of(reps, "envoy", "span2") < 70))


def test_linkerd_is_between_none_and_envoy(reps: pd.DataFrame) -> None:
    lk = of(reps, "linkerd", "during_success")
    assert np.all(lk > of(reps, "none", "during_success") + 0.05)
    assert np.all(lk < of(reps, "envoy", "during_success"))
    assert np.all(of(reps, "linkerd", "ejections") >= 2)  # shut again after a probe reopened it
    assert np.all(of(reps, "linkerd", "bad_share") < 0.02)


@pytest.mark.parametrize("variant", VARIANTS)
def test_back_to_normal_after_the_fault(reps: pd.DataFrame, variant: str) -> None:
    assert np.all(of(reps, variant, "after_success") >= 0.999)
    assert np.all(np.abs(of(reps, variant, "before_share") - 0.1) < 0.01)
