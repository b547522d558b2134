"""Docs that must match the code: the generated scenario reference and the README commands."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from simres.cli import main
from simres.scenario.reference import scenario_reference_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_scenario_reference_is_in_sync_with_the_schema() -> None:
    on_disk = (ROOT / "docs" / "scenario-reference.md").read_text(encoding="utf-8")
    assert on_disk == scenario_reference_markdown(), (
        "docs/scenario-reference.md is stale: run `python -m simres.scenario.reference > docs/scenario-reference.md`"
    )


def test_every_cli_command_is_documented_in_readme_or_docs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    text += "".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    for name in main.commands:
        assert re.search(rf"simres {name}\b", text), f"`simres {name}` is not documented"


def test_readme_simres_commands_parse() -> None:
    """Every `simres ...` command line in the README names a real command and valid options."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", readme, flags=re.S))
    lines = re.findall(r"(?:^|\s)(?:\.venv/bin/)?simres ([^\n#]+)", blocks, flags=re.M)
    lines += re.findall(r"`simres ([^`]+)`", readme)
    assert lines, "README shows no simres command"
    runner = CliRunner()
    for line in lines:
        args = [a for a in line.split() if a not in ("SCENARIO", "RESULTS")] or [""]
        args = [a for a in args if not a.startswith("[")]
        cmd = main.commands.get(args[0])
        assert cmd is not None, f"README uses unknown command: simres {line}"
        ctx = cmd.make_context(args[0], args[1:], resilient_parsing=True)
        assert ctx is not None
    assert runner.invoke(main, ["--version"]).exit_code == 0
