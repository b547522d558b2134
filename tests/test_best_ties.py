"""`simres best` in a statistical tie: the indistinguishable set, the rule, no-effect parameters, precision."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from simres.errors import SweepError
from simres.experiments.choosing import CORRECTION, RULE, best, bootstrap_mean_ci, holm
from simres.experiments.executors import SerialExecutor
from simres.experiments.sweeping import sweep
from tests.conftest import single_queue


def healthy(**kw: Any) -> dict[str, Any]:
    """A queue at 40 % load that never times out, so retries never fire."""
    sc = single_queue(rate=20, mean=0.04, workers=2, duration=8, warmup=1)
    sc["clients"]["web"].update({"timeout": 5.0, "retry": {"max_attempts": 1}})
    return sc


@pytest.fixture(scope="module")
def attempts() -> pd.DataFrame:
    return sweep(healthy(), grid={"clients.web.retry.max_attempts": [3, 1, 2]}, reps=3, executor=SerialExecutor())


def test_retries_that_never_fire_tie_exactly_and_best_says_so(attempts: pd.DataFrame) -> None:
    choice = best(attempts, minimize="latency_all_p99")
    assert len(choice.tied) == 3
    # the documented rule picks within the tie: equal tries and bounds, so the first in the sweep's
    # (sorted) order: one attempt, the setting that can add no retry load at all
    assert choice.winner == {"clients.web.retry.max_attempts": 1}
    assert choice.no_effect == ("clients.web.retry.max_attempts: every value gives identical latency_all_p99 "
                                "in every replicate; retries never fired (tries_per_request <= 1 in every run)",)
    text = str(choice)
    assert f"3 settings are statistically indistinguishable from the best mean (paired t-tests over replicates, " \
           f"{CORRECTION}-corrected over 2 comparisons, 95% level)" in text
    assert f"chosen among them by rule: {RULE}:" in text
    assert "no measurable effect: clients.web.retry.max_attempts" in text
    assert "95% CI (bootstrap)" in text


def test_a_sampled_timeout_in_a_tie_is_printed_at_the_precision_the_data_supports() -> None:
    df = sweep(healthy(), grid={"clients.web.timeout": [2.0609003, 3.5, 5.0]}, reps=3, executor=SerialExecutor())
    choice = best(df)  # default objective: the highest success rate
    assert choice.objective == "success_rate" and len(choice.tied) == 3
    text = str(choice)
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("clients.web.timeout "))
    # the chosen timeout, rounded to the fewest digits that stay inside the indistinguishable range
    assert line.split()[1] == "2.1"
    assert "(tried 2.0609003; every tried value from 2.061 to 5 is indistinguishable)" in line
    # the reproducing command keeps the exact value that was run
    assert f"clients.web.timeout={choice.overrides['clients.web.timeout']}" in choice.command


def test_objectives_follow_the_registered_directions(attempts: pd.DataFrame) -> None:
    with pytest.raises(SweepError, match=r"higher is better for 'success_rate'.*use --maximize"):
        best(attempts, minimize="success_rate")
    with pytest.raises(SweepError, match="'utilization:api' describes load"):
        best(attempts, maximize="utilization:api")


def test_holm_and_bootstrap() -> None:
    adj = holm(np.array([0.01, 0.04, np.nan, 0.03]))
    assert np.allclose(adj[[0, 1, 3]], [0.03, 0.06, 0.06]) and np.isnan(adj[2])
    lo, hi = bootstrap_mean_ci(np.array([1.0, 1.1, 0.9, 3.0]))
    assert lo < 1.5 < hi and hi <= 3.0
    assert bootstrap_mean_ci(np.array([1.0, 1.1, 0.9, 3.0])) == (lo, hi)  # seeded


def test_best_without_flags_chooses_by_the_swept_scenarios_own_objective() -> None:
    """The scenario's `objective:` (primary and constraints) travels with the results and decides."""
    sc = healthy()
    sc["objective"] = {"primary": "latency_all_p99", "subject_to": ["success_rate >= 0.95"]}
    df = sweep(sc, grid={"clients.web.timeout": [0.05, 5.0]}, reps=3, executor=SerialExecutor())
    # A 50 ms timeout on 40 ms of work fails many requests early, so it has the lower p99 of all
    # requests: only the scenario's constraint rules it out.
    by_p99 = best(df, minimize="latency_all_p99")
    assert by_p99.winner == {"clients.web.timeout": 0.05}
    choice = best(df)
    assert choice.objective == "latency_all_p99" and not choice.maximize
    assert [str(c) for c in choice.constraints] == ["success_rate >= 0.95"]
    assert choice.winner == {"clients.web.timeout": 5.0}
    # Flags still override the scenario's objective.
    assert best(df, maximize="success_rate").objective == "success_rate"


def test_a_variant_that_fails_its_slow_requests_is_not_best_on_their_latency() -> None:
    """A 60 ms timeout turns the slowest requests of a 75 %-busy queue into failures, so the
    p99 of its successes is the shortest: compare must not crown it on latency_p99 (a metric
    of the successful requests) while its success rate is significantly lower. Between the
    two variants that serve everyone, more workers wins; on latency_all_p99, which counts a
    failure at the time its client gave up, the cut may still win; with only one variant
    left comparable, latency_p99 has no best at all."""
    from simres.experiments.replications import compare

    sc = single_queue(rate=300.0, mean=0.02, workers=8, duration=60)
    sc["clients"]["web"]["timeout"] = 2.0
    sc["variants"] = {"cut": {"clients.web.timeout": 0.06}, "patient": {},
                      "more-workers": {"services.api.workers": 12}}
    cmp = compare(sc, reps=4, seed=3)
    table = cmp.set_index(["metric", "variant"])
    assert table.at[("success_rate", "patient"), "mean"] > table.at[("success_rate", "cut"), "mean"] + 0.01
    assert table.at[("latency_p99", "cut"), "mean"] < table.at[("latency_p99", "more-workers"), "mean"]
    best = {m: cmp[(cmp.metric == m) & cmp.best].variant.tolist() for m in ("latency_p99", "latency_all_p99")}
    assert best["latency_p99"] == ["more-workers"]
    two = compare(cmp.replications[cmp.replications.variant != "more-workers"])
    assert not two[two.metric == "latency_p99"].best.any()  # cut is not comparable: no best
