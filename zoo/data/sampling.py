"""Which frames a clip takes: dense clips (training), uniform multi-clip (testing), fps resampling, and the
clips of feature extraction (``quovadis features``) with their ``[start, end)`` frames and seconds.

SHORT-CLIP RULE (training and testing clips): positions run on the video played in a loop, so position ``p``
is frame ``p % num_frames``. A clip therefore always has ``clip_len`` frames, all in range, and keeps its
stride; a video shorter than the clip's span ``(clip_len - 1) * stride + 1`` repeats from its first frame
(frames ``..., n-2, n-1, 0, 1, ...``). A video at least as long as the span never wraps. These functions and
the fps resampling return ``torch.long`` tensors of frame indices.

FEATURE CLIPS (:func:`clip_starts`, :func:`clip_frames`, :func:`clip_bounds`, :func:`clip_seconds`):
consecutive frames, a clip every ``stride`` frames from frame 0 while it fits; a video of at most
``clip_len`` frames gives one clip that repeats its LAST frame (not the loop rule). Plain lists and numpy.
"""
from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import torch

__all__ = ["span", "loop", "dense_indices", "uniform_clips", "resample_indices", "resample_fps", "resample_times",
           "whole_video_clips", "clip_starts", "clip_frames", "clip_bounds", "clip_seconds"]


def span(clip_len: int, stride: int = 1) -> int:
    """Frames from a clip's first to its last, inclusive."""
    return (clip_len - 1) * stride + 1


def loop(positions: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The short-clip rule: positions on the looped video -> frame indices."""
    if num_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")
    return torch.remainder(positions, num_frames)


def _check(num_frames: int, clip_len: int, stride: int) -> None:
    if num_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")
    if clip_len <= 0 or stride <= 0:
        raise ValueError(f"clip_len and stride must be positive, got {clip_len} and {stride}")


def _randint(high: int, rng) -> int:
    """Uniform in ``[0, high]`` from any of: None (torch's global RNG), a torch.Generator, a numpy
    Generator, or a ``random.Random``."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, high + 1))
    if isinstance(rng, random.Random):
        return rng.randint(0, high)
    if rng is None or isinstance(rng, torch.Generator):
        return int(torch.randint(0, high + 1, (1,), generator=rng).item())
    raise TypeError("start must be an int, None, 'random' or a random generator (torch, numpy or random.Random), "
                    f"got {rng!r}")


def dense_indices(num_frames: int, clip_len: int, stride: int = 1, start=None) -> torch.Tensor:
    """``clip_len`` frames ``stride`` apart, as I3D trains (64 consecutive frames).

    ``start``: an int (the first position, any int; looped), ``None`` (the centred clip, for testing), or a
    random source (``"random"`` for torch's global RNG, a ``torch.Generator``, ``numpy.random.Generator`` or
    ``random.Random``) to draw the start uniformly among those that do not wrap (any frame if all wrap)."""
    _check(num_frames, clip_len, stride)
    extra = num_frames - span(clip_len, stride)
    if start is None:
        first = max(extra, 0) // 2
    elif isinstance(start, (int, np.integer)) and not isinstance(start, bool):
        first = int(start)
    else:
        first = _randint(extra if extra >= 0 else num_frames - 1, None if start == "random" else start)
    return loop(first + stride * torch.arange(clip_len), num_frames)


def uniform_clips(num_frames: int, clip_len: int, stride: int = 1, num_clips: int = 1) -> torch.Tensor:
    """``(num_clips, clip_len)``: clips whose starts are spread evenly over the video (multi-clip testing).

    One clip is the centred clip. Clip ``i`` of several starts at ``i * (num_frames - span) / (num_clips - 1)``
    rounded, halves to even, so the first starts at frame 0 and the last ends at the last frame; when the video
    is shorter than the span, at ``floor(i * num_frames / num_clips)`` instead, and each clip loops. Exact
    arithmetic: ``torch.linspace(...).round()`` in floats rounded some exact halves the other way."""
    _check(num_frames, clip_len, stride)
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    extra = num_frames - span(clip_len, stride)
    if num_clips == 1:
        starts = torch.tensor([max(extra, 0) // 2])
    elif extra >= 0:
        starts = torch.tensor([round(Fraction(extra * i, num_clips - 1)) for i in range(num_clips)])
    else:
        starts = torch.arange(num_clips) * num_frames // num_clips
    return loop(starts[:, None] + stride * torch.arange(clip_len)[None, :], num_frames)


def whole_video_clips(num_frames: int, clip_len: int, stride: int = 1) -> int:
    """How many clips cover the whole video at test time (I3D's protocol): ``ceil(num_frames / span)``."""
    _check(num_frames, clip_len, stride)
    return max(1, math.ceil(num_frames / span(clip_len, stride)))


def resample_times(times, dst_fps: float) -> torch.Tensor:
    """Source frame for each frame of a video retimed to ``dst_fps``, from the frames' real presentation
    times in seconds (``zoo.data.decode.frame_times``): retimed frame ``k`` is the frame on screen at
    ``k / dst_fps``, the last one whose time is ``<= k / dst_fps`` (FFmpeg's ``fps`` filter, rounding down).
    A variable-frame-rate file thus repeats a frame where a timestamp is missing. The retimed video lasts
    as long as the source: ``round(duration * dst_fps)`` frames, the duration being the last frame's time
    plus one median frame interval (the lower middle one of an even count, as ``torch.median``; a single
    frame lasts one retimed frame), rounded half up. For a constant rate this
    equals :func:`resample_fps`, except that at an exact half their lengths may differ by one frame (that
    function rounds float noise; property-tested)."""
    t = torch.as_tensor(np.asarray(times, dtype=np.float64))
    if t.numel() == 0:
        raise ValueError("a video needs at least one frame, got no frame times")
    if dst_fps <= 0:
        raise ValueError(f"dst_fps must be positive, got {dst_fps}")
    t = t - t[0]
    step = float(t.diff().median()) if t.numel() > 1 else 1.0 / dst_fps
    n_out = max(1, math.floor(round((float(t[-1]) + step) * dst_fps, 6) + 0.5))   # half up, float noise snapped
    ticks = torch.arange(n_out, dtype=torch.float64) / dst_fps
    return (torch.searchsorted(t, ticks + 1e-6, right=True) - 1).clamp_(0, t.numel() - 1)


def resample_indices(num_frames: int, src_fps: float, dst_fps: float) -> torch.Tensor:
    """Indices of the source frames nearest to a ``dst_fps`` timeline (drops or repeats frames): retimed
    frame ``k`` is source frame ``floor(k * src_fps / dst_fps)``, and the retimed video lasts as long as the
    source, ``round(num_frames / src_fps * dst_fps)`` frames (at least one). No frames give no indices."""
    if num_frames <= 0:
        return torch.zeros(0, dtype=torch.long)
    duration = num_frames / src_fps
    n_out = max(1, round(duration * dst_fps))
    t = torch.arange(n_out, dtype=torch.float64) / dst_fps
    return (t * src_fps + 1e-6).floor().long().clamp_(0, num_frames - 1)


def resample_fps(num_frames: int, src_fps: float, dst_fps: float) -> torch.Tensor:
    """Source frame for each frame of the video retimed to ``dst_fps`` (drops or repeats frames), for a
    constant frame rate; :func:`resample_times` is the same rule on real timestamps.

    Sample clips on ``len(timeline)`` frames, then map: ``timeline[dense_indices(len(timeline), ...)]``."""
    if num_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")
    if src_fps <= 0 or dst_fps <= 0 or abs(src_fps - dst_fps) < 1e-3:
        return torch.arange(num_frames)
    return resample_indices(num_frames, src_fps, dst_fps)


# ---------------------------------------------------------------- feature clips (quovadis features)

def clip_starts(num_frames: int, clip_len: int, stride: int) -> list[int]:
    """First frame of each clip: ``0, stride, 2 * stride, ...`` while the clip fits in the video, so the last
    clip ends at or before the video's end; ``[0]`` for a video of at most ``clip_len`` frames."""
    _check(num_frames, clip_len, stride)
    if num_frames <= clip_len:
        return [0]
    return list(range(0, num_frames - clip_len + 1, stride))


def clip_frames(start: int, clip_len: int, num_frames: int) -> list[int]:
    """The ``clip_len`` frames of the clip starting at ``start``: ``start, start + 1, ...``, the video's last
    frame repeated past its end."""
    return [min(start + i, num_frames - 1) for i in range(clip_len)]


def clip_bounds(starts, clip_len: int, num_frames: int) -> np.ndarray:
    """``(clips, 2)`` int64 ``[start, end)`` frames of the clips starting at ``starts``: ``end`` is
    ``start + clip_len``, cut at the video's end (a short clip's repeated last frame is not counted)."""
    starts = np.asarray(starts, dtype=np.int64)
    return np.stack([starts, np.minimum(starts + clip_len, num_frames)], 1)


def clip_seconds(bounds, fps: float) -> np.ndarray:
    """``[start, end)`` frames -> float64 seconds at ``fps`` frames per second (frame ``i`` starts at
    ``i / fps``)."""
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return np.asarray(bounds, dtype=np.float64) / float(fps)
