"""Hedging metrics: hedges sent, hedges that won, and the extra load they cost.

Computed from the ``events`` frame (``hedge`` when a hedge is sent, ``hedge_won`` when a
hedge gives the winning reply; value: the request id) for the requests that start in the
steady-state window ``[warmup, duration)``, like the other steady-state metrics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simres.metrics._common import in_interval

HEDGE_KEYS: tuple[str, ...] = ("hedges_sent", "hedges_won", "hedge_win_share", "hedge_extra_load")
"""The summary keys of a run whose scenario hedges (see :func:`hedge_summary`)."""


def hedge_summary(requests: pd.DataFrame, events: pd.DataFrame, *, warmup: float,
                  duration: float) -> dict[str, float]:
    """``hedges_sent``, ``hedges_won``, ``hedge_win_share`` (won / sent, NaN with none sent)
    and ``hedge_extra_load`` (hedges sent per request: the extra tries hedging costs) over
    the requests that start in ``[warmup, duration)``, at every depth."""
    measured = requests.loc[in_interval(requests["start"], warmup, duration)]
    ids = measured["request_id"].to_numpy(dtype=np.int64)
    kinds = events["kind"].astype(object).to_numpy()
    values = events["value"].to_numpy(dtype=float)

    def count(kind: str) -> float:
        v = values[kinds == kind]
        return float(np.isin(v.astype(np.int64), ids).sum()) if len(v) else 0.0

    sent = count("hedge")
    won = count("hedge_won")
    n = len(measured)
    return {
        "hedges_sent": sent,
        "hedges_won": won,
        "hedge_win_share": won / sent if sent else float("nan"),
        "hedge_extra_load": sent / n if n else float("nan"),
    }
