"""Look-aside caches in front of a downstream call (``handler.calls[i].cache``).

A :class:`Cache` is one per calling service and call, shared by the caller's instances (a
memcached or Redis cluster in front of a database). Each calling instance reaches it
through a :class:`CachedSite`, which stands in for the call's
:class:`~simres.model.driver.CallSite` in the handler: a lookup that hits answers after
the hit latency and makes no call; a miss makes the logical call (with its whole policy
stack) and stores the key when the call succeeds.

The cache's load-multiplier faults act on the :class:`Cache`: ``cache_flush`` empties it,
``cache_crash`` empties it and makes every lookup miss (storing nothing unless ``store``)
while it lasts; ``prefill`` with a ``ttl`` makes every entry expire at once (a TTL expiry
wave). Options: ``coalesce`` (concurrent misses of one key share the one backend call in
flight, Go's singleflight) and ``stale_while_revalidate``.

Counters are kept per timeline bucket (lookups, hits, backend calls) and joined into the
timeline after the run (:func:`add_cache_columns`), so a scenario without caches has the
same frames and pays nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from simpy import Environment, Event
from simpy.events import Timeout

from simres.model.job import INF
from simres.outcomes import OK, SUCCESS_OUTCOMES
from simres.rng import batched, stream, uniform_sampler
from simres.scenario.services import CacheConfig

if TYPE_CHECKING:
    from simres.model.driver import CallSite


def zipf_sampler(rng: np.random.Generator, n: int, s: float) -> Callable[[], int]:
    """Keys 0..n-1 with P(k) proportional to 1/(k+1)^s (key 0 the most popular), drawn in batches."""
    cdf = np.cumsum(1.0 / np.arange(1, n + 1, dtype=float) ** s)
    cdf /= cdf[-1]

    def draw(m: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, rng.random(m), side="right"), n - 1)

    return batched(draw, 16)  # type: ignore[return-value]


class Cache:
    """One cache: its entries (key -> time stored, in LRU order), fault state and counters."""

    def __init__(self, env: Environment, cfg: CacheConfig, *, service: str, call: str, component: str,
                 seed: int, step: float) -> None:
        self.env = env
        self.cfg = cfg
        self.service = service
        """The calling service (its timeline rows get the cache's columns)."""
        self.call = call
        """The call's name (``DownstreamCall.key``), for faults that name it."""
        self.component = component
        """``caller->target`` (with ``@i`` when the handler calls the target twice): events' component."""
        self.step = step
        self.entries: OrderedDict[int, float] = OrderedDict()
        self.ttl = cfg.ttl if cfg.ttl is not None else INF
        self.swr = cfg.stale_while_revalidate or 0.0
        self.capacity = cfg.capacity
        self.down = 0
        """Active cache_crash faults: while > 0 every lookup misses."""
        self.store_down = 0
        """Active cache_crash faults with ``store: true``."""
        self.inflight: dict[int, Event] = {}
        """Coalescing: the key of each backend call in flight, and the event its waiters wait on."""
        self.refreshing: set[int] = set()
        """Stale-while-revalidate: keys with a background refresh in flight."""
        self.lookups: dict[int, int] = {}
        self.hits: dict[int, int] = {}
        self.backend: dict[int, int] = {}
        key = f"cache:{component}"
        self.key: Callable[[], int] | None = None
        self.u: Callable[[], float] | None = None
        if cfg.keys is not None:
            self.key = zipf_sampler(stream(seed, key, "keys"), cfg.keys.n, cfg.keys.s)
        else:
            self.u = uniform_sampler(stream(seed, key, "hits"))
        self.hit_latency = cfg.hit_latency.sampler(stream(seed, key, "hit_latency"))
        if cfg.prefill and cfg.keys is not None:
            top = cfg.keys.n if self.capacity is None else min(cfg.keys.n, self.capacity)
            self.entries = OrderedDict.fromkeys(range(top), 0.0)

    # -- counters ---------------------------------------------------------------------

    def _count(self, counter: dict[int, int]) -> None:
        b = int(self.env.now / self.step)
        counter[b] = counter.get(b, 0) + 1

    # -- entries ----------------------------------------------------------------------

    def store(self, key: int) -> None:
        """A backend answer for ``key`` arrived: store it (unless the cache is down), evicting LRU."""
        if self.down and not self.store_down:
            return
        entries = self.entries
        if key in entries:
            entries.move_to_end(key)
        entries[key] = self.env.now
        if self.capacity is not None and len(entries) > self.capacity:
            entries.popitem(last=False)

    def flush(self) -> int:
        """Empty the cache; returns the number of entries lost."""
        n = len(self.entries)
        self.entries.clear()
        return n

    def crash(self, store: bool) -> int:
        """The cache node goes down: contents lost, lookups miss until :meth:`restart`."""
        self.down += 1
        self.store_down += store
        return self.flush()

    def restart(self, store: bool) -> None:
        """The cache node is back (empty, unless misses stored while it was down)."""
        self.down -= 1
        self.store_down -= store


class CachedSite:
    """A call site behind a cache: what a calling instance's handler holds for a cached call.

    ``callbacks`` is False, so a handler with a cached call runs as a process
    (:meth:`~simres.model.service.Instance._handle`) and calls :meth:`call`.
    """

    callbacks = False

    def __init__(self, cache: Cache, site: CallSite) -> None:
        self.cache = cache
        self.site = site
        self.env = site.env

    def call(self, req_id: int, priority: str, parent_deadline: float = INF, parent: int = -1
             ) -> Generator[Event, Any, tuple[str, int]]:
        """Look the request's key up; on a miss make the logical call. Returns (outcome, tries made)."""
        c, env = self.cache, self.env
        now = env.now
        c._count(c.lookups)
        if c.key is None:  # a fixed hit ratio
            assert c.u is not None
            if not c.down and c.u() < c.cfg.hit_ratio:  # type: ignore[operator]
                return (yield from self._hit())
            c._count(c.backend)
            return (yield from self.site.call(req_id, priority, parent_deadline, parent))
        key = c.key()
        stored = c.entries.get(key)
        if stored is not None and not c.down:
            age = now - stored
            if age < c.ttl:
                c.entries.move_to_end(key)
                return (yield from self._hit())
            if age < c.ttl + c.swr:
                if key not in c.refreshing:
                    env.process(self._refresh(key, req_id, priority, parent))
                return (yield from self._hit())
        if c.cfg.coalesce:
            waiting = c.inflight.get(key)
            if waiting is not None:
                outcome = yield waiting
                return outcome, 0
            waiting = c.inflight[key] = Event(env)
        c._count(c.backend)
        outcome, tries = yield from self.site.call(req_id, priority, parent_deadline, parent)
        if outcome in SUCCESS_OUTCOMES:
            c.store(key)
        if c.cfg.coalesce:
            del c.inflight[key]
            waiting.succeed(outcome)
        return outcome, tries

    def _hit(self) -> Generator[Event, Any, tuple[str, int]]:
        c = self.cache
        c._count(c.hits)
        d = c.hit_latency()
        if d > 0:
            yield Timeout(self.env, d)
        return OK, 0

    def _refresh(self, key: int, req_id: int, priority: str, parent: int) -> Generator[Event, Any, None]:
        """Stale-while-revalidate: one background call for ``key``; a success stores it afresh."""
        c = self.cache
        c.refreshing.add(key)
        c._count(c.backend)
        outcome, _ = yield from self.site.call(req_id, priority, INF, parent)
        if outcome in SUCCESS_OUTCOMES:
            c.store(key)
        c.refreshing.discard(key)


CACHE_COLUMNS = ("cache_lookups", "cache_hits", "cache_backend")
"""The timeline columns a scenario with a cache gets (NaN on the rows of services without one)."""


def add_cache_columns(tl: pd.DataFrame, caches: list[Cache], step: float) -> None:
    """Per timeline row of a service with caches: its lookups, hits and backend calls in the
    bucket (summed over the service's caches); NaN for services without a cache."""
    services = tl["service"].astype(str).to_numpy()
    buckets = np.rint(tl["time"].to_numpy(dtype=float) / step).astype(np.int64)
    cols = {name: np.full(len(tl), np.nan) for name in CACHE_COLUMNS}
    for cache in caches:
        rows = np.flatnonzero(services == cache.service)
        for name, counter in zip(CACHE_COLUMNS, (cache.lookups, cache.hits, cache.backend), strict=True):
            col = cols[name]
            col[rows] = np.nan_to_num(col[rows]) + np.array([counter.get(int(b), 0) for b in buckets[rows]],
                                                               dtype=float)
    for name in CACHE_COLUMNS:
        tl[name] = cols[name]
