"""Measured data in scenario files: numeric columns read from CSV or Parquet files.

A scenario can take an empirical distribution's values or a rate profile's points from a
file instead of inline lists (``{kind: empirical, file: latencies.csv, column: latency_ms,
unit: ms}``). This module resolves such a path (relative to the scenario file's
directory), reads one column as finite, non-negative floats, and checks it, raising
``ValueError`` with a one-line message that names the field and the file, so the scenario
loader reports it like any other field error (the validators of the ``file`` fields
call these, so pydantic puts the field's location in front).

A file is read once per content: columns are cached by (path, size, modification time),
and the file's SHA-256 goes into resolved scenarios instead of the values, so ``show`` and
sweep fingerprints stay small yet change when the data does.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

UNITS: dict[str, float] = {"s": 1.0, "ms": 1e3, "us": 1e6}
"""Divisors from a unit to seconds (a value in ms is divided by 1000)."""

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
"""File kinds read by extension: CSV (header row first, optionally gzipped) or Parquet."""


def resolve(file: str, base_dir: str | os.PathLike[str] | None) -> Path:
    """``file`` as an absolute path: relative ones against ``base_dir`` (the scenario's directory; else the cwd)."""
    p = Path(file).expanduser()
    if not p.is_absolute():
        p = Path(base_dir or Path.cwd()) / p
    return p.resolve()


def base_dir_of(info: Any) -> str | None:
    """The ``base_dir`` in a pydantic validation context (set by the scenario loader), if any."""
    ctx = getattr(info, "context", None)
    return ctx.get("base_dir") if isinstance(ctx, dict) else None


def current_digest(file: str, given: str | None, info: Any) -> str:
    """The SHA-256 of ``file`` now; with ``pinned`` in the validation context a different ``given`` one is an error.

    The loader pins the digests when it re-validates a :class:`Scenario` object, so a data
    file that changed after the scenario was loaded is not drawn from silently; a file
    given by path (or changed by an override) is simply read again.
    """
    sha = digest(file)
    ctx = getattr(info, "context", None)
    if given is not None and given != sha and isinstance(ctx, dict) and ctx.get("pinned"):
        raise ValueError(f"{file} changed since the scenario was loaded (sha256 now {sha[:12]}..., was "
                         f"{given[:12]}...); load the scenario again")
    return sha


def file_digest(sha: str | None, info: Any) -> str | None:
    """The ``sha256`` field validator of a config with a ``file`` field: the file's digest now
    (:func:`current_digest`), or ``sha`` as given when there is no file. Shared as
    ``_digest = field_validator("sha256")(datafiles.file_digest)``."""
    file = info.data.get("file")
    return current_digest(file, sha, info) if file is not None else sha


def _stat_key(path: Path, shown: str) -> tuple[str, int, int]:
    if not any(path.name.lower().endswith(s) for s in SUFFIXES):
        raise ValueError(f"{shown}: unknown file kind; expected one of {', '.join(SUFFIXES)}")
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ValueError(f"no such file {shown} (looked for {path})") from None
    except OSError as e:
        raise ValueError(f"cannot read {shown} ({e.strerror or e})") from None
    if not path.is_file():
        raise ValueError(f"{shown} is not a file")
    return str(path), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=32)
def _read(path: str, size: int, mtime_ns: int) -> tuple[Any, str]:
    """(pyarrow table, sha256 hex) of a file; cached while its size and mtime stay the same."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    table = pq.read_table(path) if path.lower().endswith((".parquet", ".pq")) else pcsv.read_csv(path)
    return table, digest


def read_table(file: str, base_dir: str | os.PathLike[str] | None) -> tuple[Path, Any, str]:
    """(absolute path, pyarrow table, sha256) of a data file; errors name the file as written."""
    path = resolve(file, base_dir)
    key = _stat_key(path, file)
    try:
        table, digest = _read(*key)
    except Exception as e:  # a parse error from pyarrow: one line, never a traceback
        msg = " ".join(str(e).split())[:200]
        raise ValueError(f"cannot parse {file} ({type(e).__name__}: {msg})") from None
    return path, table, digest


def digest(path: str) -> str:
    """The SHA-256 (hex) of a data file's bytes, as read (and cached) by :func:`read_table`."""
    return read_table(path, None)[2]


def column(table: Any, name: str | None, *, file: str, what: str = "") -> tuple[str, np.ndarray]:
    """(column name, finite non-negative float64 values) of ``table``; ``name`` None means its only column.

    Raises ValueError when the column is missing, not numeric, empty, or has a null,
    non-finite or negative value; ``what`` (``time``, ``rate``) says which column was meant.
    """
    import pyarrow as pa

    names = list(table.column_names)
    cols = ", ".join(names) or "none"
    label = f"{what} column" if what else "column"
    if name is None:
        if len(names) != 1:
            raise ValueError(f"{file} has {len(names)} columns ({cols}); name the one to use in 'column'")
        name = names[0]
    if name not in names:
        raise ValueError(f"no {label} '{name}' in {file} (columns: {cols})")
    col = table.column(name)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise ValueError(f"{label} '{name}' of {file} is not numeric (type {col.type})")
    if len(col) == 0:
        raise ValueError(f"{label} '{name}' of {file} has no values")
    if col.null_count:
        row = _first(np.asarray(col.is_null()))
        raise ValueError(f"{label} '{name}' of {file} has {col.null_count} empty value(s), the first "
                         f"in data row {row + 1}")
    arr = np.asarray(col.to_numpy(), dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        row = _first(bad)
        raise ValueError(f"{label} '{name}' of {file} has a non-finite value ({arr[row]}) in data row {row + 1}")
    neg = arr < 0
    if neg.any():
        row = _first(neg)
        raise ValueError(f"{label} '{name}' of {file} must be >= 0, got {arr[row]:g} in data row {row + 1}"
                         f" ({int(neg.sum())} negative value(s))")
    return name, arr


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


@functools.lru_cache(maxsize=32)
def _values(path: str, sha: str, name: str | None, unit: str) -> np.ndarray:
    _, table, _ = read_table(path, None)
    _, arr = column(table, name, file=path)
    out = arr / UNITS[unit] if unit != "s" else arr
    out.setflags(write=False)
    return out


def values(file: str, base_dir: str | os.PathLike[str] | None, name: str | None,
           unit: str | None) -> tuple[Path, str, np.ndarray]:
    """(absolute path, sha256, values in seconds) of one column of a data file, checked (see :func:`column`).

    A value in ms is divided by 1000 (us by 1e6), so integer milliseconds give the same
    floats as the seconds written out. The array is read-only and shared by every caller
    asking for the same file content.
    """
    path, table, sha = read_table(file, base_dir)
    column(table, name, file=file)  # the checks, with the file named as the user wrote it
    return path, sha, _values(str(path), sha, name, unit or "s")


def series(file: str, base_dir: str | os.PathLike[str] | None, x: str, y: str, *,
           x_what: str, y_what: str) -> tuple[Path, np.ndarray, np.ndarray]:
    """(absolute path, x, y) of two columns of a data file, both checked; ``x`` must be sorted."""
    path, table, _ = read_table(file, base_dir)
    _, xs = column(table, x, file=file, what=x_what)
    _, ys = column(table, y, file=file, what=y_what)
    back = np.flatnonzero(np.diff(xs) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise ValueError(f"{x_what} column '{x}' of {file} must be sorted; data row {i + 1} ({xs[i]:g}) "
                         f"comes after {xs[i - 1]:g}")
    return path, xs, ys
