"""``zoo.list``, ``zoo.info`` and ``zoo.load``."""
from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from zoo.models.i3d import InceptionI3d
from zoo.registry import ModelEntry, get_entry, list_models
from zoo.models.two_stream import TwoStreamI3D
from zoo.weights.resolve import resolve
from zoo.weights.files import load_into


def info(name: str) -> ModelEntry:
    """The registry entry of ``name``: config, modality, labels, preprocessing, source, license, accuracy."""
    return get_entry(name)


def build(entry: ModelEntry, pretrained_2d: bool = False) -> nn.Module:
    """The architecture of ``entry`` with fresh random weights (inflated entries: with their 2D ImageNet
    weights bootstrapped when ``pretrained_2d``)."""
    if entry.arch == "inflated":
        import inflate
        src, policy = entry.config["source"], entry.config["policy"]
        if src["kind"] == "timm":
            return inflate.from_timm(src["name"], policy=policy, pretrained=pretrained_2d, **src["kwargs"])
        return inflate.from_torchvision(src["name"], policy=policy, weights="DEFAULT" if pretrained_2d else None,
                                        **src["kwargs"])
    if entry.arch == "inception_i3d":
        return InceptionI3d(**entry.config)
    if entry.arch == "two_stream_i3d":
        rgb, flow = (build(get_entry(n)) for n in entry.components)
        return TwoStreamI3D(rgb, flow)
    raise ValueError(f"{entry.name}: unknown architecture {entry.arch!r}")


def load(name: str, *, weights=None, pretrained: bool = True, cache_dir=None, force_download: bool = False,
         source: str = "auto", progress: bool = True):
    """A zoo model, in eval mode, with its weights.

        >>> model = zoo.load("i3d_inception_k400_rgb")   # downloads DeepMind's release once, verified, cached

    Args:
        name: a registry name (see :func:`list`), or ``"hf-hub:ORG/REPO"`` for a model pushed with
            :func:`zoo.push_to_hub`.
        weights: a local safetensors file to load instead of resolving. For two-stream models, a dict
            ``{"rgb": path, "flow": path}``.
        pretrained: False builds the architecture with fresh random weights (train mode).
        cache_dir: where cached weights live (default: ``$QUOVADIS_HOME`` / the Hugging Face cache).
        source: where weights may come from: ``"auto"`` (our cache, DeepMind's release, then the Hub),
            ``"cache"``, ``"release"`` or ``"hub"``; see :mod:`zoo.weights.resolve`.
        progress: show download progress bars (on a terminal).
    """
    if name.startswith("hf-hub:"):
        from zoo.weights.hub import load_from_hub
        return load_from_hub(name[len("hf-hub:"):], cache_dir=cache_dir, force_download=force_download)
    entry = get_entry(name)
    from_2d = entry.arch == "inflated" and weights is None and entry.hf_repo is None  # bootstrap, no video weights
    model = build(entry, pretrained_2d=pretrained and from_2d)
    model.zoo_entry = entry
    if not pretrained:
        return model
    if entry.arch == "two_stream_i3d":
        files = weights or {}
        if not isinstance(files, dict):
            raise TypeError(f"{name}: weights= must be a dict {{'rgb': path, 'flow': path}} for a two-stream model")
        for stream, component in zip(("rgb", "flow"), entry.components):
            sub = load(component, weights=files.get(stream), cache_dir=cache_dir, force_download=force_download,
                       source=source, progress=progress)
            setattr(model, stream, sub)
        return model.eval()
    if from_2d:
        return model.eval()  # bootstrapped from the 2D weights
    path = Path(weights) if weights is not None else resolve(entry, cache_dir=cache_dir, force_download=force_download,
                                                             source=source, quiet=not progress)
    load_into(model, path, expect_variant=entry.variant)
    return model.eval()
