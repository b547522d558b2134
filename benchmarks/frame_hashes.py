"""Fingerprints of every frame of every bundled scenario and variant, to prove an engine
change leaves the results bit-identical.

    python benchmarks/frame_hashes.py > before.txt      # before a change
    python benchmarks/frame_hashes.py --check before.txt  # after it: exit 1 on any difference

Each frame (requests, attempts, timeline, events) is hashed with sha256 over its column
names, dtypes and raw values (categoricals by their dtype, categories and codes, floats by their
bytes, so -0.0, NaN payloads and the last ulp all count), plus the index. One line per
(scenario, variant, frame); seed 1 unless ``--seed``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

FRAMES = ("requests", "attempts", "timeline", "events")


def frame_hash(df: pd.DataFrame) -> str:
    """sha256 over names, dtypes and the exact values of every column and the index."""
    h = hashlib.sha256()
    h.update(repr(list(df.columns)).encode())
    h.update(repr(len(df)).encode())
    h.update(np.asarray(df.index).tobytes() if df.index.dtype != object else repr(list(df.index)).encode())
    for name in df.columns:
        col = df[name]
        h.update(f"|{name}:{col.dtype}|".encode())
        if isinstance(col.dtype, pd.CategoricalDtype):
            h.update(repr(col.dtype).encode())  # categories, their dtype and ordered
            h.update(repr(list(col.cat.categories)).encode())
            h.update(np.asarray(col.cat.codes).tobytes())
        elif col.dtype == object:
            h.update(repr(col.tolist()).encode())
        else:
            h.update(np.ascontiguousarray(col.to_numpy()).tobytes())
    return h.hexdigest()


EXTRA = ("bench-retry", "bench-mm4")
"""The benchmark workloads of ``bench_workloads.py`` (20,000 requests), with seeds 1 and 2."""


def cases() -> list[tuple[str, str | None]]:
    """Every bundled scenario, alone and with each of its variants, and the benchmark workloads."""
    from simres.scenario.loading import bundled_scenarios, load_scenario

    out: list[tuple[str, str | None]] = []
    for name in sorted(bundled_scenarios()):
        out.append((name, None))
        out.extend((name, v) for v in load_scenario(name).variants)
    out.extend((name, seed) for name in EXTRA for seed in ("seed1", "seed2"))
    return out


def hashes(case: tuple[str, str | None], seed: int = 1) -> list[str]:
    """One line per frame of one run."""
    from simres.experiments.runs import run

    name, variant = case
    if name in EXTRA:
        sys.path.insert(0, str(Path(__file__).parent))
        import bench_workloads as bw

        make = bw.retry_scenario if name == "bench-retry" else bw.mm4_scenario
        res = run(make(20_000), seed=int(variant[4:]))  # type: ignore[index]
    else:
        res = run(name, seed=seed, variant=variant)
    return [f"{name}\t{variant or '-'}\t{f}\t{len(getattr(res, f))}\t{frame_hash(getattr(res, f))}" for f in FRAMES]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", help="a file written by an earlier run; exit 1 if anything differs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="scenario names to restrict to")
    args = ap.parse_args()
    todo = [c for c in cases() if not args.only or c[0] in args.only]
    with ProcessPoolExecutor(args.jobs) as ex:
        lines = [line for chunk in ex.map(hashes, todo, [args.seed] * len(todo)) for line in chunk]
    if not args.check:
        print("\n".join(lines))
        return 0
    with open(args.check) as f:
        want = {tuple(line.split("\t")[:3]): line for line in f.read().splitlines() if line}
    bad = 0
    for line in lines:
        key = tuple(line.split("\t")[:3])
        if key in want and want[key] != line:
            bad += 1
            print(f"DIFFERS: {line}\n   was: {want[key]}")
    print(f"{len(lines)} frames checked against {args.check}: {bad} differ", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
