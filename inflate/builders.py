"""Build a 2D model from timm or torchvision by name, and inflate it."""
from __future__ import annotations

import difflib

import torch.nn as nn

from inflate.engine import inflate
from inflate.video_model import VideoModel

OFFLINE_HINT = (
    "This machine could not download the pretrained weights. Either put them where the library looks "
    "(timm: the Hugging Face cache under $HF_HOME, or pass pretrained_cfg_overlay=dict(file='/path/to/weights."
    "safetensors'); torchvision: $TORCH_HOME/hub/checkpoints), or use pretrained=False and load your own "
    "weights.")


def _suggest(name: str, names) -> str:
    close = difflib.get_close_matches(name, list(names), n=5, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def create_timm(name: str, *, pretrained: bool = False, **timm_kwargs) -> nn.Module:
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r}.{_suggest(name, timm.list_models())} "
                         "See timm.list_models('pattern*').")
    try:
        return timm.create_model(name, pretrained=pretrained, **timm_kwargs)
    except (OSError, RuntimeError) as e:  # huggingface_hub and urllib errors are OSError subclasses
        if not pretrained:
            raise
        raise RuntimeError(f"timm model {name!r}: loading pretrained weights failed ({type(e).__name__}: {e}). "
                           + OFFLINE_HINT) from e


def create_torchvision(name: str, *, weights=None, **kwargs) -> nn.Module:
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        raise ValueError(f"unknown torchvision classification model {name!r}.{_suggest(name, available)} "
                         "See torchvision.models.list_models().")
    try:
        return torchvision.models.get_model(name, weights=weights, **kwargs)
    except OSError as e:  # URLError is an OSError
        raise RuntimeError(f"torchvision model {name!r}: loading weights {weights!r} failed ({e}). "
                           + OFFLINE_HINT) from e


def timm_source(name: str, model: nn.Module, kwargs: dict) -> dict:
    """How to rebuild a timm model, and the input size it takes (for the inflation probe)."""
    return {"kind": "timm", "name": name, "kwargs": _jsonable(kwargs),
            "input_size": [getattr(model, "in_chans", 3), *model.pretrained_cfg.get("input_size", (3, 224, 224))[1:]]}


def torchvision_source(name: str, kwargs: dict) -> dict:
    size = 299 if name == "inception_v3" else 224
    return {"kind": "torchvision", "name": name, "kwargs": _jsonable(kwargs), "input_size": [3, size, size]}


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


def _jsonable(kwargs: dict) -> dict:
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, (str, int, float, bool, type(None), list, tuple, dict)):
            out[k] = list(v) if isinstance(v, tuple) else v
        else:
            raise TypeError(f"model argument {k}={v!r} cannot be recorded in the model's config; "
                            "pass plain values (str, int, float, bool, lists)")
    return out


def build_2d(source: dict) -> nn.Module:
    """Rebuild the 2D architecture (random weights) that a config's ``source`` describes."""
    kind = source.get("kind")
    if kind == "timm":
        return create_timm(source["name"], pretrained=False, **source.get("kwargs", {}))
    if kind == "torchvision":
        return create_torchvision(source["name"], weights=None, **source.get("kwargs", {}))
    raise ValueError(f"cannot rebuild a model from source {source!r}: only timm and torchvision sources are "
                     "recorded. Build the 2D model yourself and call inflate.inflate(model, policy=config['policy'])")
