"""One progress helper (simres.progress): a bar on a terminal, an HTML bar in Jupyter, nothing into a pipe.

The CLI is run in a subprocess twice with the same long-enough work: once with stderr on
a pseudo-terminal (a bar must appear, so the test can fail) and once with stderr piped
(not one byte of bar may appear).
"""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from simres import progress as prog

ROOT = Path(__file__).resolve().parents[1]

# long enough that a terminal shows a bar (> 0.5 s, projected > 2 s); short enough for the suite
COMMANDS = {
    "run": ["run", "baseline", "--set", "duration=600"],  # ~4 s of simulation: a single run
    # shows its bar only when projected to take > 2 s, and the engine got faster than 150 s needs
    "sweep": ["sweep", "baseline", "--grid", "duration=40,41,42,43", "--jobs", "1", "--out", "{tmp}/s.parquet"],
    "run --reps": ["run", "baseline", "--set", "duration=30", "--reps", "5", "--jobs", "1"],
}

BAR_MARKS = ("\r", "\x1b[", "━", "elapsed")


def _cli(args: list[str], tmp: Path, *, tty: bool) -> tuple[int, bytes, bytes]:
    """Run ``simres ARGS``; stderr on a pseudo-terminal (tty) or a pipe. Returns (status, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    cmd = [sys.executable, "-m", "simres.cli", *(a.replace("{tmp}", str(tmp)) for a in args)]
    if not tty:
        done = subprocess.run(cmd, capture_output=True, env=env, timeout=300, check=False)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    out = p.stdout.read() if p.stdout else b""
    return p.wait(timeout=300), out, err


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_bar_on_a_terminal_and_not_one_byte_of_it_into_a_pipe(name: str, tmp_path: Path) -> None:
    args = COMMANDS[name]
    code, _, err = _cli(args, tmp_path / "tty", tty=True)
    assert code == 0, err.decode(errors="replace")
    text = err.decode(errors="replace")
    assert "elapsed" in text and "━" in text, f"{name}: no bar on a terminal: {text[:300]!r}"
    code, out, err = _cli(args, tmp_path / "pipe", tty=False)
    assert code == 0, err.decode(errors="replace")
    text = err.decode(errors="replace")
    assert not any(mark in text for mark in BAR_MARKS), f"{name}: {len(err)} bytes of bar into a pipe: {text[:300]!r}"
    assert out  # the results still print


def test_nothing_is_drawn_on_a_stream_that_is_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = prog.Progress(10, label="x", delay=0, stream=stream)
    assert bar.where is None
    for k in range(11):
        bar.update(k)
    bar.close()
    assert stream.getvalue() == ""


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_bar_waits_for_work_worth_watching_and_is_erased_at_the_end() -> None:
    quick = _Tty()
    bar = prog.Progress(10, label="quick", delay=0.5, stream=quick)
    bar.update(5)  # at once: before the delay
    bar.close()
    assert quick.getvalue() == ""
    slow = _Tty()
    bar = prog.Progress(10, label="slow", delay=0.0, stream=slow)
    time.sleep(0.01)
    bar.update(3, errors=1)
    assert bar.shown
    drawn = slow.getvalue()
    assert "slow" in drawn and "3/10 run" in drawn and "1 error(s)" in drawn
    bar.close()
    assert not bar.shown


def test_projected_short_work_shows_no_bar() -> None:
    stream = _Tty()
    bar = prog.Progress(100, label="x", delay=0.0, min_total=60.0, stream=stream)
    time.sleep(0.01)
    bar.update(50)  # half done in ~10 ms: projected far under a minute
    assert not bar.shown and stream.getvalue() == ""


def test_quiet_draws_nothing_even_on_a_terminal() -> None:
    stream = _Tty()
    bar = prog.Progress(10, label="x", delay=0.0, enabled=False, stream=stream)
    time.sleep(0.01)
    bar.update(3)
    assert stream.getvalue() == "" and bar.where is None


def test_in_a_notebook_the_bar_is_html_updated_in_place_without_widgets(monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    shown: list[Any] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append(("update", obj.data))

    def display(obj: Any, display_id: bool = False) -> Handle:
        assert display_id
        shown.append(("display", obj.data))
        return Handle()

    monkeypatch.setattr(prog, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    bar = prog.Progress(4, label="retry-storm", delay=0.0)
    assert bar.where == "notebook"
    for k in range(1, 4):
        time.sleep(0.26)  # a notebook redraws four times a second at most
        bar.update(k)
    bar.close()
    assert shown[0][0] == "display" and "<progress" in shown[0][1] and "simres-progress" in shown[0][1]
    assert [kind for kind, _ in shown[1:]] == ["update"] * (len(shown) - 1) and len(shown) >= 3
    assert "retry-storm: 3/4 run in" in shown[-1][1]


def test_the_api_progress_argument_takes_a_callable() -> None:
    seen: list[tuple[int, int]] = []
    rep = prog.reporter(lambda done, total: seen.append((done, total)), 3, label="x")
    for k in range(1, 4):
        rep(k, 3, errors=0)
    rep.close()
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert prog.reporter(False, 3, label="x").bar is None


def test_every_bar_of_the_package_goes_through_simres_progress() -> None:
    """No module draws its own bar: tqdm (or a second rich Progress) appears nowhere else."""
    offenders = []
    for path in (ROOT / "simres").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "progress.py" and ("tqdm" in text or "rich.progress" in text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
