"""How far FVD from K/N shards merged lies from FVD of one run, with the real weights.

    python benchmarks/fvd_shard_merge.py [--shards 2] [--weights FILE]

8 + 6 synthetic H.264 videos (16x16 and 24x24, 10 frames), 9-frame clips, the real rgb_scratch weights (default:
the test cache filled by tests/test_real_weights.py). Prints, for batch sizes 1 and 8, FVD of one run, of the
merged shards, and their relative difference.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--weights", default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from zoo.data.synthetic import make_moving_shapes
    from zoo.metrics.frechet import frechet_distance
    from zoo.metrics.fvd import FVDModel, compute_stats
    from zoo.metrics.fvd_stats import merge
    weights = args.weights
    if weights is None:
        from tests.real_weights import rgb_scratch_safetensors
        weights = rgb_scratch_safetensors()
    model = FVDModel(weights=weights, device="cpu")
    with tempfile.TemporaryDirectory() as d:
        real = make_moving_shapes(Path(d) / "r", classes=2, per_class=4, frames=10, size=16)
        fake = make_moving_shapes(Path(d) / "f", classes=2, per_class=3, frames=10, size=24, seed=5)
        for bs in (1, 8):
            kw = dict(frames=9, batch_size=bs, workers=0, progress=False)
            one = compute_stats(real, model, **kw)[0]
            parts = merge([compute_stats(real, model, shard=(k, args.shards), **kw)[0] for k in range(args.shards)])
            f = compute_stats(fake, model, side="fake", **kw)[0]
            a, b = (frechet_distance(s.mu, s.sigma, f.mu, f.sigma) for s in (one, parts))
            print(f"batch {bs}: FVD one run {a!r}, {args.shards} shards merged {b!r}, relative difference "
                  f"{abs(a - b) / a:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
