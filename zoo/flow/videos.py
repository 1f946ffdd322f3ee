"""A flow run's videos: this shard's share of a source, each one's flow folder, and its frames as the
flow solvers take them (grayscale, retimed, resized). Shared by both extractors (:mod:`zoo.flow.extract`,
OpenCV; :mod:`zoo.flow.extract_torch`, the PyTorch TV-L1), which import nothing from each other.

    >>> videos, todo, skipped = plan_videos("videos/", "flow/", shard="0/4")   # [(Video, flow folder)]
    >>> gray, rate, source_fps = read_gray(todo[0][0], size=256, fps=25)

Which videos there are, their order, their shard and their flow folder's name (``OUT/<relative path,
extension kept>/``) are :mod:`zoo.data.video_folder`'s, as for features and FVD.

RESUME RULE. A video whose flow folder is complete (has ``meta.json``) is skipped; any other is redone.
Planning only reads: it deletes nothing, so a run that plans while another one (a re-queued SLURM job, an
overlapping shard) is writing the same video cannot break it. Each video is written into a private folder
and renamed into place when whole (:func:`zoo.data.flow_store.write_flow`).
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from zoo.data.flow_store import is_complete
from zoo.data.video_folder import Video, list_videos, parse_shard, select_shard

DEFAULT_SHORT_SIDE = 256  # the I3D protocol's: flow is computed and clipped at the network's scale


def opencv():
    """The ``cv2`` module, or an ImportError saying what to install."""
    try:
        import cv2
    except ImportError as e:
        raise ImportError("optical flow needs OpenCV: pip install opencv-contrib-python-headless") from e
    return cv2


def as_video(video) -> Video:
    """A :class:`~zoo.data.video_folder.Video`, or the one video at a path (a video file or a folder of frames)."""
    if isinstance(video, Video):
        return video
    found = list_videos(video)
    if len(found) != 1:
        raise ValueError(f"{video} holds {len(found)} videos; give one video file or one folder of frames")
    return found[0]


def plan_videos(src, out_dir, shard: str | None = None) -> tuple[list[Video], list[tuple[Video, Path]], int]:
    """``(videos of this shard, [(video, flow folder) to do], number skipped as complete)``; deletes nothing."""
    videos = select_shard(list_videos(src), *parse_shard(shard))
    todo, skipped = [], 0
    for v in videos:
        dest = v.output_path(out_dir)
        if is_complete(dest):
            skipped += 1
        else:
            todo.append((v, dest))
    return videos, todo, skipped


def read_gray(video, size: int | None = None, fps: float | None = None) -> tuple[np.ndarray, float, float]:
    """``(frames, rate, source_fps)``: every frame of ``video`` (a :class:`Video` or a path) as uint8 grayscale
    ``(T, H, W)``, retimed to ``fps`` by the frames' timestamps if given (``zoo.data.sampling.resample_times``),
    then resized so the short side is ``size`` (None: as is); ``rate`` is the returned frames' frame rate.
    Raises :class:`~zoo.data.decode.VideoDecodeError` for undecodable files."""
    from zoo.data.sampling import resample_times

    cv2 = opencv()
    video = as_video(video)
    rgb = video.read().numpy()
    rate = src_fps = video.fps()
    if fps:
        times = video.frame_times()
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


def read_gray_frames(video, size: int | None = None, fps: float | None = None) -> tuple[np.ndarray, float]:
    """``(frames, rate)`` of :func:`read_gray`: what the flow solvers see of ``video``."""
    gray, rate, _ = read_gray(video, size, fps)
    return gray, rate


def report_failure(video: Video, why: str, failed: list) -> None:
    """One warning naming the video, and its path counted in ``failed`` (the run goes on)."""
    warnings.warn(f"flow extraction failed for {video.path}: {why}", RuntimeWarning, stacklevel=3)
    failed.append(str(video.path))


def summary(videos: list, done: int, skipped: int, failed: list, frames: int, start: float) -> dict:
    """The result of a dataset run: ``{"videos", "done", "skipped", "failed" (sorted paths), "flow_frames",
    "seconds", "flow_frames_per_s"}`` (frames/s over the done videos, start-up included)."""
    seconds = time.perf_counter() - start
    return {"videos": len(videos), "done": done, "skipped": skipped, "failed": sorted(failed), "flow_frames": frames,
            "seconds": round(seconds, 3), "flow_frames_per_s": round(frames / seconds, 2) if seconds else 0.0}
