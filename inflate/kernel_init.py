"""Init modes: how a 2D kernel ``(out, in, kh, kw)`` becomes a 3D kernel ``(out, in, kt, kh, kw)``.

Every mode here makes the ``kt`` taps sum to the 2D kernel. With the default "replicate" temporal
padding, that is exactly what the boring-video law needs: a clip of one repeated frame gives the 2D
model's output, for any ``T``. The modes differ in how the taps share the kernel:

``mean``    every tap holds ``W / kt`` (I3D's bootstrapping; the default).
``center``  the central tap holds ``W``, the others zero (for even ``kt``, the later of the two middle taps).
            Also exact with zero temporal padding for odd ``kt`` and stride 1.
``first``   the first tap holds ``W``: at init each output frame copies its earliest input frame.
``last``    the last tap holds ``W``: with ``causal=True`` each output starts as exactly its own frame.
``noise``   ``mean`` plus zero-sum Gaussian noise across taps (std ``noise_std`` times the kernel's std),
            which breaks the taps' symmetry for training while keeping the boring-video law exact
            up to float rounding.

Biases, norm parameters and norm statistics are never touched: they carry over unchanged.
"""
from __future__ import annotations

import torch

INIT_MODES = ("mean", "center", "first", "last", "noise")


def inflate_kernel(weight_2d: torch.Tensor, kt: int, mode: str = "mean", *, noise_std: float = 0.1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Return a ``(out, in, kt, kh, kw)`` kernel whose taps sum to ``weight_2d``."""
    if weight_2d.dim() != 4:
        raise ValueError(f"expected a 2D conv kernel (out, in, kh, kw), got shape {tuple(weight_2d.shape)}")
    if mode not in INIT_MODES:
        raise ValueError(f"unknown init mode {mode!r}; choose one of {INIT_MODES}")
    w = weight_2d.detach()
    if mode in ("mean", "noise"):
        out = w.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        if mode == "noise" and kt > 1:
            noise = torch.randn(out.shape, generator=generator, dtype=torch.float64).to(out)
            noise = noise - noise.mean(dim=2, keepdim=True)  # zero-sum across taps keeps the law
            out = out + noise * (noise_std * w.float().std().clamp_min(1e-12)).to(out) / kt
        return out
    out = w.new_zeros(w.shape[:2] + (kt,) + w.shape[2:])
    tap = {"center": kt // 2, "first": 0, "last": kt - 1}[mode]
    out[:, :, tap] = w
    return out
