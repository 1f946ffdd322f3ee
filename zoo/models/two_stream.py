"""Two-stream I3D: an RGB and a flow network, fused late by summing their logits (as DeepMind's release)."""
from __future__ import annotations

import torch
import torch.nn as nn


class TwoStreamI3D(nn.Module):
    """``forward(rgb, flow)`` -> ``rgb_logits * w_rgb + flow_logits * w_flow`` (weights 1 and 1 by default)."""

    def __init__(self, rgb: nn.Module, flow: nn.Module, weights=(1.0, 1.0)):
        super().__init__()
        self.rgb, self.flow = rgb, flow
        self.fusion_weights = tuple(float(w) for w in weights)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        w_rgb, w_flow = self.fusion_weights
        return self.rgb(rgb) * w_rgb + self.flow(flow) * w_flow
