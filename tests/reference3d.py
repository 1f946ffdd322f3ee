"""A plain reference for inflated layers: ``F.conv3d`` / ``F.max_pool3d`` / ``F.avg_pool3d`` on a clip
padded explicitly, written without ``inflate``'s own padding helpers, so the differential tests compare two
independent implementations of the same maths.

Temporal padding rule (the documented contract, restated here):
  * non-causal: TensorFlow "SAME": ``ceil(T / s)`` outputs, total padding
    ``max((ceil(T/s) - 1) * s + span - T, 0)`` with ``span = (kt - 1) * dt + 1``, the extra frame at the back;
  * causal: ``span - 1`` frames in front and none at the back, so output ``t`` ends exactly at input
    frame ``t * s`` (still ``ceil(T / s)`` outputs).
Padded frames: copies of the edge frames ("replicate"), zeros ("zeros") or the clip wrapped around
("circular"). Temporal max pooling pads with edge frames whatever the mode: only real frames compete (as
with ``-inf`` padding, except that a dilated window holding padded frames only takes its nearest frame).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def time_pad_amounts(length: int, kernel: int, stride: int, dilation: int, causal: bool) -> tuple[int, int]:
    span = (kernel - 1) * dilation + 1
    if causal:
        return span - 1, 0
    outputs = math.ceil(length / stride)
    total = max((outputs - 1) * stride + span - length, 0)
    return total // 2, total - total // 2


def pad_frames(x: torch.Tensor, front: int, back: int, mode: str) -> torch.Tensor:
    """Pad axis 2 of a (B, C, T, H, W) clip, frame by frame."""
    t = x.shape[2]
    if mode == "zeros":
        return F.pad(x, (0, 0, 0, 0, front, back))
    if mode == "-inf":
        return F.pad(x, (0, 0, 0, 0, front, back), value=float("-inf"))
    if mode == "replicate":
        frames = [x[:, :, min(max(i, 0), t - 1)] for i in range(-front, t + back)]
    elif mode == "circular":
        frames = [x[:, :, i % t] for i in range(-front, t + back)]
    else:
        raise ValueError(mode)
    return torch.stack(frames, dim=2)


def spatial_pads(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """``(w_left, w_right, h_top, h_bottom)`` the 2D conv pads each frame with."""
    if conv.padding == "valid":
        return 0, 0, 0, 0
    if conv.padding == "same":
        (dh, dw), (kh, kw) = conv.dilation, conv.kernel_size
        th, tw = dh * (kh - 1), dw * (kw - 1)
        return tw // 2, tw - tw // 2, th // 2, th - th // 2
    ph, pw = conv.padding
    return pw, pw, ph, ph


def conv3d_reference(x, conv2d: nn.Conv2d, weight3d, kernel, stride, dilation, time_padding, causal):
    """What an inflated ``conv2d`` with a ``(out, in/g, kt, kh, kw)`` weight must compute on clip ``x``."""
    front, back = time_pad_amounts(x.shape[2], kernel, stride, dilation, causal)
    x = pad_frames(x, front, back, time_padding)
    wl, wr, ht, hb = spatial_pads(conv2d)
    mode = {"zeros": "constant"}.get(conv2d.padding_mode, conv2d.padding_mode)
    x = F.pad(x, (wl, wr, ht, hb, 0, 0), mode=mode)
    return F.conv3d(x, weight3d, conv2d.bias, (stride, *conv2d.stride), 0, (dilation, *conv2d.dilation),
                    conv2d.groups)


def pool3d_reference(x, pool2d: nn.Module, kernel, stride, dilation, time_padding, causal):
    """What an inflated ``MaxPool2d``/``AvgPool2d`` with temporal ``kernel/stride/dilation`` must compute."""
    outputs = math.ceil(x.shape[2] / stride)  # a 3D ceil_mode may add a window in time: keep the first ones
    front, back = time_pad_amounts(x.shape[2], kernel, stride, dilation, causal)
    pair = nn.modules.utils._pair
    k, s, p = pair(pool2d.kernel_size), pair(pool2d.stride or pool2d.kernel_size), pair(pool2d.padding)
    if isinstance(pool2d, nn.MaxPool2d):
        x = pad_frames(x, front, back, "replicate")
        return F.max_pool3d(x, (kernel, *k), (stride, *s), (0, *p), (dilation, *pair(pool2d.dilation)),
                            ceil_mode=pool2d.ceil_mode)[:, :, :outputs]
    x = pad_frames(x, front, back, time_padding)
    if dilation == 1:
        return F.avg_pool3d(x, (kernel, *k), (stride, *s), (0, *p), pool2d.ceil_mode,
                            pool2d.count_include_pad)[:, :, :outputs]
    # avg_pool3d has no dilation: pool space, then average the dilated taps with a depthwise conv
    x = F.avg_pool3d(x, (1, *k), (1, *s), (0, *p), pool2d.ceil_mode, pool2d.count_include_pad)
    c = x.shape[1]
    taps = x.new_full((c, 1, kernel, 1, 1), 1.0 / kernel)
    return F.conv3d(x, taps, None, (stride, 1, 1), 0, (dilation, 1, 1), c)


def expected_init(w2d: torch.Tensor, kernel: int, mode: str) -> torch.Tensor | None:
    """The inflated kernel each deterministic init mode must give (``None`` for "noise")."""
    taps = [torch.zeros_like(w2d) for _ in range(kernel)]
    if mode == "mean":
        taps = [w2d / kernel for _ in range(kernel)]
    elif mode == "center":
        taps[kernel // 2] = w2d
    elif mode == "first":
        taps[0] = w2d
    elif mode == "last":
        taps[-1] = w2d
    else:
        return None
    return torch.stack(taps, dim=2)
