"""Bad flags and paths: one ``error:`` line on stderr and exit status 2, like bad scenario files."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from simres.cli import main
from simres.errors import ScenarioError, SweepError

BAD_COMMANDS = [
    # (argv, expected fragment)
    (["run", "baseline", "--seed", "-1"], "Invalid value for '--seed': -1 is not in the range x>=0."),
    (["compare", "baseline", "--seed", "-5"], "Invalid value for '--seed': -5 is not in the range x>=0."),
    (["sweep", "baseline", "--seed", "-1", "--out", "x", "--dry-run"], "'--seed': -1 is not in the range x>=0."),
    (["run", "baseline", "--reps", "0"], "Invalid value for '--reps': 0 is not in the range x>=1. "
                                         "(see 'simres run --help')"),
    (["run", "baseline", "--format", "xml"], "Invalid value for '--format'"),
    (["run"], "Missing argument 'SCENARIO'."),
    (["run", "baseline", "--no-such-flag"], "No such option '--no-such-flag'."),
    (["no-such-command"], "No such command 'no-such-command'."),
    (["run", "baseline", "--variant", "a", "--all-variants"], "--variant and --all-variants exclude each other"),
    (["best", "x.parquet", "--minimize", "latency_p99", "--subject-to", "success_rate => 0.9"],
     "--subject-to 'success_rate => 0.9': expected METRIC OP NUMBER with OP one of >=, <=, >, <"),
    (["run", "baseline", "--out", "/proc/simres-out"], "--out /proc/simres-out: cannot write results there: /proc is a "
                                                        "virtual (kernel) file system"),
    (["sweep", "baseline", "--grid", "services.db.workers=1,2", "--out", "/proc/simres-sweep"],
     "--out /proc/simres-sweep: cannot write results there"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD_COMMANDS, ids=[" ".join(a) for a, _ in BAD_COMMANDS])
def test_bad_command_is_one_line_exit_2(argv: list[str], expected: str) -> None:
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: "), result.output
    assert expected in result.output, result.output
    assert "Usage:" not in result.output and "Traceback" not in result.output


def test_out_under_a_file_says_so(tmp_path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    result = CliRunner().invoke(main, ["run", "baseline", "--out", str(f / "sub")])
    assert result.exit_code == 2
    assert f"cannot write results there: {f} is a file, not a directory" in result.output


def test_help_and_version_still_exit_0() -> None:
    assert CliRunner().invoke(main, ["--help"]).exit_code == 0
    assert CliRunner().invoke(main, ["run", "--help"]).exit_code == 0
    assert CliRunner().invoke(main, ["--version"]).exit_code == 0


def test_one_seed_rule_in_the_api() -> None:
    import simres
    from simres.rng import check_seed

    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ScenarioError, match="seed: must be a whole number >= 0"):
            check_seed(bad)
    with pytest.raises(ScenarioError, match="seed: must be a whole number >= 0, got -1"):
        simres.run("baseline", seed=-1)
    with pytest.raises(ScenarioError, match=r"seed: must be >= 0, got -1"):
        simres.load_scenario("baseline", overrides={"seed": -1})


@pytest.mark.parametrize("text", ["success_rate => 0.9", "x == 1", "x != 1", "x =< 1", "x >= 1 >= 2", "x >= inf",
                                  ">= 1", "x >=", "x 0.9"])
def test_malformed_constraints_are_errors(text: str) -> None:
    from simres.experiments.choosing import parse_constraint

    with pytest.raises(SweepError, match="expected METRIC OP NUMBER"):
        parse_constraint(text)


def test_constraints_with_colons_and_equals_in_the_metric() -> None:
    from simres.experiments.choosing import parse_constraint

    c = parse_constraint("utilization:db<0.8")
    assert (c.metric, c.op, c.bound) == ("utilization:db", "<", 0.8)
    c = parse_constraint("a=b >= -1e-3")
    assert (c.metric, c.op, c.bound) == ("a=b", ">=", -0.001)
