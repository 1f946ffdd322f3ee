"""Does decoding keep the network busy? The fraction of an FVD / features run spent waiting for data.

Writes ``--videos`` H.264 videos at ``--size`` (zoo.data.synthetic, moving shapes), then runs
``compute_stats`` (the FVD I3D: 16 frames resized to 224) and ``FeatureExtractor`` (i3d_inception_k400_rgb,
64-frame clips) over the folder with ``--workers`` decoding processes, against the same run decoding in
the main process (workers 0: every decode is a wait), side by side. Random weights: speed does not depend
on them. Prints videos/s (or clips/s) and the data-wait fraction (zoo.data.wait_clock) of each.

    python benchmarks/bench_data_wait.py [--videos 8] [--size 224] [--frames 64] [--workers 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    import zoo
    from zoo.data.synthetic import make_moving_shapes
    from zoo.metrics.features import FeatureExtractor
    from zoo.metrics.fvd import FVDModel, compute_stats
    from zoo.models.host_memory import keep_freed_memory
    keep_freed_memory()  # as the inference commands do (zoo/models/host_memory.py)
    print(f"{args.videos} videos of {args.frames} frames at {args.size}x{args.size}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("\n| job | decode workers | videos/s | clips/s | data wait |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        root = make_moving_shapes(Path(d) / "videos", classes=2, per_class=max(2, args.videos // 2),
                                  frames=args.frames, size=args.size, seed=0)
        fvd_model = FVDModel(model=zoo.load("i3d_inception_k400_rgb", pretrained=False), device="cpu", compile=False)
        for workers in (0, args.workers):
            compute_stats(root, fvd_model, workers=workers, progress=False, num_videos=2)  # warm-up
            start = time.perf_counter()
            stats, _ = compute_stats(root, fvd_model, workers=workers, progress=False)
            seconds = time.perf_counter() - start
            print(f"| FVD statistics (16 frames -> 224) | {workers} | {stats.count / seconds:.2f} | "
                  f"{stats.count / seconds:.2f} | {stats.data_wait:.0%} |")
        fx = FeatureExtractor("i3d_inception_k400_rgb", net=zoo.load("i3d_inception_k400_rgb", pretrained=False),
                              device="cpu", precision="fp32")
        for workers in (0, args.workers):
            s = fx.run(root, Path(d) / f"features{workers}", workers=workers, progress=False)
            print(f"| features (64-frame clips, {fx.runner.precision}) | {workers} | {s['done'] / s['seconds']:.2f} | "
                  f"{s['clips_per_s']:.2f} | {s['data_wait']:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
