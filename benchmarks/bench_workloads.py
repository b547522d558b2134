"""Engine benchmark on the workloads users run: simres against idiomatic SimPy, side by side.

Three workloads, each simulated by simres (full recording: requests, attempts, timeline and
events frames built, summary computed) and by a hand-written model of the same system:

- ``mm4``: M/M/4 at rho = 0.9, no policy (the model of ``bench_engine.py``).
- ``retry``: Poisson 30 req/s into one service with 10 workers (exponential service time,
  mean 20 ms); the client has a 0.15 s per-try timeout and 3 tries with exponential
  backoff (base 50 ms, cap 1 s) and full jitter; the server keeps working on a request whose
  caller gave up.
- ``tiers``: the bundled ``baseline`` scenario (web -> api x3 -> db x2 with timeout and a
  retry, plus an optional recommendations call; lognormal network latency on every hop).

The references are idiomatic SimPy (a process per request and per server visit, a
``Resource`` per instance, ``reply | timeout`` for the per-try timer) and, for ``retry``,
the bound: SimPy with Timeout callbacks and no process at all. Before timing, a fairness
check runs every model once and compares mean latency, success rate and tries per request
(within noise), so the race is between models of the same system.

Every timed run is a fresh process (imports excluded from the time, frames included);
the contenders take turns within each round, best of ``--repeat`` rounds. The machine is
shared: only the ratios mean something, and the load average is printed with them.

    python benchmarks/bench_workloads.py [--workloads retry tiers mm4] [--repeat 3] [--scale 1.0]
    python benchmarks/bench_workloads.py --check-only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from collections import deque
from typing import Any

import numpy as np

# ------------------------------------------------------------------------------ workloads

RETRY = {"rate": 30.0, "workers": 10, "mean": 0.02, "timeout": 0.15, "tries": 3, "base": 0.05, "cap": 1.0}
MM4 = {"c": 4, "mu": 1.0, "rho": 0.9}
DEFAULT_N = {"retry": 100_000, "tiers": 60_000, "mm4": 200_000}


def retry_scenario(n: int) -> dict[str, Any]:
    p = RETRY
    return {
        "name": "bench-retry",
        "duration": n / p["rate"],
        "drain": 5.0,
        "services": {"api": {"workers": p["workers"],
                             "service_time": {"kind": "exponential", "mean": p["mean"]}}},
        "clients": {"web": {
            "target": "api", "arrival": {"kind": "poisson", "rate": p["rate"]}, "timeout": p["timeout"],
            "retry": {"max_attempts": p["tries"], "jitter": "full",
                      "backoff": {"kind": "exponential", "base": p["base"], "cap": p["cap"]}},
        }},
    }


def mm4_scenario(n: int) -> dict[str, Any]:
    lam = MM4["rho"] * MM4["c"] * MM4["mu"]
    return {
        "name": "bench-mm4",
        "duration": n / lam,
        "drain": 200.0,
        "services": {"api": {"workers": MM4["c"], "service_time": {"kind": "exponential", "mean": 1 / MM4["mu"]}}},
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": lam}}},
    }


def tiers_overrides(n: int) -> dict[str, Any]:
    return {"duration": n / 300.0}


def run_simres(workload: str, n: int, seed: int) -> dict[str, float]:
    """simres with full recording; returns the agreement statistics."""
    from simres.experiments.runs import run

    if workload == "retry":
        res = run(retry_scenario(n), seed=seed)
    elif workload == "mm4":
        res = run(mm4_scenario(n), seed=seed)
    else:
        res = run("baseline", seed=seed, overrides=tiers_overrides(n))
    r = res.requests
    done = r[r["outcome"] != "unfinished"]
    ok = done["outcome"].isin(["ok", "degraded"])
    return {"requests": float(len(done)), "mean_latency": float(done["latency"][ok].mean()),
            "success": float(ok.mean()), "tries": float(done["tries"].mean())}


# -- idiomatic SimPy -------------------------------------------------------------------


def simpy_mm4(n: int, seed: int) -> dict[str, float]:
    """A process per customer and a Resource (as in bench_engine.py)."""
    import simpy

    c, mu = MM4["c"], MM4["mu"]
    lam = MM4["rho"] * c * mu
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    rng = np.random.default_rng(seed)
    lat: list[float] = []

    def customer():
        arrive = env.now
        with servers.request() as req:
            yield req
            yield env.timeout(rng.exponential(1 / mu))
        lat.append(env.now - arrive)

    def source():
        for _ in range(n):
            yield env.timeout(rng.exponential(1 / lam))
            env.process(customer())

    env.process(source())
    env.run()
    return {"requests": float(len(lat)), "mean_latency": float(np.mean(lat)), "success": 1.0, "tries": 1.0}


def simpy_retry(n: int, seed: int) -> dict[str, float]:
    """A process per request and per server visit, a Resource, ``reply | timeout``."""
    import simpy

    p = RETRY
    env = simpy.Environment()
    workers = simpy.Resource(env, capacity=p["workers"])
    rng = np.random.default_rng(seed)
    lat: list[float] = []
    tries: list[int] = []
    oks: list[bool] = []

    def serve(reply):
        with workers.request() as req:
            yield req
            yield env.timeout(rng.exponential(p["mean"]))
        if not reply.triggered:
            reply.succeed()

    def request():
        start = env.now
        ok = False
        k = 0
        for k in range(1, p["tries"] + 1):
            reply = env.event()
            env.process(serve(reply))
            yield reply | env.timeout(p["timeout"])
            if reply.triggered:
                ok = True
                break
            if k < p["tries"]:
                yield env.timeout(rng.uniform(0, min(p["cap"], p["base"] * 2 ** (k - 1))))
        tries.append(k)
        oks.append(ok)
        if ok:
            lat.append(env.now - start)

    def source():
        for _ in range(n):
            yield env.timeout(rng.exponential(1 / p["rate"]))
            env.process(request())

    env.process(source())
    env.run()
    return {"requests": float(len(tries)), "mean_latency": float(np.mean(lat)),
            "success": float(np.mean(oks)), "tries": float(np.mean(tries))}


def callbacks_retry(n: int, seed: int) -> dict[str, float]:
    """The bound: the same system on SimPy Timeout callbacks, no process, no Resource."""
    import simpy
    from simpy.events import Timeout

    p = RETRY
    env = simpy.Environment()
    rnd = random.Random(seed)
    expo, unif = rnd.expovariate, rnd.uniform
    rate, mean_inv, timeout, max_tries, base, cap = p["rate"], 1 / p["mean"], p["timeout"], p["tries"], p["base"], p[
        "cap"]
    queue: deque[list[Any]] = deque()
    free = [p["workers"]]
    lat: list[float] = []
    tries: list[int] = []
    oks: list[bool] = []
    sent = [0]

    # a request is a list [start, tries made, 0 while open / the answered try / -1 failed];
    # a try is a list [request, try number, timed out]
    def finish(ev):
        job = ev._value
        req, k = job[0], job[1]
        if not job[2] and req[2] == 0:
            req[2] = k
            lat.append(env.now - req[0])
            tries.append(k)
            oks.append(True)
        if queue:
            job = queue.popleft()
            Timeout(env, expo(mean_inv), job).callbacks.append(finish)
        else:
            free[0] += 1

    def expire(ev):
        job = ev._value
        req, k = job[0], job[1]
        if req[2]:
            return
        job[2] = True
        if k >= max_tries:
            req[2] = -1
            tries.append(k)
            oks.append(False)
            return
        Timeout(env, unif(0, min(cap, base * 2 ** (k - 1))), req).callbacks.append(send)

    def send(ev):
        req = ev._value
        req[1] += 1
        job = [req, req[1], False]
        if free[0]:
            free[0] -= 1
            Timeout(env, expo(mean_inv), job).callbacks.append(finish)
        else:
            queue.append(job)
        Timeout(env, timeout, job).callbacks.append(expire)

    def arrive(_ev):
        req = [env.now, 0, 0]
        send(Timeout(env, 0, req))
        sent[0] += 1
        if sent[0] < n:
            Timeout(env, expo(rate)).callbacks.append(arrive)

    Timeout(env, expo(rate)).callbacks.append(arrive)
    env.run()
    return {"requests": float(len(tries)), "mean_latency": float(np.mean(lat)),
            "success": float(np.mean(oks)), "tries": float(np.mean(tries))}


def simpy_tiers(n: int, seed: int) -> dict[str, float]:
    """The ``baseline`` scenario in idiomatic SimPy (same structure, parameters and policies)."""
    import simpy

    from simres.scenario.loading import load_scenario

    sc = load_scenario("baseline")
    api_cfg, db_cfg, rec_cfg = sc.services["api"], sc.services["db"], sc.services["recommendations"]
    web = sc.clients["web"]
    db_call, rec_call = api_cfg.handler.calls
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    net_mu, net_sigma = sc.network.default.latency.params

    def lognormal(d):
        mu, sigma = d.params
        return lambda: rng.lognormal(mu, sigma)

    def net():
        return rng.lognormal(net_mu, net_sigma)

    api_st = lognormal(api_cfg.service_time)
    rec_st = lognormal(rec_cfg.service_time)
    db_mean = db_cfg.service_time.mean

    class Tier:
        def __init__(self, cfg, sample):
            self.res = [simpy.Resource(env, capacity=cfg.workers) for _ in range(cfg.instances)]
            self.sample = sample

        def serve(self, i, reply, then=None):
            """Network there, queue, work (then the handler's calls), network back."""
            yield env.timeout(net())
            with self.res[i].request() as req:
                yield req
                yield env.timeout(self.sample())
                outcome = "ok"
                if then is not None:
                    outcome = yield from then()
            yield env.timeout(net())
            if not reply.triggered:
                reply.succeed(outcome)

    def least_outstanding(out):
        best = min(out)
        ties = [i for i, o in enumerate(out) if o == best]
        return ties[0] if len(ties) == 1 else ties[int(rng.random() * len(ties))]

    api = Tier(api_cfg, api_st)
    db = Tier(db_cfg, lambda: rng.exponential(db_mean))
    rec = Tier(rec_cfg, rec_st)

    def call(tier, out, timeout, tries, backoff):
        """One logical call: tries with a per-try timeout and full-jitter backoff."""
        for k in range(1, tries + 1):
            i = least_outstanding(out) if len(out) > 1 else 0
            out[i] += 1
            reply = env.event()
            env.process(tier.serve(i, reply))
            yield reply | env.timeout(timeout)
            out[i] -= 1
            if reply.triggered:
                return True, k
            if k < tries:
                yield env.timeout(rng.uniform(0, min(backoff.cap, backoff.base * backoff.multiplier ** (k - 1))))
        return False, tries

    db_out = [[0] * db_cfg.instances for _ in range(api_cfg.instances)]
    rec_out = [[0] for _ in range(api_cfg.instances)]

    def handler(i):
        def run():
            ok, _ = yield from call(db, db_out[i], db_call.timeout, db_call.retry.max_attempts, db_call.retry.backoff)
            if not ok:
                return "error"
            ok, _ = yield from call(rec, rec_out[i], rec_call.timeout, 1, None)
            return "ok" if ok else "degraded"
        return run

    lat: list[float] = []
    oks: list[bool] = []
    client_out = [0] * api_cfg.instances

    def request():
        start = env.now
        i = least_outstanding(client_out)
        client_out[i] += 1
        reply = env.event()
        env.process(api.serve(i, reply, handler(i)))
        yield reply | env.timeout(web.timeout)
        client_out[i] -= 1
        ok = reply.triggered and reply.value in ("ok", "degraded")
        oks.append(ok)
        if ok:
            lat.append(env.now - start)

    def source():
        for _ in range(n):
            yield env.timeout(rng.exponential(1 / web.arrival.rate))
            env.process(request())

    env.process(source())
    env.run()
    return {"requests": float(len(oks)), "mean_latency": float(np.mean(lat)),
            "success": float(np.mean(oks)), "tries": 1.0}


MODELS: dict[str, dict[str, Any]] = {
    "retry": {"simres": lambda n, s: run_simres("retry", n, s), "SimPy": simpy_retry,
              "SimPy callbacks": callbacks_retry},
    "tiers": {"simres": lambda n, s: run_simres("tiers", n, s), "SimPy": simpy_tiers},
    "mm4": {"simres": lambda n, s: run_simres("mm4", n, s), "SimPy": simpy_mm4},
}


# ------------------------------------------------------------------------------ harness


def one(workload: str, model: str, n: int, seed: int) -> dict[str, float]:
    """Run one model once in this process; the wall time excludes imports."""
    import simpy  # noqa: F401  (imports outside the timed region)

    if model == "simres":
        import simres.experiments.runs  # noqa: F401
    fn = MODELS[workload][model]
    t0 = time.perf_counter()
    stats = fn(n, seed)
    stats["wall"] = time.perf_counter() - t0
    return stats


BEFORE_SRC: str | None = None
"""``--before DIR``: a source tree of an earlier simres, raced as the contender ``simres before``."""


def fresh(workload: str, model: str, n: int, seed: int) -> dict[str, float]:
    """:func:`one` in a fresh Python process (``simres before``: with the earlier tree first on the path)."""
    env = dict(os.environ)
    if model == "simres before":
        env["PYTHONPATH"] = os.pathsep.join(p for p in (BEFORE_SRC, env.get("PYTHONPATH")) if p)
        model = "simres"
    out = subprocess.run([sys.executable, __file__, "--one", workload, model, str(n), str(seed)],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def agree(workload: str, stats: dict[str, dict[str, float]]) -> list[str]:
    """Differences beyond noise between the models' mean latency, success and tries."""
    ref = stats["simres"]
    problems = []
    for name, s in stats.items():
        if name == "simres":
            continue
        n = min(ref["requests"], s["requests"])
        d_lat = abs(s["mean_latency"] / ref["mean_latency"] - 1)
        # success and tries: a few standard errors of a proportion / of a mean near 1
        se_ok = 4 * math.sqrt(max(ref["success"] * (1 - ref["success"]), 1 / n) / n) * math.sqrt(2)
        se_tries = 4 * math.sqrt(max(ref["tries"] - 1, 1 / n) / n) * math.sqrt(2)
        if d_lat > (0.10 if workload == "mm4" else 0.03):  # M/M/4 at rho 0.9: long autocorrelation
            problems.append(f"{workload}: {name} mean latency {s['mean_latency']:.5f} "
                            f"vs simres {ref['mean_latency']:.5f}")
        if abs(s["success"] - ref["success"]) > se_ok:
            problems.append(f"{workload}: {name} success {s['success']:.5f} vs simres {ref['success']:.5f}")
        if abs(s["tries"] - ref["tries"]) > se_tries:
            problems.append(f"{workload}: {name} tries/request {s['tries']:.5f} vs simres {ref['tries']:.5f}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="*", default=["retry", "tiers", "mm4"], choices=list(MODELS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every workload's request count")
    ap.add_argument("--check-only", action="store_true", help="only the fairness check")
    ap.add_argument("--before", metavar="DIR",
                    help="also race simres from this source tree (e.g. `git archive main | tar -x -C DIR`)")
    ap.add_argument("--one", nargs=4, metavar=("WORKLOAD", "MODEL", "N", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        w, m, n, s = args.one
        print(json.dumps(one(w, m, int(n), int(s))))
        return 0
    global BEFORE_SRC
    BEFORE_SRC = args.before
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    failed = []
    for w in args.workloads:
        n = int(DEFAULT_N[w] * args.scale)
        print(f"\n{w}: {n:,} requests")
        models = list(MODELS[w]) + (["simres before"] if args.before else [])
        stats = {m: fresh(w, m, n, 1) for m in models}
        for m, s in stats.items():
            print(f"  fairness {m:<16} mean latency {s['mean_latency']:.5f} s  success {s['success']:.5f}"
                  f"  tries/request {s['tries']:.5f}")
        problems = agree(w, stats)
        for p in problems:
            print(f"  DISAGREE {p}")
        failed += problems
        if args.check_only:
            continue
        best = {m: math.inf for m in models}
        rounds: dict[str, list[float]] = {m: [] for m in models}
        for r in range(args.repeat):
            for m in models:
                wall = fresh(w, m, n, r + 1)["wall"]
                rounds[m].append(wall)
                best[m] = min(best[m], wall)
        for m in models:
            print(f"  {m:<16} best {best[m]:7.2f} s  {n / best[m]:>9,.0f} req/s  rounds "
                  + " ".join(f"{x:.2f}" for x in rounds[m]))
        for m in models:
            if m != "simres":
                print(f"  simres vs {m:<16} {best[m] / best['simres']:.2f}x  (>1: simres faster)")
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
