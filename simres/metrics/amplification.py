"""Retry amplification: how much work the system does per unit of work it was asked for.

Three views, each a ratio of counts from the ``attempts`` frame:

- per service, *amplification* = tries that arrived at the service (``sent``) divided by
  the logical calls its callers were asked to make (``attempt == 1``). Without retries
  or hedges it is at most 1 (below 1 when first tries are rejected locally); with
  independent failure probability p and R retries it tends to ``sum_{k<=R} p^k``.
- per request, *tries per request* = client-level tries sent (``depth == 0``) per
  logical request (Brooker's "load").
- overall, *work per success* = total work / useful work: every try sent at any depth,
  divided by the tries on successful paths (the successful try of each successful
  request and, through ``parent_try``, the successful tries of the downstream calls its
  handler made, recursively). 1 when nothing was wasted; it explodes when retries pile up
  on a failing system. *Tries per success* is the simpler every try sent per successful
  request (it grows with the depth of the call tree even when nothing fails).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simres.metrics._common import MetricsError, factorize, labels_of, ratio, success_mask


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


def tries_per_success(requests: pd.DataFrame, attempts: pd.DataFrame) -> float:
    """Tries sent at every depth on behalf of ``requests``, per successful request.

    NaN when no request succeeded (the work bought nothing).
    """
    own = attempts_of(attempts, requests)
    sent = own["sent"].to_numpy(dtype=bool).sum()
    return float(ratio(sent, success_mask(requests["outcome"]).sum()))


def useful_tries(requests: pd.DataFrame, attempts: pd.DataFrame) -> np.ndarray:
    """Boolean mask over ``attempts``: the tries on the successful paths of ``requests``.

    A successful request's successful client try is on its path; so is every successful
    try whose ``parent_try`` is on a path (the downstream calls that try's handler made and
    that ended well). Failed tries, retried ones and tries of failed requests are not.
    Needs the ``try_id`` and ``parent_try`` columns the engine records.
    """
    if not {"try_id", "parent_try"} <= set(attempts.columns):
        raise MetricsError("attempts: needs the try_id and parent_try columns (recorded since simres 0.2)")
    ok_try = success_mask(attempts["outcome"]) & attempts["sent"].to_numpy(dtype=bool)
    won = requests["request_id"].to_numpy()[success_mask(requests["outcome"])]
    parent = attempts["parent_try"].to_numpy(dtype=np.int64)
    try_id = attempts["try_id"].to_numpy(dtype=np.int64)
    root = (parent < 0) & (attempts["depth"].to_numpy(dtype=np.int64) == 0)
    useful = ok_try & root & np.isin(attempts["request_id"].to_numpy(), won)
    frontier = useful
    # One pass per level of the call tree: a handful, each vectorised.
    while frontier.any():
        frontier = ok_try & ~useful & np.isin(parent, try_id[frontier])
        useful |= frontier
    return useful


def work_per_success(requests: pd.DataFrame, attempts: pd.DataFrame) -> float:
    """Total work / useful work: tries sent at every depth over the tries on successful paths.

    Counts the tries of ``requests`` only. 1.0 when every try was on a successful path;
    NaN when no request succeeded (the work bought nothing).
    """
    own = attempts_of(attempts, requests)
    sent = own["sent"].to_numpy(dtype=bool).sum()
    return float(ratio(sent, useful_tries(requests, own).sum()))
