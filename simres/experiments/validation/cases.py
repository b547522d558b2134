"""The validation cases: small scenarios built in code, each with checks against a closed-form answer.

M/M/1 and M/M/c at several loads, M/D/1 and M/G/1 (Pollaczek-Khinchine) at several squared
coefficients of variation, Erlang B loss, M/M/1/K blocking, a tandem network, and retries
under independent failures (single layer and multiplied across layers).
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from simres.errors import SimresError
from simres.experiments.validation.theory import (
    erlang_b,
    lognormal_params,
    mm1_sojourn,
    mm1_sojourn_quantile,
    mm1k_blocking,
    mm1k_sojourn,
    mmc_sojourn_quantile,
    mmc_wait,
    pk_wait,
    retry_load,
    retry_success,
)
from simres.metrics.amplification import attempts_of
from simres.metrics.rates import measured_requests

if TYPE_CHECKING:
    from simres.experiments.runs import RunResult



DEFAULT_SEED = 2024
"""Root seed of the suite; each case derives its own replication seeds from it and its name."""
CONFIDENCE = 0.99
"""Confidence level of every interval (docs/validation.md: theory inside the 99 % CI)."""
QUICK_SCALE = 0.25
"""``quick`` simulates this share of each case's measured time, so its tolerances double."""

Reader = Callable[["RunResult"], float]
Progress = Callable[[int, int], None]


class ValidationError(SimresError):
    """A bad argument to the validation runner (unknown case pattern, too few replications)."""




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
