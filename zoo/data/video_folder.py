"""The videos of an input folder or array file, for the FVD and feature commands.

    >>> videos = list_videos("clips/")                # sorted, by relative path
    >>> n = videos[0].num_frames(); clip = videos[0].read([0, 1, 2])   # uint8 (T, H, W, 3)

A source is one of:

* a folder of video files (any format :mod:`zoo.data.decode` reads: ``.mp4 .avi .mkv .webm .mov .gif``,
  searched recursively), decoded with torchcodec or PyAV;
* a folder of folders of frame images (``.jpg .jpeg .png .bmp .webp``), one folder per video, frames in
  file-name order;
* a ``.npy`` / ``.npz`` file holding one uint8 array ``(N, T, H, W, 3)`` (an ``.npz`` with one array, or
  with a ``videos`` entry).

Every read error is a :class:`~zoo.data.decode.VideoDecodeError` naming the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zoo.data.decode import VideoDecodeError, read_frames, video_info

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".gif")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
ARRAY_EXTENSIONS = (".npy", ".npz")


@dataclass(frozen=True)
class Video:
    """One video of a source: a file, a folder of frames, or entry ``index`` of an array file."""
    name: str              # relative path (without extension for files), used to name outputs
    path: Path
    kind: str              # "file", "frames" or "array"
    index: int = 0

    def num_frames(self) -> int:
        if self.kind == "file":
            return video_info(self.path)[0]
        if self.kind == "frames":
            return len(_frame_files(self.path))
        return int(_load_array(self.path).shape[1])

    def fps(self) -> float:
        return video_info(self.path)[1] if self.kind == "file" else 25.0

    def read(self, indices) -> torch.Tensor:
        """uint8 RGB frames ``(len(indices), H, W, 3)``."""
        if self.kind == "file":
            return read_frames(self.path, indices)
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


def list_videos(src) -> list[Video]:
    """The videos of ``src`` (folder of videos, folder of frame folders, or an array file), sorted by name."""
    src = Path(src)
    if src.is_file():
        if src.suffix.lower() in ARRAY_EXTENSIONS:
            n = _load_array(src).shape[0]
            return [Video(f"{src.stem}_{i:06d}", src, "array", i) for i in range(n)]
        if src.suffix.lower() in VIDEO_EXTENSIONS:
            return [Video(src.stem, src, "file")]
        raise ValueError(f"{src}: not a folder of videos, a video file or an .npy/.npz array of videos")
    if not src.is_dir():
        raise FileNotFoundError(f"no such file or folder: {src}")
    found = [p for p in src.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS and p.is_file()]
    files = sorted(p for p in found if p.suffix.lower() in VIDEO_EXTENSIONS)
    videos = [Video(p.relative_to(src).with_suffix("").as_posix(), p, "file") for p in files]
    frame_dirs = sorted({p.parent for p in found if p.suffix.lower() in IMAGE_EXTENSIONS})
    videos += [Video(d.relative_to(src).as_posix() or src.name, d, "frames") for d in frame_dirs]
    if not videos:
        raise ValueError(f"{src} holds no videos: expected video files ({' '.join(VIDEO_EXTENSIONS)}) or "
                         f"folders of frame images ({' '.join(IMAGE_EXTENSIONS)})")
    return sorted(videos, key=lambda v: v.name)
