"""Engine benchmark: M/M/4 at rho = 0.9, simres against plain SimPy and Ciw, in one run.

All three simulate the same queue for the same number of customers and record every
customer's latency (simres records its full requests, attempts and timeline frames).
The machine is shared and noisy, so the result is reported as ratios measured side by
side, best of ``--repeat`` runs each.

    python benchmarks/bench_engine.py [--requests 200000] [--repeat 3] [--no-ciw]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import simpy

C, MU, RHO = 4, 1.0, 0.9
LAM = RHO * C * MU


def plain_simpy(n: int, seed: int) -> int:
    """The idiomatic SimPy model: a process per customer and a Resource."""
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=C)
    rng = np.random.default_rng(seed)
    latencies: list[float] = []

    def customer(env: simpy.Environment):
        arrive = env.now
        with servers.request() as req:
            yield req
            yield env.timeout(rng.exponential(1 / MU))
        latencies.append(env.now - arrive)

    def source(env: simpy.Environment):
        for _ in range(n):
            yield env.timeout(rng.exponential(1 / LAM))
            env.process(customer(env))

    env.process(source(env))
    env.run()
    return len(latencies)


def ciw_model(n: int, seed: int) -> int:
    """The same queue in Ciw."""
    import ciw

    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=LAM)],
        service_distributions=[ciw.dists.Exponential(rate=MU)],
        number_of_servers=[C],
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    sim.simulate_until_max_customers(n, method="Finish")
    return len(sim.get_all_records())


def simres_model(n: int, seed: int) -> int:
    """The same queue in simres, with full per-request recording and frames built."""
    from simres.experiments.runs import run

    scenario = {
        "name": "bench-mm4",
        "duration": n / LAM,
        "drain": 200.0,
        "services": {"api": {"workers": C, "service_time": {"kind": "exponential", "mean": 1 / MU}}},
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": LAM}}},
    }
    result = run(scenario, seed=seed)
    return len(result.requests)


def interleaved_rates(models: dict, n: int, repeat: int) -> dict[str, float]:
    """Customers per second of wall time, best of ``repeat`` rounds per model.

    The models take turns within each round, so a burst of load from other processes on
    this shared machine hits all of them rather than biasing one.
    """
    best = dict.fromkeys(models, 0.0)
    for r in range(repeat):
        for name, fn in models.items():
            t0 = time.perf_counter()
            done = fn(n, seed=r + 1)
            best[name] = max(best[name], done / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-ciw", action="store_true", help="skip Ciw (slow)")
    args = ap.parse_args()
    n = args.requests
    models = {"simres": simres_model, "plain SimPy": plain_simpy}
    if not args.no_ciw:
        models["Ciw"] = ciw_model
    rates = interleaved_rates(models, n, args.repeat)
    print(f"M/M/{C} at rho={RHO}, {n} requests, best of {args.repeat}")
    for name, r in rates.items():
        print(f"  {name:<12} {r:>10,.0f} requests/s")
    print(f"  simres / plain SimPy = {rates['simres'] / rates['plain SimPy']:.2f}x  (target >= 1.0x)")
    if "Ciw" in rates:
        print(f"  simres / Ciw         = {rates['simres'] / rates['Ciw']:.2f}x  (target >= 2.0x)")


if __name__ == "__main__":
    main()
