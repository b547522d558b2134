"""What a report or plot reads: a run directory (``simres run --out``), saved replications, or sweep results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from simres.errors import SimresError

RESULTS_FILES = ("replications.parquet", "results.parquet", "replications.csv", "results.csv")




class ReportError(SimresError, ValueError):
    """A report or plot was asked for with inputs it cannot use (names the input)."""


class RunLike(Protocol):
    """Anything with the four frames of a run (a ``RunResult``, a :class:`RunFrames`)."""

    requests: pd.DataFrame
    attempts: pd.DataFrame
    timeline: pd.DataFrame
    events: pd.DataFrame


@dataclass(frozen=True)
class RunFrames:
    """The frames of one run, from a ``RunResult`` or a directory written by ``simres run --out``."""

    requests: pd.DataFrame
    attempts: pd.DataFrame
    timeline: pd.DataFrame
    events: pd.DataFrame
    variant: str = ""
    seed: int | None = None
    warmup: float | None = None
    summary: dict[str, float] | None = None


# ---------------------------------------------------------------------------- loading


def load_run(path: str | os.PathLike[str]) -> RunFrames:
    """Read a run directory (``requests``, ``attempts``, ``timeline``, ``events`` as parquet or csv)."""
    d = Path(path)
    if not d.is_dir():
        raise ReportError(f"{d}: not a run directory (expected the --out directory of `simres run`)")
    frames: dict[str, pd.DataFrame] = {}
    for name in ("requests", "attempts", "timeline", "events", "summary"):
        frames[name] = _read_frame(d, name, required=name != "summary")
    summary = frames.pop("summary")
    variant, seed, row = "", None, None
    if summary is not None and len(summary):
        row = summary.iloc[0].to_dict()
        if pd.notna(row.get("variant")):
            variant = str(row["variant"])
        if pd.notna(row.get("seed")):
            seed = int(row["seed"])
    return RunFrames(**frames, variant=variant, seed=seed, summary=row)  # type: ignore[arg-type]


def _read_frame(d: Path, name: str, *, required: bool) -> pd.DataFrame | None:
    for suffix, reader in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
        p = d / f"{name}{suffix}"
        if p.is_file():
            try:
                return reader(p)
            except Exception as e:  # a corrupt or foreign file: one line, not a traceback
                raise ReportError(f"{p}: cannot be read ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if required:
        raise ReportError(f"{d}: no {name}.parquet or {name}.csv (expected the --out directory of `simres run`)")
    return None


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory holding a run's frames."""
    d = Path(path)
    return d.is_dir() and any((d / f"requests{s}").is_file() for s in (".parquet", ".csv"))


def _is_sweep_dir(p: Path) -> bool:
    """A directory of Parquet parts written by ``simres sweep --out`` (it may be named ``x.parquet``)."""
    return p.is_dir() and not is_run_dir(p) and ((p / "_sweep.json").is_file() or any(p.glob("part-*.parquet")))


def _is_sweep_file(p: Path) -> bool:
    import pyarrow.parquet as pq

    from simres.experiments.store import METADATA_KEY

    try:
        return METADATA_KEY in (pq.read_schema(p).metadata or {})
    except Exception:  # not Parquet at all: let the reader below say so
        return False


def is_results_source(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` names results (a file, a sweep directory, a directory holding one) rather than a scenario."""
    p = Path(source)
    if p.is_file():
        return p.suffix in (".parquet", ".csv")
    return _is_sweep_dir(p) or (p.is_dir() and any((p / n).is_file() for n in RESULTS_FILES))


def load_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a results frame.

    ``path`` is a sweep's results (a directory of parts, or a file, written by ``simres
    sweep``: read with :func:`simres.experiments.store.load_results`, so ``attrs["sweep"]`` names the
    swept parameters), a ``.parquet`` / ``.csv`` file, or a directory holding one of
    :data:`RESULTS_FILES` (``simres run --reps N --out DIR`` writes ``replications.parquet``).
    """
    p = Path(path)
    if _is_sweep_dir(p):
        from simres.experiments.store import load_results as load_sweep

        return load_sweep(p)
    if p.is_dir():
        found = [p / n for n in RESULTS_FILES if (p / n).is_file()]
        if not found:
            raise ReportError(f"{p}: no sweep parts and no {' / '.join(RESULTS_FILES)} in this directory")
        p = found[0]
    if not p.is_file():
        raise ReportError(f"{p}: no such file")
    if p.suffix == ".parquet" and _is_sweep_file(p):
        from simres.experiments.store import load_results as load_sweep

        return load_sweep(p)
    try:
        if p.suffix == ".parquet":
            return pd.read_parquet(p)
        if p.suffix == ".csv":
            return pd.read_csv(p)
    except Exception as e:
        raise ReportError(f"{p}: cannot be read ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    raise ReportError(f"{p}: expected a .parquet or .csv results file, got {p.suffix or 'no suffix'!r}")


# ---------------------------------------------------------------------------- tables
