"""``quovadis flow SRC_DIR OUT_DIR``: optical flow of every video in a folder, resumable and shardable
(:mod:`zoo.flow.extract` for OpenCV's TV-L1 and Farneback, :mod:`zoo.flow.extract_torch` for the PyTorch TV-L1)."""
from __future__ import annotations

from zoo.data.flow_store import DEFAULT_FORMAT, FORMATS
from zoo.flow.extract import ALGORITHMS as OPENCV_ALGORITHMS
from zoo.flow.extract_torch import ALGORITHM as TORCH_ALGORITHM
from zoo.flow.videos import DEFAULT_SHORT_SIDE

ALGORITHMS = OPENCV_ALGORITHMS + (TORCH_ALGORITHM,)


def add_parser(sub) -> None:
    """Register ``quovadis flow SRC_DIR OUT_DIR``; its handler is :func:`run`."""
    p = sub.add_parser("flow", help="extract optical flow (TV-L1) of every video under a folder, resumable")
    p.add_argument("src_dir", help="folder searched recursively for videos (.mp4 .avi .mkv .webm .mov .m4v .gif) "
                                   "or folders of frame images")
    p.add_argument("out_dir", help="flow goes to OUT_DIR/<relative path, extension kept>/ (a.mp4 -> OUT_DIR/a.mp4/)")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--algorithm", default="tvl1", choices=ALGORITHMS,
                   help="tvl1 (OpenCV, default), farneback (OpenCV), tvl1-torch (OpenCV's TV-L1 in PyTorch, batched, "
                        "CPU or CUDA)")
    p.add_argument("--size", type=int, default=DEFAULT_SHORT_SIDE,
                   help=f"resize the short side to S before computing flow (default {DEFAULT_SHORT_SIDE}, the "
                        "network's; the bound is in pixels at this size); 0 keeps the video's size")
    p.add_argument("--fps", type=float, default=None,
                   help="retime videos to F fps (by timestamps) before computing flow (I3D: 25); default: as is")
    p.add_argument("--format", dest="fmt", default=DEFAULT_FORMAT, choices=FORMATS,
                   help=f"storage format (default {DEFAULT_FORMAT})")
    p.add_argument("--bound", type=float, default=20.0, help="clip flow to +-BOUND pixels (default 20)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="only every N-th video from the K-th (K from 0) of the sorted list, the same videos as "
                        "`quovadis features --shard K/N`; e.g. $SLURM_ARRAY_TASK_ID/8")
    g = p.add_argument_group("tvl1-torch (PyTorch TV-L1, zoo.flow.tvl1_torch)")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    g.add_argument("--batch-size", type=int, default=16, help="frame pairs per solver call (default 16)")
    g.add_argument("--variant", default="cpu", choices=("cpu", "cuda"),
                   help="which OpenCV TV-L1 to reproduce: cv2.optflow (cpu, default) or cv2.cuda (cuda)")
    g.add_argument("--fixed-iterations", action="store_true",
                   help="run every iteration instead of OpenCV's epsilon stopping rule (no host syncs)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the solver (meant for GPUs, untested there; on a CPU it measured slower)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the extractor of ``--algorithm`` from parsed args and print the summary; 1 if any video failed."""
    common = {"workers": args.workers, "bound": args.bound, "size": args.size or None, "fps": args.fps,
              "fmt": args.fmt, "progress": not getattr(args, "no_progress", False), "shard": args.shard}
    if args.algorithm == "tvl1-torch":
        from zoo.flow.extract_torch import extract_dataset_flow_torch
        s = extract_dataset_flow_torch(args.src_dir, args.out_dir, device=args.device, batch_size=args.batch_size,
                                       variant=args.variant, compile=args.compile,
                                       stopping="fixed" if args.fixed_iterations else "epsilon", **common)
    else:
        from zoo.flow.extract import extract_dataset_flow
        s = extract_dataset_flow(args.src_dir, args.out_dir, algorithm=args.algorithm, **common)
    print(f"flow: {s['videos']} videos: {s['done']} done, {s['skipped']} already complete, "
          f"{len(s['failed'])} failed; {s['flow_frames']} flow frames in {s['seconds']:.1f} s "
          f"({s['flow_frames_per_s']:.1f} frames/s)")
    for f in s["failed"]:
        print(f"  failed: {f}")
    return 1 if s["failed"] else 0
