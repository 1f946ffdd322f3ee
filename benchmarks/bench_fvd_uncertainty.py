"""What FVD's error bars cost against the FVD formula itself, on random features of the FVD size.

    python benchmarks/bench_fvd_uncertainty.py [--videos 2048] [--dim 400] [--bootstrap 100]

Prints wall and CPU seconds of: the FVD formula from features (the baseline), ``--bootstrap N`` (one formula
per resample), KVD (100 subsets of 1000 above 1000 videos) and ``--extrapolate`` (8 subset sizes), each as
a ratio to the formula. The I3D embedding is not part of any of them (it runs once per video; see
bench_fvd.py for its cost per video).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def timed(fn):
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=2048, help="videos per side")
    ap.add_argument("--dim", type=int, default=400)
    ap.add_argument("--bootstrap", type=int, default=100)
    args = ap.parse_args(argv)
    from zoo.metrics.frechet import fvd_from_features
    from zoo.metrics.fvd_uncertainty import bootstrap_interval, extrapolate
    from zoo.metrics.kvd import kvd
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.videos, args.dim))
    y = rng.normal(0.1, 1.1, size=(args.videos, args.dim))
    rows = [("FVD formula (baseline)", timed(lambda: fvd_from_features(x, y))),
            (f"--bootstrap {args.bootstrap}", timed(lambda: bootstrap_interval(x, y, args.bootstrap))),
            ("--kvd", timed(lambda: kvd(x, y))),
            ("--extrapolate", timed(lambda: extrapolate(x, y)))]
    base = rows[0][1][1]
    print(f"{args.videos} + {args.videos} videos, {args.dim}-d features")
    print(f"{'what':28} {'wall s':>8} {'CPU s':>8} {'CPU vs formula':>15}")
    for name, (wall, cpu) in rows:
        print(f"{name:28} {wall:8.2f} {cpu:8.2f} {cpu / base:14.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
