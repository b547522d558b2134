"""simres's adaptive concurrency limits against a transcription of Netflix concurrency-limits.

The same randomised sequences of overlapping calls (starts, and ends as a success, a drop or
an ignore, in any order) go through :mod:`netflix_limits` (the library's Java, transcribed
class by class) and through :class:`simres.policies.limits.LimitConfig`; every admission
decision and the limit after every step are compared. Each algorithm is run plain and
behind a ``WindowedLimit`` (average and percentile windows). A mutant transcription (one
inequality flipped) must diverge, so the comparison cannot pass vacuously.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from simres.policies.limits import LimitConfig

from . import netflix_limits as nl

MS = 1_000_000


def _config(gen: np.random.Generator, kind: str, windowed: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Random options, as simres fields and as the window's transcription arguments."""
    initial = int(gen.integers(2, 40))
    lo = int(gen.integers(1, initial + 1))
    hi = int(gen.integers(initial, 120))
    opts: dict[str, Any] = {"kind": kind, "initial_limit": initial, "min_limit": lo, "max_limit": hi}
    if kind == "aimd":
        opts |= {"backoff_ratio": float(gen.choice([0.5, 0.75, 0.9, 0.95])),
                 "timeout": float(gen.choice([0.02, 0.05, 5.0]))}
    elif kind == "vegas":
        opts |= {"smoothing": float(gen.choice([0.2, 0.5, 1.0])), "probe_multiplier": int(gen.integers(1, 40))}
        del opts["min_limit"]  # Vegas has no minimum (clamped to 1)
    elif kind == "gradient2":
        opts |= {"smoothing": float(gen.choice([0.1, 0.2, 1.0])), "queue_size": int(gen.integers(0, 8)),
                 "long_window": int(gen.choice([5, 50, 600])), "rtt_tolerance": float(gen.choice([1.0, 1.5, 2.0]))}
    window: dict[str, Any] = {}
    if windowed is not None:
        window = {"min_time": float(gen.choice([0.1, 0.2, 1.0])), "size": int(gen.integers(10, 20)),
                  "min_rtt": float(gen.choice([0.0, 1e-4, 0.002])), "sample": windowed}
        window["max_time"] = window["min_time"] * float(gen.choice([1.0, 2.0, 5.0]))
        if windowed == "percentile":
            window |= {"percentile": float(gen.choice([0.5, 0.9, 0.99])), "capacity": int(gen.integers(5, 40))}
        opts["window"] = window
    return opts, window


def _reference(opts: dict[str, Any], window: dict[str, Any], random: Any, mutant: bool) -> nl.AbstractLimit:
    kind = opts["kind"]
    if kind == "aimd":
        return nl.AIMDLimit(opts["initial_limit"], opts["min_limit"], opts["max_limit"], opts["backoff_ratio"],
                            round(opts["timeout"] * 1e9), mutant=mutant)
    if kind == "vegas":
        return nl.VegasLimit(random, opts["initial_limit"], opts["max_limit"], opts["smoothing"],
                             opts["probe_multiplier"], mutant=mutant)
    return nl.Gradient2Limit(opts["initial_limit"], opts["min_limit"], opts["max_limit"], opts["smoothing"],
                             opts["queue_size"], opts["long_window"], opts["rtt_tolerance"], mutant=mutant)


def run_pair(seed: int, kind: str, windowed: str | None, *, mutant: bool = False, steps: int = 500,
             check: Any = None) -> tuple[int, int]:
    """(steps, divergences) for one random sequence; ``check(same, what)`` sees every comparison."""
    gen = np.random.default_rng(seed)
    opts, window = _config(gen, kind, windowed)
    draws = np.random.default_rng(seed + 1).random(10_000)
    ref_draws, sim_draws = iter(draws), iter(draws)
    now = [0]
    algo = _reference(opts, window, lambda: float(next(ref_draws)), mutant)
    if window:
        def factory() -> object:
            if window["sample"] == "average":
                return nl.ImmutableAverageSampleWindow()
            return nl.ImmutablePercentileSampleWindow(window["percentile"], window["capacity"])
        algo = nl.WindowedLimit(algo, factory, round(window["min_time"] * 1e9), round(window["max_time"] * 1e9),
                                window["size"], round(window["min_rtt"] * 1e9))  # type: ignore[assignment]
    ref = nl.SimpleLimiter(algo, lambda: now[0])
    sim = LimitConfig(**opts).build(rng=lambda: float(next(sim_draws)))
    # The load: bursts of starts and ends with RTTs from sub-millisecond to ~0.3 s, so the
    # limit is pushed both ways (queueing RTTs, drops, app-limited stretches).
    busy = float(gen.choice([0.3, 0.5, 0.7]))
    inflight: list[tuple[nl.Listener, tuple[int, int]]] = []
    divergences = 0
    for _ in range(steps):
        now[0] += int(gen.choice([0, 1, 50, 500, 2_000, 20_000]) * gen.integers(1, 100) * 1_000 // 10)
        if inflight and (gen.random() > busy or len(inflight) > 150):
            lst, token = inflight.pop(int(gen.integers(len(inflight))))
            now[0] = max(now[0], token[0] + 1)  # an RTT of 0 ns makes Vegas throw (rtt must be > 0)
            r = gen.random()
            if r < 0.15:
                lst.onDropped()
                sim.dropped(token, now[0])
            elif r < 0.2:
                lst.onIgnore()
                sim.ignore(token)
            else:
                lst.onSuccess()
                sim.success(token, now[0])
        else:
            lst_or_none = ref.acquire()
            token_or_none = sim.acquire(now[0])
            same = (lst_or_none is None) == (token_or_none is None)
            divergences += not same
            if check is not None:
                check(same, f"seed {seed}: admit {lst_or_none is not None} vs {token_or_none is not None}")
            if lst_or_none is not None and token_or_none is not None:
                inflight.append((lst_or_none, token_or_none))
            elif lst_or_none is not None:  # keep both sides' books balanced after a divergence
                lst_or_none.onIgnore()
            elif token_or_none is not None:
                sim.ignore(token_or_none)
        same = ref.limit == sim.limit and ref.inFlight == sim.inflight
        divergences += not same
        if check is not None:
            check(same, f"seed {seed}: limit {ref.limit} vs {sim.limit}, in flight {ref.inFlight} vs {sim.inflight}")
    return steps, divergences


PAIRS = [(k, w) for k in ("aimd", "vegas", "gradient2") for w in (None, "average", "percentile")]
CLASSES = {"aimd": "AIMDLimit", "vegas": "VegasLimit", "gradient2": "Gradient2Limit"}


@pytest.mark.parametrize("kind", ["aimd", "vegas", "gradient2"])
def test_limit_matches_the_library_decision_by_decision(kind: str, tally: Any) -> None:
    """Plain, behind an average window and behind a percentile window; every admission and limit compared."""
    t = tally(f"Netflix {CLASSES[kind]} + SimpleLimiter (+ WindowedLimit) (transcribed) vs limit {kind}",
              "concurrency-limits 78a74b98")
    for windowed in (None, "average", "percentile"):
        for seed in range(10 if windowed is None else 20):
            run_pair(seed, kind, windowed, check=t.check)
    t.assert_clean()


@pytest.mark.parametrize("kind", ["aimd", "vegas", "gradient2"])
def test_a_one_character_change_in_the_library_is_caught(kind: str) -> None:
    """The mutant flips one inequality (>= for >, <= for <): the comparison must see it."""
    bad = sum(run_pair(seed, kind, None, mutant=True)[1] for seed in range(30))
    assert bad > 0


def test_the_limit_moves_both_ways_in_these_sequences() -> None:
    """The sequences exercise growth and decrease, so agreement is not agreement on a constant."""
    for kind in ("aimd", "vegas", "gradient2"):
        seen: set[int] = set()
        for seed in range(10):
            gen = np.random.default_rng(seed)
            opts, _ = _config(gen, kind, None)
            sim = LimitConfig(**opts).build(rng=lambda: 0.7)
            seen.add(sim.limit)
            t, tokens = 0, []
            for i in range(400):
                t += 2 * MS
                tok = sim.acquire(t)
                if tok is not None:
                    tokens.append(tok)
                if len(tokens) > 5 or (tokens and i % 3 == 0):
                    tk = tokens.pop(0)
                    (sim.dropped if i % 17 == 0 else sim.success)(tk, t + (1 + i % 50) * MS)
                seen.add(sim.limit)
        assert len(seen) > 3, (kind, seen)
