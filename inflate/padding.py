"""The temporal padding rule: how many frames an inflated layer adds at each end of the clip.

Every inflated layer pads time "SAME"-style, as TensorFlow does: a layer with temporal stride ``s``
turns ``T`` frames into ``ceil(T / s)`` frames, and when the total padding is odd the extra frame goes
at the end. By default the padded frames are copies of the edge frames ("replicate"). That is what
makes the boring-video law hold at the clip's edges: every temporal window of a clip whose frames are
all equal sees the same frame ``kt`` times, so a kernel whose taps sum to the 2D kernel gives exactly
the 2D output. Zero padding gives that up at the edges for every init but ``center``.

The same arithmetic serves the I3D port's spatial "SAME" padding (``zoo``), so it lives here once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

TIME_PADDING_MODES = ("replicate", "zeros", "circular")


def same_output_length(length: int, stride: int) -> int:
    """Output length of a SAME-padded window op: ``ceil(length / stride)``."""
    return -(-length // stride)


def same_padding(length: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding ``(front, back)`` for one axis; the extra element goes at the back."""
    span = (kernel - 1) * dilation + 1
    total = max((same_output_length(length, stride) - 1) * stride + span - length, 0)
    return total // 2, total - total // 2


def causal_padding(length: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """``span - 1`` frames in front and none at the back: output step ``t``'s window ends exactly at input
    frame ``t * stride``, so it never sees a later frame, and there are ``ceil(length / stride)`` outputs,
    as with :func:`same_padding`. (Moving SAME's total padding to the front is not enough under a stride:
    for ``length=4, kernel=3, stride=2`` that pads 1 frame and output 0 would see frame 1.)"""
    return (kernel - 1) * dilation, 0


def pad_time(x: torch.Tensor, front: int, back: int, mode: str, dim: int = 2) -> torch.Tensor:
    """Pad axis ``dim`` of ``x`` with ``front``/``back`` frames by ``mode`` (see ``TIME_PADDING_MODES``)."""
    if front == 0 and back == 0:
        return x
    length = x.shape[dim]
    if mode == "replicate":
        index = torch.arange(-front, length + back, device=x.device).clamp_(0, length - 1)
    elif mode == "circular":
        index = torch.arange(-front, length + back, device=x.device).remainder_(length)
    elif mode == "zeros":
        shape = list(x.shape)
        parts = []
        if front:
            shape[dim] = front
            parts.append(x.new_zeros(shape))
        parts.append(x)
        if back:
            shape[dim] = back
            parts.append(x.new_zeros(shape))
        y = torch.cat(parts, dim)
        if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
            y = y.contiguous(memory_format=torch.channels_last_3d)
        return y
    else:
        raise ValueError(f"unknown temporal padding mode {mode!r}; choose one of {TIME_PADDING_MODES}")
    y = x.index_select(dim, index)
    if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
        y = y.contiguous(memory_format=torch.channels_last_3d)  # keep channels-last (index_select drops it)
    return y


def spatial_same_pad(x: torch.Tensor, kernel, stride, dilation, value: float = 0.0) -> torch.Tensor:
    """Pad the last two axes of ``x`` TF-"SAME"-style for the given 2D kernel/stride/dilation."""
    ph = same_padding(x.shape[-2], kernel[0], stride[0], dilation[0])
    pw = same_padding(x.shape[-1], kernel[1], stride[1], dilation[1])
    if ph == (0, 0) and pw == (0, 0):
        return x
    return F.pad(x, (pw[0], pw[1], ph[0], ph[1]), value=value)


__all__ = [
    "TIME_PADDING_MODES", "same_output_length", "same_padding", "causal_padding", "pad_time",
    "spatial_same_pad",
]
