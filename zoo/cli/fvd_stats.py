"""``quovadis fvd-stats``: the FVD statistics of one shard of a video set, and the merge of shards
(see :mod:`zoo.metrics.fvd_stats`).

    quovadis fvd-stats videos/ -o real.0.safetensors --shard 0/4          # one SLURM array task
    quovadis fvd-stats --merge real.*.safetensors -o real.safetensors      # refuses mixed protocols or overlaps
    torchrun --nproc_per_node 8 -m zoo.cli fvd-stats videos/ -o real.safetensors   # ranks split the videos
"""
from __future__ import annotations

import sys


def add_parser(sub) -> None:
    from zoo.cli.fvd import add_clip_options, add_model_options
    p = sub.add_parser("fvd-stats", help="FVD statistics of a video set (or one shard of it), and their merge",
                       description="Writes float64 count, sum and sum of outer products of the I3D embeddings, "
                                   "the protocol and the digests of the videos' names, as safetensors. Shards "
                                   "(--shard K/N, or torchrun ranks) merge to the statistics of one run.")
    p.add_argument("src", nargs="?", help="a folder of videos, a folder of frame folders, or an .npy/.npz array")
    p.add_argument("-o", "--out", required=True, help="OUT.safetensors (written atomically)")
    p.add_argument("--merge", nargs="+", metavar="STATS", default=None,
                   help="add up these stats files instead of computing (same protocol and side, disjoint videos)")
    p.add_argument("--shard", default=None, metavar="K/N", help="only videos K, K+N, ... of the sorted list (K from 0)")
    p.add_argument("--side", default="real", choices=["real", "fake"],
                   help="which side these videos are (protocols that sample real and fake clips differently)")
    p.add_argument("--keep-features", action="store_true",
                   help="also keep each video's features (float32 N x 400): needed by --kvd, --bootstrap, ...")
    add_clip_options(p)
    add_model_options(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from zoo.metrics.fvd_stats import FVDStats, merge

    if args.merge:
        if args.src:
            raise ValueError("give either SRC (compute) or --merge STATS... (add up), not both")
        stats = merge([FVDStats.load(p) for p in args.merge], labels=list(args.merge))
        path = stats.save(args.out)
        _report(path, stats, f"merged {len(args.merge)} files")
        return 0
    if not args.src:
        raise ValueError("give SRC (videos to compute the statistics of) or --merge STATS...")
    from zoo.cli.fvd import make_model
    from zoo.data.video_folder import parse_shard
    from zoo.metrics.fvd import compute_stats
    from zoo.train.distributed import init_world, shutdown

    shard = parse_shard(args.shard)
    world = init_world(args.device or "auto")
    try:
        if world.distributed:
            args.device = str(world.device)
        model = make_model(args)
        stats, skipped = compute_stats(args.src, model, protocol=args.protocol, side=args.side, frames=args.frames,
                                       stride=args.stride, seed=args.seed, num_videos=args.num_videos, shard=shard,
                                       world=world, keep_features=args.keep_features, batch_size=args.batch_size,
                                       workers=args.workers, on_error=args.on_error,
                                       progress=not args.no_progress and world.is_main)
        if world.is_main:
            for msg in skipped:
                print(f"  skipped: {msg}", file=sys.stderr)
            path = stats.save(args.out)
            where = f"shard {shard[0]}/{shard[1]}" + (f", {world.world_size} ranks" if world.distributed else "")
            _report(path, stats, where)
    finally:
        shutdown(world)
    return 0


def _report(path, stats, what: str) -> None:
    from zoo.weights.files import sha256_of
    p = stats.protocol
    print(f"wrote {path}: {stats.count} videos ({stats.skipped} skipped), {what}; protocol {p.get('protocol')}, "
          f"{p.get('frames')} frames, stride {p.get('stride')}, side {stats.sampling.get('side')}, "
          f"features {'kept' if stats.features is not None else 'not kept'}; quovadis {p.get('quovadis_version')}")
    if stats.data_wait is not None:
        print(f"the network waited for decoding {stats.data_wait:.0%} of the run (raise --workers if high)",
              file=sys.stderr)
    print(f"sha256:{sha256_of(path)}  (the digest to publish with this file)")
