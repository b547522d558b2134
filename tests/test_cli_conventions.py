"""CLI conventions: one meaning per flag name across commands, one short form, an example in every --help.

The table below is the contract (README "Commands" and ``simres --help`` say the same):
a command that takes one of these flags must spell it with this short form and describe
it with this meaning. A new command, or a flag that drifts, fails here.
"""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from simres.cli import main

MEANING: dict[str, tuple[str, ...]] = {
    "--out": ("File to write: ", "Directory to write: "),
    "--quiet": ("No progress bar and no chatter",),
    "--seed": ("Root seed",),
    "--reps": ("Replications",),
    "--jobs": ("Worker processes",),
    "--set": ("Override a field by dotted path",),
    "--metrics": ("Metrics to show",),
    "--format": ("Output format",),
    "--dry-run": ("Print what would run and a time estimate; run nothing",),
    "--strict": ("Treat pre-flight warnings",),
    "--variant": ("Apply one of the scenario's variants", "Run only these variants"),
    "--all-variants": ("Run every variant", "Also check every variant"),
    "--list": ("List the",),
    "--confidence": ("Confidence level",),
}
"""Flag -> how its help must begin, on every command that has it."""

SHORT = {"--out": "-o", "--quiet": "-q", "--seed": "-s", "--reps": "-n", "--jobs": "-j", "--metrics": "-m"}
"""Flag -> its one short form, on every command that has the flag."""

COMMANDS = sorted(main.commands)


def _options(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option) and not p.hidden]


def test_every_command_is_walked() -> None:
    assert {"run", "show", "check", "compare", "list", "init", "schema", "plot", "report", "sweep", "best",
            "validate"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_help_has_an_example_of_its_own_command(name: str) -> None:
    res = CliRunner().invoke(main, [name, "--help"], terminal_width=100)
    assert res.exit_code == 0, res.output
    assert "Examples:" in res.output, f"simres {name} --help has no example"
    after = res.output.split("Examples:", 1)[1]
    assert re.search(rf"^\s+simres {name}\b", after, re.M), f"simres {name} --help: the example does not run it"


@pytest.mark.parametrize("width", [80, 120])
def test_top_level_help_truncates_no_description(width: int) -> None:
    res = CliRunner().invoke(main, ["--help"], terminal_width=width)
    assert res.exit_code == 0
    commands = res.output.split("Commands:", 1)[1].split("Examples:", 1)[0]
    assert "..." not in commands
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s+\S", commands, re.M), f"{name} has no description"
    assert "Examples:" in res.output and "-o, --out" in res.output  # the flag table is in the top-level help


@pytest.mark.parametrize("name", COMMANDS)
def test_the_same_flag_has_the_same_meaning_and_short_form(name: str) -> None:
    cmd = main.commands[name]
    for opt in _options(cmd):
        long = next((o for o in opt.opts if o.startswith("--")), None)
        if long in MEANING:
            text = " ".join((opt.help or "").split())
            assert text.startswith(MEANING[long]), f"simres {name} {long}: help {text!r} does not mean {MEANING[long]}"
        if long in SHORT:
            assert SHORT[long] in opt.opts + opt.secondary_opts, f"simres {name} {long}: no {SHORT[long]}"
    shorts = [o for opt in _options(cmd) for o in opt.opts if re.fullmatch(r"-[a-zA-Z]", o)]
    owners = {short: long for long, short in SHORT.items()}
    for short in shorts:
        long = next(o for opt in _options(cmd) if short in opt.opts for o in opt.opts if o.startswith("--"))
        assert owners.get(short, long) == long, f"simres {name}: {short} means {long}, elsewhere {owners[short]}"


def test_a_short_form_never_means_two_flags() -> None:
    seen: dict[str, str] = {}
    for name in COMMANDS:
        for opt in _options(main.commands[name]):
            long = next((o for o in opt.opts if o.startswith("--")), "")
            for short in (o for o in opt.opts if re.fullmatch(r"-[a-zA-Z]", o)):
                assert seen.setdefault(short, long) == long, f"{short}: {seen[short]} and {long} ({name})"


def test_out_says_file_or_directory_as_the_path_type_does() -> None:
    for name in COMMANDS:
        for opt in _options(main.commands[name]):
            if "--out" in opt.opts:
                kind = opt.type
                assert isinstance(kind, click.Path)
                wants_dir = not kind.file_okay
                assert (opt.help or "").startswith("Directory" if wants_dir else "File"), name


def test_old_spellings_still_work(tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["compare", "baseline", "--metric", "success_rate", "--dry-run"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["report", "baseline", "--out", str(tmp_path / "r"), "--format", "gif"])
    assert res.exit_code == 2 and "--format: expected png or svg" in res.output
    res = runner.invoke(main, ["report", "baseline", "--out", str(tmp_path / "r"), "--figures", "gif"])
    assert res.exit_code == 2 and "--figures: expected png or svg" in res.output


def test_compare_metrics_take_globs_like_run() -> None:
    import pandas as pd

    from simres.cli.run import metric_columns

    df = pd.DataFrame({"variant": ["a"], "latency_p50": [1.0], "latency_p99": [2.0], "success_rate": [1.0]})
    assert metric_columns(df, ("latency_*",)) == ["latency_p50", "latency_p99"]
    assert metric_columns(df, ("all",)) == ["latency_p50", "latency_p99", "success_rate"]
    with pytest.raises(Exception, match="--metrics: unknown metric 'nope'"):
        metric_columns(df, ("nope",))
