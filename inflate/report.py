"""The boring-video check and the inflation report (layers, parameters, GFLOPs, error)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from inflate.policy import Policy
from inflate.video_model import VideoModel


def first_tensor(y):
    if isinstance(y, torch.Tensor):
        return y
    if isinstance(y, (tuple, list)):
        return first_tensor(y[0])
    if isinstance(y, dict):
        return first_tensor(next(iter(y.values())))
    raise TypeError(f"model output of type {type(y).__name__} holds no tensor")


@torch.no_grad()
def boring_video_error(model_2d: nn.Module, model_3d: VideoModel, *, frames: int = 8, size=(64, 64),
                       batch: int = 2, in_chans: int | None = None, seed: int = 0,
                       dtype=torch.float32) -> float:
    """Relative max error between the 2D model on random images and the video model on the same images
    repeated ``frames`` times (``max|y3 - y2| / max|y2|``). Both models are put in eval mode."""
    model_2d.eval(), model_3d.eval()
    c = in_chans or model_3d.config.get("in_chans") or 3
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, c, *size, generator=g, dtype=dtype)
    y2 = first_tensor(model_2d(images))
    clip = images[:, :, None].expand(-1, -1, frames, -1, -1).contiguous()
    y3 = first_tensor(model_3d(clip))
    if y2.shape != y3.shape:
        raise AssertionError(f"2D output {tuple(y2.shape)} and video output {tuple(y3.shape)} differ in shape")
    return ((y3 - y2).abs().max() / y2.abs().max().clamp_min(1e-30)).item()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode  # imports triton where installed: only when counting

    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


@dataclass
class InflationReport:
    model: str
    policy: str
    init: str
    frames: int
    size: tuple
    inflated: dict
    inflated_by_type: dict
    kept_per_frame: list
    params_2d: int
    params_3d: int
    gflops_clip: float
    gflops_2d_per_frame: float
    max_rel_error: float
    seconds_inflate: float = 0.0
    extra: dict = field(default_factory=dict)

    def format(self) -> str:
        lines = [
            f"model            {self.model}",
            f"policy           {self.policy}",
            f"init             {self.init}",
            f"layers inflated  {self.inflated['conv']} conv, {self.inflated['pool']} pool"
            + (f"  ({', '.join(f'{v} {k}' for k, v in sorted(self.inflated_by_type.items()))})"
               if self.inflated_by_type else ""),
        ]
        if self.kept_per_frame:
            lines.append(f"kept per-frame   {len(self.kept_per_frame)}: {', '.join(self.kept_per_frame[:5])}")
        lines += [
            f"parameters       2D {self.params_2d / 1e6:.2f} M -> 3D {self.params_3d / 1e6:.2f} M "
            f"(x{self.params_3d / max(self.params_2d, 1):.2f})",
            f"GFLOPs           {self.gflops_clip:.2f} (2 x MACs) per clip of {self.frames}x{self.size[0]}x{self.size[1]} "
            f"(2D: {self.gflops_2d_per_frame:.2f} per frame, x{self.gflops_clip / max(self.gflops_2d_per_frame * self.frames, 1e-12):.2f} of {self.frames} frames)",
            f"inflation time   {self.seconds_inflate * 1000:.0f} ms",
            f"boring video     max relative error {self.max_rel_error:.2e} "
            f"({'PASS' if self.max_rel_error < 1e-5 else 'FAIL'}: the clip of one repeated frame gives the 2D output)",
        ]
        return "\n".join(lines)


def build_report(name: str, model_2d: nn.Module, model_3d: VideoModel, *, frames: int, size, seconds: float = 0.0,
                 batch: int = 1) -> InflationReport:
    c = model_3d.config.get("in_chans") or 3
    err = boring_video_error(model_2d, model_3d, frames=frames, size=size, batch=batch)
    flops_3d = count_flops(model_3d, torch.zeros(1, c, frames, *size))
    flops_2d = count_flops(model_2d, torch.zeros(1, c, *size))
    cfg = model_3d.config
    return InflationReport(
        model=name, policy=f"{cfg['policy']['name']} ({Policy.from_dict(cfg['policy']).to_text()})",
        init=cfg["init"], frames=frames, size=tuple(size), inflated=cfg["inflated"],
        inflated_by_type=cfg["inflated_by_type"], kept_per_frame=cfg["kept_per_frame"],
        params_2d=count_params(model_2d), params_3d=count_params(model_3d), gflops_clip=flops_3d / 1e9,
        gflops_2d_per_frame=flops_2d / 1e9, max_rel_error=err, seconds_inflate=seconds)

