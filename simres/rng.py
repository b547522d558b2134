"""Named random streams derived from (seed, component, purpose).

Every random draw in a run comes from a stream keyed by the run seed, the full identity of
the component that draws (``client:web/3`` for member 3 of a population, ``service:api/0``,
``link:web#3->api/0`` for one direction of one member's link) and the purpose
(``arrivals``, ``service_time``, ``latency``).
Adding a client therefore never shifts another client's arrivals, and two policy variants
with the same seed see the same arrivals and service times (common random numbers).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator

import numpy as np

BATCH = 4096
"""How many variates a sampler draws from numpy at once (one call per batch, not per draw)."""


def check_seed(seed: object, *, field: str = "seed") -> int:
    """The one rule for seeds everywhere (scenario field, API, every CLI flag): a whole number >= 0."""
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        from simres.errors import ScenarioError

        raise ScenarioError(f"must be a whole number >= 0, got {seed!r}", path=field)
    return int(seed)


def _key(text: str) -> list[int]:
    """A stable 128-bit key for ``text`` (Python's ``hash`` is salted per process)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def seed_sequence(seed: int, component: str, purpose: str) -> np.random.SeedSequence:
    """The SeedSequence for one (seed, component, purpose) stream."""
    return np.random.SeedSequence(entropy=[int(seed) & 0xFFFFFFFFFFFFFFFF, *_key(component)],
                                  spawn_key=tuple(_key(purpose)))


_AUDIT: list[tuple[str, str]] | None = None


def stream(seed: int, component: str, purpose: str) -> np.random.Generator:
    """A fresh ``numpy.random.Generator`` for one named stream."""
    if _AUDIT is not None:
        _AUDIT.append((component, purpose))
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, component, purpose)))


@contextlib.contextmanager
def audit_streams() -> Iterator[list[tuple[str, str]]]:
    """Collect the ``(component, purpose)`` key of every stream created inside the block.

    Two components that draw independently must never share a key (they would draw the
    same numbers); the test suite builds every bundled scenario under this and checks.
    """
    global _AUDIT
    previous, _AUDIT = _AUDIT, []
    try:
        yield _AUDIT
    finally:
        _AUDIT = previous


def replication_seeds(seed: int, reps: int) -> list[int]:
    """Seeds for ``reps`` independent replications, spawned from the scenario seed.

    Replication 0 uses ``seed`` itself, so a one-replication run equals a plain run.
    """
    if reps < 1:
        raise ValueError(f"reps: must be >= 1, got {reps}")
    children = np.random.SeedSequence(int(seed)).spawn(reps - 1)
    return [int(seed)] + [int(c.generate_state(1, dtype=np.uint64)[0] >> 1) for c in children]


FIRST_BATCH = 16
"""The first batch of a :func:`growing` sampler; each next batch doubles, up to BATCH."""


def batched(draw: Callable[[int], np.ndarray], first: int = BATCH) -> Callable[[], float]:
    """Turn ``draw(n) -> array`` into a zero-argument sampler that draws in numpy batches.

    The returned callable is the bound ``__next__`` of a generator over Python floats, which
    costs far less per call than a numpy scalar draw. Batches start at ``first`` variates
    and double up to BATCH (see :func:`growing`).
    """

    def gen() -> Iterator[float]:
        n = first
        while True:
            yield from draw(n).tolist()
            n = min(2 * n, BATCH)

    return gen().__next__


def growing(draw: Callable[[int], np.ndarray]) -> Callable[[], float]:
    """:func:`batched` starting with FIRST_BATCH variates instead of BATCH.

    A stream that is drawn from rarely (a balancer's starting point, a population member's
    arrivals in a short run) then holds a few Python floats instead of 4,096 (~128 KiB).
    Only for a generator that nothing else draws from: numpy fills an array one variate
    after another, so the sequence is the same whatever the batch sizes, but a second
    sampler on the same generator would interleave differently.
    """
    return batched(draw, FIRST_BATCH)


def uniform_sampler(rng: np.random.Generator) -> Callable[[], float]:
    """A batched U[0, 1) sampler on its own generator, for Bernoulli decisions on the hot path."""
    return growing(rng.random)
