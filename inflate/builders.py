"""Build a 2D model from timm or torchvision by name, and inflate it."""
from __future__ import annotations

from inflate.engine import inflate
from inflate.sources import create_timm, create_torchvision, timm_source, torchvision_source
from inflate.video_model import VideoModel


def from_timm(name: str, *, time_kernel: int = 3, pretrained: bool = False, policy=None, init: str = "mean",
              time_padding: str = "replicate", causal: bool = False, **timm_kwargs) -> VideoModel:
    """``timm.create_model(name, pretrained, **timm_kwargs)``, inflated. The model's config records how to
    rebuild it, so :func:`inflate.load` needs only the saved file."""
    model = create_timm(name, pretrained=pretrained, **timm_kwargs)
    return inflate(model, time_kernel=time_kernel, policy=policy, init=init, time_padding=time_padding,
                   causal=causal, source=timm_source(name, model, timm_kwargs))


def from_torchvision(name: str, *, time_kernel: int = 3, weights=None, policy=None, init: str = "mean",
                     time_padding: str = "replicate", causal: bool = False, **kwargs) -> VideoModel:
    """``torchvision.models.get_model(name, weights=weights, **kwargs)``, inflated."""
    model = create_torchvision(name, weights=weights, **kwargs)
    return inflate(model, time_kernel=time_kernel, policy=policy, init=init, time_padding=time_padding,
                   causal=causal, source=torchvision_source(name, kwargs))
