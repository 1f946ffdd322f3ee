"""Preprocessing that the zoo's models expect, as callables that travel with each registry entry.

RGB (DeepMind's I3D): frames at 25 fps, short side resized to 256, centre crop 224, scaled to [-1, 1].
Flow: TV-L1 flow in pixels, clipped to [-20, 20] and divided by 20.
Both take any clip :func:`zoo.clip_input.as_clip` accepts (numpy arrays, tensors, lists of PIL images or
arrays; uint8 or float; ``(T, H, W, C)`` or ``(C, T, H, W)``) and return a float tensor ``(C, T, H, W)``; add
the batch dimension with ``x[None]``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from zoo.clip_input import as_clip
from zoo.data.sampling import resample_indices
from zoo.data.transforms import crop, resize


def short_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    """``(H', W')`` with ``min(H', W') == size`` and the aspect ratio kept."""
    scale = size / min(h, w)
    return max(size, round(h * scale)), max(size, round(w * scale))


def resize_short_side(x: torch.Tensor, size: int, kind: str = "rgb") -> torch.Tensor:
    """Resize ``(C, T, H, W)`` so that min(H, W) == size (bilinear, antialiased); flow vectors scale along."""
    return resize(x, short_side_size(*x.shape[-2:], size), kind)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot centre-crop {size}x{size} from frames of {h}x{w}; resize first")
    return crop(x, ((h - size) // 2, (w - size) // 2, size, size))


@dataclass(frozen=True)
class RGBPreprocess:
    fps: float = 25.0
    short_side: int = 256
    crop: int = 224
    mean: tuple | None = None  # ImageNet-style normalisation instead of [-1, 1] (inflated timm models)
    std: tuple | None = None

    def __call__(self, frames, fps: float | None = None) -> torch.Tensor:
        """uint8 (0..255) or float (0..1) frames -> ``(3, T, crop, crop)`` in [-1, 1] (or normalised by
        ``mean``/``std`` when they are set)."""
        x = as_clip(frames, 3)
        if fps is not None and abs(fps - self.fps) > 1e-3:
            x = x[:, resample_indices(x.shape[1], fps, self.fps)]
        x = center_crop(resize_short_side(x, self.short_side), self.crop)
        x = (x.float() / 255.0 if x.dtype == torch.uint8 else x.float()).clamp_(0.0, 1.0)
        if self.mean is not None:
            return (x - torch.tensor(self.mean).view(3, 1, 1, 1)) / torch.tensor(self.std).view(3, 1, 1, 1)
        return x * 2.0 - 1.0

    def to_dict(self) -> dict:
        return {"kind": "rgb", **asdict(self)}


@dataclass(frozen=True)
class FlowPreprocess:
    bound: float = 20.0
    short_side: int = 256
    crop: int = 224

    def __call__(self, flow) -> torch.Tensor:
        """Flow in pixels ``(T, H, W, 2)`` or ``(2, T, H, W)`` -> ``(2, T, crop, crop)`` in [-1, 1].

        Resizing scales the flow vectors with the frame, so displacements stay in the new pixels."""
        y = center_crop(resize_short_side(as_clip(flow, 2).float(), self.short_side, kind="flow"), self.crop)
        return y.clamp(-self.bound, self.bound) / self.bound

    def to_dict(self) -> dict:
        return {"kind": "flow", **asdict(self)}


def preprocess_from_dict(d: dict):
    kind = d.get("kind")
    kwargs = {k: v for k, v in d.items() if k != "kind"}
    if kind == "rgb":
        return RGBPreprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})
    if kind == "flow":
        return FlowPreprocess(**kwargs)
    raise ValueError(f"unknown preprocessing {d!r}")
