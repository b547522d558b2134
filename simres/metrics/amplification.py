"""Retry amplification: how much work the system does per unit of work it was asked for.

Three views, each a ratio of counts from the ``attempts`` frame:

- per service, *amplification* = tries that arrived at the service (``sent``) divided by
  the logical calls its callers were asked to make (``attempt == 1``). Without retries
  or hedges it is at most 1 (below 1 when first tries are rejected locally); with
  independent failure probability p and R retries it tends to ``sum_{k<=R} p^k``.
- per request, *tries per request* = client-level tries sent (``depth == 0``) per
  logical request (Brooker's "load").
- overall, *work per success* = every try sent at any depth per successful request: the
  price of one useful answer, which explodes when retries pile up on a failing system.

Why not "total work / useful work" with useful = the tries on each successful request's
final path: the attempts frame links a try to its root request but not to its parent
try, so a downstream try cannot be attributed to the retry that caused it. Work per
success is exact with the data we record and ranks policies the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simres.metrics._common import factorize, labels_of, ratio, success_mask


def attempts_of(attempts: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """The attempts whose root request is one of ``requests`` (e.g. the measured ones)."""
    if len(attempts) == 0:
        return attempts
    keep = attempts["request_id"].isin(requests["request_id"]).to_numpy(dtype=bool)
    return attempts.loc[keep]


def retry_amplification(attempts: pd.DataFrame) -> pd.DataFrame:
    """Per service: ``calls`` (attempt == 1), ``tries`` (sent) and ``amplification`` = tries/calls.

    Indexed by service (every service in ``attempts``); amplification is NaN for a
    service that was never called. Select the attempts first (``attempts_of``) to
    restrict to the steady-state requests.
    """
    codes, labels = factorize(attempts["service"], categories=labels_of(attempts["service"]))
    n = len(labels)
    valid = codes >= 0
    first = attempts["attempt"].to_numpy(dtype=np.int64) == 1
    sent = attempts["sent"].to_numpy(dtype=bool)
    calls = np.bincount(codes[valid & first], minlength=n)
    tries = np.bincount(codes[valid & sent], minlength=n)
    return pd.DataFrame({"calls": calls.astype(np.int64), "tries": tries.astype(np.int64),
                         "amplification": ratio(tries, calls)},
                        index=pd.Index(labels, name="service"))


def tries_per_request(requests: pd.DataFrame, attempts: pd.DataFrame) -> float:
    """Client-level tries sent (``depth == 0`` and ``sent``) per logical request.

    Counts only the tries of ``requests``; local rejections (never sent) are excluded,
    unlike the ``tries`` column of ``requests``. NaN when there are no requests.
    """
    own = attempts_of(attempts, requests)
    sent0 = own["sent"].to_numpy(dtype=bool) & (own["depth"].to_numpy(dtype=np.int64) == 0)
    return float(ratio(sent0.sum(), len(requests)))


def work_per_success(requests: pd.DataFrame, attempts: pd.DataFrame) -> float:
    """Tries sent at every depth on behalf of ``requests``, per successful request.

    NaN when no request succeeded (the work bought nothing).
    """
    own = attempts_of(attempts, requests)
    sent = own["sent"].to_numpy(dtype=bool).sum()
    return float(ratio(sent, success_mask(requests["outcome"]).sum()))
