"""TensorFlow 1's legacy ``tf.image.resize_bilinear`` (``align_corners=False, half_pixel_centers=False``) in torch.

The reference FVD resizes every frame this way, and torch's ``F.interpolate(..., "bilinear")`` does not: it
samples at half-pixel centres (``src = (dst + 0.5) * in/out - 0.5``), TF1's legacy kernel at
``src = dst * in/out`` with no shift, clamping the upper neighbour at the last pixel. On the same videos that
difference moves I3D features by ~10% and FVD by a few percent (see README, "FVD").

The arithmetic follows TF's ``resize_bilinear_op.cc`` step for step in float32: ``scale = float(in) / out``,
``src = float(dst) * scale``, ``lower = floor(src)``, ``upper = min(ceil(src), in - 1)``,
``lerp = src - floor(src)``; then ``top = tl + (tr - tl) * x_lerp``, ``bottom = bl + (br - bl) * x_lerp``,
``out = top + (bottom - top) * y_lerp``. Input of any dtype (uint8 frames included) is read as float32.
"""
from __future__ import annotations

import torch


def _weights(in_size: int, out_size: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32) * scale
    lower_f = torch.floor(src)
    lower = lower_f.long().clamp_(min=0)
    upper = torch.ceil(src).long().clamp_(max=in_size - 1)
    lerp = src - lower_f
    return lower.to(device), upper.to(device), lerp.to(device)


def resize_bilinear_tf1(images: torch.Tensor, size: tuple[int, int] | int, channels_last: bool = True) -> torch.Tensor:
    """Resize images as TF1 ``tf.compat.v1.image.resize_bilinear(images, size)`` does, float32 out.

    Args:
        images: ``(..., H, W, C)`` (``channels_last=True``, TF's layout) or ``(..., C, H, W)``; any dtype.
        size: ``(height, width)`` or one int for both.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    x = images.to(torch.float32)
    h_axis, w_axis = (-3, -2) if channels_last else (-2, -1)
    in_h, in_w = x.shape[h_axis], x.shape[w_axis]
    if in_h < 1 or in_w < 1 or out_h < 1 or out_w < 1:
        raise ValueError(f"cannot resize images of shape {tuple(images.shape)} to {out_h}x{out_w}")
    if (in_h, in_w) == (out_h, out_w):
        return x.clone() if x.data_ptr() == images.data_ptr() else x
    y0, y1, yl = _weights(in_h, out_h, x.device)
    x0, x1, xl = _weights(in_w, out_w, x.device)
    shape_y = [1] * x.dim()
    shape_y[h_axis] = out_h
    shape_x = [1] * x.dim()
    shape_x[w_axis] = out_w
    yl, xl = yl.view(shape_y), xl.view(shape_x)
    # Horizontal pass once per input row (``tl + (tr - tl) * x_lerp`` is the same number for every output row
    # that reads that input row), then the vertical pass on the rows each output row needs: TF's arithmetic.
    left, right = x.index_select(w_axis, x0), x.index_select(w_axis, x1)
    rows = left.add_(right.sub_(left).mul_(xl))
    top, bottom = rows.index_select(h_axis, y0), rows.index_select(h_axis, y1)
    return top.add_(bottom.sub_(top).mul_(yl))
