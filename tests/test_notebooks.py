"""The notebooks run end to end with small settings, and are committed with their outputs cleared.

Each notebook is executed in a fresh kernel with ``SIMRES_NOTEBOOK_QUICK=1`` (the notebooks
then pick short runs and tiny designs), so an API change that breaks one fails here instead
of in a reader's hands. The executed outputs must hold no warning (no TqdmWarning, no
"IProgress not found": the progress bar is plain HTML, no ipywidgets), the comparison and
the sweep must show as their compact tables, and their progress bars must be there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300


def _ids(path: Path) -> str:
    return path.stem


def test_the_notebooks_exist() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert {"01-quickstart", "02-policy-comparison", "03-sweep-and-threshold", "04-tune", "05-export-config",
            "06-explore"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_committed_with_outputs_cleared(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert dirty == [], f"{path.name}: cells {dirty} have outputs or an execution count; clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_quick_mode_is_read_first(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert 'os.environ.get("SIMRES_NOTEBOOK_QUICK") == "1"' in first.source
    assert nb.cells[0].cell_type == "markdown" and nb.cells[-1].cell_type == "markdown"


def test_the_three_line_flow_needs_no_import_of_the_plots_module() -> None:
    """Each notebook's first code cell imports simres only, and its first figure comes from ``.plot``."""
    for path in NOTEBOOKS:
        code = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
        assert "simres.reporting" not in code[0] and "simres.experiments.runs" not in code[0], path.name
        first_plot = next(i for i, src in enumerate(code) if ".plot(" in src or "plots." in src)
        assert ".plot(" in code[first_plot] and "plots." not in code[first_plot], path.name
    flow = [cell.source for cell in nbformat.read(NOTEBOOK_DIR / "02-policy-comparison.ipynb", as_version=4).cells]
    assert any("simres.compare(" in src for src in flow) and any(src.strip() == 'cmp.plot("percentiles")'
                                                               for src in flow)


def _python3_kernel(root: Path) -> Path:
    """A kernelspec named ``python3`` running this interpreter, found first through JUPYTER_PATH.

    Whatever ``python3`` kernel the machine or the user has installed elsewhere, the
    notebooks then run against the simres of the interpreter running the tests.
    """
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (simres tests)",
        "language": "python",
    }))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # the kernel inherits this process's environment
    monkeypatch.setenv("SIMRES_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("JUPYTER_PATH", str(_python3_kernel(tmp_path / "jupyter")))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # no history database in $HOME
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' temporary directories land here
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the figures
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    errors = [out for out in outputs if out.output_type == "error"]
    assert errors == []
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert figures, f"{path.name}: no figure was displayed"
    stderr = "".join(out.get("text", "") for out in outputs if out.output_type == "stream" and out.name == "stderr")
    for warning in ("Warning", "IProgress", "ipywidgets", "tqdm"):
        assert warning not in stderr, f"{path.name}: {warning} in the outputs: {stderr[:500]}"
    html = [out["data"]["text/html"] for out in outputs if "text/html" in out.get("data", {})]
    bars = [h for h in html if "simres-progress" in h]
    # 02 to 06 pass progress=True to work of several seconds; 01's single quick run is too short for a bar
    assert bars or path.stem == "01-quickstart", f"{path.name}: no progress bar was shown"
    assert all("<progress" in h and " in " in h for h in bars)  # each closed as a one-line record
    shown = {"01-quickstart": "grouped summary", "02-policy-comparison": "comparison of 6 variant(s)",
             "03-sweep-and-threshold": "configuration(s)", "04-tune": "configuration(s)",
             "05-export-config": "comparison of 3 variant(s)", "06-explore": "p_stuck"}[path.stem]
    if path.stem == "01-quickstart":
        assert any("latency of successes" in h for h in html), "the run's grouped summary"
    else:
        assert any(shown in h for h in html), f"{path.name}: the compact table ({shown}) was not shown"
    stdout = "".join(out.get("text", "") for out in outputs if out.output_type == "stream" and out.name == "stdout")
    printed = {
        # the exported texts name what the library lacks (the retry budget in urllib3, a rate breaker in pybreaker)
        "05-export-config": ("Not expressible in urllib3", "retry.budget named by:", "Not expressible in pybreaker",
                             "breaker.trip: failure_rate"),
        # the map's summary: both variants, and the runs refinement spent against the full grid
        "06-explore": ("P(stuck after 'trigger')", "  naive: ", "  token-bucket: ",
                       "a full grid at the final resolution"),
    }.get(path.stem, ())
    for text in printed:
        assert text in stdout, f"{path.name}: {text!r} was not printed"
