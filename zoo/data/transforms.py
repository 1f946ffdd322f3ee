"""Clip transforms on ``(C, T, H, W)`` tensors that apply ONE random draw to a sample's RGB and flow.

A sample is a dict; its streams are the keys ``"rgb"`` (uint8 or float in [0, 255], 3 channels) and
``"flow"`` (float, 2 channels: x then y displacement, in pixels); other keys pass through untouched.
Each :class:`PairedTransform` draws its parameters once per call (crop box, flip, scale) and applies the
same ones to every stream, so the streams stay aligned pixel for pixel. Geometry on flow is exact:

* resizing scales the x component by the width factor and the y component by the height factor;
* a horizontal flip mirrors the field and negates its x component (a shape moving right, mirrored, moves
  left): ``hflip(flow)[0] == -mirror(flow[0])`` and ``hflip(flow)[1] == mirror(flow[1])``.

RGB stays uint8 through resize, crop and flip (the uint8 resize is ~15x faster than float on CPU) and
becomes float in [-1, 1] in :class:`Normalize`, which also maps flow to ``clip(flow, ±bound) / bound``
(by default the bound recorded with the stored flow, which datasets pass on as the sample's "flow_bound").
Functions take the channel axis at -4 and time at -3, so they also work on stacked views ``(V, C, T, H, W)``.

    >>> t = Compose([ResizeShortSide(256), MultiScaleCrop(224), RandomHorizontalFlip(), Normalize(20.0)])
    >>> out = t({"rgb": rgb_u8, "flow": flow_px}, generator=torch.Generator().manual_seed(0))
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

STREAMS = ("rgb", "flow")
Box = tuple[int, int, int, int]  # top, left, height, width

__all__ = ["STREAMS", "resize", "crop", "hflip", "scale_rgb", "scale_flow", "three_crop_boxes",
           "PairedTransform", "Compose", "ResizeShortSide", "Resize", "RandomCrop", "CenterCrop",
           "MultiScaleCrop", "ThreeCrop", "RandomHorizontalFlip", "Normalize", "train_transform",
           "test_transform"]


# ---------------------------------------------------------------- functions

def resize(x: torch.Tensor, size: tuple[int, int], kind: str = "rgb") -> torch.Tensor:
    """``(C, T, H, W)`` -> ``(C, T, *size)``, bilinear and antialiased; uint8 stays uint8. For flow the
    vectors are rescaled with the frame (x by the width factor, y by the height factor)."""
    h, w = x.shape[-2:]
    nh, nw = size
    if (nh, nw) == (h, w):
        return x
    frames = x.transpose(0, 1)  # (T, C, H, W)
    if frames.dtype != torch.uint8:
        frames = frames.float()
    y = F.interpolate(frames, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    y = y.transpose(0, 1)
    if kind == "flow":
        y = y * torch.tensor([nw / w, nh / h], dtype=y.dtype).view(2, 1, 1, 1)
    return y


def crop(x: torch.Tensor, box: Box) -> torch.Tensor:
    top, left, h, w = box
    if top < 0 or left < 0 or top + h > x.shape[-2] or left + w > x.shape[-1]:
        raise ValueError(f"crop box {box} outside frames of {tuple(x.shape[-2:])}")
    return x[..., top:top + h, left:left + w]


def hflip(x: torch.Tensor, kind: str = "rgb") -> torch.Tensor:
    """Mirror left-right; for flow also negate the x component (channel 0)."""
    y = x.flip(-1)
    if kind == "flow":
        y[..., 0, :, :, :].neg_()
    return y


def scale_rgb(x: torch.Tensor) -> torch.Tensor:
    """uint8 (or float in [0, 255]) -> float in [-1, 1]."""
    if x.dtype == torch.uint8:  # contiguous first: converting a strided crop is ~2x slower
        return x.contiguous().to(torch.float32).div_(127.5).sub_(1.0)
    return (x.to(torch.float32) / 127.5 - 1.0).clamp_(-1.0, 1.0)


def scale_flow(x: torch.Tensor, bound: float = 20.0) -> torch.Tensor:
    """Flow in pixels -> ``clip(x, -bound, bound) / bound`` in [-1, 1]."""
    return x.contiguous().to(torch.float32).clamp(-bound, bound).div_(bound)


def three_crop_boxes(h: int, w: int, size: int) -> list[Box]:
    """Three ``size`` squares along the long side: start, centre, end (they cover the frame when
    the short side is ``size`` and the long side at most ``3 * size``)."""
    if h < size or w < size:
        raise ValueError(f"cannot three-crop {size}x{size} from frames of {h}x{w}; resize first")
    if w >= h:
        return [(((h - size) // 2), left, size, size) for left in (0, (w - size) // 2, w - size)]
    return [(top, (w - size) // 2, size, size) for top in (0, (h - size) // 2, h - size)]


def _frame_size(sample: dict) -> tuple[int, int]:
    sizes = {tuple(sample[k].shape[-2:]) for k in STREAMS if k in sample}
    if len(sizes) != 1:
        raise ValueError(f"the streams' frames differ in size ({sorted(sizes)}) or there is no stream; "
                         "put a ResizeShortSide/Resize first so that one box fits both")
    return sizes.pop()


def _randint(low: int, high: int, generator) -> int:
    """Uniform in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (1,), generator=generator).item())


# ---------------------------------------------------------------- paired transforms

class PairedTransform:
    """Draw parameters once for a sample (:meth:`draw`), apply them to every stream (:meth:`apply`)."""

    def draw(self, sample: dict, generator: torch.Generator | None):
        return None

    def apply(self, x: torch.Tensor, params, kind: str) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, sample: dict, generator: torch.Generator | None = None) -> dict:
        params = self.draw(sample, generator)
        return {k: self.apply(v, params, k) if k in STREAMS else v for k, v in sample.items()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Compose(PairedTransform):
    def __init__(self, transforms: Sequence[PairedTransform]):
        self.transforms = list(transforms)

    def __call__(self, sample: dict, generator: torch.Generator | None = None) -> dict:
        for t in self.transforms:
            sample = t(sample, generator)
        return sample


class ResizeShortSide(PairedTransform):
    """Each stream's short side to ``size``, keeping its aspect ratio."""

    def __init__(self, size: int):
        self.size = size

    def apply(self, x, params, kind):
        h, w = x.shape[-2:]
        s = self.size / min(h, w)
        return resize(x, (max(self.size, round(h * s)), max(self.size, round(w * s))), kind)


class Resize(PairedTransform):
    def __init__(self, size: int | tuple[int, int]):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def apply(self, x, params, kind):
        return resize(x, self.size, kind)


class _Crop(PairedTransform):
    what = "crop"

    def __init__(self, size: int):
        self.size = size

    def frame_size(self, sample) -> tuple[int, int]:
        h, w = _frame_size(sample)
        if h < self.size or w < self.size:
            raise ValueError(f"cannot {self.what} {self.size}x{self.size} from frames of {h}x{w}; resize first")
        return h, w

    def apply(self, x, box, kind):
        return crop(x, box)


class RandomCrop(_Crop):
    def draw(self, sample, generator):
        h, w = self.frame_size(sample)
        return _randint(0, h - self.size, generator), _randint(0, w - self.size, generator), self.size, self.size


class CenterCrop(_Crop):
    what = "centre-crop"

    def draw(self, sample, generator):
        h, w = self.frame_size(sample)
        return (h - self.size) // 2, (w - self.size) // 2, self.size, self.size


class MultiScaleCrop(PairedTransform):
    """TSN's / MMAction2's MultiScaleCrop: a crop whose sides are ``scale * short side`` (width and height
    scales at most ``max_distort`` steps apart in ``scales``), at one of 5 (or 13 with ``more_fix_crop``)
    fixed positions (or anywhere with ``fix_crop=False``), resized to ``size x size``."""

    def __init__(self, size: int, scales: Sequence[float] = (1, 0.875, 0.75, 0.66), max_distort: int = 1,
                 fix_crop: bool = True, more_fix_crop: bool = False):
        self.size, self.scales, self.max_distort = size, tuple(scales), max_distort
        self.fix_crop, self.more_fix_crop = fix_crop, more_fix_crop

    def draw(self, sample, generator):
        h, w = _frame_size(sample)
        sides = [int(min(h, w) * s) for s in self.scales]
        pairs = [(ch, cw) for i, ch in enumerate(sides) for j, cw in enumerate(sides)
                 if abs(i - j) <= self.max_distort]
        ch, cw = pairs[_randint(0, len(pairs) - 1, generator)]
        ch, cw = (self.size if abs(ch - self.size) < 3 else ch), (self.size if abs(cw - self.size) < 3 else cw)
        ch, cw = min(ch, h), min(cw, w)
        if not self.fix_crop:
            return _randint(0, h - ch, generator), _randint(0, w - cw, generator), ch, cw
        hs, ws = (h - ch) // 4, (w - cw) // 4
        grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
        if self.more_fix_crop:
            grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
        gy, gx = grid[_randint(0, len(grid) - 1, generator)]
        return gy * hs, gx * ws, ch, cw

    def apply(self, x, box, kind):
        return resize(crop(x, box), (self.size, self.size), kind)


class ThreeCrop(PairedTransform):
    """Three ``size`` squares along the long side, stacked: ``(C, T, H, W)`` -> ``(3, C, T, size, size)``."""

    def __init__(self, size: int):
        self.size = size

    def draw(self, sample, generator):
        return three_crop_boxes(*_frame_size(sample), self.size)

    def apply(self, x, boxes, kind):
        return torch.stack([crop(x, b) for b in boxes])


class RandomHorizontalFlip(PairedTransform):
    """With probability ``p``, mirror every stream (negating flow's x)."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def draw(self, sample, generator):
        return bool(torch.rand((), generator=generator).item() < self.p)

    def apply(self, x, flip, kind):
        return hflip(x, kind) if flip else x


class Normalize(PairedTransform):
    """RGB -> [-1, 1]; flow in pixels -> ``clip(±bound) / bound`` (DeepMind's I3D: bound 20).

    ``flow_bound=None`` (the default) takes the bound the flow was stored with: the sample's ``"flow_bound"``
    (datasets put the bound recorded in the flow's ``meta.json`` there), else 20. A number overrides it.
    The ``"flow_bound"`` key is consumed here."""

    def __init__(self, flow_bound: float | None = None):
        self.flow_bound = flow_bound

    def draw(self, sample, generator):
        return float(self.flow_bound if self.flow_bound is not None else sample.get("flow_bound", 20.0))

    def apply(self, x, bound, kind):
        return scale_flow(x, bound) if kind == "flow" else scale_rgb(x)

    def __call__(self, sample: dict, generator: torch.Generator | None = None) -> dict:
        out = super().__call__(sample, generator)
        out.pop("flow_bound", None)
        return out


def train_transform(size: int = 224, short_side: int = 256, flow_bound: float | None = None,
                    multiscale: bool = True) -> Compose:
    crop_t = MultiScaleCrop(size) if multiscale else RandomCrop(size)
    return Compose([ResizeShortSide(short_side), crop_t, RandomHorizontalFlip(), Normalize(flow_bound)])


def test_transform(size: int = 224, short_side: int = 256, flow_bound: float | None = None,
                   three_crop: bool = False) -> Compose:
    crop_t = ThreeCrop(size) if three_crop else CenterCrop(size)
    return Compose([ResizeShortSide(short_side), crop_t, Normalize(flow_bound)])
