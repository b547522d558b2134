"""Service load from the ``timeline`` frame: worker utilisation and queue length.

The timeline holds one row per (time bucket, service), sampled at the bucket end.
Utilisation of a bucket is ``busy / workers`` (the share of the current capacity that is
working); a service's utilisation is the mean over the buckets that start in
``[t0, t1)``. Buckets with ``workers == 0`` (every instance crashed) have no defined
utilisation and are left out of that mean; their queue length still counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simres.metrics._common import (
    check_interval,
    factorize,
    grouped_mean,
    in_interval,
    labels_of,
    ratio,
)


def service_load(timeline: pd.DataFrame, *, t0: float, t1: float) -> pd.DataFrame:
    """Per service over ``[t0, t1)``: ``utilization``, ``queue_len``, ``inflight`` (means).

    Indexed by service (every service in ``timeline``); NaN for a service with no
    bucket in the interval.
    """
    check_interval(t0, t1)
    codes, labels = factorize(timeline["service"], categories=labels_of(timeline["service"]))
    n = len(labels)
    codes = np.where(in_interval(timeline["time"], t0, t1), codes, -1)
    util = ratio(timeline["busy"].to_numpy(dtype=float), timeline["workers"].to_numpy(dtype=float))
    return pd.DataFrame({
        "utilization": grouped_mean(codes, util, n),
        "queue_len": grouped_mean(codes, timeline["queue_len"].to_numpy(dtype=float), n),
        "inflight": grouped_mean(codes, timeline["inflight"].to_numpy(dtype=float), n),
    }, index=pd.Index(labels, name="service"))


def utilization(timeline: pd.DataFrame, *, t0: float, t1: float) -> pd.Series:
    """Mean ``busy / workers`` per service over the buckets starting in ``[t0, t1)``."""
    return service_load(timeline, t0=t0, t1=t1)["utilization"]


def mean_queue_length(timeline: pd.DataFrame, *, t0: float, t1: float) -> pd.Series:
    """Mean sampled queue length (all instances) per service over ``[t0, t1)``."""
    return service_load(timeline, t0=t0, t1=t1)["queue_len"]
