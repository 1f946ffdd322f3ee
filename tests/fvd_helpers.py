"""Small FVD embedding networks for the FVD tests: fast stand-ins for I3D that still see every pixel."""
import torch

from zoo.metrics.fvd import FVDModel


def tiny_fvd_model(seed: int = 0, dim: int = 400) -> FVDModel:
    """Average-pool ``(B, 3, T, 224, 224)`` to ``3 x 2 x 4 x 4`` and map it linearly to ``dim`` features
    (random weights from ``seed``); recorded as weights ``custom``."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool3d((2, 4, 4)), torch.nn.Flatten(), torch.nn.Linear(96, dim))
    model = FVDModel(model=net)
    model.dim = dim
    return model


class FrameProbe(torch.nn.Module):
    """Features = the mean value of each frame of the clip: shows which frames the protocol took."""

    def forward(self, x):
        return x.mean(dim=(1, 3, 4))


def frame_probe_model(frames: int) -> FVDModel:
    model = FVDModel(model=FrameProbe())
    model.dim = frames
    return model
