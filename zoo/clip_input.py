"""Clips as users hold them, turned into one tensor ``(C, T, H, W)``.

Accepted, everywhere the library takes frames (the zoo's preprocessing, ``predict``, the flow helpers):

- a ``numpy.ndarray`` or ``torch.Tensor`` of 4 dimensions, ``(T, H, W, C)`` (what PyAV, OpenCV, PIL and
  torchvision's ``read_video`` give) or ``(C, T, H, W)``;
- a list or tuple of frames, each a PIL image, or an array or tensor ``(H, W, C)`` or ``(C, H, W)``;
- dtype ``uint8`` (0..255) or floating point (for RGB, 0..1).

The layout is told by the channel axis: ``C`` last is ``(T, H, W, C)``, ``C`` first is ``(C, T, H, W)``. When
both could be (three frames of three channels), ``(T, H, W, C)`` is taken; pass ``layout="CTHW"`` to say
otherwise. The values and dtype are kept (uint8 stays uint8); anything else raises an error that says what was
expected.
"""
from __future__ import annotations

import numpy as np
import torch

LAYOUTS = ("THWC", "CTHW")
EXPECTED = ("a clip as (T, H, W, C) or (C, T, H, W) numpy array or torch tensor, or a list of frames "
            "(PIL images, or (H, W, C) / (C, H, W) arrays or tensors), uint8 0..255 or float")


def as_clip(frames, channels: int = 3, layout: str | None = None) -> torch.Tensor:
    """``frames`` as a tensor ``(channels, T, H, W)``, with its dtype kept (uint8 or floating point).

    Args:
        frames: see the module's docstring for what is accepted.
        channels: the channels a frame must have (3 for RGB, 2 for optical flow).
        layout: ``"THWC"`` or ``"CTHW"`` to force the reading of a 4D array; by default it is told by the axis
            that holds ``channels``.
    """
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {LAYOUTS} or None (told from the shape)")
    if isinstance(frames, (list, tuple)):
        x = _stack(frames, channels)
        layout = "THWC"
    else:
        x = _tensor(frames, "the clip")
    _check_dtype(x, "the clip")
    if x.dim() != 4:
        hint = " For a batch of one clip, pass x[0]." if x.dim() == 5 and x.shape[0] == 1 else ""
        raise ValueError(f"expected a 4-dimensional clip, (T, H, W, C) or (C, T, H, W) with C = {channels}; "
                         f"got shape {tuple(x.shape)}.{hint}")
    if layout is None:
        layout = "THWC" if x.shape[-1] == channels else "CTHW"
    if layout == "THWC":
        x = x.permute(3, 0, 1, 2)
    if x.shape[0] != channels:
        raise ValueError(f"expected frames with {channels} channels, as (T, H, W, {channels}) or "
                         f"({channels}, T, H, W); got shape {tuple(frames.shape) if hasattr(frames, 'shape') else tuple(x.shape)}"
                         f" (read as {layout})")
    return x


def _tensor(a, what: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        if a.dtype != np.uint8 and a.dtype.kind != "f":
            raise TypeError(f"{what} must hold uint8 or float values; got a numpy array of {a.dtype}")
        return torch.from_numpy(np.ascontiguousarray(a) if not a.flags.writeable or any(s < 0 for s in a.strides)
                                else a)
    if type(a).__module__.startswith("PIL."):
        return torch.from_numpy(np.array(a.convert("RGB")))
    hint = " To read a video file, use zoo.data.decode.read_frames(path)." if isinstance(a, (str, bytes)) or \
        hasattr(a, "__fspath__") else ""
    raise TypeError(f"expected {EXPECTED}; {what} is a {type(a).__name__}.{hint}")


def _check_dtype(x: torch.Tensor, what: str) -> None:
    if x.dtype != torch.uint8 and not x.dtype.is_floating_point:
        raise TypeError(f"{what} must hold uint8 (0..255) or float values; got {x.dtype}. "
                        "Convert it with x.astype(np.uint8) / x.to(torch.uint8), or to float in 0..1")


def _stack(frames, channels: int) -> torch.Tensor:
    if len(frames) == 0:
        raise ValueError(f"expected {EXPECTED}; got an empty {type(frames).__name__} (no frames)")
    out = []
    for i, f in enumerate(frames):
        t = _tensor(f, f"frame {i}")
        _check_dtype(t, f"frame {i}")
        if t.dim() == 2 and channels == 1:
            t = t[..., None]
        if t.dim() != 3:
            raise ValueError(f"frame {i} has shape {tuple(t.shape)}; each frame must be (H, W, {channels}) or "
                             f"({channels}, H, W)")
        if t.shape[-1] != channels and t.shape[0] == channels:
            t = t.permute(1, 2, 0)
        if out and (t.shape != out[0].shape or t.dtype != out[0].dtype):
            raise ValueError(f"frame {i} is {tuple(t.shape)} {t.dtype} as (H, W, C), but frame 0 is "
                             f"{tuple(out[0].shape)} {out[0].dtype}; all frames must have one size and dtype")
        out.append(t)
    return torch.stack(out)
