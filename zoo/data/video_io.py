"""Read a clip's frames from a video file (PyAV) or a GIF (Pillow)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def read_frames(path) -> tuple[torch.Tensor, float]:
    """``(frames, fps)``: uint8 frames ``(T, H, W, 3)`` in RGB, and the clip's frame rate."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such video file: {path}")
    if path.suffix.lower() == ".gif":
        from PIL import Image, ImageSequence
        with Image.open(path) as im:
            frames, durations = [], []
            for frame in ImageSequence.Iterator(im):
                frames.append(np.asarray(frame.convert("RGB")))
                durations.append(frame.info.get("duration", 40) or 40)
        fps = 1000.0 / float(np.median(durations))
        return torch.from_numpy(np.stack(frames)), fps
    try:
        import av
    except ImportError as e:
        raise ImportError("reading video files needs PyAV: pip install 'quovadis[video]'") from e
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 25)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except av.error.FFmpegError as e:
        raise ValueError(f"cannot decode {path}: {e}") from e
    if not frames:
        raise ValueError(f"{path} holds no video frames")
    return torch.from_numpy(np.stack(frames)), fps


def flow_from_rgb_encoding(frames, bound: float = 20.0) -> torch.Tensor:
    """Flow in pixels ``(T, H, W, 2)`` from uint8 frames that store it as images: x in red, y in green,
    ``pixel = (flow / bound + 1) / 2 * 255`` (the layout of the kinetics-i3d sample flow GIF). ``frames`` is any
    clip :func:`zoo.clip_input.as_clip` accepts."""
    from zoo.clip_input import as_clip
    frames = as_clip(frames, 3).permute(1, 2, 3, 0)
    return (frames[..., :2].float() / 127.5 - 1.0) * bound
