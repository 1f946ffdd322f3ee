"""The one architecture dispatch: a zoo model with fresh weights, from a registry entry or from the
``config.json`` spec of a model pushed with ``zoo.push_to_hub``."""
from __future__ import annotations

import torch.nn as nn

import inflate
import inflate.io

from zoo.models.i3d import InceptionI3d
from zoo.models.two_stream import TwoStreamI3D
from zoo.registry import ModelEntry, get_entry

ARCHS = ("inception_i3d", "two_stream_i3d", "inflated")
SPEC_FORMAT = "quovadis/1"  # the ``format`` of a pushed config.json that this version reads


def build_arch(arch: str, config: dict, *, pretrained_2d: bool = False) -> nn.Module:
    """The architecture ``arch`` built from ``config``, with fresh weights.

    ``config`` holds, per ``arch``:

    * ``inception_i3d``: :class:`InceptionI3d`'s arguments;
    * ``two_stream_i3d``: ``{"rgb": ..., "flow": ...}``, each stream's InceptionI3d arguments, and optionally
      ``"fusion_weights"``;
    * ``inflated``: a recipe ``{"source": {"kind": "timm" | "torchvision", "name", "kwargs"}, "policy"}`` (a
      registry entry; ``pretrained_2d`` starts from the 2D ImageNet weights), or the config an inflated
      :class:`inflate.VideoModel` records (it has ``"init"``; rebuilt exactly as recorded).
    """
    if arch == "inception_i3d":
        return InceptionI3d(**config)
    if arch == "two_stream_i3d":
        return TwoStreamI3D(InceptionI3d(**config["rgb"]), InceptionI3d(**config["flow"]),
                            config.get("fusion_weights", (1.0, 1.0)))
    if arch == "inflated":
        if "init" in config:  # recorded by inflate: everything needed to rebuild it, no 2D weights
            return inflate.io.rebuild(config)
        src, policy = config["source"], config["policy"]
        if src["kind"] == "timm":
            return inflate.from_timm(src["name"], policy=policy, pretrained=pretrained_2d, **src["kwargs"])
        return inflate.from_torchvision(src["name"], policy=policy, weights="DEFAULT" if pretrained_2d else None,
                                        **src["kwargs"])
    raise ValueError(f"unknown architecture {arch!r}; this quovadis builds {', '.join(ARCHS)}")


def build_entry(entry: ModelEntry, pretrained_2d: bool = False) -> nn.Module:
    """The architecture of ``entry`` with fresh random weights (inflated entries: with their 2D ImageNet
    weights bootstrapped when ``pretrained_2d``)."""
    config = entry.config
    if entry.arch == "two_stream_i3d":
        rgb, flow = (get_entry(name) for name in entry.components)
        config = {"rgb": rgb.config, "flow": flow.config}
    try:
        return build_arch(entry.arch, config, pretrained_2d=pretrained_2d)
    except ValueError as e:
        raise ValueError(f"{entry.name}: {e}") from e


def build_from_spec(spec: dict) -> nn.Module:
    """The model a pushed ``config.json`` describes, with fresh weights."""
    if spec.get("format") != SPEC_FORMAT:
        raise ValueError(f"config.json has format {spec.get('format')!r}; this quovadis reads {SPEC_FORMAT!r}: "
                         "upgrade quovadis, or push the model again with this version")
    try:
        return build_arch(spec["arch"], spec["config"])
    except ValueError as e:
        raise ValueError(f"config.json: {e}") from e
