"""Memory per request and the scale series: the retry workload at 100k, 1M (and 5M) requests.

Each size runs in a fresh process: full recording, every frame built and the summary
computed, as ``simres run`` does. Reported per request:

- *frames*: the bytes the four frames hold after the run (``memory_usage(deep=True)``),
- *peak*: the growth of the process's peak resident set over the run (``ru_maxrss``
  after the run minus before it, imports excluded): the recorder's columns, the frames
  being built and the simulation's own state at its largest,

plus the wall time and requests per second, to show that the cost per request stays flat.

``--modes full summary stream`` runs each size in each recording mode: ``full`` (above),
``summary`` (``record: summary``: mergeable counts and sketches, nothing per request kept)
and ``stream`` (``--stream``: the requests and attempts also written to Parquet in chunks,
to a temporary directory). In the two bounded modes *frames* is 0 and the peak should not
grow with the number of requests.

Then the many-members run: one client population of 1,000 and 10,000 members (each 1 req/s
with a timeout and retries) for 5 simulated seconds, peak resident-set growth.

    python benchmarks/bench_memory.py [--sizes 100000 1000000] [--modes full summary stream]
                                      [--members 1000 10000] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def one(n: int, mode: str = "full", timeline_step: float | None = None) -> dict[str, float]:
    """Run the retry workload with ``n`` requests in this process, recording in ``mode``."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    import bench_workloads as bw

    import simres.experiments.spill
    import simres.metrics.streaming  # noqa: F401
    from simres.experiments.runs import run

    sc = bw.retry_scenario(n)
    if mode == "summary":
        sc["record"] = "summary"
    if timeline_step is not None:  # the timeline (one row per step) is what still grows with duration
        sc["timeline_step"] = timeline_step
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        res = run(sc, seed=1, stream=tmp if mode == "stream" else None)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        written = sum(f.stat().st_size for f in Path(tmp).iterdir())
    frames = sum(int(getattr(res, f).memory_usage(deep=True).sum()) for f in ("requests", "attempts",
                                                                              "timeline", "events"))
    requests = len(res.requests) if mode == "full" else int(res.summary["count"])  # warmup 0: every request
    return {"requests": requests, "wall": wall, "peak_kib": float(peak - before),
            "frames_bytes": float(frames), "written_bytes": float(written)}


def members(count: int) -> dict[str, float]:
    """A population of ``count`` members (1 req/s each, timeout and 3 tries) for 5 s."""
    from simres.experiments.runs import run

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    res = run({"name": "many-members", "duration": 5,
               "services": {"api": {"workers": 100, "service_time": {"kind": "exponential", "mean": 0.01}}},
               "clients": {"web": {"target": "api", "count": count, "arrival": {"kind": "poisson", "rate": 1},
                                   "timeout": 0.5, "retry": {"max_attempts": 3}}}}, seed=1)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"requests": len(res.requests), "wall": wall, "peak_kib": float(peak - before)}


def fresh(n: int, src: str | None, flag: str = "--one", mode: str = "full",
          timeline_step: float | None = None) -> dict[str, float]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    step = ["--timeline-step", str(timeline_step)] if timeline_step is not None else []
    out = subprocess.run([sys.executable, __file__, flag, str(n), "--mode", mode, *step], check=True,
                         capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--before", metavar="DIR", help="also measure simres from this source tree")
    ap.add_argument("--members", type=int, nargs="*", default=[1_000, 10_000],
                    help="population sizes for the many-members run (5 s, 1 req/s per member)")
    ap.add_argument("--modes", nargs="*", default=["full"], choices=["full", "summary", "stream"],
                    help="recording modes to measure (record: full, record: summary, --stream)")
    ap.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    ap.add_argument("--timeline-step", type=float, default=None,
                    help="override the scenario's timeline_step (s; default 1)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--one-members", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.mode, args.timeline_step)))
        return
    if args.one_members:
        print(json.dumps(members(args.one_members)))
        return
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'simres':<14} {'mode':<8} {'requests':>10} {'wall':>8} {'req/s':>9} {'frames KiB/req':>15} "
          f"{'peak KiB/req':>13} {'peak MiB':>9} {'parquet B/req':>14}")
    for n in args.sizes:
        for mode in args.modes:
            for label, src in [("this tree", None)] + ([("before", args.before)] if args.before else []):
                if src and mode != "full":
                    continue
                s = fresh(n, src, mode=mode, timeline_step=args.timeline_step)
                r = s["requests"]
                print(f"{label:<14} {mode:<8} {r:>10,} {s['wall']:>7.1f}s {r / s['wall']:>9,.0f} "
                      f"{s['frames_bytes'] / r / 1024:>15.3f} {s['peak_kib'] / r:>13.3f} "
                      f"{s['peak_kib'] / 1024:>9.1f} {s.get('written_bytes', 0) / r:>14.1f}", flush=True)
    for count in args.members:
        s = fresh(count, None, "--one-members")
        print(f"{count:,} client members, 5 s ({s['requests']:,} requests): peak +{s['peak_kib'] / 1024:.0f} MiB, "
              f"{s['wall']:.1f} s")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
