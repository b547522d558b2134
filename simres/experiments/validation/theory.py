"""Closed-form queueing and retry results the engine is checked against (docs/validation.md states each).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass



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
