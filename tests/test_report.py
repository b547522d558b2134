"""Reports and the plot/report commands: self-contained, computed from the numbers, deterministic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from simres.cli.report import plot, report
from simres.experiments.replications import replicate
from simres.experiments.runs import run
from simres.reporting.report import build_report
from simres.reporting.results_page import results_report
from simres.reporting.verdicts import format_metric, recovery_sentences, verdicts
from tests.conftest import single_queue

REPS = 2


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    """Two variants of a small queue with a short slowdown: one worker or two."""
    sc = single_queue(rate=20.0, mean=0.03, workers=1, duration=10.0, warmup=1.0)
    sc["name"] = "report-test"
    sc["description"] = "A queue that slows down for a second.\nOne worker or two."
    sc["clients"]["web"]["timeout"] = 0.5
    sc["faults"] = [{"kind": "slowdown", "service": "api", "at": 4.0, "duration": 1.0, "factor": 3.0,
                     "name": "slow"}]
    sc["variants"] = {"one": {"services.api.workers": 1}, "two": {"services.api.workers": 2}}
    return sc


@pytest.fixture(scope="module")
def reps(scenario: dict[str, Any]) -> pd.DataFrame:
    return replicate(scenario, variants=["one", "two"], reps=REPS)


@pytest.fixture(scope="module")
def built(scenario: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report(scenario, tmp_path_factory.mktemp("report") / "tiny", reps=REPS)


def one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# ---------------------------------------------------------------------------- scenario report


def test_report_is_one_self_contained_page(built: Path) -> None:
    assert built.name == "index.html" and built.is_file()
    html = built.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "src=\"http" not in html
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts == [""]  # one inline script (sortable tables), nothing loaded
    sources = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(sources) >= 6
    assert all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_shows_scenario_variants_and_comparison(built: Path) -> None:
    html = built.read_text(encoding="utf-8")
    assert "<h1>report-test</h1>" in html
    assert "A queue that slows down for a second." in html
    assert "<code>services.api.workers = 1</code>" in html and "<code>services.api.workers = 2</code>" in html
    comparison = html.split('<section id="comparison">', 1)[1].split("</section>", 1)[0]
    assert "<th>one</th><th>two</th>" in comparison
    assert "<code>latency_p99</code>" in comparison and "±" in comparison
    assert "Recovery after each fault" in comparison


def test_verdict_is_computed_from_the_numbers(built: Path, reps: pd.DataFrame) -> None:
    html = built.read_text(encoding="utf-8")
    verdict = re.findall(r"<li>(.*?)</li>", html.split('<section id="verdict">', 1)[1].split("</section>")[0])
    assert verdict[0].startswith("Objective: the highest success rate, then the lowest p99 latency of all "
                                 "finished requests")
    assert "Every comparison is against one (the reference: the first variant)." in verdict[0]
    p99 = reps.groupby("variant")["latency_all_p99"].mean()
    sentence = next(s for s in verdict if s.startswith("P99 latency of all finished requests against one"))
    ref = format_metric("latency_all_p99", p99["one"])
    assert sentence.startswith(f"P99 latency of all finished requests against one ({ref}; paired t-test over {REPS} ")
    change = round((p99["two"] - p99["one"]) / p99["one"] * 100)
    assert f"two {format_metric('latency_all_p99', p99['two'])} ({change:+d} %)" in sentence \
        or f"two ({format_metric('latency_all_p99', p99['two'])})" in sentence
    recovery = next(s for s in verdict if s.startswith("After slow:"))
    for v in ("one", "two"):
        assert re.search(rf"{v} (recovered in all {REPS} replications|did not recover in \d of {REPS})", recovery)


def test_cli_report_regenerates_byte_identical_html(built: Path, scenario: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    result = CliRunner().invoke(report, [str(path), "--out", str(tmp_path / "again"), "--reps", str(REPS),
                                         "--quiet"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "verdict:" and lines[1].startswith("- Objective:")  # the verdict reaches the terminal
    out = Path(lines[-1].removeprefix("report: "))
    assert out == tmp_path / "again" / "index.html"
    assert out.read_bytes() == built.read_bytes()
    # the same sentences as the file, wrapped at 120 columns for the terminal
    printed = " ".join(" ".join(lines[1:-1]).split())
    assert printed == " ".join((tmp_path / "again" / "verdict.txt").read_text(encoding="utf-8").split())
    assert max(len(ln) for ln in lines[:-1]) <= 120  # the last is the report's path


# ---------------------------------------------------------------------------- results reports and plots


def test_cli_report_from_a_replications_file(reps: pd.DataFrame, tmp_path: Path) -> None:
    reps.to_parquet(tmp_path / "replications.parquet", index=False)
    result = CliRunner().invoke(report, [str(tmp_path / "replications.parquet"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert "<h1>report-test</h1>" in html and "<h2>Verdict</h2>" in html and "<h2>Comparison</h2>" in html
    assert html.count("<img ") == 1


def test_cli_plot_writes_figures_from_runs_and_results(scenario: dict[str, Any], reps: pd.DataFrame,
                                                       tmp_path: Path) -> None:
    dirs = []
    for v in ("one", "two"):
        run(scenario, variant=v).write(tmp_path / v)
        dirs.append(str(tmp_path / v))
    reps.to_parquet(tmp_path / "reps.parquet", index=False)
    runner = CliRunner()
    cases = [([*dirs, "--kind", "ccdf"], "ccdf.png"), ([dirs[0], "--kind", "timeline"], "timeline.svg"),
             ([str(tmp_path / "reps.parquet"), "--kind", "percentiles"], "bars.png")]
    for args, name in cases:
        result = runner.invoke(plot, [*args, "--out", str(tmp_path / name), "--dpi", "40"])
        assert result.exit_code == 0, result.output
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG" if name.endswith(".png") else b"<?xml")
    result = runner.invoke(plot, [*dirs, "--kind", "herd", "--out", str(tmp_path / "herd.png"), "--dpi", "40"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("args", "expected"), [
    (["--kind", "bogus"], "--kind: expected one of cdf, ccdf"),
    (["--kind", "timeline", "--x", "a"], "--x: not used by --kind timeline"),
    (["--kind", "heatmap", "--x", "a", "--y", "b"], "not a results file"),
    (["--kind", "cdf", "--where", "nonsense"], "--where: expected KEY=VALUE"),
    (["--kind", "cdf", "--where", "a=1"], "--where: not used by --kind cdf"),
])
def test_cli_plot_bad_input_is_one_line(args: list[str], expected: str, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "requests.csv").write_text("start,latency,outcome\n0,0.1,ok\n", encoding="utf-8")
    result = CliRunner().invoke(plot, [str(tmp_path / "run"), *args, "--out", str(tmp_path / "x.png")])
    assert expected in one_line_error(result)


def test_cli_bad_files_and_flags_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    assert "no such file or directory" in one_line_error(
        runner.invoke(plot, [str(tmp_path / "missing"), "--kind", "cdf", "--out", str(tmp_path / "x.png")]))
    assert "--out: expected a .png, .svg or .pdf" in one_line_error(
        runner.invoke(plot, [str(tmp_path), "--kind", "cdf", "--out", str(tmp_path / "x.gif")]))
    assert "--format: expected png or svg" in one_line_error(
        runner.invoke(report, ["baseline", "--out", str(tmp_path / "r"), "--format", "gif"]))
    assert "--reps: must be >= 1" in one_line_error(
        runner.invoke(report, ["baseline", "--out", str(tmp_path / "r"), "--reps", "0"]))
    assert "no such file or bundled scenario" in one_line_error(
        runner.invoke(report, [str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r")]))


# ---------------------------------------------------------------------------- verdicts on known numbers


def known_reps() -> pd.DataFrame:
    rows = []
    p99 = {"naive": [0.40, 0.42, 0.38], "jitter": [0.10, 0.11, 0.09], "budget": [0.20, 0.20, 0.21]}
    recovered = {"naive": [0.0, 0.0, 1.0], "jitter": [1.0, 1.0, 1.0], "budget": [1.0, 1.0, 1.0]}
    for v in p99:
        for r in range(3):
            rows.append({"scenario": "s", "variant": v, "replicate": r, "seed": r, "wall_time": 0.1 * (r + 1),
                         "latency_all_p99": p99[v][r], "success_rate": 1.0,
                         "tries_per_request": {"naive": 2.0, "jitter": 1.5, "budget": 1.2}[v] + 0.01 * r,
                         "recovered:db-down": recovered[v][r],
                         "recovery_time:db-down": 4.0 if recovered[v][r] else np.nan})
    return pd.DataFrame(rows)


def test_verdicts_name_the_best_variant_the_change_and_significance() -> None:
    lines = verdicts(known_reps())
    # the objective and the one reference first, then the winner, then one sentence per metric
    assert lines[0].startswith("Objective: the highest success rate, then the lowest p99 latency of all finished "
                               "requests (a failed request counts at the time its client gave up). Every comparison "
                               "is against naive (the reference: the first variant).")
    assert lines[1] == ("Best on the objective: jitter: all of them are indistinguishable on success rate (100.0 % "
                        "each); of these it has the best p99 latency of all finished requests (100 ms).")
    assert lines[2] == ("Success rate against naive (100.0 %; paired t-test over 3 replications at the 95% level): "
                        "indistinguishable from it: jitter (100.0 %), budget (100.0 %).")
    assert lines[3] == ("P99 latency of all finished requests against naive (400 ms; paired t-test over 3 "
                        "replications at the 95% level): better: jitter 100 ms (-75 %); budget 203 ms (-49 %).")
    assert lines[4].startswith("Tries per request against naive (2.01;")
    against_budget = verdicts(known_reps(), reference="budget")
    assert "Every comparison is against budget (the reference)." in against_budget[0]
    assert against_budget[3].endswith("better: jitter 100 ms (-51 %); worse: naive 400 ms (+97 %).")
    assert lines[-1] == ("After db-down: naive did not recover in 2 of 3 replications (the others: median "
                         "recovery time 4.0 s); jitter recovered in all 3 replications, median recovery time 4.0 s; "
                         "budget recovered in all 3 replications, median recovery time 4.0 s.")


def test_verdicts_with_one_replication_skip_the_test() -> None:
    one = known_reps().query("replicate == 0")
    line = verdicts(one)[3]
    assert "one replication, so no significance test" in line
    assert recovery_sentences(one)[0].startswith("After db-down: naive did not recover in 1 of 1 replications")


def test_sweep_report_names_the_best_design_points(tmp_path: Path) -> None:
    rows = []
    for a in (1, 2, 3):
        for b in (0.01, 0.1):
            for r in range(2):
                rows.append({"run_id": f"{a}-{b}-{r}", "variant": None, "replicate": r, "seed": r,
                             "clients.web.retry.max_attempts": a, "clients.web.retry.backoff.base": b,
                             "latency_p99": a * b, "success_rate": 1 - 0.1 / a, "error": None, "wall_time": 1.0})
    rows.append({**rows[0], "run_id": "broken", "error": "RuntimeError: boom", "latency_p99": np.nan})
    html = results_report(pd.DataFrame(rows), title="retries")
    verdict = re.findall(r"<li>(.*?)</li>", html)
    assert verdict[0].startswith("Highest success rate: 96.7 % at max_attempts=3, base=0.01 ")
    assert verdict[1] == ("Lowest p99 latency: 10 ms at max_attempts=1, base=0.01 (success rate 90.0 %), but it "
                          "fails more than the most successful point, so its latency alone is no gain.")
    assert verdict[2].startswith("3 of 6 design points are on the Pareto front")
    assert html.count("<img ") == 3  # two heatmaps and the Pareto front
    assert "1 of 13 runs failed and are left out; first error: RuntimeError: boom" in html


def test_first_screen_is_verdict_topology_and_headline_with_details_folded_below(built: Path) -> None:
    html = built.read_text(encoding="utf-8")
    order = [html.index(s) for s in ('<section id="verdict">', 'alt="topology', 'alt="headline',
                                     '<section id="comparison">', '<section id="figures">')]
    assert order == sorted(order)
    first = html[order[0]:order[3]]
    assert first.count("<img ") == 2 and "<table" not in first  # no table before the figures
    assert '<details class="section" open>' in html.split('<section id="comparison">', 1)[1][:80]
    for folded in ("figures", "variants", "scenario"):  # one click away, with a link at the top
        assert html.split(f'<section id="{folded}">', 1)[1].lstrip().startswith('<details class="section">')
        assert f'<a href="#{folded}">' in first
    assert '<table class="sortable">' in html
