"""``inflate()``: walk a 2D network, ask the policy about each conv and pool, and swap in inflated layers."""
from __future__ import annotations

import copy
import warnings

import torch.nn as nn

from .init import INIT_MODES
from .layers import ClipState, InflatedConv, InflatedPool
from .padding import TIME_PADDING_MODES
from .policy import LayerInfo, PolicyError, check_coverage, resolve_policy
from .video_model import VideoModel

# Conv2d subclasses with their own forward that InflatedConv reproduces exactly.
SUPPORTED_CONV_SUBCLASSES = {
    "Conv2dSame", "Conv2dSameExport", "StdConv2d", "StdConv2dSame", "ScaledStdConv2d", "ScaledStdConv2dSame",
}
POOL_TYPES = (nn.MaxPool2d, nn.AvgPool2d)


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def conv_supported(m: nn.Module) -> bool:
    return type(m).forward is nn.Conv2d.forward or type(m).__name__ in SUPPORTED_CONV_SUBCLASSES


def list_layers(net: nn.Module) -> list[tuple[LayerInfo, nn.Module]]:
    """Every conv and (non-adaptive) pool of ``net`` a policy can inflate, in module order."""
    found = []
    for path, m in net.named_modules():
        if isinstance(m, nn.Conv2d):
            found.append((LayerInfo(path, "conv", _pair(m.kernel_size), _pair(m.stride), type(m).__name__), m))
        elif isinstance(m, POOL_TYPES):
            found.append((LayerInfo(path, "pool", _pair(m.kernel_size), _pair(m.stride or m.kernel_size),
                                    type(m).__name__), m))
    return found


def inflate(model_2d: nn.Module, *, time_kernel: int = 3, policy=None, init: str = "mean",
            time_padding: str = "replicate", causal: bool = False, noise_std: float = 0.1,
            source: dict | None = None) -> VideoModel:
    """Return a video model built from ``model_2d``; ``model_2d`` itself is left untouched.

    Args:
        model_2d: any ``nn.Module`` built from 2D convs and pools (timm, torchvision, your own).
        time_kernel: with no ``policy``, every conv with a spatial kernel above 1 gets this temporal kernel.
        policy: a preset name (``"i3d"``, ``"i3d_3x1x1"``, ``"slow"``, ``"tubelet"``), rule text such as
            ``"layer4.*.conv2=3; pool:maxpool=1/2"``, a :class:`Policy` or a list of :class:`Rule`.
            See :mod:`inflate.policy`.
        init: how 2D kernels become 3D, one of ``inflate.INIT_MODES`` (see :mod:`inflate.init`).
        time_padding: ``"replicate"`` (default; keeps the boring-video law at the clip's edges for every
            init), ``"zeros"`` (gives it up at the edges unless ``init="center"``) or ``"circular"``.
        causal: put all temporal padding in front, so no output step sees a later frame.
        source: how to rebuild ``model_2d`` (set by ``from_timm``/``from_torchvision``), kept in ``config``.
    """
    if not isinstance(model_2d, nn.Module):
        raise TypeError(f"inflate() takes a torch.nn.Module, got {type(model_2d).__name__}; build the 2D model "
                        "first, or use inflate.from_timm(name) / inflate.from_torchvision(name)")
    if init not in INIT_MODES:
        raise ValueError(f"unknown init {init!r}; choose one of {INIT_MODES}")
    if time_padding not in TIME_PADDING_MODES:
        raise ValueError(f"unknown time_padding {time_padding!r}; choose one of {TIME_PADDING_MODES}")
    net = copy.deepcopy(model_2d)
    layers = list_layers(net)
    if not layers:
        raise PolicyError(f"{type(model_2d).__name__} has no Conv2d, MaxPool2d or AvgPool2d layer to inflate")
    policy = resolve_policy(policy, time_kernel, [info for info, _ in layers])
    clip = ClipState()
    used: set[int] = set()
    inflated = {"conv": 0, "pool": 0}
    by_type: dict[str, int] = {}
    kept_per_frame = []
    for info, module in layers:
        hit = policy.spec_for(info)
        if hit is None:
            continue
        spec, rule_index = hit
        used.add(rule_index)
        if spec.is_identity:
            continue
        if info.kind == "conv":
            if not conv_supported(module):
                kept_per_frame.append(f"{info.path} ({info.cls}: custom forward)")
                continue
            new = InflatedConv(module, spec, init=init, time_padding=time_padding, causal=causal, clip=clip,
                               path=info.path, noise_std=noise_std)
        else:
            new = InflatedPool(module, spec, time_padding=time_padding, causal=causal, clip=clip, path=info.path)
        _set_submodule(net, info.path, new)
        inflated[info.kind] += 1
        by_type[info.cls] = by_type.get(info.cls, 0) + 1
    check_coverage(policy, used, [info for info, _ in layers])
    if kept_per_frame:
        warnings.warn("inflate: these convs have a forward of their own and stay per-frame: "
                      + ", ".join(kept_per_frame), stacklevel=2)
    first_conv = next((m for info, m in layers if info.kind == "conv"), None)
    config = {
        "source": source or {"kind": "module", "class": f"{type(model_2d).__module__}.{type(model_2d).__qualname__}"},
        "policy": policy.to_dict(),
        "init": init,
        "time_padding": time_padding,
        "causal": causal,
        "in_chans": getattr(first_conv, "in_channels", None),
        "num_classes": getattr(model_2d, "num_classes", None),
        "inflated": inflated,
        "inflated_by_type": by_type,
        "kept_per_frame": kept_per_frame,
    }
    return VideoModel(net, config, clip)


def _set_submodule(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    if isinstance(parent, (nn.Sequential, nn.ModuleList)) and name.isdigit():
        parent[int(name)] = new
    else:
        setattr(parent, name, new)
