"""Pre-flight: what a scenario will do to itself, read off its numbers before anything runs.

Pure arithmetic on the validated scenario (no simulation, no randomness): the load each
service is offered against its capacity, before any fault, during each fault, and in the
worst case where every try fails and is retried; policy settings that cannot work at the
scenario's time scale; faults and clients outside the run. ``simres check`` prints the
findings, and ``run``, ``compare``, ``sweep`` and ``report`` print the warnings once before
they start. A finding never changes a result; ``--strict`` makes warnings errors.

The load model is the offered-load (utilisation) arithmetic of queueing theory: a service
with ``instances x workers`` workers holds a worker for its own mean service time plus
the round trips and holding times of its downstream calls, step after step (the longest
call of a parallel step or handler); offered load = arrival rate x holding time / workers. Round-robin
balancing spreads load evenly, so every instance of a service sees the same share.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from simres.scenario.clients import ClosedArrivals, ProfileArrivals
from simres.scenario.schema import Scenario
from simres.scenario.services import CallPolicy

HIGH_LOAD = 0.85
"""Offered load (share of capacity) from which queueing delay grows steeply: worth a warning."""


@dataclass(frozen=True)
class Finding:
    """One pre-flight finding: ``warning`` (likely a broken setup) or ``note`` (context)."""

    level: Literal["warning", "note"]
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.path}: {self.message}"


def _mean(dist: Any) -> float:
    return float(dist) if isinstance(dist, int | float) else float(dist.mean)


def _latency(sc: Scenario, a: str, b: str) -> float:
    """Mean one-way latency from node ``a`` to ``b`` (a listed link, else the default)."""
    for link in sc.network.links:
        ends = (link.from_.split("/")[0], link.to.split("/")[0])
        if ends == (a, b) or (link.symmetric and ends == (b, a)):
            return _mean(link.latency)
    return _mean(sc.network.default.latency)


def _attempts(policy: CallPolicy) -> int:
    """Most tries per logical call: the retry policy's, or a hedge's (every hedge sent)."""
    if policy.retry is not None:
        return policy.retry.max_attempts
    hedge = getattr(policy, "hedge", None)
    return hedge.attempts if hedge is not None else 1


def holding_times(sc: Scenario, *, slow: dict[str, float] | None = None) -> dict[str, float]:
    """Mean seconds a request holds a worker of each service (own work plus downstream calls)."""
    slow = slow or {}
    memo: dict[str, float] = {}

    def hold(name: str) -> float:
        if name not in memo:
            s = sc.services[name]
            calls = [2 * _latency(sc, name, c.to) + hold(c.to) for c in s.handler.calls]
            # steps one after another; the calls of a parallel step take as long as the slowest
            down = sum(max(calls[i] for i in step) for step in s.handler.plan())
            memo[name] = _mean(s.service_time) * slow.get(name, 1.0) + down
        return memo[name]

    for name in sc.services:
        hold(name)
    return memo


def arrival_rates(sc: Scenario, *, worst: bool = False, load: dict[str, float] | None = None) -> dict[str, float]:
    """Tries per second arriving at each service: first tries only, or (``worst``) every try retried.

    A rate profile counts at its highest rate. A closed-loop client counts at the most its
    users can send: each user has one request at a time, so by the response-time law a
    population of N users sends at most N / (Z + R0) requests per second, where Z is the mean
    think time and R0 the response time with no queueing (network out and back plus the
    target's holding time). Each user has at most one try in flight, so the bound holds for
    the worst case too; load faults do not scale a closed loop. A closed loop with
    ``requests_per_member`` is a finite batch, not a steady rate: it is left out here and
    reported as a burst by :func:`preflight`.
    """
    load = load or {}
    rates = dict.fromkeys(sc.services, 0.0)
    order = _topological(sc)
    hold: dict[str, float] | None = None
    for name, c in sc.clients.items():
        if isinstance(c.arrival, ClosedArrivals):
            if c.requests_per_member is None:
                hold = hold or holding_times(sc)
                rates[c.target] += c.count * _closed_rate(sc, name, hold)
            continue
        rate = c.arrival.max_rate if isinstance(c.arrival, ProfileArrivals) else c.arrival.rate
        # A saga's steps each reach their own service (at most once per saga, plus retries).
        calls: list[tuple[str, Any]] = ([(step.to, step) for step in c.saga.steps] if c.saga is not None
                                        else [(c.target, c)])
        for to, policy in calls:
            rates[to] += c.count * rate * load.get(name, 1.0) * (_attempts(policy) if worst else 1)
    for name in order:
        for call in sc.services[name].handler.calls:
            rates[call.to] += rates[name] * miss_share(call.cache, rates[name]) * (_attempts(call) if worst else 1)
    return rates


def miss_share(cache: Any, rate: float) -> float:
    """The steady share of lookups that miss a call's cache (1 without one), at ``rate`` lookups/s.

    A fixed ``hit_ratio`` misses 1 - hit_ratio. With Zipf keys the cache is taken to hold the
    ``capacity`` most popular keys (an LRU holds about those: an optimistic estimate); the
    rest always miss. With a ``ttl``, a held key requested at Poisson rate r misses once per
    renewal: a share 1 / (1 + r ttl) of its lookups. Faults (flushes, crashes) are not
    steady state and not counted.
    """
    if cache is None:
        return 1.0
    if cache.hit_ratio is not None:
        return 1.0 - float(cache.hit_ratio)
    n = cache.keys.n
    w = 1.0 / np.arange(1, n + 1, dtype=float) ** cache.keys.s
    p = w / w.sum()
    held = n if cache.capacity is None else min(n, cache.capacity)
    top = p[:held]
    if cache.ttl is None:
        return float(1.0 - top.sum())
    return float(np.sum(top / (1.0 + rate * top * cache.ttl)) + (1.0 - top.sum()))


def _closed_rate(sc: Scenario, name: str, hold: dict[str, float]) -> float:
    """The most one member of closed-loop client ``name`` can send: users / (think + R0)."""
    c = sc.clients[name]
    assert isinstance(c.arrival, ClosedArrivals)
    cycle = _mean(c.arrival.think_time) + 2 * _latency(sc, name, c.target) + hold[c.target]
    return c.arrival.users / cycle if cycle > 0 else float("inf")


def closed_loop_services(sc: Scenario) -> set[str]:
    """Services that closed-loop clients reach, directly or through downstream calls."""
    reached = {c.target for c in sc.clients.values()
               if isinstance(c.arrival, ClosedArrivals) and c.requests_per_member is None}
    for name in _topological(sc):
        if name in reached:
            reached.update(call.to for call in sc.services[name].handler.calls)
    return reached


def _topological(sc: Scenario) -> list[str]:
    seen: list[str] = []

    def visit(n: str) -> None:
        if n in seen:
            return
        for other, s in sc.services.items():
            if any(c.to == n for c in s.handler.calls):
                visit(other)
        seen.append(n)

    for n in sc.services:
        visit(n)
    return seen


def offered_load(sc: Scenario, *, worst: bool = False, slow: dict[str, float] | None = None,
                 load: dict[str, float] | None = None, workers: dict[str, int] | None = None) -> dict[str, float]:
    """Offered load per service as a share of its capacity (1.0 = saturated)."""
    hold = holding_times(sc, slow=slow)
    lam = arrival_rates(sc, worst=worst, load=load)
    workers = workers or {}
    return {n: lam[n] * hold[n] / max(workers.get(n, s.instances * s.workers), 1) for n, s in sc.services.items()}


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def preflight(sc: Scenario) -> list[Finding]:
    """Every finding for ``sc``, warnings and notes, in a fixed order."""
    return [*_load_findings(sc), *_policy_findings(sc), *_timing_findings(sc), *_replica_findings(sc)]


def _replica_findings(sc: Scenario) -> Iterator[Finding]:
    """A replica whose consumer applies writes slower than its primary is offered them falls
    behind without bound: the lag grows for the whole run, fault or not."""
    lam = arrival_rates(sc)
    for name, s in sc.services.items():
        r = s.replica
        if r is None:
            continue
        apply = _mean(r.apply_time)
        writes = lam.get(r.of, 0.0)  # every request the primary serves successfully is a write
        if apply > 0 and writes * apply >= 1:
            yield Finding("warning", f"services.{name}.replica.apply_time",
                          f"the consumer applies at most {1 / apply:.3g} writes/s but {r.of} is offered "
                          f"{writes:.3g} req/s (each success a write): the replication lag grows without bound")


def warnings_of(sc: Scenario) -> list[Finding]:
    """Only the warnings (what ``run``, ``compare``, ``sweep`` and ``report`` print before starting)."""
    return [f for f in preflight(sc) if f.level == "warning"]


def _capacity(sc: Scenario, name: str, hold: float) -> float:
    s = sc.services[name]
    return s.instances * s.workers / hold if hold > 0 else float("inf")


def _load_findings(sc: Scenario) -> Iterator[Finding]:
    hold = holding_times(sc)
    lam = arrival_rates(sc)
    base = offered_load(sc)
    worst = offered_load(sc, worst=True)
    closed = closed_loop_services(sc)
    for name, rho in base.items():
        s = sc.services[name]
        cap = _capacity(sc, name, hold[name])
        where = f"services.{name}"
        if lam[name] == 0 or cap == float("inf"):
            continue
        inst = f"{s.instances} instances x {s.workers} workers" if s.instances > 1 else f"{s.workers} workers"
        text = (f"offered {lam[name]:.3g} req/s, capacity {cap:.3g} req/s ({inst}, "
                f"{hold[name] * 1000:.3g} ms per request)")
        if name in closed:
            # A closed loop cannot overload: at most its users are waiting, so beyond capacity
            # the response time grows (users wait longer) instead of the queue.
            text = "at most " + text + " (closed-loop clients: an upper bound)"
            if rho >= 1:
                yield Finding("note", where, f"saturated before any fault, up to {_pct(rho)} of capacity: {text}; "
                                             "a closed loop slows down to the capacity instead of failing, so "
                                             "response times grow with the number of users")
            else:
                yield Finding("note", where, f"up to {_pct(rho)} of capacity before any fault: {text}")
        elif rho >= 1:
            yield Finding("warning", where, f"overloaded before any fault, at {_pct(rho)} of capacity: {text}; "
                                            "requests fail with or without faults")
        elif rho >= HIGH_LOAD:
            yield Finding("warning", where, f"at {_pct(rho)} of capacity before any fault: {text}; queueing "
                                            "alone may time requests out")
        else:
            yield Finding("note", where, f"{_pct(rho)} of capacity before any fault: {text}")
        if rho < 1 <= worst[name]:
            yield Finding("note", where, f"{_pct(worst[name])} of capacity if every try is retried (worst case "
                                         "of the retry policies): a fault can start a retry storm that outlives it")
    for cname, c in sc.clients.items():
        if isinstance(c.arrival, ClosedArrivals) and c.requests_per_member is not None:
            cap = _capacity(sc, c.target, hold[c.target])
            total = c.count * c.arrival.users * c.requests_per_member
            peak = c.count * _closed_rate(sc, cname, hold)
            size = f"{total / cap:.3g} s of {c.target}'s capacity" if cap != float("inf") else "no capacity limit"
            yield Finding("note", f"clients.{cname}", f"a batch of {total:,} requests ({c.count} members x "
                                                      f"{c.arrival.users} users x {c.requests_per_member}), at most "
                                                      f"{peak:.3g} req/s while it runs: {size} (first tries only)")
    for i, f in enumerate(sc.faults):
        slow, load, workers = _fault_effect(sc, f)
        if not (slow or load or workers):
            continue
        during = offered_load(sc, slow=slow, load=load, workers=workers)
        hot = {n: r for n, r in during.items() if r >= 1 and base[n] < 1 and workers.get(n, 1) > 0}
        name = f.name or f"{f.kind}#{i}"
        span = f"{f.at:g}-{f.end:g} s" if f.end is not None else f"from {f.at:g} s"
        for svc, r in hot.items():
            yield Finding("note", f"faults.{i}", f"during {name} ({span}) {svc} is offered {_pct(r)} of capacity")


def _fault_effect(sc: Scenario, f: Any) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """What a fault does to the load arithmetic: service-time factors, load factors, workers left."""
    slow: dict[str, float] = {}
    load: dict[str, float] = {}
    workers: dict[str, int] = {}
    if f.kind == "slowdown":
        slow[f.service] = f.factor
    elif f.kind == "load":
        load[f.client] = f.factor
    elif f.kind in ("capacity", "crash"):
        s = sc.services[f.service]
        hit = 1 if f.instance is not None else s.instances
        if f.kind == "capacity":
            workers[f.service] = s.instances * s.workers - hit * min(f.remove, s.workers - 1)
        else:
            workers[f.service] = (s.instances - hit) * s.workers
    return slow, load, workers


def _call_sites(sc: Scenario) -> Iterator[tuple[str, CallPolicy, str, float]]:
    """(path, policy, callee, tries per second seen by one policy instance) for every call site."""
    lam = arrival_rates(sc)
    hold = holding_times(sc)
    for name, c in sc.clients.items():
        if isinstance(c.arrival, ClosedArrivals):
            rate = _closed_rate(sc, name, hold)  # an upper bound: enough for "can never trip"
        else:
            rate = c.arrival.max_rate if isinstance(c.arrival, ProfileArrivals) else c.arrival.rate
        scope = c.breaker.scope if c.breaker is not None else "per_client"
        yield f"clients.{name}", c, c.target, rate * (c.count if scope == "shared" else 1)
    for name, s in sc.services.items():
        for i, call in enumerate(s.handler.calls):
            scope = call.breaker.scope if call.breaker is not None else "per_client"
            per = lam[name] if scope == "shared" else lam[name] / s.instances
            yield f"services.{name}.handler.calls.{s.handler.ref(i)}", call, call.to, per


def _faults_on(sc: Scenario, service: str) -> list[Any]:
    """Faults that can make calls to ``service`` fail."""
    out = []
    for f in sc.faults:
        target = getattr(f, "service", None)
        nodes = [*getattr(f, "from_", []), *getattr(f, "to", [])]
        if target == service or any(n.split("/")[0] == service for n in nodes) or f.kind == "load":
            out.append(f)
    return out


def _policy_findings(sc: Scenario) -> Iterator[Finding]:
    for path, pol, callee, rate in _call_sites(sc):
        if pol.timeout is not None and pol.deadline is not None and pol.timeout > pol.deadline:
            yield Finding("warning", f"{path}.timeout", f"the per-try timeout ({pol.timeout:g} s) is longer than "
                                                        f"the deadline ({pol.deadline:g} s): the deadline always "
                                                        "ends a slow try first, so it is never retried")
        bound = min(x for x in (pol.timeout, pol.deadline, float("inf")) if x is not None)
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(pol, name, None)
            if value is not None and value >= bound:
                yield Finding("warning", f"{path}.{name}", f"the {name.replace('_', ' ')} ({value:g} s) is not "
                                                           f"shorter than the per-try timeout or deadline "
                                                           f"({bound:g} s): it can never fire")
        if pol.retry is not None and pol.retry.budget is not None:
            b = pol.retry.budget
            if b.kind == "token_bucket" and b.refund == 0 and b.refill_per_request == 0:
                yield Finding("warning", f"{path}.retry.budget", "the token bucket can never refill (refund 0 and "
                                                                 "refill_per_request 0): once spent, no retry "
                                                                 "is ever allowed again")
        hedge = getattr(pol, "hedge", None)
        if hedge is not None and hedge.cancel_losers and sc.services[callee].on_caller_gone == "continue":
            yield Finding("note", f"{path}.hedge", f"{callee} has on_caller_gone: continue, so the losers hedging "
                                                   "cancels still run to the end there: cancelling saves no "
                                                   "server work")
        if pol.breaker is not None:
            yield from _breaker_findings(sc, path, pol, callee, rate)


def _breaker_findings(sc: Scenario, path: str, pol: CallPolicy, callee: str, rate: float) -> Iterator[Finding]:
    br = pol.breaker
    assert br is not None
    where = f"{path}.breaker"
    faults = [f for f in _faults_on(sc, callee) if f.kind != "load"]
    longest = max((min(f.end or sc.duration, sc.duration) - f.at for f in faults), default=sc.duration - sc.warmup)
    tries = rate * _attempts(pol)
    if br.trip != "consecutive":
        need = math.ceil(br.minimum_window_calls())
        span = float(br.window.size) if br.window.kind in ("time", "rolling", "sampling") else longest
        got = tries * span
        what = (f"its {br.window.size:g} s window holds ~{got:.3g} calls" if br.window.kind != "count"
                else f"~{got:.3g} calls arrive in {span:g} s (the longest fault)")
        if got < need:
            yield Finding("warning", f"{where}.minimum_calls",
                          f"needs {need} calls before it can trip, but at ~{tries:.3g} calls/s per breaker {what}: "
                          "it will never open")
    for f in faults:
        if f.end is None or f.at >= sc.duration:
            continue
        name = f.name or f.kind
        lasts = f.end - f.at
        if br.open_for > lasts:
            past = (f", past the end of the run ({sc.duration:g} s)" if f.at + br.open_for >= sc.duration else "")
            yield Finding("warning", f"{where}.open_for",
                          f"stays open {br.open_for:g} s, longer than {name} lasts ({lasts:g} s): once open it "
                          f"fails requests for up to {br.open_for - lasts:.3g} s after the fault ends{past}")


def _timing_findings(sc: Scenario) -> Iterator[Finding]:
    for i, f in enumerate(sc.faults):
        name = f.name or f"{f.kind}#{i}"
        if f.at >= sc.duration:
            yield Finding("warning", f"faults.{i}.at", f"{name} starts at {f.at:g} s, at or after the end of the "
                                                       f"run ({sc.duration:g} s): it never happens")
        elif f.at < sc.warmup:
            yield Finding("warning", f"faults.{i}.at", f"{name} starts at {f.at:g} s, inside the warm-up "
                                                       f"({sc.warmup:g} s): there is no fault-free baseline to "
                                                       "judge recovery against")
        elif f.end is not None and f.end >= sc.duration:
            yield Finding("warning", f"faults.{i}.duration", f"{name} ends at {f.end:g} s, at or after the end of "
                                                             f"the run ({sc.duration:g} s): recovery cannot be "
                                                             "judged")
    for name, c in sc.clients.items():
        if c.start >= sc.duration:
            yield Finding("warning", f"clients.{name}.start", f"starts at {c.start:g} s, at or after the end of the "
                                                              f"run ({sc.duration:g} s): it sends nothing")


def format_findings(findings: list[Finding], *, notes: bool = True) -> str:
    """One line per finding (notes left out with ``notes=False``)."""
    return "\n".join(str(f) for f in findings if notes or f.level == "warning")


def scenario_warnings(sc: Scenario, variants: list[str] | None = None, *, source: Any = None,
                      overrides: Mapping[str, Any] | None = None) -> list[str]:
    """The warnings of ``sc`` and of each of ``variants``, each once; a variant's own ones are tagged with it.

    ``sc`` is the scenario as run (overrides applied). Give ``source`` (the scenario as
    written) and ``overrides`` when there are overrides, so each variant is resolved in the
    one order: the scenario, the variant, then the overrides.
    """
    from simres.scenario.loading import load_scenario

    base = [str(f) for f in warnings_of(sc)]
    out = list(base)
    for v in variants or []:
        resolved = (load_scenario(source, variant=v, overrides=overrides or None) if source is not None
                    else load_scenario(sc, variant=v))
        for f in warnings_of(resolved):
            line = str(f)
            if line not in base:
                out.append(f"{line} [variant {v}]")
    return list(dict.fromkeys(out))
