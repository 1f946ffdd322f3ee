"""THE lister: which files of a source are videos, what each video's outputs are called, and which shard it
belongs to. Flow extraction, clip features, FVD and the datasets all ask this module.

    >>> videos = list_videos("clips/")                # sorted by name: the relative path, extension kept
    >>> n = videos[0].num_frames(); clip = videos[0].read([0, 1, 2])   # uint8 (T, H, W, 3)
    >>> videos[0].output_path("features/", ".safetensors")             # features/<name>.safetensors
    >>> mine = select_shard(videos, *parse_shard("1/4"))               # --shard 1/4: videos 1, 5, 9, ...

A source is one of:

* a folder of video files (:data:`VIDEO_EXTENSIONS`, any case, searched recursively), decoded with
  :mod:`zoo.data.decode`;
* a folder of folders of frame images (:data:`IMAGE_EXTENSIONS`), one folder per video, frames in file-name
  order. A folder is a video of frames only if it holds frame images and nothing below it is a video file
  or another folder of frames: a ``cover.jpg`` beside videos, or above the frame folders, is ignored;
* a ``.npy`` / ``.npz`` file holding one uint8 array ``(N, T, H, W, 3)`` (an ``.npz`` with one array, or
  with a ``videos`` entry).

NAMES. A video's :attr:`Video.name` is its path relative to the source folder, extension kept
(``sub/a.mp4``; a folder of frames: ``sub/clip1``; an array entry: ``<stem>_000003``). Outputs are named by
it (:meth:`Video.output_path`): ``a.mp4`` -> ``OUT/a.mp4.safetensors`` (features), ``OUT/a.mp4/`` (flow), so
``a.mp4`` and ``a.avi`` in one folder never share an output.

ORDER AND SHARDS. :func:`list_videos` sorts by name (plain string order), the one order every command
shards: ``--shard K/N`` keeps videos ``K, K + N, K + 2N, ...`` of it (:func:`select_shard`; K counts from 0,
like a ``torchrun`` rank, so ``0/N`` ... ``N-1/N`` cover every video exactly once, sizes differ by at most
one). So shard K of ``quovadis flow`` and of ``quovadis features`` hold the same videos.

Every read error is a :class:`~zoo.data.decode.VideoDecodeError` naming the file.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from zoo.data.decode import VideoDecodeError, frame_times, read_frames, video_info

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".gif")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
ARRAY_EXTENSIONS = (".npy", ".npz")
FRAMES_FPS = 25.0          # the rate of a folder of frames or an array, which carry none


def output_path(out_dir, name, suffix: str = "") -> Path:
    """Where the output of the video called ``name`` (its path relative to its source folder, extension
    kept) goes: ``out_dir/<name><suffix>``. The one naming rule; :meth:`Video.output_path` uses it."""
    return Path(out_dir) / (Path(name).as_posix() + suffix)


@dataclass(frozen=True)
class Video:
    """One video of a source: a file, a folder of frames, or entry ``index`` of an array file."""
    name: str              # relative path, extension kept: the sort key and the name of every output
    path: Path
    kind: str              # "file", "frames" or "array"
    index: int = 0

    def output_path(self, out_dir, suffix: str = "") -> Path:
        """``out_dir/<name><suffix>``: ``a.mp4`` -> ``OUT/a.mp4.safetensors`` or the flow folder ``OUT/a.mp4``."""
        return output_path(out_dir, self.name, suffix)

    def num_frames(self) -> int:
        if self.kind == "file":
            return video_info(self.path)[0]
        if self.kind == "frames":
            return len(_frame_files(self.path))
        return int(_load_array(self.path).shape[1])

    def fps(self) -> float:
        return video_info(self.path)[1] if self.kind == "file" else FRAMES_FPS

    def frame_times(self) -> np.ndarray:
        """Presentation time (s) of every frame from the first (a file's own timestamps; else ``i / fps``)."""
        if self.kind == "file":
            return frame_times(self.path)
        return np.arange(self.num_frames(), dtype=np.float64) / FRAMES_FPS

    def read(self, indices=None) -> torch.Tensor:
        """uint8 RGB frames ``(len(indices), H, W, 3)``; every frame when ``indices`` is None."""
        if self.kind == "file":
            return read_frames(self.path, indices)
        if indices is None:
            indices = range(self.num_frames())
        if self.kind == "frames":
            files = _frame_files(self.path)
            bad = [i for i in indices if i >= len(files)]
            if bad:
                raise VideoDecodeError(f"{self.path}: has {len(files)} frames, frame {bad[0]} asked")
            from PIL import Image
            frames = []
            for i in indices:
                try:
                    with Image.open(files[i]) as im:
                        frames.append(np.asarray(im.convert("RGB")))
                except Exception as e:
                    raise VideoDecodeError(f"cannot read frame image {files[i]}: {e}") from e
            if len({f.shape for f in frames}) > 1:
                raise VideoDecodeError(f"{self.path}: frame images differ in size")
            return torch.from_numpy(np.stack(frames))
        return torch.from_numpy(np.ascontiguousarray(_load_array(self.path)[self.index][list(indices)]))


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


_ARRAYS: dict[Path, np.ndarray] = {}


def _load_array(path: Path) -> np.ndarray:
    """The ``(N, T, H, W, 3)`` uint8 array of an ``.npy``/``.npz`` file (memory-mapped where possible)."""
    path = Path(path)
    if path in _ARRAYS:
        return _ARRAYS[path]
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path) as z:
                keys = list(z.keys())
                key = "videos" if "videos" in keys else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise VideoDecodeError(f"{path}: an .npz of videos needs one array or a 'videos' entry, "
                                           f"found {keys}")
                arr = z[key]
        else:
            arr = np.load(path, mmap_mode="r")
    except VideoDecodeError:
        raise
    except Exception as e:
        raise VideoDecodeError(f"cannot read video array {path}: {e}") from e
    if arr.ndim != 5 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise VideoDecodeError(f"{path}: expected uint8 videos (N, T, H, W, 3), got {arr.dtype} {arr.shape}; "
                               "convert with (x * 255).round().clip(0, 255).astype(np.uint8) for [0, 1] floats")
    _ARRAYS[path] = arr
    return arr


def is_video_file(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_videos(src) -> list[Video]:
    """The videos of ``src`` (folder of videos, folder of frame folders, a video file or an array file),
    sorted by name (see the module docstring)."""
    src = Path(src)
    if src.is_file():
        if src.suffix.lower() in ARRAY_EXTENSIONS:
            n = _load_array(src).shape[0]
            return [Video(f"{src.stem}_{i:06d}", src, "array", i) for i in range(n)]
        if is_video_file(src):
            return [Video(src.name, src, "file")]
        raise ValueError(f"{src}: not a folder of videos, a video file or an .npy/.npz array of videos")
    if not src.is_dir():
        raise FileNotFoundError(f"no such file or folder: {src}")
    files, image_dirs = [], set()
    for p in src.rglob("*"):
        suffix = p.suffix.lower()
        if suffix in VIDEO_EXTENSIONS and p.is_file():
            files.append(p)
        elif suffix in IMAGE_EXTENSIONS and p.is_file():
            image_dirs.add(p.parent)
    videos = [Video(p.relative_to(src).as_posix(), p, "file") for p in files]
    # a folder of images is a video only if no video file and no other image folder lies below it
    taken = {d for p in files for d in p.parents} | {d for f in image_dirs for d in f.parents}
    for d in image_dirs - taken:
        rel = d.relative_to(src).as_posix()
        videos.append(Video(src.resolve().name if rel == "." else rel, d, "frames"))
    if not videos:
        raise ValueError(f"{src} holds no videos: expected video files ({' '.join(VIDEO_EXTENSIONS)}) or "
                         f"folders of frame images ({' '.join(IMAGE_EXTENSIONS)})")
    return sorted(videos, key=lambda v: v.name)


# ---------------------------------------------------------------- shards

T = TypeVar("T")
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``0 <= K < N``; None or "" -> ``(0, 1)`` (everything).

    >>> parse_shard("1/4")
    (1, 4)
    """
    if spec is None or spec == "":
        return 0, 1
    m = _SHARD.match(str(spec))
    if not m:
        raise ValueError(f"--shard must look like K/N (e.g. 0/4: the first of 4 shards), got {spec!r}")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {spec}: need N >= 1 and 0 <= K < N (K counts from 0, so 0/{max(n, 1)} "
                         f"... {max(n, 1) - 1}/{max(n, 1)})")
    return k, n


def select_shard(items: Sequence[T], k: int, n: int) -> list[T]:
    """Items ``k, k + n, k + 2n, ...`` of ``items`` (already in :func:`list_videos` order).

    >>> select_shard(["a", "b", "c", "d", "e"], 1, 4)
    ['b']
    """
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"shard {k}/{n}: need N >= 1 and 0 <= K < N")
    return list(items)[k::n]
