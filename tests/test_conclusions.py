"""The conclusions of issue #12, pinned: each was pointing the wrong way and must not again.

Every test runs real (short) simulations with fixed seeds and reads the verdict, the marks
or the choice that a user would read.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from simres.experiments.replications import compare_frame, compare_table, replicate
from simres.metrics.directions import direction
from simres.reporting.tables import comparison_table
from simres.reporting.verdicts import verdicts
from simres.scenario.loading import load_scenario


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, object]:
    """The demo scenario (retry-storm-metastable), 3 replications of every variant."""
    sc = load_scenario("retry-storm-metastable")
    return replicate(sc, variants=list(sc.variants), reps=3), sc


def demo_verdict(demo: tuple[pd.DataFrame, object]) -> list[str]:
    reps, sc = demo
    return verdicts(reps, reference=sc.reference, objective=sc.objective, controls=sc.controls)


def test_demo_verdict_compares_policies_against_naive_with_lower_load_as_a_control(demo) -> None:
    lines = demo_verdict(demo)
    assert lines[0].startswith("Objective: the highest success rate, then the lowest p99 latency of all finished "
                               "requests (a failed request counts at the time its client gave up).")
    assert "Every comparison is against naive (the reference)." in lines[0]
    assert "lower-load is a control: shown, never ranked." in lines[0]
    # one reference, stated once; no ranked sentence names lower-load as better
    ranked = [s for s in lines[1:] if " against naive (" in s]
    assert ranked and all("lower-load" not in s for s in ranked)
    assert not lines[1].startswith("Best on the objective: lower-load")
    assert any(s.startswith("Control lower-load (a different workload, not ranked)") for s in lines)


def test_demo_verdict_never_praises_the_latency_of_the_stuck_variant(demo) -> None:
    reps, _ = demo
    lines = demo_verdict(demo)
    # the success-only p99 favours naive over cancel (it fails most requests): the verdict does not use it
    p99 = reps.groupby("variant")["latency_p99"].mean()
    assert p99["naive"] < p99["cancel"]
    latency = next(s for s in lines if s.startswith("P99 latency of all finished requests against naive"))
    assert "better: " in latency
    assert not re.search(r"better: [^;]*\bbackoff-jitter\b", latency)
    # cancel is not called slower than naive on the latency every user saw
    assert not re.search(r"worse: [^.]*\bcancel\b", latency)


def test_thundering_herd_verdict_leads_with_success_not_the_stuck_variants_latency() -> None:
    sc = load_scenario("thundering-herd-after-partition", overrides={"duration": 36})
    reps = replicate(sc, variants=list(sc.variants), reps=2)
    assert reps.groupby("variant")["success_rate"].mean()["fixed-interval"] < 0.5
    lines = verdicts(reps, objective=sc.objective, controls=sc.controls, reference=sc.reference)
    text = " ".join(lines)
    assert "fixed-interval cut" not in text
    assert lines[0].startswith("Objective: the highest success rate")
    assert lines[1].startswith("Best on the objective: full-jitter") or lines[1].startswith(
        "Best on the objective: exponential")
    success = next(s for s in lines if s.startswith("Success rate against fixed-interval"))
    assert "better: exponential" in success
    caution = next(s for s in lines if s.startswith("Not a gain: fixed-interval has the lowest p99 latency of "
                                                    "successful requests"))
    assert "but it fails more" in caution


def test_utilisation_count_and_throughput_are_never_marked(demo) -> None:
    reps, sc = demo
    for m in ("utilization:api", "count", "throughput", "queue_len:api", "tries_per_s:api"):
        assert direction(m) is None
    cmp = compare_frame(reps, controls=sc.controls)
    for m in ("count", "throughput", "tries_per_s:api", "ok"):
        assert not cmp.loc[cmp["metric"] == m, "best"].any(), m
    # a metric that is 0 for every variant marks none
    assert (reps["error_rate"] == 0).all()
    assert not cmp.loc[cmp["metric"] == "error_rate", "best"].any()
    # the control never wins a mark, even where it has the best number
    assert not cmp.loc[cmp["variant"] == "lower-load", "best"].any()
    assert cmp.loc[(cmp["metric"] == "success_rate") & cmp["best"], "variant"].item() != "lower-load"
    text = compare_table(reps, metrics=["success_rate", "count", "throughput"], controls=sc.controls)
    count_line = next(ln for ln in text.splitlines() if ln.startswith("count "))
    assert "*" not in count_line and "~" not in count_line
    html = comparison_table(reps, controls=sc.controls)
    row = next(r for r in html.split("<tr>") if "<code>throughput</code>" in r)
    assert "<strong>" not in row


def test_utilisation_is_not_bold_for_stuck_variants() -> None:
    from tests.conftest import single_queue

    sc = single_queue(rate=20.0, mean=0.03, workers=1, duration=6.0, warmup=1.0)
    sc["variants"] = {"one": {"services.api.workers": 1}, "two": {"services.api.workers": 2}}
    reps = replicate(sc, variants=["one", "two"], reps=2)
    assert reps.groupby("variant")["utilization:api"].mean().nunique() == 2
    cmp = compare_frame(reps)
    assert not cmp.loc[cmp["metric"] == "utilization:api", "best"].any()
    html = comparison_table(reps)
    row = next(r for r in html.split("<tr>") if "<code>utilization:api</code>" in r)
    assert "<strong>" not in row and " ~" not in row


def test_mechanisms_are_named_from_the_frames() -> None:
    from simres.experiments.runs import run
    from simres.reporting.mechanisms import mechanisms

    ev = run("dependency-outage-breaker", variant="breaker").events
    (held,) = mechanisms(pd.DataFrame(), events={"breaker": ev})
    assert re.fullmatch(r"In breaker's run, breakers were still open \d+\.\d s after it ended \(inventory-outage\)\.",
                        held)
    ev = run("retry-storm-metastable", variant="token-bucket").events
    (dry,) = mechanisms(pd.DataFrame(), events={"token-bucket": ev})
    assert re.fullmatch(r"In token-bucket's run, the retry budget ran dry at t = 1[5-9]\.\d s \(\d+ retries denied\)\.",
                        dry)
    never = pd.DataFrame({"variant": ["a", "a", "b", "b"], "tries_per_request": [1.0, 0.99, 2.5, 2.6]})
    assert mechanisms(never) == ["Retries never fired in a (at most 1 try per request in every replication).",
                                 "Retries multiplied the offered load (tries per request): b 2.55."]


def test_compare_prints_the_objective_reference_and_controls(tmp_path) -> None:
    import yaml
    from click.testing import CliRunner

    from simres.cli import main
    from tests.conftest import single_queue

    sc = single_queue(rate=20.0, mean=0.03, workers=1, duration=6.0, warmup=1.0)
    sc["variants"] = {"one": {}, "two": {"services.api.workers": 2}, "half-load": {"clients.web.arrival.rate": 10}}
    sc["reference"], sc["controls"] = "one", ["half-load"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sc), encoding="utf-8")
    res = CliRunner().invoke(main, ["compare", str(path), "--reps", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    header = next(ln for ln in res.stdout.splitlines() if ln.startswith("metric "))
    assert "half-load (control)" in header and " one " in header
    text = " ".join(res.stdout.split())  # the verdict's bullets are wrapped at 120 columns
    assert "- Objective: the highest success rate" in text
    assert "Every comparison is against one (the reference). half-load is a control" in text
    assert "- Control half-load (a different workload, not ranked)" in text


def test_a_bounded_queue_that_never_filled_is_said_so() -> None:
    from simres.reporting.mechanisms import mechanisms

    df = pd.DataFrame({"variant": ["q", "q", "r", "r"], "rejected_rate": [0.0, 0.0, 0.05, 0.07]})
    assert mechanisms(df, queues={"q": {"api": 40}, "r": {"db": 5}}) == [
        "In q, the bounded queue of api (40 per instance) never filled: no request was rejected in any replication.",
        "In r, the bounded queue of db (5 per instance) filled: 6.0 % of requests were rejected at once instead "
        "of waiting."]


def _reps(values: dict[str, list[tuple[float, float]]]) -> pd.DataFrame:
    """A replications frame: per variant, (success_rate, read_staleness_p99) per replicate."""
    rows = [{"variant": v, "replicate": i, "seed": i, "success_rate": s, "read_staleness_p99:r": st}
            for v, pairs in values.items() for i, (s, st) in enumerate(pairs)]
    return pd.DataFrame(rows)


def test_the_best_must_meet_the_objectives_constraints() -> None:
    """A variant that fails ``subject_to`` never wins, however good its primary metric."""
    from simres.scenario.objectives import Objective

    df = _reps({"available": [(1.0, 27.5), (1.0, 27.7), (1.0, 27.4)],
                "consistent": [(0.66, 0.08), (0.67, 0.09), (0.66, 0.08)],
                "consistent-retry": [(0.97, 0.08), (0.971, 0.08), (0.969, 0.09)]})
    obj = Objective(primary="success_rate", then=["read_staleness_p99:r"],
                    subject_to=["read_staleness_p99:r <= 1.0"])
    best = verdicts(df, objective=obj)[1]
    assert best.startswith("Best on the objective: consistent-retry: available ("), best
    assert "fails read_staleness_p99:r <= 1.0" in best
    unconstrained = verdicts(df, objective=Objective(primary="success_rate"))[1]
    assert unconstrained.startswith("Best on the objective: available")
    none = verdicts(df, objective=Objective(primary="success_rate", subject_to=["read_staleness_p99:r <= 0.01"]))[1]
    assert none.startswith("Best on the objective: none; no variant meets read_staleness_p99:r <= 0.01: ")
