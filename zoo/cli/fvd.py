"""``quovadis fvd REAL FAKE``: Fréchet Video Distance between two sets of videos (see :mod:`zoo.metrics.fvd`)."""
from __future__ import annotations

import json
import sys

from zoo.cli.options import add_compile_option, add_precision_option, add_workers_option


def add_clip_options(p) -> None:
    """The protocol and the clip: shared by ``fvd`` and ``fvd-stats``."""
    from zoo.metrics.fvd_protocols import PROTOCOLS
    p.add_argument("--protocol", default="reference", choices=list(PROTOCOLS),
                   help="named protocol (default reference; see docs/fvd.md for the table)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (reference: default 16; presets fix it)")
    p.add_argument("--stride", type=int, default=None, help="take every STRIDE-th frame (reference: default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of random clip offsets, subsets and resamples (default 0)")
    p.add_argument("--num-videos", type=int, default=None, help="use the first N usable videos of each side")


def add_model_options(p) -> None:
    """The network and how it runs: shared by ``fvd`` and ``fvd-stats``."""
    p.add_argument("--weights", default=None, help="i3d_inception_k400_rgb safetensors (else the zoo resolves it)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--batch-size", type=int, default=8)
    add_workers_option(p)
    add_precision_option(p, "fp32")
    p.add_argument("--exact", action="store_true", help="the unfused fp32 model (default: fused fp32)")
    add_compile_option(p)
    p.add_argument("--on-error", default="fail", choices=["fail", "skip"],
                   help="unreadable or too-short videos: stop (default) or skip them, named and counted")


def add_parser(sub) -> None:
    p = sub.add_parser("fvd", help="Fréchet Video Distance between two sets of videos (reference-exact)",
                       description="FVD as google-research's frechet_video_distance computes it: TF1 bilinear "
                                   "resize to 224, no crop, I3D (rgb_scratch) logits, tfgan's float64 formula. "
                                   "REAL and FAKE: a folder of videos, a folder of frame-image folders, an "
                                   ".npy/.npz (N,T,H,W,3) uint8 array, or a stats file from `quovadis fvd-stats`.")
    p.add_argument("real")
    p.add_argument("fake")
    add_clip_options(p)
    add_model_options(p)
    p.add_argument("--kvd", action="store_true", help="also KVD (needs per-video features: videos, or stats "
                                                      "files made with --keep-features)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="N",
                   help="95%% percentile interval of FVD from N resamples of the videos (fvd_ci95 in --json)")
    p.add_argument("--extrapolate", action="store_true",
                   help="FVD at infinitely many videos: the linear fit of FVD against 1/N (Chong & Forsyth 2020)")
    p.add_argument("--save-stats", default=None, metavar="FILE",
                   help="save REAL's statistics to FILE (FAKE's to FILE with .fake before the suffix)")
    p.add_argument("--save-features", default=None, metavar="FILE.npz",
                   help="save each video's embedding: real, fake (N, 400) and real_names, fake_names (sorted)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def make_model(args):
    from zoo.metrics.fvd import FVDModel
    from zoo.models.host_memory import keep_freed_memory
    keep_freed_memory()  # this process is ours: no page faults per batch (zoo/models/host_memory.py)
    model = FVDModel(weights=args.weights, device=args.device, exact=args.exact, precision=args.precision,
                     compile=args.compile)
    print(f"quovadis {args.command}: {model.describe()}", file=sys.stderr)
    return model


def run(args) -> int:
    from pathlib import Path

    from zoo.metrics.fvd import fvd
    from zoo.metrics.fvd_stats import is_stats_file
    from zoo.metrics.fvd_uncertainty import FEW_VIDEOS

    model = None if (is_stats_file(args.real) and is_stats_file(args.fake)) else make_model(args)
    result = fvd(args.real, args.fake, protocol=args.protocol, frames=args.frames, stride=args.stride,
                 seed=args.seed, num_videos=args.num_videos, batch_size=args.batch_size, workers=args.workers,
                 on_error=args.on_error, progress=not args.json, model=model, kvd=args.kvd,
                 bootstrap=args.bootstrap, extrapolate=args.extrapolate, keep_features=bool(args.save_features))
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
        _save_features(Path(args.save_features), result)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    p = result.protocol
    line = f"FVD {result.fvd:.4f}"
    if result.trials is not None:
        line += f" ± {result.trials.std:.4f} (mean ± std of {len(result.trials.values)} trials of " \
                f"{result.trials.videos} videos)"
    print(f"{line}  ({result.num_real} real, {result.num_fake} fake videos; protocol {p.get('protocol')}, "
          f"{result.frames} frames, stride {result.stride}; quovadis {p.get('quovadis_version')})")
    if result.bootstrap is not None:
        lo, hi = result.bootstrap.ci95
        print(f"FVD 95% interval [{lo:.4f}, {hi:.4f}] (bootstrap {len(result.bootstrap.values)}, seed "
              f"{result.bootstrap.seed})")
    if result.extrapolation is not None:
        e = result.extrapolation
        print(f"FVD∞ {e.fvd_inf:.4f} (fit FVD = FVD∞ + {e.slope:.1f}/N over N = "
              f"{', '.join(str(q['n']) for q in e.points)})")
    if result.kvd is not None:
        k = result.kvd
        how = "all pairs" if k.subset_size is None else f"mean of {k.subsets} subsets of {k.subset_size}, seed {k.seed}"
        print(f"KVD {k.kvd:.6f} ({how})")
    if result.few_videos:
        print(f"warning: fewer than {FEW_VIDEOS} videos per side: the {result.real_stats.dim}x"
              f"{result.real_stats.dim} covariance is singular and FVD is not comparable across N")
    return 0


def _save_features(path, result) -> None:
    import numpy as np

    from inflate.atomic import atomic_path
    arrays = {}
    for side, stats in (("real", result.real_stats), ("fake", result.fake_stats)):
        if stats.features is not None and stats.names is not None:
            order = np.argsort(np.asarray(stats.names))
            arrays[side], arrays[f"{side}_names"] = stats.features[order], np.asarray(stats.names)[order]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
