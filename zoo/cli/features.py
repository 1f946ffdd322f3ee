"""``quovadis features SRC OUT --model NAME``: clip features of every video in a folder (see :mod:`zoo.metrics.features`)."""
from __future__ import annotations

import sys

from zoo.cli.options import add_compile_option, add_precision_option, add_workers_option


def add_parser(sub) -> None:
    p = sub.add_parser("features", help="clip features of every video in a folder, one file per video, resumable",
                       description="Writes OUT/<relative path>.safetensors per video: one tensor per endpoint "
                                   "(clips, ...), 'timestamps' (clips, 2) seconds and 'frames' (clips, 2). "
                                   "Finished videos are skipped, so a killed run resumes.")
    p.add_argument("src", help="a folder of videos, a folder of frame-image folders, or an .npy/.npz of videos")
    p.add_argument("out", help="output folder")
    p.add_argument("--model", required=True, help="zoo name (quovadis: zoo.list())")
    p.add_argument("--endpoint", action="append", dest="endpoints", default=None,
                   help="I3D: Mixed_5c, Logits, ... (repeatable; default Logits); inflated models: features, logits")
    p.add_argument("--clip-len", type=int, default=64, help="frames per clip (default 64)")
    p.add_argument("--stride", type=int, default=64, help="frames between clip starts (default 64)")
    p.add_argument("--pool", default="none", choices=["none", "mean"],
                   help="mean: average feature maps over time and space (default none)")
    p.add_argument("--weights", default=None, help="local safetensors file (two-stream: RGB,FLOW)")
    p.add_argument("--flow-dir", default=None, help="flow made by `quovadis flow SRC FLOW_DIR` (flow models)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    add_precision_option(p, "auto")
    add_compile_option(p)
    p.add_argument("--exact", action="store_true", help="the unfused fp32 model (default: the fused fast path)")
    p.add_argument("--batch-size", type=int, default=4, help="clips per forward pass (default 4)")
    add_workers_option(p)
    p.add_argument("--format", dest="fmt", default="safetensors", choices=["safetensors", "npy"])
    p.add_argument("--shard", default=None, metavar="K/N", help="only videos K, K+N, ... of the sorted list (K from 0)")
    p.add_argument("--on-error", default="skip", choices=["skip", "fail"],
                   help="unreadable videos: skip them, named and counted (default), or stop")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from zoo.metrics.features import FeatureExtractor
    from zoo.models.host_memory import keep_freed_memory
    keep_freed_memory()  # this process is ours: no page faults per batch (zoo/models/host_memory.py)
    from zoo.data.video_folder import parse_shard

    shard = parse_shard(args.shard)
    weights = args.weights
    if weights and "," in weights:
        rgb, flow = weights.split(",", 1)
        weights = {"rgb": rgb, "flow": flow}
    fx = FeatureExtractor(args.model, endpoints=args.endpoints, clip_len=args.clip_len, stride=args.stride,
                          pool=args.pool, weights=weights, device=args.device, precision=args.precision,
                          exact=args.exact, batch_size=args.batch_size, fmt=args.fmt, compile=args.compile)
    print(f"quovadis features: {args.model} {','.join(fx.endpoints)}: {fx.describe()}", file=sys.stderr)
    s = fx.run(args.src, args.out, flow_dir=args.flow_dir, shard=shard, workers=args.workers,
               on_error=args.on_error, progress=not args.no_progress)
    print(f"features: {s['videos']} videos: {s['done']} done, {s['skipped']} already finished, "
          f"{len(s['failed'])} failed; {s['clips']} clips in {s['seconds']:.1f} s ({s['clips_per_s']:.2f} clips/s, "
          f"{s['data_wait']:.0%} of it waiting for decoding)")
    for msg in s["failed"]:
        print(f"  failed: {msg}")
    return 1 if s["failed"] else 0
