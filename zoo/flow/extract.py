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
:mod:`zoo.data.flow_store` in ``OUT_DIR/<relative path, extension kept>/`` (``a.mp4`` -> ``OUT_DIR/a.mp4/``).
The videos (files of any of ``zoo.data.video_folder.VIDEO_EXTENSIONS``, or folders of frames), their order,
shards and names are :mod:`zoo.data.video_folder`'s, as for features and FVD; planning and reading frames
are :mod:`zoo.flow.videos`'s, shared with the PyTorch extractor. A video whose folder has a ``meta.json``
is skipped; any other is redone, written into a private folder and renamed into place, so overlapping runs
are safe. A video that fails (undecodable, or the solver raises) is reported (one warning each), counted
and skipped, and the exit code says so. Work is spread over processes (spawn), each with one OpenCV
thread: OpenCV's TV-L1 ran slower with 2 threads than with 1 on 2 cores (224x224: 0.96 vs 0.59 s/frame
idle; 2.0 vs 1.8 s/frame in benchmarks/bench_flow.py on a busy machine), so processes, not threads.
A pool pays a start-up once (each spawned worker imports zoo, hence torch: ~11 s for 2 workers on a
busy 2-core machine), so 2 workers only pay off on datasets bigger than a few videos.
"""
from __future__ import annotations

import contextlib
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from zoo.data.flow_store import DEFAULT_FORMAT, FORMATS, write_flow
from zoo.data.video_folder import Video
from zoo.flow.videos import (
    DEFAULT_SHORT_SIDE,
    as_video,
    opencv,
    plan_videos,
    read_gray,
    report_failure,
    summary,
)

ALGORITHMS = ("tvl1", "farneback")  # tvl1-torch (OpenCV's TV-L1 in PyTorch): zoo.flow.extract_torch
_CONTRIB_HINT = ("TV-L1 optical flow needs OpenCV's contrib modules (cv2.optflow): "
                 "pip install opencv-contrib-python-headless  -- plain opencv-python lacks TV-L1 "
                 "(uninstall it first if both are installed, they share the cv2 package)")


def tvl1_available() -> bool:
    """Whether this OpenCV has the contrib TV-L1 implementation."""
    try:
        return hasattr(opencv(), "optflow") and hasattr(opencv().optflow, "DualTVL1OpticalFlow_create")
    except ImportError:
        return False


@contextlib.contextmanager
def _opencv_threads(n: int):
    cv2 = opencv()
    old = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(old)


# ------------------------------------------------------------------------------------ flow
def compute_flow(gray: np.ndarray, algorithm: str = "tvl1") -> np.ndarray:
    """Flow ``(T-1, H, W, 2)`` float32 in pixels (x right, y down) between consecutive gray frames:
    ``flow[t]`` maps frame t to frame t+1 (``frame_t(p) ~ frame_{t+1}(p + flow[t](p))``)."""
    if algorithm not in ALGORITHMS + ("tvl1-torch",):
        raise ValueError(f"unknown flow algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}, tvl1-torch")
    cv2 = opencv()
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


def extract_video_flow(video, out_dir, *, algorithm: str = "tvl1", bound: float = 20,
                       size: int | None = DEFAULT_SHORT_SIDE, fps: float | None = None,
                       fmt: str = DEFAULT_FORMAT) -> int:
    """Decode ``video`` (a video file, a folder of frames or a :class:`~zoo.data.video_folder.Video`; retimed
    to ``fps`` if given, short side resized to ``size``; 0/None: as is), compute its flow and write it as the
    folder ``out_dir`` (complete when this returns). Returns the number of flow frames (frames - 1). Uses one
    OpenCV thread (see the module docstring)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown flow format {fmt!r}; choose one of {', '.join(FORMATS)}")
    video = as_video(video)
    gray, rate, src_fps = read_gray(video, size or None, fps)
    with _opencv_threads(1):
        flow = compute_flow(gray, algorithm)
    write_flow(Path(out_dir), flow, algorithm=algorithm, bound=bound, fps=rate, fmt=fmt, source=str(video.path),
               source_fps=src_fps, short_side=min(gray.shape[1:3]))
    return len(flow)


# ------------------------------------------------------------------------------------ dataset
class FlowExtractionError(RuntimeError):
    """One video failed; the message names the original error."""


def _extract_job(video: Video, dest: str, kwargs: dict) -> int:
    # Top-level so spawned workers can unpickle it. Errors are re-raised as a plain exception because
    # some library errors (PyAV's take extra constructor arguments) may not survive pickling back to
    # the parent, and a result that fails to unpickle breaks the whole pool.
    try:
        return extract_video_flow(video, dest, **kwargs)
    except Exception as e:  # noqa: BLE001
        raise FlowExtractionError(f"{type(e).__name__}: {e}") from None


def extract_dataset_flow(src_dir, out_dir, *, workers: int = 2, algorithm: str = "tvl1", bound: float = 20,
                         size: int | None = DEFAULT_SHORT_SIDE, fps: float | None = None, fmt: str = DEFAULT_FORMAT,
                         progress: bool = True, shard: str | None = None) -> dict:
    """Extract the flow of every video under ``src_dir`` into ``out_dir`` (mirroring relative paths, extension
    kept). ``shard="K/N"`` takes every N-th video from the K-th (``zoo.data.video_folder.select_shard``, the
    order features and FVD shard too), for jobs on several machines.
    The PyTorch TV-L1 is :func:`zoo.flow.extract_torch.extract_dataset_flow_torch` (same layout and summary).

    Skips videos whose folder is complete, redoes incomplete ones (planning deletes nothing:
    :mod:`zoo.flow.videos`), and never stops on a bad video (one warning each). ``workers`` > 1 uses a
    spawn ProcessPoolExecutor; 1 runs in this process.
    Returns ``{"videos", "done", "skipped", "failed" (list of paths), "flow_frames", "seconds",
    "flow_frames_per_s"}`` (frames/s over the done videos, process start-up included)."""
    from tqdm import tqdm

    if algorithm not in ALGORITHMS:
        hint = " (the PyTorch TV-L1: zoo.flow.extract_torch.extract_dataset_flow_torch)" * (algorithm == "tvl1-torch")
        raise ValueError(f"unknown flow algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}{hint}")
    opencv()  # fail once, up front, not once per video
    if algorithm == "tvl1" and not tvl1_available():
        raise ImportError(_CONTRIB_HINT)
    if fmt not in FORMATS:
        raise ValueError(f"unknown flow format {fmt!r}; choose one of {', '.join(FORMATS)}")
    start = time.perf_counter()
    videos, todo, skipped = plan_videos(src_dir, out_dir, shard)
    kwargs = {"algorithm": algorithm, "bound": bound, "size": size, "fps": fps, "fmt": fmt}
    done, frames, failed = 0, 0, []

    def record(video: Video, fn):
        nonlocal done, frames
        try:
            frames += fn()
            done += 1
        except Exception as e:  # noqa: BLE001 -- one bad video must not stop a dataset
            report_failure(video, str(e) if isinstance(e, FlowExtractionError) else f"{type(e).__name__}: {e}",
                           failed)

    with tqdm(total=len(todo), desc="flow", unit="video", disable=not progress or not todo) as bar:
        if workers <= 1 or len(todo) <= 1:
            for v, dest in todo:
                record(v, lambda: _extract_job(v, str(dest), kwargs))  # noqa: B023 (called at once)
                bar.update()
        else:
            pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=get_context("spawn"))
            try:
                futures = {pool.submit(_extract_job, v, str(dest), kwargs): v for v, dest in todo}
                for fut in as_completed(futures):
                    record(futures[fut], fut.result)
                    bar.update()
            finally:  # on Ctrl-C do not run the queued videos first (a plain `with` would wait for them)
                pool.shutdown(wait=True, cancel_futures=True)
    return summary(videos, done, skipped, failed, frames, start)
