"""``quovadis fvd REAL FAKE``: Fréchet Video Distance between two sets of videos (see :mod:`zoo.metrics.fvd`)."""
from __future__ import annotations

import json
import sys


def add_fvd_parser(sub) -> None:
    p = sub.add_parser("fvd", help="Fréchet Video Distance between two sets of videos (reference-exact)",
                       description="FVD as google-research's frechet_video_distance computes it: TF1 bilinear "
                                   "resize to 224, no crop, I3D (rgb_scratch) logits, tfgan's float64 formula. "
                                   "REAL and FAKE: a folder of videos, a folder of frame-image folders, an "
                                   ".npy/.npz (N,T,H,W,3) uint8 array, or a stats file from --save-stats.")
    p.add_argument("real")
    p.add_argument("fake")
    p.add_argument("--frames", type=int, default=16, help="frames per clip, from the start (default 16)")
    p.add_argument("--stride", type=int, default=1, help="take every STRIDE-th frame (default 1)")
    p.add_argument("--num-videos", type=int, default=None, help="use the first N usable videos of each side")
    p.add_argument("--weights", default=None, help="i3d_inception_k400_rgb safetensors (else the zoo resolves it)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=None, help="decoding workers (default min(4, cores))")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="fp32 (default: meets the reference within 1e-3) or bf16 (faster, moves FVD)")
    p.add_argument("--exact", action="store_true", help="the unfused fp32 model (default: fused fp32)")
    p.add_argument("--on-error", default="fail", choices=["fail", "skip"],
                   help="unreadable or too-short videos: stop (default) or skip them, named and counted")
    p.add_argument("--save-stats", default=None, metavar="FILE",
                   help="save REAL's statistics to FILE (FAKE's to FILE with .fake before the suffix)")
    p.add_argument("--save-features", default=None, metavar="FILE.npz",
                   help="save each video's embedding: real, fake (N, 400) and real_names, fake_names")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_fvd)


def cmd_fvd(args) -> int:
    from pathlib import Path

    from zoo.metrics.fvd import FVDModel, fvd, is_stats_file

    model = None
    if not (is_stats_file(args.real) and is_stats_file(args.fake)):
        model = FVDModel(weights=args.weights, device=args.device, exact=args.exact, precision=args.precision)
        print(f"quovadis fvd: {model.describe()}", file=sys.stderr)
    result = fvd(args.real, args.fake, frames=args.frames, stride=args.stride, num_videos=args.num_videos,
                 batch_size=args.batch_size, workers=args.workers, on_error=args.on_error, progress=not args.json,
                 model=model)
    for label, skipped in (("REAL", result.skipped_real), ("FAKE", result.skipped_fake)):
        if skipped:
            print(f"quovadis fvd: skipped {len(skipped)} {label} videos:", file=sys.stderr)
            for msg in skipped:
                print(f"  {msg}", file=sys.stderr)
    if args.save_stats:
        out = Path(args.save_stats)
        result.real_stats.save(out)
        result.fake_stats.save(out.with_name(out.stem + ".fake" + (out.suffix or ".safetensors")))
    if args.save_features:
        import numpy as np

        from inflate.atomic import atomic_path
        arrays = {}
        for side, emb in (("real", result.real_embeddings), ("fake", result.fake_embeddings)):
            if emb is not None:
                arrays[side], arrays[f"{side}_names"] = emb.features.numpy(), np.asarray(emb.names)
        with atomic_path(Path(args.save_features)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"FVD {result.fvd:.4f}  ({result.num_real} real, {result.num_fake} fake videos, {result.frames} "
              f"frames, stride {result.stride})")
    return 0
