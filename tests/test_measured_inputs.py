"""Scenarios from measurements: empirical values and rate profiles from CSV/Parquet files, Prometheus histograms.

A file gives exactly the distribution or profile the same numbers inline would (the same
draws, so the same run); histogram draws follow the bucket shares and are uniform inside
a bucket; a bad file is one line naming the field and the file (exit 2 on the CLI);
relative paths resolve against the scenario file; the fingerprint follows the file's bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from pydantic import TypeAdapter

from simres.cli import main
from simres.dists import Dist, Empirical, Histogram
from simres.errors import ScenarioError
from simres.experiments.design import _fingerprint
from simres.experiments.runs import run
from simres.scenario.clients import ProfileArrivals
from simres.scenario.loading import load_scenario, resolved_dict

DIST: TypeAdapter[Any] = TypeAdapter(Dist)

LAT_MS = [12, 15, 9, 30, 11, 250, 14, 13, 10, 18]
TIMES = [0.0, 1.0, 2.5, 4.0]
RATES = [40.0, 120.0, 60.0, 80.0]


def _scenario(service_time: Any, arrival: Any) -> dict[str, Any]:
    return {
        "name": "measured",
        "duration": 5,
        "warmup": 0,
        "seed": 7,
        "services": {"api": {"workers": 4, "service_time": service_time}},
        "clients": {"web": {"target": "api", "arrival": arrival, "timeout": 1.0}},
    }


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def _scenario_file(tmp: Path, data: dict[str, Any], name: str = "s.yaml") -> Path:
    p = tmp / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    _write(d, "lat.csv", "host,latency_ms\n" + "".join(f"h{i},{v}\n" for i, v in enumerate(LAT_MS)))
    _write(d, "rates.csv", "t,rps\n" + "".join(f"{t},{r}\n" for t, r in zip(TIMES, RATES)))
    return d


FILE_DIST = {"kind": "empirical", "file": "data/lat.csv", "column": "latency_ms", "unit": "ms"}
FILE_PROFILE = {"kind": "profile", "file": "data/rates.csv", "time": "t", "rate": "rps", "shape": "linear"}
INLINE_DIST = {"kind": "empirical", "values": [v / 1000 for v in LAT_MS]}
INLINE_PROFILE = {"kind": "profile", "shape": "linear",
                  "points": [{"at": t, "rate": r} for t, r in zip(TIMES, RATES)]}


# ---------------------------------------------------------------------------- file vs inline


def test_file_and_inline_give_bit_identical_runs(data_dir: Path) -> None:
    from_file = run(_scenario_file(data_dir.parent, _scenario(FILE_DIST, FILE_PROFILE)))
    inline = run(_scenario(INLINE_DIST, INLINE_PROFILE))
    assert len(inline.requests) > 100
    pd.testing.assert_frame_equal(from_file.requests, inline.requests)
    pd.testing.assert_frame_equal(from_file.attempts, inline.attempts)
    assert pd.Series(from_file.summary).equals(pd.Series(inline.summary))  # NaN equal to NaN


def test_file_values_and_points_equal_inline(data_dir: Path) -> None:
    sc = load_scenario(_scenario_file(data_dir.parent, _scenario(FILE_DIST, FILE_PROFILE)))
    st = sc.services["api"].service_time
    assert isinstance(st, Empirical)
    np.testing.assert_array_equal(st.array(), np.array(INLINE_DIST["values"]))
    arr = sc.clients["web"].arrival
    assert isinstance(arr, ProfileArrivals) and arr.points is not None
    assert [(p.at, p.rate) for p in arr.points] == list(zip(TIMES, RATES))
    a, b = st.sample(np.random.default_rng(3), 500), DIST.validate_python(INLINE_DIST).sample(
        np.random.default_rng(3), 500)
    np.testing.assert_array_equal(a, b)


def test_parquet_reads_like_csv(data_dir: Path) -> None:
    pd.DataFrame({"latency_ms": LAT_MS}).to_parquet(data_dir / "lat.parquet")
    d = DIST.validate_python({"kind": "empirical", "file": str(data_dir / "lat.parquet"), "unit": "ms"})
    np.testing.assert_array_equal(d.array(), np.array(INLINE_DIST["values"]))  # the only column, by default


def test_resolved_dump_names_the_file_not_its_values(data_dir: Path) -> None:
    sc = load_scenario(_scenario_file(data_dir.parent, _scenario(FILE_DIST, FILE_PROFILE)))
    dumped = resolved_dict(sc)
    st, arr = dumped["services"]["api"]["service_time"], dumped["clients"]["web"]["arrival"]
    assert "values" not in st and "points" not in arr
    assert st["file"] == str((data_dir / "lat.csv").resolve()) and len(st["sha256"]) == 64
    assert arr["file"] == str((data_dir / "rates.csv").resolve())
    again = load_scenario(dumped)  # absolute paths: the dump validates from anywhere
    assert again == sc
    # inline forms dump as they always did
    inline = resolved_dict(load_scenario(_scenario(INLINE_DIST, INLINE_PROFILE)))
    assert set(inline["services"]["api"]["service_time"]) == {"kind", "values"}
    assert "file" not in inline["clients"]["web"]["arrival"]


def test_relative_paths_resolve_against_the_scenario_directory(data_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the scenario's directory
    path = _scenario_file(tmp_path, _scenario(FILE_DIST, FILE_PROFILE))
    sc = load_scenario(path, overrides=["services.api.workers=5"])  # re-validated after the override too
    assert sc.services["api"].service_time.file == str((data_dir / "lat.csv").resolve())  # type: ignore[union-attr]
    with pytest.raises(ScenarioError, match=r"no such file data/lat\.csv"):
        load_scenario(_scenario(FILE_DIST, FILE_PROFILE))  # a mapping: relative to the current directory


def test_an_override_can_point_at_another_file(data_dir: Path) -> None:
    _write(data_dir, "other.csv", "latency_ms\n5\n7\n")
    path = _scenario_file(data_dir.parent, _scenario(FILE_DIST, FILE_PROFILE))
    sc = load_scenario(path, overrides={"services.api.service_time.file": "data/other.csv"})
    assert sc.services["api"].service_time.array().tolist() == [0.005, 0.007]  # type: ignore[union-attr]


def test_fingerprint_changes_with_the_file_contents(data_dir: Path) -> None:
    path = _scenario_file(data_dir.parent, _scenario(FILE_DIST, FILE_PROFILE))
    before = _fingerprint(resolved_dict(load_scenario(path)))
    assert _fingerprint(resolved_dict(load_scenario(path))) == before
    _write(data_dir, "lat.csv", "host,latency_ms\nh0,12\nh1,16\n")
    assert _fingerprint(resolved_dict(load_scenario(path))) != before
    mid = _fingerprint(resolved_dict(load_scenario(path)))
    _write(data_dir, "rates.csv", "t,rps\n0,40\n3,90\n")
    assert _fingerprint(resolved_dict(load_scenario(path))) != mid


# ---------------------------------------------------------------------------- histograms

BUCKETS = [{"le": 0.005, "count": 100}, {"le": 0.01, "count": 400}, {"le": 0.025, "count": 900},
           {"le": 0.1, "count": 1000}, {"le": "+Inf", "count": 1000}]


def test_histogram_draws_follow_the_bucket_shares_and_are_uniform_inside() -> None:
    h = DIST.validate_python({"kind": "histogram", "buckets": BUCKETS})
    assert isinstance(h, Histogram)
    n = 200_000
    x = h.sample(np.random.default_rng(12345), n)
    edges = [0.0, 0.005, 0.01, 0.025, 0.1]
    counts, _ = np.histogram(x, bins=edges)
    p = np.array([100, 300, 500, 100]) / 1000
    chi2 = float(np.sum((counts - n * p) ** 2 / (n * p)))
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001
    assert x.min() >= 0 and x.max() < 0.1
    inside = (x[(x >= 0.01) & (x < 0.025)] - 0.01) / 0.015  # uniform on [0, 1) within a bucket
    dec, _ = np.histogram(inside, bins=10, range=(0, 1))
    e = len(inside) / 10
    assert float(np.sum((dec - e) ** 2 / e)) < 27.88  # 9 degrees of freedom, p = 0.001
    assert h.mean == pytest.approx(float(np.mean(x)), rel=0.01)
    assert h.variance == pytest.approx(float(np.var(x)), rel=0.03)


def test_histogram_inf_bucket_needs_max_and_units_scale() -> None:
    with_inf = [{"le": 10, "count": 5}, {"le": "+Inf", "count": 8}]
    h = DIST.validate_python({"kind": "histogram", "buckets": with_inf, "max": 40, "unit": "ms", "min": 2})
    x = h.sample(np.random.default_rng(1), 20_000)
    assert x.min() >= 0.002 and x.max() < 0.040
    assert np.mean(x > 0.010) == pytest.approx(3 / 8, abs=0.02)
    assert h.mean == pytest.approx(5 / 8 * 0.006 + 3 / 8 * 0.025)


# ---------------------------------------------------------------------------- errors


def _error(tmp: Path, service_time: Any = None, arrival: Any = None) -> str:
    path = _scenario_file(tmp, _scenario(service_time or FILE_DIST, arrival or FILE_PROFILE))
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path))
    return msg.split(": ", 1)[1]


@pytest.mark.parametrize(("service_time", "arrival", "expected"), [
    ({**FILE_DIST, "file": "data/nope.csv"}, None,
     "services.api.service_time.file: no such file data/nope.csv"),
    ({**FILE_DIST, "column": "lat"}, None,
     "services.api.service_time.file: no column 'lat' in data/lat.csv (columns: host, latency_ms)"),
    ({**FILE_DIST, "column": "host"}, None,
     "services.api.service_time.file: column 'host' of data/lat.csv is not numeric"),
    ({"kind": "empirical", "file": "data/lat.csv"}, None,
     "services.api.service_time.file: data/lat.csv has 2 columns (host, latency_ms); name the one to use in "
     "'column'"),
    ({**FILE_DIST, "file": "data/neg.csv"}, None,
     "services.api.service_time.file: column 'latency_ms' of data/neg.csv must be >= 0, got -3 in data row 2 "
     "(2 negative value(s))"),
    ({**FILE_DIST, "file": "data/gap.csv"}, None,
     "services.api.service_time.file: column 'latency_ms' of data/gap.csv has 1 empty value(s), the first in "
     "data row 2"),
    ({**FILE_DIST, "file": "data/lat.txt"}, None, "services.api.service_time.file: data/lat.txt: unknown file kind"),
    ({**FILE_DIST, "values": [0.1]}, None, "services.api.service_time.file: give either 'values' or 'file', not both"),
    ({"kind": "empirical", "values": [0.1], "unit": "ms"}, None,
     "services.api.service_time: unit: only with 'file'"),
    (None, {**FILE_PROFILE, "rate": "qps"},
     "clients.web.arrival.file: no rate column 'qps' in data/rates.csv (columns: t, rps)"),
    (None, {**FILE_PROFILE, "file": "data/unsorted.csv"},
     "clients.web.arrival.file: time column 't' of data/unsorted.csv must be sorted; data row 3 (1) comes after 2"),
    (None, {k: v for k, v in FILE_PROFILE.items() if k != "time"},
     "clients.web.arrival.file: name the file's columns of times and rates in 'time' and 'rate' (missing: time)"),
    ({"kind": "histogram", "buckets": [{"le": 0.01, "count": 10}, {"le": 0.1, "count": 4}]}, None,
     "services.api.service_time: buckets.1.count: cumulative counts (Prometheus _bucket series) must not "
     "decrease; 4 after 10"),
    ({"kind": "histogram", "buckets": [{"le": 0.1, "count": 10}, {"le": 0.05, "count": 14}]}, None,
     "services.api.service_time: buckets.1.le: bounds must increase; 0.05 is not above the previous bound (0.1)"),
    ({"kind": "histogram", "buckets": [{"le": 0.1, "count": 10}, {"le": "+Inf", "count": 14}]}, None,
     "services.api.service_time: max: needed: the '+Inf' bucket has 4 observation(s) above the last bound (0.1)"),
])
def test_bad_inputs_are_one_line_naming_the_field(data_dir: Path, service_time: Any, arrival: Any,
                                                  expected: str) -> None:
    _write(data_dir, "neg.csv", "latency_ms\n4\n-3\n-1\n")
    _write(data_dir, "gap.csv", "host,latency_ms\na,4\nb,\nc,5\n")
    _write(data_dir, "lat.txt", "latency_ms\n4\n")
    _write(data_dir, "unsorted.csv", "t,rps\n0,5\n2,5\n1,5\n")
    assert _error(data_dir.parent, service_time, arrival).startswith(expected)


@pytest.mark.parametrize("command", ["check", "run"])
def test_cli_exits_2_with_one_line(data_dir: Path, command: str) -> None:
    path = _scenario_file(data_dir.parent, _scenario({**FILE_DIST, "column": "lat"}, FILE_PROFILE))
    out = CliRunner().invoke(main, [command, str(path)])
    assert out.exit_code == 2, out.output
    lines = [ln for ln in out.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "services.api.service_time.file: no column 'lat' in data/lat.csv" in lines[0]


def test_histogram_from_a_scenario_file_accepts_yaml_inf(tmp_path: Path) -> None:
    text = yaml.safe_dump(_scenario(0.01, {"kind": "poisson", "rate": 5}), sort_keys=False)
    text = text.replace("service_time: 0.01", "service_time: {kind: histogram, buckets: [{le: 0.01, count: 3}, "
                        "{le: .inf, count: 3}]}")
    path = tmp_path / "h.yaml"
    path.write_text(text)
    sc = load_scenario(path)
    st = sc.services["api"].service_time
    assert isinstance(st, Histogram) and st.buckets[-1].le == "+Inf"
    assert resolved_dict(sc)["services"]["api"]["service_time"]["buckets"][-1]["le"] == "+Inf"  # JSON-safe


def test_the_docs_example_loads_and_runs(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text(encoding="utf-8")
    section = text.split("### From measurements: data files and histograms", 1)[1]
    csvs = [b.split("```", 1)[0] for b in section.split("```csv\n")[1:]]
    scenario = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "latencies.csv").write_text(csvs[0])
    (tmp_path / "data" / "rates.csv").write_text(csvs[1])
    (tmp_path / "measured.yaml").write_text(scenario)
    res = run(tmp_path / "measured.yaml")
    assert res.summary["success_rate"] > 0.99
    assert len(res.requests) > 2000  # the profile's mean rate is ~140 per second over 30 s
    assert res.requests["latency"].min() >= 0.011  # no api time below the shortest measured one


def test_histogram_from_a_file_equals_inline(data_dir: Path) -> None:
    _write(data_dir, "hist.csv", "le,count\n" + "".join(f"{b['le']},{b['count']}\n" for b in BUCKETS))
    path = _scenario_file(data_dir.parent, _scenario({"kind": "histogram", "file": "data/hist.csv"}, FILE_PROFILE))
    sc = load_scenario(path)
    h, inline = sc.services["api"].service_time, DIST.validate_python({"kind": "histogram", "buckets": BUCKETS})
    assert isinstance(h, Histogram) and h.buckets == inline.buckets
    np.testing.assert_array_equal(h.sample(np.random.default_rng(5), 1000), inline.sample(np.random.default_rng(5),
                                                                                           1000))
    dumped = resolved_dict(sc)["services"]["api"]["service_time"]
    assert "buckets" not in dumped and len(dumped["sha256"]) == 64
    assert load_scenario(resolved_dict(sc)) == sc
    _write(data_dir, "hist.csv", "le,count\n0.1,10\n0.2,4\n")
    with pytest.raises(ScenarioError, match=r"service_time: file: count in data row 2 of .*hist\.csv: cumulative"):
        load_scenario(path)
    _write(data_dir, "hist.csv", "bound,count\n0.1,10\n")
    with pytest.raises(ScenarioError, match=r"service_time\.file: no le column in data/hist\.csv"):
        load_scenario(path)


def test_a_file_changed_after_loading_is_not_drawn_silently(data_dir: Path) -> None:
    sc = load_scenario(_scenario_file(data_dir.parent, _scenario(FILE_DIST, FILE_PROFILE)))
    _write(data_dir, "lat.csv", "host,latency_ms\nh0,99\n")
    with pytest.raises(ScenarioError, match=r"services\.api\.service_time\.sha256: .*lat\.csv changed since the "
                       r"scenario was loaded"):
        run(sc)  # re-validates the Scenario object: its sha256 is pinned
    assert load_scenario(_scenario_file(data_dir.parent, _scenario(FILE_DIST, FILE_PROFILE)))  # by path: read again


def test_a_sweep_in_worker_processes_draws_the_files_values(data_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from simres.experiments.executors import ProcessExecutor
    from simres.experiments.sweeping import sweep

    path = _scenario_file(data_dir.parent, _scenario(FILE_DIST, FILE_PROFILE))
    monkeypatch.chdir(tmp_path)  # workers get the resolved scenario: absolute paths, whatever their directory
    grid = {"services.api.workers": [2, 4]}
    inline = sweep(_scenario(INLINE_DIST, INLINE_PROFILE), grid=grid, executor=ProcessExecutor(workers=2))
    from_file = sweep(path, grid=grid, executor=ProcessExecutor(workers=2))
    assert len(from_file) == 2 and from_file["success_rate"].notna().all()
    cols = ["count", "success_rate", "latency_p99"]
    pd.testing.assert_frame_equal(from_file[cols].reset_index(drop=True), inline[cols].reset_index(drop=True))
