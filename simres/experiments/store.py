"""A sweep's results on disk: Parquet part files written as points finish, the manifest, resume and loading.

An interrupted sweep keeps what it finished (a background thread flushes every couple of
seconds) and a resumed one runs only the rest. :func:`load_results` reads a directory of
parts or one file back into one tidy frame, deduplicated by ``run_id``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simres.errors import SweepError
from simres.experiments.design import Plan

if TYPE_CHECKING:
    import pandas as pd




ID_COLUMNS = ("run_id", "variant", "replicate", "seed")
"""Columns that identify a row; then the parameters, the metrics and :data:`TAIL_COLUMNS`."""
TAIL_COLUMNS = ("error", "wall_time")
"""``error`` (None, or ``"Type: message"``) and the point's wall time in seconds."""
MANIFEST = "_sweep.json"
"""File in the results directory describing the sweep (parameters, seeds, scenario)."""
METADATA_KEY = b"simres.sweeps"
"""Parquet schema metadata key holding the same description in every file."""
FIRST_METRICS = (
    "count", "ok", "success_rate", "goodput", "throughput", "latency_mean", "latency_p50",
    "latency_p90", "latency_p99", "latency_p999", "latency_max",
)
"""Metric columns shown first; the others follow alphabetically, ``name:qualified`` last."""




class _Sink:
    """Collects rows and writes them as Parquet part files (or keeps the tables in memory).

    Pending rows are written every ``flush_seconds`` by a background thread (and at once
    when ``batch_rows`` are pending), so a hard kill loses at most the last few seconds;
    :meth:`close` writes the rest, on Ctrl-C too. Each part is written to a temporary name
    and renamed, so a file on disk is always complete. Every ``compact_every`` parts the
    directory is compacted, so a long sweep does not leave thousands of small files.
    """

    def __init__(self, directory: Path | None, meta: dict[str, Any], *, batch_rows: int = 500,
                 flush_seconds: float = 2.0, compact_every: int = 200) -> None:
        import threading

        self.directory = directory
        self.meta = meta
        self.batch_rows = batch_rows
        self.compact_every = compact_every
        self.rows: list[dict[str, Any]] = []
        self.tables: list[Any] = []
        self.session = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.parts = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if directory is not None:
            self._thread = threading.Thread(target=self._flusher, args=(flush_seconds,),
                                            name="simres-sweep-writer", daemon=True)
            self._thread.start()

    def _flusher(self, every: float) -> None:
        while not self._stop.wait(every):
            self.flush()

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self.rows.append(row)
            full = len(self.rows) >= self.batch_rows
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self.rows:
                return
            table = _table(self.rows, self.meta)
            self.rows = []
            if self.directory is None:
                self.tables.append(table)
                return
            self.parts += 1
            _write_table(table, self.directory / f"part-{self.session}-{self.parts:05d}.parquet")
            if self.parts % self.compact_every == 0:
                compact(self.directory)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()


def _table(rows: list[dict[str, Any]], meta: Mapping[str, Any]) -> Any:
    import pandas as pd
    import pyarrow as pa

    df = pd.DataFrame(rows)
    for p, dt in meta["dtypes"].items():
        if p in df and dt not in ("json", "str"):
            df[p] = df[p].astype(dt)
    for c in df.columns:
        metric = c not in meta["dtypes"] and c not in ID_COLUMNS and c not in TAIL_COLUMNS
        if metric and (pd.api.types.is_numeric_dtype(df[c]) or df[c].isna().all()):
            df[c] = df[c].astype("float64")
    df["error"] = df["error"].astype(object)
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          METADATA_KEY: json.dumps(meta, default=str).encode("utf-8")})


def _write_table(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(f".tmp-{path.name}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)




def _prepare_directory(directory: Path, meta: dict[str, Any], plan: Plan, *, resume: bool,
                       retry_errors: bool) -> tuple[dict[str, Any], set[str]]:
    """Check an existing results directory against the plan; return the merged meta and done ids."""
    if directory.exists() and not directory.is_dir():
        raise SweepError(f"{directory}: is a file; a sweep writes a directory of Parquet parts")
    old = _read_manifest(directory) if directory.is_dir() else None
    has_rows = directory.is_dir() and any(directory.glob("*.parquet"))
    done: set[str] = set()
    if old is not None or has_rows:
        if not resume:
            raise SweepError(f"{directory}: already holds sweep results; resume to run only the "
                             "missing points (--resume), or choose another output (--overwrite)")
        if old is None:
            raise SweepError(f"{directory}: has Parquet files but no {MANIFEST}; not a simres sweep")
        for key, what in (("fingerprint", "scenario (with its overrides)"), ("seed", "root seed")):
            if old.get(key) != meta[key]:
                raise SweepError(f"{directory}: was written for another {what}; resume needs the same "
                                 f"one (got {meta[key]!r}, results have {old.get(key)!r})")
        if list(old.get("params", [])) != meta["params"]:
            raise SweepError(f"{directory}: sweeps the parameters {old.get('params')}; a resumed sweep "
                             f"must sweep the same ones, got {meta['params']}")
        meta = {**meta, "variants": list(dict.fromkeys([*old["variants"], *meta["variants"]])),
                "variant_overrides": {**old.get("variant_overrides", {}), **meta["variant_overrides"]},
                "reps": max(int(old.get("reps", 1)), meta["reps"]),
                "dtypes": {p: _merge_dtype(p, old["dtypes"].get(p, dt), dt) for p, dt in meta["dtypes"].items()}}
        if has_rows:
            existing = load_results(directory)
            if retry_errors:
                existing = existing[existing["error"].isna()]
            done = set(existing["run_id"])
    directory.mkdir(parents=True, exist_ok=True)
    _write_manifest(directory, meta)
    return meta, done


def _merge_dtype(param: str, a: str, b: str) -> str:
    """The column dtype when a resumed sweep adds values: numbers widen, anything else must match."""
    if a == b:
        return a
    numeric = {"int64", "Int64", "float64"}
    if a in numeric and b in numeric:
        return "float64" if "float64" in (a, b) else "Int64"
    if {a, b} == {"bool", "boolean"}:
        return "boolean"
    raise SweepError(f"{param}: the results store {a} values, this sweep gives {b}; a resumed sweep "
                     "must keep each parameter's type (use another --out)")


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SweepError(f"{path}: unreadable sweep description ({e})") from None


def _write_manifest(directory: Path, meta: Mapping[str, Any]) -> None:
    tmp = directory / f".tmp-{MANIFEST}"
    tmp.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, directory / MANIFEST)




# ---------------------------------------------------------------------------- results


def load_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a sweep's results: a directory of parts (as written by :func:`sweep`) or one file.

    Rows are deduplicated by ``run_id`` (a successful row wins over an error row, then the
    first) and sorted by parameters, variant and replicate; ``df.attrs["sweep"]`` holds
    the sweep's description (parameters, seeds, scenario).
    """
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.glob("*.parquet") if not f.name.startswith("."))
        meta = _read_manifest(p)
    elif p.is_file():
        files, meta = [p], None
    else:
        raise SweepError(f"{p}: no such results file or directory")
    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f))
        except Exception as e:
            raise SweepError(f"{f}: not a readable Parquet file ({type(e).__name__}: {e})") from None
    if meta is None:
        for t in tables:
            raw = (t.schema.metadata or {}).get(METADATA_KEY)
            if raw:
                meta = json.loads(raw)
                break
    if meta is None:
        meta = {"params": [], "dtypes": {}, "variants": []}
    df = _frame(tables, meta)
    df.attrs["sweep"] = meta
    return df


def _frame(tables: Sequence[Any], meta: Mapping[str, Any]) -> pd.DataFrame:
    """Concatenate part tables into the canonical frame: deduplicated, sorted, ordered columns."""
    import pandas as pd

    frames = [t.to_pandas() for t in tables]
    params = list(meta.get("params", []))
    if frames:
        df = pd.concat(frames, ignore_index=True, sort=False)
    else:
        df = pd.DataFrame(columns=[*ID_COLUMNS, *params, *TAIL_COLUMNS])
    for c in (*ID_COLUMNS, *TAIL_COLUMNS):
        if c not in df:
            df[c] = None
    df["error"] = df["error"].astype(object).where(df["error"].notna(), None)
    df["wall_time"] = df["wall_time"].astype("float64")
    for c in ("replicate", "seed"):
        df[c] = df[c].astype("int64")
    for p, dt in meta.get("dtypes", {}).items():
        if p in df and dt not in ("json", "str"):
            df[p] = df[p].astype(dt)
    df = df.sort_values("error", key=lambda s: s.notna(), kind="stable")
    df = df.drop_duplicates("run_id", keep="first")
    order = {v: i for i, v in enumerate(meta.get("variants", []))}
    df["_v"] = df["variant"].map(order).fillna(len(order))
    df = df.sort_values([*params, "_v", "variant", "replicate"], kind="stable", na_position="last")
    df = df.drop(columns="_v")
    fixed = {*ID_COLUMNS, *params, *TAIL_COLUMNS}
    metrics = [c for c in df.columns if c not in fixed]
    first = [m for m in FIRST_METRICS if m in metrics]
    rest = sorted((m for m in metrics if m not in first), key=lambda m: (":" in m, m))
    return df[[*ID_COLUMNS, *params, *first, *rest, *TAIL_COLUMNS]].reset_index(drop=True)


def compact(path: str | os.PathLike[str]) -> Path:
    """Merge a results directory's part files into one (rows deduplicated); returns it."""
    directory = Path(path)
    olds = sorted(f for f in directory.glob("*.parquet") if not f.name.startswith("."))
    df = load_results(directory)
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           METADATA_KEY: json.dumps(df.attrs["sweep"], default=str).encode("utf-8")})
    target = directory / f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}-all.parquet"
    _write_table(table, target)
    for f in olds:  # a crash here leaves duplicates, which load_results drops
        f.unlink(missing_ok=True)
    return target
