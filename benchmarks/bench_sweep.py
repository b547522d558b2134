"""Sweep benchmark: parallel speed-up of local processes, and per-point overhead of Dask.

1. Speed-up: the same sweep of CPU-bound points (an M/M/2 queue, ~1 s of CPU per point)
   run serially and on ``processes(cores)``, alternating, so each ratio compares runs made
   under the same background load. Reported warm (a pool already running, as in a long
   sweep) and cold (a new pool: its start-up included; with a forkserver, the server is already
   running in this process, see 2. for a fresh one). Target: warm speed-up >= 0.9 x cores.
2. Start-up (issue #16): a short sweep of 10k-request points (24 points of the same M/M/2
   for 50 simulated s, ~0.12 s each) *counting start-up*. Each round is a fresh Python
   process that has imported simres (as a command has): it runs the sweep serially, then
   creates an executor and runs it again on ``processes(cores)``; the time counts from
   creating the executor to the last result, so it includes starting the workers (and,
   for ``forkserver``, the server importing simres). Start methods ``spawn``,
   ``forkserver`` (the default on Linux) and ``fork``. Then the same sweep as a command,
   ``simres sweep FILE --jobs 1`` against ``--jobs cores``, each a fresh process timed
   from launch to exit (imports, planning, start-up, writing the results: everything).
3. Overhead: a sweep of no-op points (the point function returns at once) on warm
   ``processes(cores)`` and on a warm Dask LocalCluster with ``cores`` one-thread workers;
   the wall time per point is what each executor adds to every point (scheduling,
   pickling, result handling, Parquet writing).

The machine may be shared and noisy: read the ratios rather than the seconds, and the load
average printed at the start and the end. "workers busy" is the share of the workers' wall
time spent inside points: what the executor itself leaves idle, whatever the load.

    python benchmarks/bench_sweep.py [--points 16] [--noop-points 400] [--repeat 2] [--no-dask]
        [--cases speedup startup overhead]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simres.experiments.executors import DaskExecutor, Executor, ProcessExecutor, SerialExecutor, available_cores
from simres.experiments.sweeping import sweep


def scenario(duration: float) -> dict[str, Any]:
    """An M/M/2 queue at rho = 0.75: ~200 requests/s, so CPU time grows with ``duration``."""
    return {
        "name": "bench-mm2", "duration": duration, "warmup": 0.0, "drain": 0.0,
        "services": {"api": {"workers": 2, "service_time": {"kind": "exponential", "mean": 0.0075}}},
        "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 200}}},
    }


def noop_point(data: dict[str, Any], *, seed: int, variant: str | None,
               overrides: dict[str, Any]) -> dict[str, Any]:
    """A point that does nothing: what remains is the executor's own cost."""
    return {"value": float(seed % 7)}


BUSY: dict[float, float] = {}
"""Wall time -> sum of the points' own wall times in that sweep (how busy the workers were)."""
CPU: dict[float, float] = {}
"""Wall time -> sum of the CPU seconds the points got in that sweep."""


def cpu_point(data: dict[str, Any], *, seed: int, variant: str | None,
              overrides: dict[str, Any]) -> dict[str, Any]:
    """run_point, plus the CPU seconds the point got (less than its wall time under contention)."""
    from simres.experiments.replications import run_point

    t0 = time.process_time()
    row = run_point(data, seed=seed, variant=variant, overrides=overrides)
    row["cpu_time"] = time.process_time() - t0
    return row


def timed_sweep(executor: Executor, points: int, *, duration: float = 250.0,
                point_fn: Any = cpu_point) -> float:
    """Wall seconds of one sweep of ``points`` points written to a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        df = sweep(scenario(duration), grid={"services.api.workers": [2]}, reps=points,
                   executor=executor, out=Path(tmp) / "r.parquet", point_fn=point_fn)
        wall = time.perf_counter() - t0
    assert len(df) == points and df["error"].isna().all(), df["error"].dropna().head()
    BUSY[wall] = float(df["wall_time"].sum())
    CPU[wall] = float(df["cpu_time"].sum()) if "cpu_time" in df else float("nan")
    return wall


def startup_child(method: str, points: int, duration: float, workers: int) -> None:
    """In a fresh process: the sweep serially, then cold on ``method`` workers; prints JSON seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        kw: dict[str, Any] = {"grid": {"services.api.workers": [2]}, "reps": points}
        t0 = time.perf_counter()
        sweep(scenario(duration), executor=SerialExecutor(), out=Path(tmp) / "s.parquet", **kw)
        serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        with ProcessExecutor(workers, start_method=method) as ex:  # cold: a new executor (and forkserver)
            df = sweep(scenario(duration), executor=ex, out=Path(tmp) / "p.parquet", **kw)
        parallel = time.perf_counter() - t0
    assert df["error"].isna().all()
    print(json.dumps({"serial": serial, "parallel": parallel, "requests": float(df["count"].mean())}))


def run_child(args: list[str]) -> float:
    """Wall seconds of one fresh Python process running ``args``, from launch to exit."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{args}: exit {proc.returncode}\n{proc.stderr}")
    return wall


def startup(points: int, duration: float, cores: int, repeat: int) -> None:
    """The start-up case: cold executors per start method, then the command end to end."""
    import multiprocessing

    import yaml

    methods = [m for m in ("spawn", "forkserver", "fork") if m in multiprocessing.get_all_start_methods()]
    ratios: dict[str, list[float]] = {m: [] for m in methods}
    walls: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    requests = 0.0
    for _ in range(repeat):
        for m in methods:  # interleaved, so every method sees the same background load
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            out = subprocess.run([sys.executable, __file__, "--startup-child", m, "--startup-points", str(points),
                                  "--startup-duration", str(duration)], capture_output=True, text=True,
                                 env=env, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            requests = r["requests"]
            ratios[m].append(r["serial"] / r["parallel"])
            walls[m].append((r["serial"], r["parallel"]))
    print(f"\n[start-up] {points} points of {requests:,.0f} requests each, counting start-up "
          f"(fresh process per round; executor created -> last result)")
    for m in methods:
        med = statistics.median(ratios[m])
        ser = statistics.median(w[0] for w in walls[m])
        par = statistics.median(w[1] for w in walls[m])
        print(f"  {m:<11} serial {ser:5.2f} s  processes({cores}) cold {par:5.2f} s  speed-up {med:4.2f}x "
              f"(rounds: {', '.join(f'{x:.2f}' for x in ratios[m])})")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "mm2.yaml"
        spec.write_text(yaml.safe_dump(scenario(duration)), encoding="utf-8")
        base = ["-m", "simres.cli", "sweep", str(spec), "--grid", "services.api.workers=2", "--reps", str(points),
                "-q", "--overwrite"]
        cli: dict[int, list[float]] = {1: [], cores: []}
        for _ in range(repeat):
            for jobs in cli:
                cli[jobs].append(run_child([*base, "--jobs", str(jobs), "-o", str(Path(tmp) / f"r{jobs}.parquet")]))
    per = [a / b for a, b in zip(cli[1], cli[cores])]
    print(f"  command `simres sweep -q`, launch to exit: --jobs 1 {statistics.median(cli[1]):5.2f} s, "
          f"--jobs {cores} {statistics.median(cli[cores]):5.2f} s, speed-up {statistics.median(per):4.2f}x "
          f"(rounds: {', '.join(f'{x:.2f}' for x in per)})")


def best_of(repeat: int, fn: Any) -> float:
    return min(fn() for _ in range(repeat))


def busy(wall: float, workers: int) -> str:
    """Share of the workers' time spent inside points (the rest is executor overhead or idle),
    and share of it they actually had a CPU (the rest is other processes' load)."""
    return (f"workers busy {BUSY[wall] / (wall * workers):4.0%}, "
            f"on a CPU {CPU[wall] / (wall * workers):4.0%} of the time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=16, help="CPU-bound points in the speed-up sweep")
    ap.add_argument("--duration", type=float, default=250.0, help="simulated seconds per point")
    ap.add_argument("--noop-points", type=int, default=400, help="no-op points in the overhead sweep")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--cases", nargs="+", choices=("speedup", "startup", "overhead"),
                    default=["speedup", "startup", "overhead"])
    ap.add_argument("--startup-points", type=int, default=24, help="points in the start-up sweep")
    ap.add_argument("--startup-duration", type=float, default=50.0,
                    help="simulated seconds per start-up point (~200 requests/s)")
    ap.add_argument("--startup-child", metavar="METHOD", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cores = available_cores()
    if args.startup_child:
        startup_child(args.startup_child, args.startup_points, args.startup_duration, cores)
        return
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"cores: {cores}; best of {args.repeat}; load average at start {load}")
    if "speedup" in args.cases:
        speedup(args, cores)
    if "startup" in args.cases:
        startup(args.startup_points, args.startup_duration, cores, max(args.repeat, 3))
    if "overhead" in args.cases:
        overhead(args, cores)
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end {load}")


def speedup(args: argparse.Namespace, cores: int) -> None:
    """The speed-up case: warm and cold pools against serial, alternating round by round."""

    # 1. Speed-up on CPU-bound points: serial and parallel runs alternate, round after
    # round, so each ratio compares runs made under the same background load.
    serial_t, cold_t, warm_t, ratios = [], [], [], []
    with ProcessExecutor(cores) as warm_ex:
        timed_sweep(warm_ex, cores, duration=1.0)  # start the workers
        for _ in range(args.repeat):
            serial_t.append(timed_sweep(SerialExecutor(), args.points, duration=args.duration))
            warm_t.append(timed_sweep(warm_ex, args.points, duration=args.duration))
            with ProcessExecutor(cores) as ex:
                cold_t.append(timed_sweep(ex, args.points, duration=args.duration))
            ratios.append((serial_t[-1] / warm_t[-1], serial_t[-1] / cold_t[-1]))
    serial, warm, cold = min(serial_t), min(warm_t), min(cold_t)
    warm_ratio = statistics.median(r[0] for r in ratios)
    cold_ratio = statistics.median(r[1] for r in ratios)
    print(f"\n[speed-up] {args.points} CPU-bound points, {serial / args.points:.2f} s each serially (best)")
    print(f"  serial                {serial:7.2f} s (best of {args.repeat}), on a CPU "
          f"{CPU[serial] / serial:4.0%} of the time")
    print(f"  processes({cores}), warm  {warm:7.2f} s   speed-up {warm_ratio:4.2f}x "
          f"({warm_ratio / cores:.2f} x cores), {busy(warm, cores)}")
    print(f"  processes({cores}), cold  {cold:7.2f} s   speed-up {cold_ratio:4.2f}x "
          f"({cold_ratio / cores:.2f} x cores), {busy(cold, cores)}")
    print("  speed-up = median over rounds of serial / parallel measured back to back; per round: "
          + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in ratios) + " (warm/cold)")



def overhead(args: argparse.Namespace, cores: int) -> None:
    """The overhead case: no-op points on warm executors (serial, processes, Dask)."""
    n = args.noop_points
    results: dict[str, float] = {}
    results["serial"] = best_of(args.repeat, lambda: timed_sweep(SerialExecutor(), n, point_fn=noop_point))
    with ProcessExecutor(cores) as ex:
        timed_sweep(ex, cores, point_fn=noop_point)
        results[f"processes({cores})"] = best_of(args.repeat, lambda: timed_sweep(ex, n, point_fn=noop_point))
    if not args.no_dask:
        with DaskExecutor("local", workers=cores) as ex:
            timed_sweep(ex, cores, point_fn=noop_point)
            results[f"dask local({cores})"] = best_of(args.repeat,
                                                      lambda: timed_sweep(ex, n, point_fn=noop_point))
    print(f"\n[overhead] {n} no-op points (warm executors)")
    base = results[f"processes({cores})"]
    for name, wall in results.items():
        print(f"  {name:<16} {wall:6.2f} s  {wall / n * 1e3:6.2f} ms/point  "
              f"({wall / base:4.2f}x processes)")
    if not args.no_dask:
        extra = (results[f"dask local({cores})"] - base) / n * 1e3
        print(f"  Dask adds {extra:.2f} ms per point over local processes")


if __name__ == "__main__":
    main()
