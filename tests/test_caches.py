"""Caches in front of a downstream call: hit ratios, TTL, LRU, coalescing, stale-while-revalidate, faults."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from simpy import Environment

from simres.experiments.runs import run
from simres.model.cache import Cache, CachedSite
from simres.model.job import INF
from simres.outcomes import OK
from simres.scenario.loading import load_scenario
from simres.scenario.services import CacheConfig


class FakeSite:
    """A backend call that takes ``latency`` and answers ``outcome``; counts the calls made."""

    def __init__(self, env: Environment, latency: float = 0.0, outcome: str = OK) -> None:
        self.env = env
        self.latency = latency
        self.outcome = outcome
        self.calls = 0

    def call(self, req_id: int, priority: str, parent_deadline: float = INF, parent: int = -1
             ) -> Generator[Any, Any, tuple[str, int]]:
        self.calls += 1
        yield self.env.timeout(self.latency)
        return self.outcome, 1


def make(cfg: dict[str, Any], latency: float = 0.0, seed: int = 1) -> tuple[Environment, Cache, CachedSite, FakeSite]:
    env = Environment()
    cache = Cache(env, CacheConfig.model_validate({"hit_latency": 0.0, **cfg}), service="api", call="db",
                  component="api->db", seed=seed, step=1.0)
    backend = FakeSite(env, latency)
    return env, cache, CachedSite(cache, backend), backend  # type: ignore[arg-type]


def lookups(env: Environment, site: CachedSite, n: int, gap: float = 0.0) -> list[str]:
    """``n`` lookups one after another (each waits for its answer), ``gap`` seconds apart."""
    out: list[str] = []

    def proc() -> Generator[Any, Any, None]:
        for i in range(n):
            res, _ = yield from site.call(i, "medium")
            out.append(res)
            if gap:
                yield env.timeout(gap)

    env.process(proc())
    env.run()
    return out


def totals(cache: Cache) -> tuple[int, int, int]:
    return sum(cache.lookups.values()), sum(cache.hits.values()), sum(cache.backend.values())


def zipf_probabilities(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=float) ** s
    return w / w.sum()


def test_zipf_unbounded_cache_misses_once_per_distinct_key() -> None:
    n, s, m = 5_000, 1.0, 20_000
    env, cache, site, backend = make({"keys": {"n": n, "s": s}})
    lookups(env, site, m, gap=0.001)
    total, hits, calls = totals(cache)
    assert total == m and calls == backend.calls == m - hits
    # Infinite capacity and TTL: every distinct key misses exactly once, then always hits.
    assert len(cache.entries) == m - hits
    # ... and the distinct keys seen match their expectation, sum_k 1 - (1 - p_k)^m, within 4 sd.
    p = zipf_probabilities(n, s)
    expected = float(np.sum(1 - (1 - p) ** m))
    sd = float(np.sqrt(np.sum((1 - p) ** m * (1 - (1 - p) ** m))))
    assert abs(len(cache.entries) - expected) < 4 * sd
    assert abs(hits / m - (1 - expected / m)) < 4 * sd / m


def test_zipf_draws_follow_the_popularity() -> None:
    _env, cache, _, _ = make({"keys": {"n": 100, "s": 1.2}})
    assert cache.key is not None
    draws = np.array([cache.key() for _ in range(50_000)])
    p = zipf_probabilities(100, 1.2)
    for k in (0, 1, 9, 99):
        share = float(np.mean(draws == k))
        assert abs(share - p[k]) < 4 * np.sqrt(p[k] * (1 - p[k]) / len(draws))


def test_lru_capacity_bounds_the_entries_and_lowers_the_hit_ratio() -> None:
    env, cache, site, _ = make({"keys": {"n": 2_000, "s": 0.8}, "capacity": 100})
    lookups(env, site, 10_000, gap=0.001)
    env2, unbounded, site2, _ = make({"keys": {"n": 2_000, "s": 0.8}})
    lookups(env2, site2, 10_000, gap=0.001)
    assert len(cache.entries) == 100
    assert totals(cache)[1] < totals(unbounded)[1]
    # The LRU cache holds about the most popular keys: the Che approximation puts its hit ratio
    # near the top-100 keys' share of the requests (0.31 here); it must not exceed that much.
    top = float(zipf_probabilities(2_000, 0.8)[:100].sum())
    assert 0.5 * top < totals(cache)[1] / 10_000 < 1.1 * top


def test_fixed_hit_ratio_within_binomial_interval() -> None:
    m, p = 20_000, 0.9
    env, cache, site, backend = make({"hit_ratio": p})
    lookups(env, site, m)
    _, hits, calls = totals(cache)
    assert abs(hits / m - p) < 4 * np.sqrt(p * (1 - p) / m)
    assert calls == backend.calls == m - hits


def test_ttl_expires_entries() -> None:
    env, cache, site, backend = make({"keys": {"n": 1}, "ttl": 1.0})
    lookups(env, site, 6, gap=0.4)  # lookups at 0, 0.4, 0.8, 1.2, 1.6, 2.0: stored at 0 and at 1.2
    assert backend.calls == 2
    assert totals(cache)[1] == 4


def test_prefill_with_ttl_is_an_expiry_wave() -> None:
    env, cache, site, backend = make({"keys": {"n": 50, "s": 0.0}, "ttl": 5.0, "prefill": True})
    assert len(cache.entries) == 50
    lookups(env, site, 40, gap=0.1)  # 0 to 3.9 s: everything prefilled is fresh
    assert backend.calls == 0
    env.run(until=5.0)
    lookups(env, site, 40, gap=0.001)  # just after 5 s every entry has expired at once
    assert backend.calls > 20


def test_coalescing_concurrent_misses_make_one_backend_call() -> None:
    env, _cache, site, backend = make({"keys": {"n": 1}, "coalesce": True}, latency=1.0)
    results: list[str] = []

    def one() -> Generator[Any, Any, None]:
        res, _ = yield from site.call(0, "medium")
        results.append(res)

    for _ in range(10):
        env.process(one())
    env.run()
    assert backend.calls == 1 and results == [OK] * 10
    assert env.now == pytest.approx(1.0)  # all waited for the one call
    assert lookups(env, site, 1) == [OK] and backend.calls == 1  # stored: the next lookup hits


def test_without_coalescing_every_concurrent_miss_calls() -> None:
    env, _cache, site, backend = make({"keys": {"n": 1}}, latency=1.0)
    for _ in range(10):
        env.process(site.call(0, "medium"))
    env.run()
    assert backend.calls == 10


def test_stale_while_revalidate_serves_stale_and_refreshes_once() -> None:
    env, cache, site, backend = make({"keys": {"n": 1}, "ttl": 1.0, "stale_while_revalidate": 5.0}, latency=0.5)
    lookups(env, site, 1)  # miss at 0, stored at 0.5
    assert backend.calls == 1 and cache.entries[0] == pytest.approx(0.5)
    served: list[float] = []

    def at(t: float) -> Generator[Any, Any, None]:
        yield env.timeout(t - env.now)
        yield from site.call(0, "medium")
        served.append(env.now)

    for t in (2.0, 2.1, 2.2, 2.3):  # expired at 1.5, within the stale window
        env.process(at(t))
    env.run()
    assert served == pytest.approx([2.0, 2.1, 2.2, 2.3])  # stale answers, at once
    assert backend.calls == 2  # exactly one background refresh
    assert cache.entries[0] == pytest.approx(2.5)  # the refresh stored a fresh entry
    _, hits, _ = totals(cache)
    assert hits == 4


def test_beyond_the_stale_window_is_a_miss() -> None:
    env, cache, site, backend = make({"keys": {"n": 1}, "ttl": 1.0, "stale_while_revalidate": 1.0})
    lookups(env, site, 2, gap=2.5)  # at 0 and 2.5: expired 1.5 s ago, beyond the window
    assert backend.calls == 2 and totals(cache)[1] == 0


def test_flush_then_every_key_misses() -> None:
    env, cache, site, backend = make({"keys": {"n": 100, "s": 0.0}, "prefill": True})
    lookups(env, site, 50)
    assert backend.calls == 0
    assert cache.flush() == 100
    before = totals(cache)[1]
    lookups(env, site, 1)
    assert totals(cache)[1] == before and backend.calls == 1  # right after: hit ratio 0


def test_crash_misses_and_stores_nothing_unless_told() -> None:
    env, cache, site, backend = make({"keys": {"n": 1}})
    lookups(env, site, 1)
    cache.crash(store=False)
    lookups(env, site, 3)
    assert backend.calls == 4 and len(cache.entries) == 0
    cache.restart(store=False)
    lookups(env, site, 2)
    assert backend.calls == 5  # back empty: one miss, then a hit


def scenario(faults: list[dict[str, Any]], cache: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "cache-unit", "duration": 20, "warmup": 2, "drain": 2, "seed": 3, "timeline_step": 1.0,
        "services": {
            "api": {"workers": 50, "service_time": 0.001,
                    "handler": {"calls": [{"to": "db", "cache": cache or {
                        "keys": {"n": 200, "s": 0.0}, "prefill": True}}]}},
            "db": {"workers": 50, "service_time": 0.01},
        },
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 100}}},
        "faults": faults,
    }


def test_flush_and_crash_faults_in_a_run() -> None:
    res = run(scenario([{"kind": "cache_flush", "service": "api", "at": 5},
                        {"kind": "cache_crash", "service": "api", "at": 10, "duration": 4}]))
    tl = res.timeline
    api = tl[tl["service"] == "api"].set_index("time")
    db = tl[tl["service"] == "db"]
    assert db["cache_lookups"].isna().all()  # only services with a cache get numbers
    assert (api.loc[[2.0, 3.0, 4.0], "cache_hits"] == api.loc[[2.0, 3.0, 4.0], "cache_lookups"]).all()
    assert api.loc[5.0, "cache_hits"] / api.loc[5.0, "cache_lookups"] < 0.9  # refilling after the flush
    assert (api.loc[[10.0, 11.0, 12.0, 13.0], "cache_hits"] == 0).all()  # down: every lookup misses
    ev = res.events
    kinds = ev["kind"].astype(str).tolist()
    assert "cache_flush" in kinds and "cache_crash" in kinds and "cache_restart" in kinds
    flushed = ev[ev["kind"].astype(str) == "cache_flush"]
    assert float(flushed["value"].iloc[0]) == 200.0  # entries lost
    s = res.summary
    assert 0 < s["cache_hit_ratio:api"] < 1
    assert s["cache_backend_load:api"] == pytest.approx(1 - s["cache_hit_ratio:api"])
    assert "cache_hit_ratio:db" not in s


def test_a_scenario_without_cache_has_no_cache_columns() -> None:
    sc = scenario([])
    del sc["services"]["api"]["handler"]["calls"][0]["cache"]
    res = run(sc)
    assert not any(c.startswith("cache_") for c in res.timeline.columns)
    assert not any(k.startswith("cache_") for k in res.summary)


@pytest.mark.parametrize(("cache", "message"), [
    ({"keys": {"n": 10}, "hit_ratio": 0.5}, "either keys"),
    ({}, "either keys"),
    ({"hit_ratio": 0.5, "ttl": 3}, "need keys"),
    ({"keys": {"n": 10}, "stale_while_revalidate": 3}, "needs a ttl"),
])
def test_cache_config_errors(cache: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CacheConfig.model_validate(cache)


def test_cache_faults_need_a_cache() -> None:
    sc = scenario([{"kind": "cache_flush", "service": "db", "at": 5}])
    with pytest.raises(Exception, match="no cached call"):
        load_scenario(sc)
    sc = scenario([{"kind": "cache_crash", "service": "api", "call": "nope", "at": 5, "duration": 1}])
    with pytest.raises(Exception, match="not a cached call"):
        load_scenario(sc)
    sc = scenario([{"kind": "cache_flush", "service": "api", "at": 5, "duration": 1}])
    with pytest.raises(Exception, match="instantaneous"):
        load_scenario(sc)


def test_summary_mode_has_the_same_cache_keys() -> None:
    sc = scenario([{"kind": "cache_flush", "service": "api", "at": 5}])
    full = run(sc).summary
    summ = run({**sc, "record": "summary"}).summary
    for key in ("cache_hit_ratio:api", "cache_backend_load:api"):
        assert summ[key] == full[key]


def test_preflight_counts_only_the_misses() -> None:
    from simres.scenario.preflight import arrival_rates, miss_share, preflight

    sc = load_scenario("cache-flush-overload")
    rates = arrival_rates(sc)
    # Zipf s = 1.4 over 100,000 keys, the top 10,000 held: 1.2 % miss, optimistic (the LRU run measures 2.4 %)
    assert rates["db"] == pytest.approx(1200 * miss_share(sc.services["api"].handler.calls[0].cache, 1200))
    assert 0.01 < rates["db"] / 1200 < 0.015
    assert not [f for f in preflight(sc) if "overloaded" in f.message]
    assert miss_share(CacheConfig(hit_ratio=0.9), 100.0) == pytest.approx(0.1)
    # TTL renewal: one key at 10 lookups/s with a 1 s TTL misses once per 1.1 s, 1 in 11 lookups
    assert miss_share(CacheConfig(keys={"n": 1}, ttl=1.0), 10.0) == pytest.approx(1 / 11)
