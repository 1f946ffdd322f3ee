"""Optical-flow extraction (TV-L1 or Farneback, OpenCV) for a video or a whole dataset, resumable.

    quovadis flow SRC_DIR OUT_DIR [--workers N] [--algorithm tvl1|farneback] [--size S] [--fps F] [--format F]

GEOMETRY. Flow is computed where the network sees it: frames are resized so their short side is ``size``
(default 256, the I3D protocol's; 0/None keeps the video's size) BEFORE the flow is computed and clipped to
``±bound`` pixels, so the bound means pixels at the network's scale (clipping at 720p and resizing after
would cut every motion above ~7 px at 256). With ``fps`` the video is first retimed to that rate by its
timestamps (``zoo.data.sampling.resample_times``; I3D: 25), so flow frame t is the motion between retimed
frames t and t+1. ``meta.json`` records ``short_side``, ``height``/``width``, ``fps`` (the flow's rate),
``source_fps`` and ``bound``; datasets refuse flow whose rate or short side differs from the clips they build.
Frames are counted in presentation order (the rule of ``zoo.data.decode``).

Flow is computed on grayscale frames between consecutive frames (N frames -> N-1 flows) and stored with
:mod:`zoo.data.flow_store` in ``OUT_DIR/<relative path without extension>/``. A video whose folder has
a ``meta.json`` is skipped; any other folder is cleared and redone. Undecodable videos are reported
(one warning each), counted and skipped. Work is spread over processes (spawn), each with one OpenCV
thread: OpenCV's TV-L1 ran slower with 2 threads than with 1 on 2 cores (224x224: 0.96 vs 0.59 s/frame
idle; 2.0 vs 1.8 s/frame in benchmarks/bench_flow.py on a busy machine), so processes, not threads.
A pool pays a start-up once (each spawned worker imports zoo, hence torch: ~11 s for 2 workers on a
busy 2-core machine), so 2 workers only pay off on datasets bigger than a few videos.
"""
from __future__ import annotations

import contextlib
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from zoo.data.flow_store import DEFAULT_FORMAT, FORMATS, clear_flow_dir, is_complete, write_flow

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".gif")
DEFAULT_SHORT_SIDE = 256  # the I3D protocol's: flow is computed and clipped at the network's scale
ALGORITHMS = ("tvl1", "farneback", "tvl1-torch")  # tvl1-torch: zoo.flow.tvl1_torch (OpenCV's TV-L1 in PyTorch)
_CONTRIB_HINT = ("TV-L1 optical flow needs OpenCV's contrib modules (cv2.optflow): "
                 "pip install opencv-contrib-python-headless  -- plain opencv-python lacks TV-L1 "
                 "(uninstall it first if both are installed, they share the cv2 package)")


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError("optical flow needs OpenCV: pip install opencv-contrib-python-headless") from e
    return cv2


def tvl1_available() -> bool:
    """Whether this OpenCV has the contrib TV-L1 implementation."""
    try:
        return hasattr(_cv2(), "optflow") and hasattr(_cv2().optflow, "DualTVL1OpticalFlow_create")
    except ImportError:
        return False


@contextlib.contextmanager
def _opencv_threads(n: int):
    cv2 = _cv2()
    old = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(old)


# ------------------------------------------------------------------------------------ frames
def read_gray_frames(video_path, size: int | None = None, fps: float | None = None) -> tuple[np.ndarray, float]:
    """``(frames, fps)``: uint8 grayscale ``(T, H, W)`` (PyAV, or Pillow for .gif), optionally retimed to
    ``fps`` (by timestamps) and resized so the short side is ``size``; ``fps`` returned is the frames' rate.
    Raises ValueError/OSError for undecodable files."""
    gray, rate, _ = _read_gray(video_path, size, fps)
    return gray, rate


def _read_gray(video_path, size: int | None, fps: float | None) -> tuple[np.ndarray, float, float]:
    """``(gray frames, their rate, the source's rate)``."""
    from zoo.data.video_io import read_frames

    cv2 = _cv2()
    rgb, src_fps = read_frames(video_path)
    rgb, rate = rgb.numpy(), src_fps
    if fps:
        from zoo.data.decode import frame_times
        from zoo.data.sampling import resample_times
        times = frame_times(video_path)
        if len(times) != len(rgb):   # the container's timestamps do not match the decoded frames: assume CFR
            times = np.arange(len(rgb)) / src_fps
        rgb, rate = rgb[resample_times(times, fps).numpy()], float(fps)
    h, w = rgb.shape[1:3]
    if size is not None and min(h, w) != size:
        scale = size / min(h, w)
        new = (max(1, round(w * scale)), max(1, round(h * scale)))       # cv2 wants (width, height)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        rgb = np.stack([cv2.resize(f, new, interpolation=interp) for f in rgb])
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb]), rate, src_fps


# ------------------------------------------------------------------------------------ flow
def compute_flow(gray: np.ndarray, algorithm: str = "tvl1") -> np.ndarray:
    """Flow ``(T-1, H, W, 2)`` float32 in pixels (x right, y down) between consecutive gray frames:
    ``flow[t]`` maps frame t to frame t+1 (``frame_t(p) ~ frame_{t+1}(p + flow[t](p))``)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown flow algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    cv2 = _cv2()
    if len(gray) < 2:
        raise ValueError(f"optical flow needs at least 2 frames, got {len(gray)}")
    if algorithm == "tvl1-torch":
        from zoo.flow.tvl1_torch import tvl1_video
        return tvl1_video(gray)
    if algorithm == "tvl1":
        if not tvl1_available():
            raise ImportError(_CONTRIB_HINT)
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()  # OpenCV defaults (tau .25, lambda .15, 5 scales)
        calc = lambda a, b: tvl1.calc(a, b, None)  # noqa: E731
    else:  # pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags: OpenCV's documented example
        calc = lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)  # noqa: E731
    return np.stack([calc(gray[t], gray[t + 1]) for t in range(len(gray) - 1)]).astype(np.float32)


def extract_video_flow(video_path, out_dir, *, algorithm: str = "tvl1", bound: float = 20,
                       size: int | None = DEFAULT_SHORT_SIDE, fps: float | None = None,
                       fmt: str = DEFAULT_FORMAT) -> int:
    """Decode ``video_path`` (retimed to ``fps`` if given, short side resized to ``size``; 0/None: as is),
    compute its flow and write it to ``out_dir`` (complete when this returns). Returns the number of flow
    frames (frames - 1). Uses one OpenCV thread (see the module docstring)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown flow format {fmt!r}; choose one of {', '.join(FORMATS)}")
    gray, rate, src_fps = _read_gray(video_path, size or None, fps)
    with _opencv_threads(1):
        flow = compute_flow(gray, algorithm)
    write_flow(Path(out_dir), flow, algorithm=algorithm, bound=bound, fps=rate, fmt=fmt, source=str(video_path),
               source_fps=src_fps, short_side=min(gray.shape[1:3]))
    return len(flow)


# ------------------------------------------------------------------------------------ dataset
def find_videos(src_dir) -> list[Path]:
    """Video files (``VIDEO_EXTENSIONS``, any case) under ``src_dir``, recursively, sorted."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"no such directory: {src_dir}")
    return sorted(p for p in src_dir.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def flow_dir_for(video: Path, src_dir: Path, out_dir: Path) -> Path:
    """``out_dir/<path of video relative to src_dir, without extension>``."""
    return Path(out_dir) / Path(video).relative_to(src_dir).with_suffix("")


class FlowExtractionError(RuntimeError):
    """One video failed; the message names the original error."""


def _extract_job(video: str, dest: str, kwargs: dict) -> int:
    # Top-level so spawned workers can unpickle it. Errors are re-raised as a plain exception because
    # some library errors (PyAV's take extra constructor arguments) may not survive pickling back to
    # the parent, and a result that fails to unpickle breaks the whole pool.
    try:
        return extract_video_flow(video, dest, **kwargs)
    except Exception as e:  # noqa: BLE001
        raise FlowExtractionError(f"{type(e).__name__}: {e}") from None


def extract_dataset_flow(src_dir, out_dir, *, workers: int = 2, algorithm: str = "tvl1", bound: float = 20,
                         size: int | None = DEFAULT_SHORT_SIDE, fps: float | None = None, fmt: str = DEFAULT_FORMAT,
                         progress: bool = True, shard: str | None = None, **torch_options) -> dict:
    """Extract the flow of every video under ``src_dir`` into ``out_dir`` (mirroring relative paths).
    ``shard="K/N"`` takes every N-th video from the K-th (``zoo.data.sharding``), for jobs on several machines.
    ``algorithm="tvl1-torch"`` runs :func:`zoo.flow.extract_torch.extract_dataset_flow_torch` (options
    ``device``, ``batch_size``, ``variant``, ``stopping``, ``compile`` in ``torch_options``).

    Skips videos whose folder is complete, redoes incomplete ones, and never stops on a bad video (one
    warning each). ``workers`` > 1 uses a spawn ProcessPoolExecutor; 1 runs in this process.
    Returns ``{"videos", "done", "skipped", "failed" (list of paths), "flow_frames", "seconds",
    "flow_frames_per_s"}`` (frames/s over the done videos, process start-up included)."""
    from tqdm import tqdm

    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown flow algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    if algorithm == "tvl1-torch":
        from zoo.flow.extract_torch import extract_dataset_flow_torch
        return extract_dataset_flow_torch(src_dir, out_dir, workers=workers, bound=bound, size=size, fps=fps,
                                          fmt=fmt, progress=progress, shard=shard, **torch_options)
    _cv2()  # fail once, up front, not once per video
    if algorithm == "tvl1" and not tvl1_available():
        raise ImportError(_CONTRIB_HINT)
    if fmt not in FORMATS:
        raise ValueError(f"unknown flow format {fmt!r}; choose one of {', '.join(FORMATS)}")
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    start = time.perf_counter()
    from zoo.data.sharding import parse_shard, select_shard
    videos = select_shard(find_videos(src_dir), *parse_shard(shard))
    todo, skipped = [], 0
    for v in videos:
        dest = flow_dir_for(v, src_dir, out_dir)
        if is_complete(dest):
            skipped += 1
        else:
            clear_flow_dir(dest)  # a folder without meta.json is never finished: start it afresh
            todo.append((v, dest))
    kwargs = {"algorithm": algorithm, "bound": bound, "size": size, "fps": fps, "fmt": fmt}
    done, frames, failed = 0, 0, []

    def record(video: Path, fn):
        nonlocal done, frames
        try:
            frames += fn()
            done += 1
        except Exception as e:  # noqa: BLE001 -- one bad video must not stop a dataset
            why = str(e) if isinstance(e, FlowExtractionError) else f"{type(e).__name__}: {e}"
            warnings.warn(f"flow extraction failed for {video}: {why}", RuntimeWarning, stacklevel=3)
            failed.append(str(video))

    with tqdm(total=len(todo), desc="flow", unit="video", disable=not progress or not todo) as bar:
        if workers <= 1 or len(todo) <= 1:
            for v, dest in todo:
                record(v, lambda: _extract_job(str(v), str(dest), kwargs))  # noqa: B023 (called at once)
                bar.update()
        else:
            pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=get_context("spawn"))
            try:
                futures = {pool.submit(_extract_job, str(v), str(dest), kwargs): v for v, dest in todo}
                for fut in as_completed(futures):
                    record(futures[fut], fut.result)
                    bar.update()
            finally:  # on Ctrl-C do not run the queued videos first (a plain `with` would wait for them)
                pool.shutdown(wait=True, cancel_futures=True)
    seconds = time.perf_counter() - start
    return {"videos": len(videos), "done": done, "skipped": skipped, "failed": sorted(failed), "flow_frames": frames,
            "seconds": round(seconds, 3), "flow_frames_per_s": round(frames / seconds, 2) if seconds else 0.0}


# ------------------------------------------------------------------------------------ CLI
def add_flow_parser(subparsers):
    """Add ``flow SRC_DIR OUT_DIR`` to an argparse subparsers object; returns the parser."""
    p = subparsers.add_parser("flow", help="extract optical flow (TV-L1) of every video under a folder, resumable")
    p.add_argument("src_dir", help="folder searched recursively for .mp4/.avi/.mkv/.webm/.gif")
    p.add_argument("out_dir", help="flow goes to OUT_DIR/<relative path without extension>/")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--algorithm", default="tvl1", choices=ALGORITHMS)
    p.add_argument("--size", type=int, default=DEFAULT_SHORT_SIDE,
                   help=f"resize the short side to S before computing flow (default {DEFAULT_SHORT_SIDE}, the "
                        "network's; the bound is in pixels at this size); 0 keeps the video's size")
    p.add_argument("--fps", type=float, default=None,
                   help="retime videos to F fps (by timestamps) before computing flow (I3D: 25); default: as is")
    p.add_argument("--format", dest="fmt", default=DEFAULT_FORMAT, choices=FORMATS,
                   help=f"storage format (default {DEFAULT_FORMAT})")
    p.add_argument("--bound", type=float, default=20.0, help="clip flow to +-BOUND pixels (default 20)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="only every N-th video from the K-th (K from 0), e.g. $SLURM_ARRAY_TASK_ID/8")
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
    p.set_defaults(func=cmd_flow)
    return p


def cmd_flow(args) -> int:
    """Run :func:`extract_dataset_flow` from parsed args and print the summary; 1 if any video failed."""
    s = extract_dataset_flow(args.src_dir, args.out_dir, workers=args.workers, algorithm=args.algorithm,
                             bound=args.bound, size=args.size or None, fps=args.fps, fmt=args.fmt,
                             progress=not getattr(args, "no_progress", False), shard=args.shard,
                             **({"device": args.device, "batch_size": args.batch_size, "variant": args.variant,
                                 "stopping": "fixed" if args.fixed_iterations else "epsilon", "compile": args.compile}
                                if args.algorithm == "tvl1-torch" else {}))
    print(f"flow: {s['videos']} videos: {s['done']} done, {s['skipped']} already complete, "
          f"{len(s['failed'])} failed; {s['flow_frames']} flow frames in {s['seconds']:.1f} s "
          f"({s['flow_frames_per_s']:.1f} frames/s)")
    for f in s["failed"]:
        print(f"  failed: {f}")
    return 1 if s["failed"] else 0
