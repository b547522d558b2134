"""Circuit breaker states over time, from the ``breaker`` rows of the events frame.

Each row is a transition of one breaker (``component`` = ``"caller->callee"`` or
``"caller->callee#member"`` for a per-member breaker), at ``time``, to the state coded
in ``value`` (0 closed, 1 open, 2 half_open); ``detail`` reads ``"old->new: reason"``.
Every breaker is closed at t = 0, so its state at any time is the last transition
before it. A breaker that never changed state has no rows at all: it was closed
throughout, and only a caller that knows it exists can count it (``members`` below).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from simres.metrics._common import MetricsError, check_interval, factorize, labels_of

STATES: tuple[str, ...] = ("closed", "open", "half_open")
"""Breaker states, indexed by their code in ``events.value``."""


def breaker_events(events: pd.DataFrame) -> pd.DataFrame:
    """The ``breaker`` rows of ``events``."""
    if len(events) == 0:
        return events
    return events.loc[events["kind"].astype(object).to_numpy() == "breaker"]


def breaker_time_shares(events: pd.DataFrame, *, t0: float = 0.0, t_end: float,
                        ) -> pd.DataFrame:
    """Share of ``[t0, t_end]`` each breaker spent in each state, and its transition counts.

    Returns one row per breaker component that appears in ``events`` (index
    ``component``) with columns ``closed``, ``open``, ``half_open`` (shares summing to
    1), ``transitions`` (state changes in the interval) and ``opens`` (of which into
    ``open``).
    """
    check_interval(t0, t_end)
    br = breaker_events(events)
    codes, labels = factorize(br["component"], categories=labels_of(br["component"]))
    n = len(labels)
    state = br["value"].to_numpy(dtype=float)
    if np.isnan(state).any() or not np.isin(state, (0, 1, 2)).all():
        bad = state[np.isnan(state) | ~np.isin(state, (0, 1, 2))][0]
        raise MetricsError(f"events.value: breaker state must be 0, 1 or 2, got {bad!r}")
    # One initial "closed at t=0" row per breaker, then its transitions, sorted by time
    # (ties keep recording order, initial row first).
    comp = np.concatenate([np.arange(n), codes])
    times = np.concatenate([np.zeros(n), br["time"].to_numpy(dtype=float)])
    states = np.concatenate([np.zeros(n, dtype=np.int64), state.astype(np.int64)])
    seq = np.arange(comp.size)
    order = np.lexsort((seq, times, comp))
    comp, times, states = comp[order], times[order], states[order]
    nxt = np.append(times[1:], t_end)
    last = np.append(comp[1:] != comp[:-1], True)
    nxt[last] = t_end
    dur = np.clip(np.minimum(nxt, t_end) - np.maximum(times, t0), 0.0, None)
    spent = np.bincount(comp * 3 + states, weights=dur, minlength=n * 3).reshape(n, 3)
    frame = pd.DataFrame(spent / (t_end - t0), columns=list(STATES),
                         index=pd.Index(labels, name="component"))
    t = br["time"].to_numpy(dtype=float)
    inside = (t >= t0) & (t <= t_end)
    frame["transitions"] = np.bincount(codes[inside], minlength=n).astype(np.int64)
    frame["opens"] = np.bincount(codes[inside & (state == 1)], minlength=n).astype(np.int64)
    return frame


def breaker_transitions(events: pd.DataFrame, *, t0: float = 0.0, t_end: float,
                        ) -> pd.DataFrame:
    """Count of each transition kind per breaker in ``[t0, t_end]``.

    Columns ``component``, ``from_state``, ``to_state``, ``count`` (parsed from
    ``detail`` = ``"old->new: reason"``), sorted by component then count, descending.
    """
    check_interval(t0, t_end)
    br = breaker_events(events)
    t = br["time"].to_numpy(dtype=float)
    br = br.loc[(t >= t0) & (t <= t_end)]
    head = br["detail"].astype(str).str.split(":", n=1).str[0].str.strip()
    parts = head.str.split("->", n=1)
    tidy = pd.DataFrame({"component": br["component"].astype(str).to_numpy(),
                         "from_state": parts.str[0].str.strip().to_numpy(),
                         "to_state": parts.str[1].str.strip().to_numpy()})
    counts = (tidy.groupby(["component", "from_state", "to_state"], dropna=False).size()
              .rename("count").reset_index())
    return counts.sort_values(["component", "count"], ascending=[True, False],
                              kind="stable").reset_index(drop=True)


def breaker_link_shares(events: pd.DataFrame, *, t0: float = 0.0, t_end: float,
                        members: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Breaker state shares aggregated per link ``"caller->callee"`` (``#member`` dropped).

    ``open`` / ``half_open`` are the mean over the link's breakers of their share of time
    in that state; ``transitions`` and ``opens`` are summed. ``members`` gives how many
    breakers a link has; breakers missing from ``events`` never left ``closed`` and count
    as closed throughout. Without it, only the breakers seen in ``events`` are averaged,
    which overstates the open share of per-member breakers (the quiet ones are unseen).

    Returns one row per link (index ``link``): ``breakers`` (how many were averaged),
    ``open``, ``half_open``, ``transitions``, ``opens``.
    """
    shares = breaker_time_shares(events, t0=t0, t_end=t_end)
    link = shares.index.to_series().str.split("#", n=1).str[0]
    grouped = shares.groupby(link.to_numpy(), sort=True)
    seen = grouped.size()
    total = grouped[["open", "half_open", "transitions", "opens"]].sum()
    expected = pd.Series({k: members.get(k, 0) for k in seen.index} if members else {},
                         dtype=float).reindex(seen.index).fillna(0)
    n = np.maximum(seen.to_numpy(dtype=float), expected.to_numpy(dtype=float))
    out = pd.DataFrame({"breakers": n.astype(np.int64),
                        "open": total["open"].to_numpy() / n,
                        "half_open": total["half_open"].to_numpy() / n,
                        "transitions": total["transitions"].to_numpy(dtype=np.int64),
                        "opens": total["opens"].to_numpy(dtype=np.int64)},
                       index=pd.Index(seen.index, name="link"))
    return out
