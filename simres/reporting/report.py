"""Reports: one self-contained HTML page comparing a scenario's variants, or summarising a sweep.

From a scenario, :func:`scenario_report` runs replications of every variant (common random
numbers) for the comparison table and the verdict, plus one representative run per
variant, all with the same seed, for the figures that need per-request data (CDF, CCDF,
timelines, herds). From a results frame (a sweep, or replications saved by
``simres run --reps N --out DIR``), :func:`results_report` draws the sweep figures.

The verdict sentences are computed from the numbers (:mod:`simres.reporting.verdicts`),
never written by hand. The page embeds its figures and CSS, names no external URL, and
carries no timestamp unless one is passed in: the same inputs give the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from simres.reporting._page import FIGURE_FORMATS
from simres.reporting.results_page import results_report
from simres.reporting.scenario_page import scenario_report
from simres.reporting.sources import ReportError, is_results_source, load_results
from simres.scenario.schema import Scenario


def write_report(html_text: str, out: str | os.PathLike[str]) -> Path:
    """Write ``out/index.html`` (creating ``out``) and return its path."""
    d = Path(out)
    if d.suffix.lower() in (".html", ".htm"):
        raise ReportError(f"--out: expected a directory (the report is written to DIR/index.html), got {d}")
    d.mkdir(parents=True, exist_ok=True)
    p = d / "index.html"
    p.write_text(html_text, encoding="utf-8")
    return p


def build_report(source: pd.DataFrame | Scenario | Mapping[str, Any] | str | os.PathLike[str],
                 out: str | os.PathLike[str], *, reps: int = 5, seed: int | None = None,
                 overrides: Mapping[str, Any] | Sequence[str] | None = None, reference: str | None = None,
                 figure_format: str = "png", dpi: int = 100, progress: bool = False, executor: Any = None,
                 generated: str | None = None) -> Path:
    """Write the report of ``source`` to ``out/index.html`` and return the path.

    For a scenario, ``out/headline.png`` (the one-picture summary) is written as well.

    ``source`` is a results frame, a results file (``.parquet`` / ``.csv``, or a directory
    with ``replications.parquet``), or a scenario (Scenario, mapping, file or bundled
    name), which is run: see :func:`scenario_report`.
    """
    if figure_format not in FIGURE_FORMATS:  # checked before any simulation runs
        raise ReportError(f"figure_format: expected one of {', '.join(FIGURE_FORMATS)}, got {figure_format!r}")
    if isinstance(source, pd.DataFrame):
        text = results_report(source, reference=reference, figure_format=figure_format, dpi=dpi,
                              generated=generated)
    elif isinstance(source, (str, os.PathLike)) and is_results_source(source):
        if overrides:
            raise ReportError("--set: overrides apply to a scenario, not to a results file")
        text = results_report(load_results(source), reference=reference, figure_format=figure_format, dpi=dpi,
                              generated=generated)
    else:
        if Path(out).suffix.lower() in (".html", ".htm"):  # fail before simulating
            write_report("", out)
        text = scenario_report(source, reps=reps, seed=seed, overrides=overrides, reference=reference,
                               figure_format=figure_format, dpi=dpi, progress=progress, executor=executor,
                               generated=generated, headline=Path(out) / "headline.png")
    return write_report(text, out)
