"""Where the I3D inference time goes, per op: torch's profiler over the path ``InferenceModel`` runs.

    python benchmarks/profile_i3d.py [--precision fp32|bf16] [--compile] [--batch 4] [--frames 16] [--size 224]

Random weights (the time does not depend on them), one warm-up forward (and the compile, with
``--compile``), then ``--forwards`` profiled forwards. Prints ms per clip, the achieved GFLOP/s of the
whole forward (55.6 GFLOP per 16x224x224 clip, counted from the layer shapes), and the top ops by self time.
"""
from __future__ import annotations

import argparse
import math
import time

import torch
from torch.profiler import ProfilerActivity, profile

from zoo.models.i3d import MIXED, POOLS, InceptionI3d


def i3d_gflop(frames: int, size: int, in_channels: int = 3) -> float:
    """Multiply-adds x 2 of every conv of I3D (SAME padding) for one clip, in GFLOP."""
    ceil = lambda n, s: -(-n // s)  # noqa: E731
    t, h, w = ceil(frames, 2), ceil(size, 2), ceil(size, 2)
    flops = 2 * in_channels * 64 * 343 * t * h * w
    h, w = ceil(h, 2), ceil(w, 2)
    flops += 2 * (64 * 64 + 64 * 192 * 27) * t * h * w
    c = 192
    for name in ("MaxPool3d_3a_3x3", "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d",
                 "Mixed_4e", "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c"):
        if name in POOLS:
            (_, _, _), stride = POOLS[name]
            t, h, w = ceil(t, stride[0]), ceil(h, stride[1]), ceil(w, stride[2])
            continue
        b0, b1a, b1b, b2a, b2b, b3 = MIXED[name]
        flops += 2 * t * h * w * (c * (b0 + b1a + b2a + b3) + 27 * (b1a * b1b + b2a * b2b))
        c = b0 + b1b + b2b + b3
    return flops / 1e9 + 2 * c * 400 / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--forwards", type=int, default=2)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    from zoo.models.inference import InferenceModel
    from zoo.models.host_memory import keep_freed_memory
    keep_freed_memory()  # as the inference commands do (zoo/models/host_memory.py)
    torch.manual_seed(0)
    runner = InferenceModel(InceptionI3d(), device="cpu", precision=args.precision, compile=args.compile)
    x = torch.rand(args.batch, 3, args.frames, args.size, args.size) * 2 - 1
    start = time.perf_counter()
    runner(x)
    print(f"warm-up{' + compile' if args.compile else ''}: {time.perf_counter() - start:.1f} s; {runner.describe()}")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(args.forwards):
            runner(x)
        seconds = (time.perf_counter() - start) / args.forwards
    per_clip = seconds / args.batch
    gflop = i3d_gflop(args.frames, args.size)
    print(f"{per_clip * 1e3:.0f} ms per clip (batch {args.batch}), {gflop:.1f} GFLOP per clip, "
          f"{gflop / per_clip:.0f} GFLOP/s, {torch.get_num_threads()} threads")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=60))


if __name__ == "__main__":
    main()
