"""``simres validate``: the engine checked against exact queueing results (VALIDATION.md section 1).

Each :class:`Case` is a small scenario built in code with a closed-form answer: M/M/1 and
M/M/c at several loads, M/D/1 and M/G/1 (Pollaczek-Khinchine) at several squared
coefficients of variation, Erlang B loss, M/M/1/K blocking, a tandem network, and retries
under independent failures (single layer and multiplied across layers). Every case runs
independent replications with fixed seeds; a check passes when the exact value lies inside
the Student-t confidence interval of the replication means *and* the interval is tight
(relative half-width at most the case's stated tolerance), so a check cannot pass by
being vague. docs/validation.md states every formula with its numbers.

The runner returns a tidy frame (one row per check); results depend only on the seed,
the replication count and ``quick``, never on how many processes ran them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simres.errors import SimresError
from simres.metrics.amplification import attempts_of
from simres.metrics.rates import measured_requests
from simres.metrics.stats import mean_ci
from simres.rng import replication_seeds

if TYPE_CHECKING:
    from simres.runs import RunResult

DEFAULT_SEED = 2024
"""Root seed of the suite; each case derives its own replication seeds from it and its name."""
CONFIDENCE = 0.99
"""Confidence level of every interval (VALIDATION.md: theory inside the 99 % CI)."""
QUICK_SCALE = 0.25
"""``quick`` simulates this share of each case's measured time, so its tolerances double."""

Reader = Callable[["RunResult"], float]
Progress = Callable[[int, int], None]


class ValidationError(SimresError):
    """A bad argument to the validation runner (unknown case pattern, too few replications)."""


# ---------------------------------------------------------------------------- exact results


def mm1_sojourn(lam: float, mu: float) -> float:
    """M/M/1 mean sojourn time W = 1/(mu - lambda)."""
    return 1.0 / (mu - lam)


def mm1_sojourn_quantile(lam: float, mu: float, q: float) -> float:
    """M/M/1 sojourn-time q-quantile: the sojourn is Exp(mu - lambda), so -ln(1-q)/(mu-lambda)."""
    return -math.log(1.0 - q) / (mu - lam)


def erlang_c(c: int, a: float) -> float:
    """Erlang C: probability an arrival waits in M/M/c with offered load a = lambda/mu < c."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def mmc_wait(c: int, lam: float, mu: float) -> float:
    """M/M/c mean wait in queue Wq = C(c, a) / (c mu - lambda)."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mmc_sojourn_tail(c: int, lam: float, mu: float, t: float) -> float:
    """P(W > t) in M/M/c: W = Wq + S with Wq = 0 w.p. 1 - C, else Exp(c mu - lambda), S ~ Exp(mu)."""
    C = erlang_c(c, lam / mu)
    theta = c * mu - lam
    if math.isclose(theta, mu):
        both = (1 + mu * t) * math.exp(-mu * t)  # Erlang-2 tail
    else:
        both = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
    return (1 - C) * math.exp(-mu * t) + C * both


def mmc_sojourn_quantile(c: int, lam: float, mu: float, q: float) -> float:
    """The q-quantile of the M/M/c sojourn time (the tail above, inverted numerically)."""
    from scipy.optimize import brentq

    hi = 1.0
    while mmc_sojourn_tail(c, lam, mu, hi) > 1 - q:
        hi *= 2
    return float(brentq(lambda t: mmc_sojourn_tail(c, lam, mu, t) - (1 - q), 0.0, hi, xtol=1e-12))


def pk_wait(lam: float, mean: float, scv: float) -> float:
    """M/G/1 mean wait (Pollaczek-Khinchine): Wq = rho (1 + Cs^2) / (2 (1 - rho)) E[S]."""
    rho = lam * mean
    return rho * (1 + scv) / (2 * (1 - rho)) * mean


def erlang_b(c: int, a: float) -> float:
    """Erlang B blocking of c servers and no queue: B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1))."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def mm1k_blocking(rho: float, k: int) -> float:
    """M/M/1/K blocking (K = queue + the one in service): (1 - rho) rho^K / (1 - rho^(K+1))."""
    return (1 - rho) * rho**k / (1 - rho ** (k + 1))


def mm1k_sojourn(lam: float, mu: float, k: int) -> float:
    """M/M/1/K mean sojourn of admitted requests: L / (lambda (1 - P_K)) (Little)."""
    rho = lam / mu
    n = rho / (1 - rho) - (k + 1) * rho ** (k + 1) / (1 - rho ** (k + 1))
    return n / (lam * (1 - mm1k_blocking(rho, k)))


def retry_success(p: float, attempts: int) -> float:
    """Success with independent failure probability p and ``attempts`` tries: 1 - p^attempts."""
    return 1 - p**attempts


def retry_load(p: float, attempts: int) -> float:
    """Tries per request with independent failures: sum_{k < attempts} p^k."""
    return sum(p**k for k in range(attempts))


def lognormal_params(mean: float, scv: float) -> tuple[float, float]:
    """(mu, sigma) of the log-normal with the given mean and squared coefficient of variation."""
    sigma2 = math.log1p(scv)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


# ---------------------------------------------------------------------------- metric readers


def _summary(key: str) -> Reader:
    def read(r: RunResult) -> float:
        return float(r.summary[key])

    return read


def _measured(r: RunResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    req = measured_requests(r.requests, warmup=r.scenario.warmup, duration=r.scenario.duration)
    return req, attempts_of(r.attempts, req)


def _tries_per_request(service: str) -> Reader:
    """Tries that arrived at ``service`` (any depth) per steady-state client request."""

    def read(r: RunResult) -> float:
        req, att = _measured(r)
        sent = att["sent"].to_numpy(dtype=bool) & (att["service"].astype(str) == service).to_numpy()
        return float(sent.sum() / len(req))

    return read


def _call_sojourn(service: str) -> Reader:
    """Mean time a try to ``service`` took, seen by its caller (no network: the station's sojourn)."""

    def read(r: RunResult) -> float:
        _, att = _measured(r)
        sel = att["sent"].to_numpy(dtype=bool) & (att["service"].astype(str) == service).to_numpy()
        d = att["end"].to_numpy(dtype=float)[sel] - att["start"].to_numpy(dtype=float)[sel]
        return float(d.mean())

    return read


# ---------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Check:
    """One compared number: a metric read from a run, its exact value, and how tight it must be."""

    metric: str
    expected: float
    tol: float
    """Largest relative half-width (half-width / |expected|) accepted in a full run."""
    read: Reader


@dataclass(frozen=True)
class Case:
    """A validation case: a scenario with a closed-form answer and the checks on it."""

    name: str
    title: str
    formula: str
    build: Callable[[float], dict[str, Any]]
    """Scenario mapping for a measured-time scale (1.0 full, ``QUICK_SCALE`` quick)."""
    checks: tuple[Check, ...]
    reps: int = 10
    cost: float = 1.0
    """Rough relative cost of one replication, to start the expensive ones first."""


def _station(*, rate: float, service_time: dict[str, Any], workers: int = 1, capacity: int | None = None,
             span: float, warmup: float, drain: float, **service: Any) -> dict[str, Any]:
    """A one-station scenario: Poisson arrivals at ``rate`` into service ``q``."""
    duration = warmup + span
    return {
        "name": "validate",
        "duration": duration,
        "warmup": warmup,
        "drain": drain,
        "timeline_step": duration / 100,
        "services": {"q": {"workers": workers, "service_time": service_time,
                           "queue": {"capacity": capacity}, **service}},
        "clients": {"src": {"target": "q", "arrival": {"kind": "poisson", "rate": rate}}},
    }


def _exp(mean: float) -> dict[str, Any]:
    return {"kind": "exponential", "mean": mean}


NO_WAIT_RETRY = {"backoff": {"kind": "none"}, "jitter": "none"}
"""Retries with no backoff wait: the count of tries, not their timing, is under test."""


def _mm1(rho: float, *, span: float, warmup: float, tol_w: float, tol_p99: float, tol_u: float,
         reps: int = 10) -> Case:
    lam, mu = rho, 1.0
    return Case(
        name=f"mm1-rho{rho:g}",
        title=f"M/M/1, lambda {lam:g}, mu {mu:g}",
        formula="W = 1/(mu-lambda); p99(W) = ln(100)/(mu-lambda); utilization = rho",
        build=lambda s: _station(rate=lam, service_time=_exp(1 / mu), span=span * s, warmup=warmup,
                                 drain=200 / (mu - lam)),
        checks=(
            Check("W mean", mm1_sojourn(lam, mu), tol_w, _summary("latency_mean")),
            Check("W p99", mm1_sojourn_quantile(lam, mu, 0.99), tol_p99, _summary("latency_p99")),
            Check("utilization", rho, tol_u, _summary("utilization:q")),
        ),
        reps=reps, cost=lam * span,
    )


def _mmc(c: int, rho: float, *, span: float, warmup: float, tol_w: float, tol_p99: float | None, tol_u: float,
         reps: int = 10) -> Case:
    mu = 1.0
    lam = rho * c * mu
    checks = [Check("W mean", mmc_wait(c, lam, mu) + 1 / mu, tol_w, _summary("latency_mean"))]
    if tol_p99 is not None:
        checks.append(Check("W p99", mmc_sojourn_quantile(c, lam, mu, 0.99), tol_p99, _summary("latency_p99")))
    checks.append(Check("utilization", rho, tol_u, _summary("utilization:q")))
    return Case(
        name=f"mm{c}-rho{rho:g}",
        title=f"M/M/{c}, lambda {lam:g}, mu {mu:g}",
        formula="Erlang C: W = C(c,a)/(c mu - lambda) + 1/mu; "
                "P(W>t) = (1-C) e^(-mu t) + C P(Exp(c mu - lambda) + Exp(mu) > t)",
        build=lambda s: _station(rate=lam, service_time=_exp(1 / mu), workers=c, span=span * s, warmup=warmup,
                                 drain=200 / (c * mu - lam)),
        checks=tuple(checks),
        reps=reps, cost=lam * span,
    )


def _mg1(name: str, title: str, dist: dict[str, Any], scv: float, rho: float, *, span: float, warmup: float,
         tol: float, tol_u: float = 0.015, reps: int = 10) -> Case:
    mean = 1.0
    lam = rho / mean
    return Case(
        name=name,
        title=f"{title}, Cs^2 {scv:g}, rho {rho:g}",
        formula="Pollaczek-Khinchine: W = rho(1+Cs^2)/(2(1-rho)) E[S] + E[S]; utilization = lambda E[S]",
        build=lambda s: _station(rate=lam, service_time=dist, span=span * s, warmup=warmup, drain=2000.0),
        checks=(
            Check("W mean", pk_wait(lam, mean, scv) + mean, tol, _summary("latency_mean")),
            Check("utilization", rho, tol_u, _summary("utilization:q")),
        ),
        reps=reps, cost=lam * span,
    )


def _erlang_b_case(name: str, title: str, c: int, a: float, dist: dict[str, Any], *, span: float, tol: float,
                   reps: int = 10) -> Case:
    return Case(
        name=name,
        title=title,
        formula="Erlang B: B(0)=1, B(k) = a B(k-1)/(k + a B(k-1)); insensitive to the service-time law",
        build=lambda s: _station(rate=a, service_time=dist, workers=c, capacity=0, span=span * s,
                                 warmup=20.0, drain=100.0),
        checks=(Check("P(block)", erlang_b(c, a), tol, _summary("rejected_rate")),),
        reps=reps, cost=a * span * 0.6,
    )


def _mm1k(rho: float, k: int, *, span: float, tol_b: float, tol_w: float, reps: int = 10) -> Case:
    lam, mu = rho, 1.0
    return Case(
        name=f"mm1k-rho{rho:g}-k{k}",
        title=f"M/M/1/K, lambda {lam:g}, mu {mu:g}, K {k} (queue capacity {k - 1})",
        formula="P(block) = (1-rho) rho^K/(1-rho^(K+1)); W = L/(lambda(1-P_K)), "
                "L = rho/(1-rho) - (K+1) rho^(K+1)/(1-rho^(K+1))",
        build=lambda s: _station(rate=lam, service_time=_exp(1 / mu), capacity=k - 1, span=span * s,
                                 warmup=50.0, drain=200.0),
        checks=(
            Check("P(block)", mm1k_blocking(rho, k), tol_b, _summary("rejected_rate")),
            Check("W mean (admitted)", mm1k_sojourn(lam, mu, k), tol_w, _summary("latency_mean")),
        ),
        reps=reps, cost=lam * span,
    )


def _tandem(lam: float, mu1: float, mu2: float, *, span: float, warmup: float, tol: float, reps: int = 10) -> Case:
    def build(s: float) -> dict[str, Any]:
        duration = warmup + span * s
        return {
            "name": "validate-tandem",
            "duration": duration, "warmup": warmup, "drain": 2000.0, "timeline_step": duration / 100,
            "services": {
                # enough workers that no request ever queues at api: an M/M/inf station, whose
                # output is Poisson (Burke), feeding db, an M/M/1 station
                "api": {"workers": 1000, "service_time": _exp(1 / mu1),
                        "handler": {"calls": [{"to": "db"}]}},
                "db": {"workers": 1, "service_time": _exp(1 / mu2)},
            },
            "clients": {"src": {"target": "api", "arrival": {"kind": "poisson", "rate": lam}}},
        }

    return Case(
        name="tandem",
        title=f"tandem M/M/inf -> M/M/1, lambda {lam:g}, mu1 {mu1:g}, mu2 {mu2:g}",
        formula="W = 1/mu1 + 1/(mu2-lambda) (api holds its worker during the db call, so api is "
                "given enough workers to be M/M/inf); db sojourn = 1/(mu2-lambda)",
        build=build,
        checks=(
            Check("W mean (end to end)", 1 / mu1 + mm1_sojourn(lam, mu2), tol, _summary("latency_mean")),
            Check("db sojourn mean", mm1_sojourn(lam, mu2), tol, _call_sojourn("db")),
        ),
        reps=reps, cost=3 * lam * span,
    )


def _retry(p: float, attempts: int, *, span: float, tol_s: float, tol_l: float, reps: int = 10) -> Case:
    rate = 50.0

    def build(s: float) -> dict[str, Any]:
        return {
            "name": "validate-retry",
            "duration": 1.0 + span * s, "warmup": 1.0, "drain": 10.0, "timeline_step": 10.0,
            "services": {"q": {"workers": 1000, "service_time": _exp(0.01), "error_rate": p}},
            "clients": {"src": {"target": "q", "arrival": {"kind": "poisson", "rate": rate},
                                "retry": {"max_attempts": attempts, **NO_WAIT_RETRY}}},
        }

    return Case(
        name=f"retry-p{p:g}",
        title=f"independent failures p {p:g}, {attempts} tries",
        formula="success = 1 - p^(R+1); tries per request = sum_{k=0..R} p^k",
        build=build,
        checks=(
            Check("success rate", retry_success(p, attempts), tol_s, _summary("success_rate")),
            Check("tries per request", retry_load(p, attempts), tol_l, _summary("tries_per_request")),
        ),
        reps=reps, cost=rate * span * retry_load(p, attempts) * 4,
    )


def _layers(name: str, depth: int, p: float, tries: int, *, span: float, rate: float, tol: float,
            tol_s: float = 0.0, reps: int = 10) -> Case:
    """``depth`` call edges (client -> s1 -> ... -> s<depth>), each with ``tries`` tries; s<depth> fails w.p. p."""

    def build(s: float) -> dict[str, Any]:
        services: dict[str, Any] = {}
        for i in range(1, depth + 1):
            svc: dict[str, Any] = {"workers": 100000, "service_time": {"kind": "constant", "value": 0.001}}
            if i < depth:
                svc["handler"] = {"calls": [{"to": f"s{i + 1}", "retry": {"max_attempts": tries, **NO_WAIT_RETRY}}]}
            else:
                svc["error_rate"] = p
            services[f"s{i}"] = svc
        return {
            "name": "validate-layers",
            "duration": 1.0 + span * s, "warmup": 1.0, "drain": 10.0, "timeline_step": 10.0,
            "services": services,
            "clients": {"src": {"target": "s1", "arrival": {"kind": "poisson", "rate": rate},
                                "retry": {"max_attempts": tries, **NO_WAIT_RETRY}}},
        }

    bottom = f"s{depth}"
    # per layer from the bottom up: tries per call at that edge, and the call's failure probability
    load, fail = 1.0, p
    for _ in range(depth):
        load *= retry_load(fail, tries)
        fail = fail**tries
    checks = [Check(f"tries at {bottom} per request", load, tol, _tries_per_request(bottom))]
    if 0 < p < 1:
        checks.append(Check("success rate", 1 - fail, tol_s, _summary("success_rate")))
    return Case(
        name=name,
        title=f"{depth} layers x {tries} tries, bottom fails w.p. {p:g}",
        formula="per layer: tries = sum_{k<n} f^k with f the failure prob. of the layer below "
                "(f -> f^n going up); multiplied over layers (n^depth when everything fails)",
        build=build,
        checks=tuple(checks),
        reps=reps, cost=rate * span * load * 3,
    )


def all_cases() -> list[Case]:
    """Every validation case, in report order (spans and tolerances: see docs/validation.md)."""
    ln_mu, ln_sigma = lognormal_params(1.0, 2.0)
    lognormal2 = {"kind": "lognormal", "mu": ln_mu, "sigma": ln_sigma}
    h2 = {"kind": "mixture", "components": [{"weight": 0.8, "dist": _exp(0.5)}, {"weight": 0.2, "dist": _exp(3.0)}]}
    return [
        _mm1(0.5, span=40000, warmup=200, tol_w=0.045, tol_p99=0.08, tol_u=0.02),
        _mm1(0.8, span=80000, warmup=1000, tol_w=0.07, tol_p99=0.15, tol_u=0.012),
        _mmc(4, 0.8, span=15000, warmup=200, tol_w=0.055, tol_p99=0.12, tol_u=0.012),
        _mmc(4, 0.9, span=15000, warmup=500, tol_w=0.13, tol_p99=None, tol_u=0.012),
        _mg1("md1", "M/D/1", {"kind": "constant", "value": 1.0}, 0.0, 0.8, span=30000, warmup=500, tol=0.06),
        _mg1("mg1-erlang2", "M/G/1 Erlang-2", {"kind": "erlang", "shape": 2, "mean": 1.0}, 0.5, 0.8,
             span=40000, warmup=500, tol=0.08),
        _mg1("mg1-lognormal", "M/G/1 log-normal", lognormal2, 2.0, 0.7, span=60000, warmup=500, tol=0.10,
             tol_u=0.02),
        _mg1("mg1-mixture", "M/G/1 mixture 0.8 Exp(0.5) + 0.2 Exp(3)", h2, 3.0, 0.7, span=60000, warmup=500,
             tol=0.10, tol_u=0.02),
        _erlang_b_case("erlang-b", "Erlang B, c 3, a 2, exponential", 3, 2.0, _exp(1.0), span=10000, tol=0.045),
        _erlang_b_case("erlang-b-lognormal", "Erlang B, c 3, a 2, log-normal Cs^2 2 (insensitivity)", 3, 2.0,
                       lognormal2, span=10000, tol=0.045),
        _mm1k(0.8, 5, span=40000, tol_b=0.06, tol_w=0.025),
        _tandem(0.7, 2.0, 1.0, span=30000, warmup=500, tol=0.07),
        _retry(0.2, 4, span=120, tol_s=0.0012, tol_l=0.012),
        _retry(0.5, 4, span=120, tol_s=0.006, tol_l=0.014),
        _retry(0.8, 4, span=120, tol_s=0.02, tol_l=0.01),
        _layers("layers-2-fail", 2, 1.0, 3, span=50, rate=10.0, tol=0.001, reps=3),
        _layers("layers-5-fail", 5, 1.0, 3, span=10, rate=5.0, tol=0.001, reps=3),
        _layers("layers-2-p0.5", 2, 0.5, 3, span=120, rate=50.0, tol=0.016, tol_s=0.0014),
    ]


def select_cases(patterns: Sequence[str] = ()) -> list[Case]:
    """The cases matching any of ``patterns`` (all if none), in report order.

    A pattern that is a case's exact name selects that case alone; one with ``*``, ``?`` or
    ``[`` is a glob; any other matches as a substring (``mm1`` selects every M/M/1 case).
    """
    cases = all_cases()
    if not patterns:
        return cases
    exact = {c.name for c in cases}
    chosen = [c for c in cases if any(c.name == p if p in exact else _matches(c.name, p) for p in patterns)]
    if not chosen:
        listed = ", ".join(c.name for c in cases)
        raise ValidationError(f"case: no case matches {', '.join(map(repr, patterns))}; cases are: {listed}")
    return chosen


def _matches(name: str, pattern: str) -> bool:
    pattern = pattern.lower()
    if not any(ch in pattern for ch in "*?["):
        return pattern in name
    return fnmatch.fnmatchcase(name, pattern)


def case_seed(seed: int, name: str) -> int:
    """The root seed of one case: the suite seed mixed with a stable hash of the case name."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=4).digest()
    return (int(seed) + int.from_bytes(digest, "little")) % (2**63)


# ---------------------------------------------------------------------------- runner


Outcome = tuple[str, int, list[float], int, float]
"""One replication's result: case name, replicate index, check values, unfinished requests, CPU s."""


def _replicate_one(task: tuple[str, float, int, int]) -> Outcome:
    """Run one replication of a case (looked up by name, so the task pickles as plain data)."""
    from simres.runs import run

    name, scale, rep, seed = task
    case = next(c for c in all_cases() if c.name == name)
    t0 = time.process_time()
    result = run(case.build(scale), seed=seed)
    values = [float(ch.read(result)) for ch in case.checks]
    # every case drains long enough for all measured requests to finish: one that did not
    # was lost by the engine, and would silently bias latency means downwards
    unfinished = round(result.summary["unfinished_rate"] * result.summary["count"])
    return name, rep, values, unfinished, time.process_time() - t0


def run_validation(
    *,
    cases: Sequence[str] = (),
    quick: bool = False,
    reps: int | None = None,
    seed: int = DEFAULT_SEED,
    jobs: int = 1,
    confidence: float = CONFIDENCE,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run the validation cases and compare each check with its exact value.

    Args:
        cases: glob patterns of case names (all cases if empty); see :func:`select_cases`.
        quick: every case simulates ``QUICK_SCALE`` of its measured time (same replications
            and warm-up), with tolerances scaled by ``1/sqrt(QUICK_SCALE)`` to match.
        reps: replications per case (default: each case's own count); at least 2.
        seed: root seed of the suite.
        jobs: worker processes (1 = in this process). Results do not depend on it.
        confidence: level of the Student-t intervals.
        progress: called as ``progress(done, total)`` after each replication.

    Returns:
        One row per check: ``case``, ``metric``, ``expected``, ``mean``, ``lo``, ``hi``,
        ``halfwidth``, ``rel_halfwidth``, ``tolerance``, ``n``, ``passed``, ``reason``
        (empty, "outside CI", "CI too wide", and/or "N request(s) unfinished": a request
        still in flight after the drain, which the engine lost) and ``cpu_time`` (CPU seconds the case's
        replications took, summed over processes).
    """
    if reps is not None and reps < 2:
        raise ValidationError(f"reps: need at least 2 replications for a confidence interval, got {reps}")
    if jobs < 1:
        raise ValidationError(f"jobs: must be >= 1, got {jobs}")
    if not 0 < confidence < 1:
        raise ValidationError(f"confidence: must be in (0, 1), got {confidence}")
    chosen = select_cases(cases)
    scale = QUICK_SCALE if quick else 1.0
    tasks = []
    for case in chosen:
        n = reps if reps is not None else case.reps
        for rep, s in enumerate(replication_seeds(case_seed(seed, case.name), n)):
            tasks.append((case.cost, (case.name, scale, rep, s)))
    # expensive replications first, so the last ones to finish are short
    ordered = [t for _, t in sorted(tasks, key=lambda x: -x[0])]
    out: dict[str, dict[int, list[float]]] = {c.name: {} for c in chosen}
    cpu: dict[str, float] = dict.fromkeys(out, 0.0)
    lost: dict[str, int] = dict.fromkeys(out, 0)
    for done, (name, rep, values, unfinished, secs) in enumerate(_execute(ordered, jobs), start=1):
        out[name][rep] = values
        cpu[name] += secs
        lost[name] += unfinished
        if progress is not None:
            progress(done, len(ordered))
    rows = []
    tol_scale = 1 / math.sqrt(scale)
    for case in chosen:
        per_rep = [out[case.name][r] for r in sorted(out[case.name])]
        for j, check in enumerate(case.checks):
            row = _compare(case.name, check, [v[j] for v in per_rep], check.tol * tol_scale, confidence,
                           cpu[case.name])
            if lost[case.name]:
                why = f"{lost[case.name]} request(s) unfinished"
                row.update(passed=False, reason=f"{row['reason']}; {why}" if row["reason"] else why)
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


COLUMNS = ("case", "metric", "expected", "mean", "lo", "hi", "halfwidth", "rel_halfwidth", "tolerance", "n",
           "passed", "reason", "cpu_time")
"""Columns of the frame :func:`run_validation` returns."""


def _execute(tasks: list[tuple[str, float, int, int]], jobs: int) -> Iterable[Outcome]:
    if jobs == 1 or len(tasks) == 1:
        yield from map(_replicate_one, tasks)
        return
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
        futures = [pool.submit(_replicate_one, t) for t in tasks]
        for fut in as_completed(futures):
            yield fut.result()


def _compare(case: str, check: Check, values: list[float], tol: float, confidence: float,
             cpu: float) -> dict[str, Any]:
    ci = mean_ci(values, confidence=confidence)
    scale = abs(check.expected) if check.expected != 0 else 1.0
    rel = ci.halfwidth / scale
    # a deterministic result (zero-width interval) may differ from the formula by float rounding
    slack = 1e-9 * scale
    inside = bool(ci.lo - slack <= check.expected <= ci.hi + slack)
    tight = bool(rel <= tol)
    reason = "" if inside and tight else ("outside CI" if not inside else "CI too wide")
    return {
        "case": case, "metric": check.metric, "expected": check.expected, "mean": ci.mean, "lo": ci.lo,
        "hi": ci.hi, "halfwidth": ci.halfwidth, "rel_halfwidth": rel, "tolerance": tol,
        "n": int(np.sum(~np.isnan(np.asarray(values, dtype=float)))), "passed": inside and tight,
        "reason": reason, "cpu_time": cpu,
    }


def format_table(df: pd.DataFrame, *, confidence: float = CONFIDENCE) -> str:
    """The result frame as an aligned text table: expected vs simulated mean +- half-width."""
    head = ("case", "metric", "expected", f"simulated ({round(confidence * 100)}% CI)", "rel.hw", "tol", "result")
    lines = []
    for r in df.itertuples(index=False):
        verdict = "pass" if r.passed else f"FAIL ({r.reason})"
        lines.append((r.case, r.metric, _num(r.expected), f"{_num(r.mean)} ± {_num(r.halfwidth)}",
                      f"{100 * r.rel_halfwidth:.2f}%", f"{100 * r.tolerance:.2f}%", verdict))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    right = {2, 3, 4, 5}

    def fmt(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    return "\n".join([fmt(head), *(fmt(line) for line in lines)])


def _num(x: float) -> str:
    if x is None or math.isnan(x):
        return "nan"
    ax = abs(x)
    if ax != 0 and (ax >= 1e4 or ax < 1e-3):
        return f"{x:.4g}"
    return f"{x:.4f}"
