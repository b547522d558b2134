"""Bounded-memory runs (``record: summary``, ``simres run --stream DIR``): the same counts as a
full run, percentiles within the sketch's stated error, Parquet chunks equal to the full frames,
clear errors for what summary mode cannot give, files readable after a failure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pandas.testing import assert_frame_equal

import simres
from simres.cli import main
from simres.errors import ScenarioError
from simres.experiments import runs
from simres.experiments.spill import read_stream
from simres.metrics._common import in_interval
from simres.metrics.latency import latency_values
from simres.metrics.streaming import ALPHA, UNAVAILABLE, LatencySketch, StreamSummary, UnavailableMetric, is_unavailable

QUANTILE_KEYS = ("p50", "p90", "p99")


@pytest.fixture(scope="module")
def baseline_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[runs.RunResult, runs.RunResult, Path]:
    """The bundled baseline (~16k measured requests, three services, retries, a fallback), seed 1,
    once in full and once streamed."""
    d = tmp_path_factory.mktemp("stream")
    full = simres.run("baseline", seed=1)
    streamed = simres.run("baseline", seed=1, stream=d)
    return full, streamed, d


def test_counts_and_rates_are_exact(baseline_pair) -> None:
    full, streamed, _ = baseline_pair
    assert streamed.record == "summary" and len(streamed.requests) == 0
    for key, value in streamed.summary.items():
        if any(q in key for q in QUANTILE_KEYS):
            continue
        expected = full.summary[key]
        if np.isnan(expected):
            assert np.isnan(value), key
        else:
            # counts identical; means and ratios up to the order of a float sum
            assert value == pytest.approx(expected, rel=1e-12, abs=0), key
    for key in ("count", "ok", "tries_per_request", "amplification:db", "tries_per_s:api"):
        assert streamed.summary[key] == full.summary[key], key


def test_every_full_key_is_computed_or_listed_unavailable(baseline_pair) -> None:
    full, streamed, _ = baseline_pair
    missing = [k for k in full.summary if k not in streamed.summary]
    assert missing and all(is_unavailable(k) for k in missing), missing
    assert not [k for k in streamed.summary if k not in full.summary]


def test_percentiles_within_the_sketch_bound(baseline_pair) -> None:
    full, streamed, _ = baseline_pair
    req = full.requests
    measured = req[in_interval(req["start"], full.warmup, full.duration)]
    lat = latency_values(measured, population="success")
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
        got = streamed.summary[f"latency_{name}"]
        # the guarantee: within ALPHA of the order statistic of rank floor(q (n - 1))
        assert abs(got - np.quantile(lat, q, method="lower")) <= ALPHA * np.quantile(lat, q, method="lower")
    for name in ("p50", "p99"):  # and, with 16k requests, of the full summary's interpolated value
        for key in (f"latency_{name}", f"latency_all_{name}"):
            assert abs(streamed.summary[key] - full.summary[key]) <= ALPHA * full.summary[key], key


def test_sketch_merge_equals_one_sketch() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(-3, 1, 50_000)
    whole, a, b = LatencySketch(), LatencySketch(), LatencySketch()
    whole.add_many(values)
    a.add_many(values[:20_000])
    b.add_many(values[20_000:])
    a.merge(b)
    assert a.stats() == pytest.approx(whole.stats(), rel=1e-12)
    for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999)):
        exact = np.quantile(values, q, method="lower")
        assert abs(whole.stats()[name] - exact) <= ALPHA * exact


def test_stream_summaries_merge() -> None:
    s1, s2, both = (StreamSummary(warmup=0.0, duration=10.0) for _ in range(3))
    g = np.array([0, 0, 1], dtype=np.int32)
    m = np.zeros(3, dtype=np.int32)
    start = np.array([1.0, 2.0, 3.0])
    end = np.array([1.5, 2.1, np.nan])
    out = np.array([0, 0, 0], dtype=np.int8)
    s1.add_requests(g[:2], m[:2], start[:2], end[:2], out[:2])
    s2.add_requests(g[2:], m[2:], start[2:], end[2:], out[2:])
    both.add_requests(g, m, start, end, out)
    s1.merge(s2)
    assert (s1.req_counts == both.req_counts).all()
    assert s1.success[0].count == both.success[0].count == 2
    assert s1.finished[1].count == 0  # an unfinished request has no latency


def test_parquet_chunks_equal_the_full_frames(baseline_pair, monkeypatch, tmp_path) -> None:
    full, _, d = baseline_pair
    frames = read_stream(d)
    for name in ("requests", "attempts", "timeline", "events"):
        assert_frame_equal(frames[name], getattr(full, name), check_exact=True)
    # with a small flush threshold: many chunks, many row groups, the same frames
    monkeypatch.setattr(runs, "FLUSH_ROWS", 3_000)
    monkeypatch.setattr(runs, "TIMELINE_ROWS", 7)  # the timeline compacted in many chunks, too
    small = simres.run("baseline", seed=1, stream=tmp_path)
    assert pq.ParquetFile(tmp_path / "attempts.parquet").metadata.num_row_groups > 5
    frames = read_stream(tmp_path)
    assert_frame_equal(frames["requests"], full.requests, check_exact=True)
    assert_frame_equal(frames["attempts"], full.attempts, check_exact=True)
    assert small.summary["count"] == full.summary["count"]
    assert_frame_equal(small.timeline, full.timeline, check_exact=True)


def test_record_summary_equals_stream_summary(baseline_pair) -> None:
    _, streamed, _ = baseline_pair
    summary_only = simres.run("baseline", seed=1, overrides={"record": "summary"})
    pd.testing.assert_series_equal(pd.Series(summary_only.summary), pd.Series(streamed.summary))
    assert_frame_equal(summary_only.timeline, streamed.timeline)


def test_unavailable_metric_is_a_clear_error(baseline_pair) -> None:
    _, streamed, _ = baseline_pair
    with pytest.raises(UnavailableMetric, match="work_per_success: not available with record: summary"):
        streamed.summary["work_per_success"]
    with pytest.raises(KeyError):
        streamed.summary["no_such_metric"]
    assert "work_per_success" in UNAVAILABLE


def test_bad_record_value_is_one_line_naming_the_field() -> None:
    with pytest.raises(ScenarioError) as e:
        simres.load_scenario("baseline", overrides={"record": "sumary"})
    msg = str(e.value)
    assert "\n" not in msg and "record: must be one of 'full' or 'summary', got 'sumary'" in msg


def test_cli_stream_to_unwritable_path_exits_2(tmp_path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    result = CliRunner().invoke(main, ["run", "baseline", "--stream", str(f / "sub"), "-q"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: --stream ")
    assert "is a file, not a directory" in result.output


def test_cli_stream_and_unavailable_metric(tmp_path) -> None:
    result = CliRunner().invoke(main, ["run", "baseline", "--set", "duration=8", "-q", "--stream", str(tmp_path),
                                       "-m", "count"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "requests.parquet").exists() and (tmp_path / "summary.parquet").exists()
    result = CliRunner().invoke(main, ["run", "baseline", "--set", "duration=8", "--set", "record=summary", "-q",
                                       "-m", "work_per_success"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "not available with record: summary" in result.output


def test_failure_mid_run_leaves_written_chunks_readable(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(runs, "FLUSH_ROWS", 1_000)
    calls = []

    def progress(now: float, end: float) -> None:
        calls.append(now)
        if now > end / 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simres.run("baseline", seed=1, stream=tmp_path, progress=progress)
    frames = read_stream(tmp_path)  # the writers were closed: both files are complete
    assert len(frames["requests"]) >= 1_000 and len(frames["attempts"]) >= 1_000
    assert "timeline" not in frames  # written only by a run that finished
    full = simres.run("baseline", seed=1)
    n = len(frames["attempts"])
    assert_frame_equal(frames["attempts"].reset_index(drop=True),
                       full.attempts.iloc[:n].reset_index(drop=True), check_categorical=False)
    assert isinstance(frames["requests"], pd.DataFrame)


def test_compacted_timeline_keeps_every_timeout(monkeypatch) -> None:
    """A retry storm times out tries in most buckets: the timeline compacted in chunks (with
    the timeouts joined chunk by chunk) equals the full one."""
    full = simres.run("retry-storm-metastable", seed=1)
    assert full.timeline["timeouts"].sum() > 1_000
    monkeypatch.setattr(runs, "TIMELINE_ROWS", 10)
    monkeypatch.setattr(runs, "FLUSH_ROWS", 2_000)
    summary = simres.run("retry-storm-metastable", seed=1, overrides={"record": "summary"})
    assert_frame_equal(summary.timeline, full.timeline, check_exact=True)
    assert summary.summary["tries_per_request"] == full.summary["tries_per_request"]


def test_hedge_keys_are_identical_in_summary_mode() -> None:
    """hedges_sent / won, the win share and the extra load are counts of events by request id:
    the same numbers from the frames and from summary mode (a hedged, budgeted overload)."""
    from simres.scenario.loading import load_scenario

    sc = load_scenario("hedging-under-overload", overrides={"duration": 20})
    full = runs.run(sc, seed=3, variant="budget-5pct").summary
    summ = runs.run(load_scenario(sc, overrides={"record": "summary"}), seed=3, variant="budget-5pct").summary
    keys = ("hedges_sent", "hedges_won", "hedge_win_share", "hedge_extra_load")
    assert full["hedges_sent"] > 100 and 0 < full["hedges_won"] < full["hedges_sent"]
    assert [summ[k] for k in keys] == [full[k] for k in keys]


def test_peak_to_mean_and_herd_keys_are_identical_in_summary_mode() -> None:
    """Sent tries per service in 0.1 s windows, on the steady-state grid and on each fault's
    post-fault grid (anchored at the fault's end): the same numbers as the frames give."""
    from simres.scenario.loading import load_scenario

    sc = load_scenario("thundering-herd-after-partition", overrides={"duration": 40})
    full = runs.run(sc, seed=2).summary
    summ = runs.run(load_scenario(sc, overrides={"record": "summary"}), seed=2).summary
    keys = [k for k in full if k.startswith(("peak_to_mean:", "herd_peak_to_mean:", "herd_synchrony:"))]
    assert any(k.startswith("herd_synchrony:") for k in keys) and full[keys[0]] > 1
    assert {k: summ[k] for k in keys} == {k: full[k] for k in keys}


@pytest.mark.parametrize("variant", ["naive", "token-bucket"])
def test_the_recovery_verdict_is_the_frames_in_summary_mode(variant: str) -> None:
    """recovered / relapsed / recovery_time per fault and stable_at_end from per-window counts
    and latency histograms: naive retries stay stuck, a retry budget recovers, and summary
    mode says the same, recovery time included, on three seeds."""
    from simres.scenario.loading import load_scenario

    sc = load_scenario("retry-storm-metastable")
    summ_sc = load_scenario(sc, overrides={"record": "summary"})
    verdicts = []
    for seed in (1, 2, 3):
        full = runs.run(sc, seed=seed, variant=variant).summary
        summ = runs.run(summ_sc, seed=seed, variant=variant).summary
        keys = [k for k in full if k.startswith(("recovered:", "relapsed:", "recovery_time:", "stable_at_end"))]
        assert len(keys) >= 4
        for k in keys:
            assert summ[k] == full[k] or (np.isnan(summ[k]) and np.isnan(full[k])), (seed, k)
        verdicts.append(full["recovered:trigger"])
    assert verdicts == ([0.0] * 3 if variant == "naive" else [1.0] * 3)


def test_saga_keys_are_identical_in_summary_mode() -> None:
    """Saga shares and partial times come from the saga events; the measured sagas from the
    first request id at warmup: the same numbers as the frames give."""
    from simres.scenario.loading import load_scenario

    sc = load_scenario("saga-payment-partition")
    full = runs.run(sc, seed=2, variant="no-compensation-retries").summary
    summ = runs.run(load_scenario(sc, overrides={"record": "summary"}), seed=2,
                    variant="no-compensation-retries").summary
    keys = [k for k in full if k.startswith(("sagas_", "saga_"))]
    assert len(keys) == 5 and full["sagas_inconsistent"] > 0
    assert {k: summ[k] for k in keys} == {k: full[k] for k in keys}
