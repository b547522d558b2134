"""``--stream DIR``: the requests and attempts frames written to Parquet in chunks as the run goes.

:class:`ParquetSpill` turns each chunk the recorder hands over (machine codes, see
:meth:`simres.metrics.recorder.Recorder.take_requests`) into an Arrow table with the
frame's columns and appends it to ``DIR/requests.parquet`` / ``DIR/attempts.parquet`` as
one or more row groups (``pyarrow.parquet.ParquetWriter``). Each file is valid once its
writer is closed; :meth:`ParquetSpill.close` is called in a ``finally``, so a run that
fails or is interrupted still leaves readable files holding every chunk written so far.

:func:`read_stream` reads a directory back as the frames a ``record: full`` run of the
same scenario and seed returns, value for value and dtype for dtype (requests sorted by
``request_id``, attempts in completion order, the categorical columns with the same
categories).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simres.metrics.recorder import Recorder
from simres.outcomes import ATTEMPT_OUTCOMES, PRIORITIES, REQUEST_OUTCOMES

ROW_GROUP = 100_000
"""Rows per Parquet row group (and the recorder's flush threshold)."""

_NAME = pa.dictionary(pa.int32(), pa.string())
_FIXED = pa.dictionary(pa.int8(), pa.string())

REQUESTS_SCHEMA = pa.schema([
    ("request_id", pa.int64()), ("client", _NAME), ("member", pa.int32()), ("target", _NAME),
    ("priority", _FIXED), ("start", pa.float64()), ("end", pa.float64()), ("latency", pa.float64()),
    ("outcome", _FIXED), ("tries", pa.int32()),
])
ATTEMPTS_SCHEMA = pa.schema([
    ("request_id", pa.int64()), ("attempt", pa.int32()), ("caller", _NAME), ("service", _NAME),
    ("instance", pa.int32()), ("start", pa.float64()), ("end", pa.float64()), ("outcome", _FIXED),
    ("sent", pa.bool_()), ("wait", pa.float64()), ("depth", pa.int8()), ("try_id", pa.int64()),
    ("parent_try", pa.int64()), ("service_start", pa.float64()),
])


def _dict(codes: np.ndarray, values: list[str], index: pa.DataType) -> pa.DictionaryArray:
    """A dictionary column; a negative code (a value outside the vocabulary) is null."""
    idx = pa.array(codes, type=index, mask=codes < 0)
    return pa.DictionaryArray.from_arrays(idx, pa.array(values, type=pa.string()))


class ParquetSpill:
    """Appends request and attempt chunks to ``DIR/requests.parquet`` and ``DIR/attempts.parquet``."""

    def __init__(self, directory: str | os.PathLike[str], recorder: Recorder) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.recorder = recorder
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.rows = {"requests": 0, "attempts": 0}

    def _write(self, name: str, table: pa.Table) -> None:
        w = self._writers.get(name)
        if w is None:
            w = self._writers[name] = pq.ParquetWriter(self.dir / f"{name}.parquet", table.schema)
        w.write_table(table, row_group_size=ROW_GROUP)
        self.rows[name] += table.num_rows

    def write_requests(self, cols: dict[str, np.ndarray]) -> None:
        """One chunk of :meth:`Recorder.take_requests` columns."""
        names = self.recorder.names
        g = self.recorder.group_codes()[cols["r_group"]] if len(cols["r_group"]) else np.zeros((0, 3), np.int32)
        start, end = cols["r_start"], cols["r_end"]
        self._write("requests", pa.Table.from_arrays([
            pa.array(cols["r_id"]), _dict(g[:, 0], names, pa.int32()), pa.array(cols["r_member"]),
            _dict(g[:, 1], names, pa.int32()), _dict(g[:, 2].astype(np.int8), list(PRIORITIES), pa.int8()),
            pa.array(start), pa.array(end), pa.array(end - start),
            _dict(cols["r_outcome"], list(REQUEST_OUTCOMES), pa.int8()), pa.array(cols["r_tries"]),
        ], schema=REQUESTS_SCHEMA))

    def write_attempts(self, cols: dict[str, np.ndarray]) -> None:
        """One chunk of :meth:`Recorder.take_attempts` columns."""
        names = self.recorder.names
        s = self.recorder.site_codes()[cols["a_site"]] if len(cols["a_site"]) else np.zeros((0, 3), np.int32)
        self._write("attempts", pa.Table.from_arrays([
            pa.array(cols["a_req"]), pa.array(cols["a_attempt"]), _dict(s[:, 0], names, pa.int32()),
            _dict(s[:, 1], names, pa.int32()), pa.array(cols["a_instance"]), pa.array(cols["a_start"]),
            pa.array(cols["a_end"]), _dict(cols["a_outcome"], list(ATTEMPT_OUTCOMES), pa.int8()),
            pa.array(cols["a_sent"]), pa.array(cols["a_wait"]), pa.array(s[:, 2].astype(np.int8)),
            pa.array(cols["a_try"]), pa.array(cols["a_parent"]), pa.array(cols["a_served"]),
        ], schema=ATTEMPTS_SCHEMA))

    def close(self) -> None:
        """Close every writer (each file is then complete and readable); idempotent. A frame
        that got no chunk at all is written as an empty file with its schema."""
        for name, schema in (("requests", REQUESTS_SCHEMA), ("attempts", ATTEMPTS_SCHEMA)):
            if name not in self._writers and not (self.dir / f"{name}.parquet").exists():
                pq.write_table(schema.empty_table(), self.dir / f"{name}.parquet")
        while self._writers:
            _, w = self._writers.popitem()
            w.close()


def _named(values: pd.Series) -> pd.Categorical:
    """Names as the recorder's frames have them: categories = the names that occur, sorted."""
    s = values.astype(object)
    return pd.Categorical(s, categories=sorted(str(v) for v in pd.unique(s.dropna())))


def _fixed(values: pd.Series, vocabulary: tuple[str, ...]) -> pd.Categorical:
    return pd.Categorical(values.astype(object), categories=list(vocabulary))


def read_stream(directory: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """The frames a ``--stream`` run wrote to ``directory``, as a full run returns them.

    Keys: ``requests`` and ``attempts`` (always), ``timeline`` and ``events`` (when the run
    finished and wrote them).
    """
    d = Path(directory)
    req = pq.read_table(d / "requests.parquet").to_pandas()
    for col in ("client", "target"):
        req[col] = _named(req[col])
    req["priority"] = _fixed(req["priority"], PRIORITIES)
    req["outcome"] = _fixed(req["outcome"], REQUEST_OUTCOMES)
    req = req.sort_values("request_id", kind="stable").reset_index(drop=True)
    att = pq.read_table(d / "attempts.parquet").to_pandas()
    for col in ("caller", "service"):
        att[col] = _named(att[col])
    att["outcome"] = _fixed(att["outcome"], ATTEMPT_OUTCOMES)
    out = {"requests": req, "attempts": att}
    for name in ("timeline", "events"):
        p = d / f"{name}.parquet"
        if p.exists():
            df = pd.read_parquet(p)
            if name == "events":  # Parquet strings read back as a string dtype; the frame has objects
                for col in ("kind", "component", "detail"):
                    df[col] = df[col].astype(object)
            out[name] = df
    return out
