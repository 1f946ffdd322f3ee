"""The one video decoder: decode only the frames a clip needs (or all of them), from a video file or a GIF.

    >>> num_frames, fps, height, width = video_info("v.mp4")     # container metadata, no decoding
    >>> frames = read_frames("v.mp4", [100, 101, 102])          # uint8 (T, H, W, 3), in the order asked
    >>> every = read_frames("v.mp4")                             # every frame, in presentation order

Backends: ``"torchcodec"`` and ``"pyav"``; GIFs always go through Pillow. ``"auto"`` (the default) was chosen
by measurement (``benchmarks/bench_data.py``: the same random 64-frame clips of 10 s 25 fps 320x240 H.264
videos, keyframe every 2 s, one decoder thread, median of 5 interleaved rounds on a shared 2-core machine):
torchcodec 0.17 decoded 31.4 clips/s, PyAV with our keyframe seek + early stop 18.5, PyAV's naive full
decode 3.6 (more decoder threads were slower for both). So ``auto`` is torchcodec where it is usable (``pip install torchcodec`` built for the installed torch,
plus FFmpeg 4-8 shared libraries, e.g. ``apt-get install libavcodec59 libavformat59 ...``) and PyAV otherwise
(``quovadis[video]``), silently. ``backend=`` or ``$QUOVADIS_VIDEO_BACKEND`` picks one; asking for torchcodec
where it is not usable warns and uses PyAV.

FRAME-NUMBERING RULE (every decoder here, hence clips, features, FVD and flow extraction alike):
frame ``i`` is the ``i``-th frame in presentation order, COUNTED, never computed from its timestamp and
the average frame rate. On a variable-frame-rate file the two differ (one missing timestamp shifts every
later frame by one), so a PyAV seek maps each decoded frame's timestamp to its count through the sorted
packet timestamps (:func:`frame_times`, a demux without decoding, cached per file), and torchcodec runs in
its ``"exact"`` seek mode (it scans the file and numbers frames the same way). Cost, measured with
``python benchmarks/bench_frame_index.py --rounds 7`` (10 s 320x240 H.264, 64-frame clips, shared 2-core
machine): the uncached PyAV index is 0.11x a clip read; torchcodec exact vs approximate 0.99x. Time-based retiming
(``fps``) uses the real timestamps: see :func:`frame_times` and ``zoo.data.sampling.resample_times``.

Every decoding failure raises :class:`VideoDecodeError` (a ``RuntimeError``) naming the file.
"""
from __future__ import annotations

import functools
import os
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

BACKENDS = ("pyav", "torchcodec")
SEEK_MIN_FRAMES = 16               # seek only when the first wanted frame is at least this far in
END_SLACK = 3                      # frames a container may over-report at its end; past that it's an error


class VideoDecodeError(RuntimeError):
    """A video (or GIF) that cannot be opened or decoded as far as asked."""


def _is_gif(path: Path) -> bool:
    return path.suffix.lower() == ".gif"


def _check_file(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"no such video file: {path}")
    return path


@functools.cache
def torchcodec_available() -> bool:
    """Whether torchcodec imports and finds FFmpeg's shared libraries (it needs a system FFmpeg 4-8)."""
    try:
        from torchcodec._internally_replaced_utils import load_core_libraries
        load_core_libraries()
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception:  # ImportError, OSError, RuntimeError: any of them means "not usable here"
        return False
    return True


def resolve_backend(backend: str | None = None) -> str:
    """``backend`` (or ``$QUOVADIS_VIDEO_BACKEND``, or ``auto``) -> ``"pyav"`` or ``"torchcodec"``."""
    name = (backend or os.environ.get("QUOVADIS_VIDEO_BACKEND") or "auto").lower()
    if name == "auto":
        return "torchcodec" if torchcodec_available() else "pyav"
    if name not in BACKENDS:
        raise ValueError(f"unknown video backend {name!r}; choose one of {BACKENDS} or 'auto'")
    if name == "torchcodec" and not torchcodec_available():
        warnings.warn("torchcodec is not usable here (not installed, or no FFmpeg libraries found); "
                      "decoding with PyAV", RuntimeWarning, stacklevel=3)
        return "pyav"
    return name


# ---------------------------------------------------------------- metadata

def video_info(path, backend: str | None = None) -> tuple[int, float, int, int]:
    """``(num_frames, fps, height, width)`` from the container's metadata; counts frames by decoding
    only when the container does not say how many it holds."""
    path = _check_file(path)
    if _is_gif(path):
        return _gif_info(path)
    if resolve_backend(backend) == "torchcodec":
        return _torchcodec_info(path)
    return _pyav_info(path)


def _gif_info(path: Path) -> tuple[int, float, int, int]:
    """Frames, fps (from the median frame duration; 40 ms where none is given), height, width."""
    from PIL import Image, ImageSequence
    try:
        with Image.open(path) as im:
            durations = [f.info.get("duration", 40) or 40 for f in ImageSequence.Iterator(im)]
            return len(durations), 1000.0 / float(np.median(durations)), im.height, im.width
    except Exception as e:
        raise VideoDecodeError(f"cannot read GIF {path}: {e}") from e


def _open_av(path: Path):
    import av
    try:
        container = av.open(str(path))
    except Exception as e:
        raise VideoDecodeError(f"cannot open {path}: {e}") from e
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path} holds no video stream")
    return container


def _av_fps(stream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else Fraction(25)


def _pyav_info(path: Path) -> tuple[int, float, int, int]:
    container = _open_av(path)
    try:
        stream = container.streams.video[0]
        fps, n = _av_fps(stream), stream.frames
        h, w = stream.codec_context.height, stream.codec_context.width
        if n <= 0 and stream.duration and stream.time_base:
            n = int(round(stream.duration * stream.time_base * fps))
        if n <= 0 or not h:
            n, h, w = 0, 0, 0
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                n, h, w = n + 1, frame.height, frame.width
    except VideoDecodeError:
        raise
    except Exception as e:
        raise VideoDecodeError(f"cannot read {path}: {e}") from e
    finally:
        container.close()
    if n <= 0:
        raise VideoDecodeError(f"{path} holds no video frames")
    return n, float(fps), h, w


def _torchcodec_info(path: Path) -> tuple[int, float, int, int]:
    from torchcodec.decoders import VideoDecoder
    try:
        md = VideoDecoder(str(path), seek_mode="approximate").metadata
        n, fps = md.num_frames, md.average_fps
        if not n:
            n = len(VideoDecoder(str(path), seek_mode="exact"))
    except Exception as e:
        raise VideoDecodeError(f"cannot read {path}: {e}") from e
    if not n:
        raise VideoDecodeError(f"{path} holds no video frames")
    return int(n), float(fps or 25.0), md.height, md.width


# ---------------------------------------------------------------- timestamps

def frame_times(path) -> np.ndarray:
    """Presentation time in seconds of every frame, in presentation order (frame ``i`` at ``[i]``),
    relative to the first frame; from the container's packet timestamps (no decoding). GIFs and streams
    without timestamps get ``i / fps``. Cached per file (path, size, mtime)."""
    path = _check_file(path)
    st = path.stat()
    return _frame_times(str(path), st.st_size, st.st_mtime_ns).copy()


@functools.lru_cache(maxsize=512)
def _frame_times(path: str, size: int, mtime_ns: int) -> np.ndarray:
    pts, tb = _pts_index(path, size, mtime_ns)
    if pts is None:
        n, fps, _, _ = video_info(path, "pyav")
        return np.arange(n, dtype=np.float64) / fps
    return (pts - pts[0]).astype(np.float64) * float(tb)


def _packet_pts(path: Path) -> tuple[np.ndarray | None, Fraction | None]:
    """Sorted timestamps of the video stream's frames (packets), or (None, None) when any is missing."""
    if _is_gif(path):
        return None, None
    container = _open_av(path)
    try:
        stream = container.streams.video[0]
        pts = [p.pts for p in container.demux(stream) if p.size]   # the flush packet has size 0
        tb = stream.time_base
    except Exception as e:
        raise VideoDecodeError(f"cannot read {path}: {e}") from e
    finally:
        container.close()
    if not pts or any(p is None for p in pts) or tb is None:
        return None, None
    return np.sort(np.asarray(pts, dtype=np.int64)), Fraction(tb)


@functools.lru_cache(maxsize=512)
def _pts_index(path: str, size: int, mtime_ns: int) -> tuple[np.ndarray | None, Fraction | None]:
    """:func:`_packet_pts` cached per file: one demux serves both :func:`frame_times` and seeking."""
    return _packet_pts(Path(path))


# ---------------------------------------------------------------- frames

def _as_indices(indices) -> np.ndarray:
    idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices, dtype=np.int64).reshape(-1)
    if idx.size and idx.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {idx.min()}")
    return idx


def read_frames(path, indices: Sequence[int] | np.ndarray | torch.Tensor | None = None, backend: str | None = None,
                threads: int | None = None) -> torch.Tensor:
    """uint8 RGB frames ``(len(indices), H, W, 3)``, frame ``k`` being video frame ``indices[k]``; with
    ``indices=None`` every frame the file holds (counted by decoding, not taken from the container).

    Indices may repeat and come in any order; each distinct frame is decoded once. Decoding starts at the
    keyframe before the first wanted frame (when that is worth a seek) and stops after the last wanted one.
    Wanted frames up to ``END_SLACK`` past the last decodable one (containers over-report their length)
    repeat the last frame; further than that raises :class:`VideoDecodeError`. ``threads``: decoder threads,
    None = 1 (fastest per core, and DataLoader workers already use the cores), 0 = FFmpeg's choice."""
    path = _check_file(path)
    if indices is None:
        return _every_frame(path, backend, threads)
    idx = _as_indices(indices)
    if idx.size == 0:
        raise ValueError("read_frames needs at least one frame index")
    wanted = np.unique(idx)
    if _is_gif(path):
        got = _gif_frames(path, wanted)
    elif resolve_backend(backend) == "torchcodec":
        got = _torchcodec_frames(path, wanted, threads)
    else:
        got = _pyav_frames(path, wanted, threads)
    got = _fill_tail(path, wanted, got)
    stack = torch.from_numpy(np.stack([got[i] for i in wanted]))
    if len(idx) == len(wanted) and np.array_equal(idx, wanted):
        return stack
    return stack[torch.from_numpy(np.searchsorted(wanted, idx))]


def _every_frame(path: Path, backend: str | None, threads: int | None) -> torch.Tensor:
    if _is_gif(path):
        got = _gif_frames(path, np.arange(_gif_info(path)[0]))
    else:
        got = None
        if resolve_backend(backend) == "torchcodec":
            try:
                got = _torchcodec_frames(path, None, threads)
            except VideoDecodeError:
                # torchcodec's exact scan can count one frame more than it then decodes (seen on small AVIs:
                # "no more frames left to decode"); a sequential PyAV pass reads what the file holds
                got = None
        if got is None:
            got = _pyav_pass(path, None, threads, seek=False)
    if not got:
        raise VideoDecodeError(f"{path} holds no video frames")
    return torch.from_numpy(np.stack([got[i] for i in range(len(got))]))


def _fill_tail(path: Path, wanted: np.ndarray, got: dict) -> dict:
    if not got:
        raise VideoDecodeError(f"{path}: no frame decoded (wanted frames {wanted[0]}..{wanted[-1]})")
    missing = [i for i in wanted if i not in got]
    if missing:
        last = max(got)
        if min(missing) < last or max(missing) > last + END_SLACK:
            raise VideoDecodeError(f"{path}: frames {missing[:5]}{'...' if len(missing) > 5 else ''} "
                                   f"not decodable (last frame decoded: {last})")
        for i in missing:
            got[i] = got[last]
    return got


def _gif_frames(path: Path, wanted: np.ndarray) -> dict:
    from PIL import Image
    got = {}
    try:
        with Image.open(path) as im:
            for i in wanted:
                if i >= getattr(im, "n_frames", 1):
                    break
                im.seek(int(i))
                got[int(i)] = np.asarray(im.convert("RGB"))
    except Exception as e:
        raise VideoDecodeError(f"cannot decode GIF {path}: {e}") from e
    return got


def _pyav_frames(path: Path, wanted: np.ndarray, threads: int | None) -> dict:
    got = None
    if wanted[0] >= SEEK_MIN_FRAMES:
        st = path.stat()
        pts = _pts_index(str(path), st.st_size, st.st_mtime_ns)[0]
        if pts is not None and wanted[0] < len(pts) and len(np.unique(pts)) == len(pts):
            got = _pyav_pass(path, wanted, threads, seek=pts)
    if got is None:  # no seek, or it landed past the first wanted frame, or timestamps were unusable
        got = _pyav_pass(path, wanted, threads, seek=False)
    return got


def _pyav_pass(path: Path, wanted: np.ndarray, threads: int | None, seek) -> dict | None:
    container = _open_av(path)
    try:
        stream = container.streams.video[0]
        threads = 1 if threads is None else threads
        if threads != 1:
            stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        return _pyav_decode(container, stream, wanted, seek)
    except VideoDecodeError:
        raise
    except Exception as e:
        raise VideoDecodeError(f"cannot decode {path}: {e}") from e
    finally:
        container.close()


def _pyav_decode(container, stream, wanted: np.ndarray, seek) -> dict | None:
    """Decode from the start, counting frames (``seek=False``), or from the keyframe before the first wanted
    frame (``seek`` = the sorted frame timestamps: a frame's count is the position of its timestamp there);
    None = retry from the start. Converts only the wanted frames to RGB and stops after the last one;
    ``wanted=None``: every frame."""
    if wanted is None:
        return {i: frame.to_ndarray(format="rgb24") for i, frame in enumerate(container.decode(stream))}
    first, last = int(wanted[0]), int(wanted[-1])
    pts = None if seek is False or seek is None else seek
    if pts is not None:
        container.seek(int(pts[first]), stream=stream, backward=True, any_frame=False)
    want, got, count = set(wanted.tolist()), {}, -1
    for frame in container.decode(stream):
        if pts is not None:
            if frame.pts is None:
                return None
            i = int(np.searchsorted(pts, frame.pts))
            if i >= len(pts) or pts[i] != frame.pts or (not got and i > first):
                return None                         # a timestamp the demuxer did not list, or a late landing
        else:
            count += 1
            i = count
        if i in want and i not in got:
            got[i] = frame.to_ndarray(format="rgb24")
        if i >= last:
            break
    return got


def _torchcodec_frames(path: Path, wanted: np.ndarray, threads: int | None) -> dict:
    from torchcodec.decoders import VideoDecoder
    try:
        dec = VideoDecoder(str(path), dimension_order="NHWC", num_ffmpeg_threads=1 if threads is None else threads,
                           seek_mode="exact")              # exact: frames counted (the numbering rule)
        n = len(dec)
        if wanted is None:
            wanted = np.arange(n)
        ok = wanted[wanted < n] if n else wanted
        frames = dec.get_frames_at(ok.tolist()).data.numpy()
    except Exception as e:
        raise VideoDecodeError(f"cannot decode {path}: {e}") from e
    return {int(i): frames[k] for k, i in enumerate(ok)}


def flow_from_rgb_encoding(frames, bound: float = 20.0) -> torch.Tensor:
    """Flow in pixels ``(T, H, W, 2)`` from uint8 frames that store it as images: x in red, y in green,
    ``pixel = (flow / bound + 1) / 2 * 255`` (the layout of the kinetics-i3d sample flow GIF). ``frames`` is any
    clip :func:`zoo.clip_input.as_clip` accepts."""
    from zoo.clip_input import as_clip
    frames = as_clip(frames, 3).permute(1, 2, 3, 0)
    return (frames[..., :2].float() / 127.5 - 1.0) * bound
