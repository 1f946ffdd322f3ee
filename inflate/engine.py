"""``inflate()``: walk a 2D network, ask the policy about each conv and pool, and swap in inflated layers."""
from __future__ import annotations

import copy
import warnings

import torch
import torch.nn as nn

from inflate.kernel_init import INIT_MODES
from inflate.layers import ClipState, InflatedConv, InflatedPool
from inflate.padding import TIME_PADDING_MODES
from inflate.policy import LayerInfo, PolicyError, check_coverage, resolve_policy
from inflate.sources import source_of
from inflate.video_model import VideoModel

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


def input_shape(model: nn.Module, source: dict | None) -> tuple[int, int, int] | None:
    """``(C, H, W)`` the 2D model takes, when it says so (timm's pretrained_cfg, or our source record)."""
    size = (source or {}).get("input_size") or (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    if not size:
        return None
    built = getattr(getattr(model, "patch_embed", None), "img_size", None)  # a ViT built at another size
    if isinstance(built, (tuple, list)) and len(built) == 2 and all(isinstance(v, int) for v in built):
        size = (size[0], *built)
    return (getattr(model, "in_chans", None) or size[0], *size[1:])  # timm keeps the cfg's C when in_chans differs


@torch.no_grad()
def frame_batch_multipliers(net: nn.Module, layers, shape) -> dict[str, float]:
    """Run the 2D model once on 2 images and record, per layer, its input batch / 2. A layer that sees
    another batch than the images' (attention pooling over ``B * heads``, say) must not regroup time."""
    seen: dict[str, float] = {}

    def record(path):
        def hook(module, args):
            seen.setdefault(path, args[0].shape[0] / 2)  # returns None: the input is left as it is
        return hook

    hooks = [m.register_forward_pre_hook(record(info.path)) for info, m in layers]
    param = next(net.parameters(), None)
    kw = {"dtype": param.dtype, "device": param.device} if param is not None else {}
    was_training = net.training
    try:
        net.eval()
        for size in ((64, 64), tuple(shape[1:])):  # a small frame first (cheap); fixed-size models need theirs
            try:
                seen.clear()
                net(torch.zeros(2, shape[0], *size, **kw))
                break
            except Exception:
                continue
        else:  # the model would not run on either: inflate without the probe's information
            seen.clear()
            warnings.warn(f"inflate: could not run {type(net).__name__} on 2x{shape[0]}x64x64 or 2x{'x'.join(map(str, shape))} "
                          "to check which layers see the frames' batch; every matched layer is inflated. If some conv "
                          "runs on a reshaped batch (attention pooling over B*heads), exclude it in the policy.",
                          stacklevel=3)
    finally:
        net.train(was_training)
        for h in hooks:
            h.remove()
    return seen


def inflate(model_2d: nn.Module, *, time_kernel: int = 3, policy=None, init: str = "mean",
            time_padding: str = "replicate", causal: bool = False, noise_std: float = 0.1,
            source: dict | None = None, probe: bool = True) -> VideoModel:
    """Return a video model built from ``model_2d``; ``model_2d`` itself is left untouched.

    Args:
        model_2d: any ``nn.Module`` built from 2D convs and pools (timm, torchvision, your own).
        time_kernel: with no ``policy``, every conv with a spatial kernel above 1 gets this temporal kernel.
        policy: a preset name (``"i3d"``, ``"i3d_3x1x1"``, ``"slow"``, ``"tubelet"``), rule text such as
            ``"layer4.*.conv2=3; pool:maxpool=1/2"``, a :class:`Policy` or a list of :class:`Rule`.
            See :mod:`inflate.policy`.
        init: how 2D kernels become 3D, one of ``inflate.INIT_MODES`` (see :mod:`inflate.kernel_init`).
        time_padding: ``"replicate"`` (default; keeps the boring-video law at the clip's edges for every
            init), ``"zeros"`` (gives it up at the edges unless ``init="center"``) or ``"circular"``.
        causal: put all temporal padding in front, so no output step sees a later frame (not with ``"circular"``).
        source: how to rebuild ``model_2d``, kept in ``config``. By default it is found from the model: a timm
            model's ``pretrained_cfg``, the torchvision builder that gives its shapes, else its class (then
            :func:`inflate.load` needs ``model_2d=``). See :mod:`inflate.sources`.
        probe: when the model states its input size (timm, torchvision via ``source``), run it once on two
            images to find convs and pools that see another batch than the frames' (e.g. attention pooling over
            ``B * heads``, as in MViTv2); those stay per-frame and are listed in ``config["kept_per_frame"]``.
    """
    if not isinstance(model_2d, nn.Module):
        raise TypeError(f"inflate() takes a torch.nn.Module, got {type(model_2d).__name__}; build the 2D model "
                        "first, or use inflate.from_timm(name) / inflate.from_torchvision(name)")
    if init not in INIT_MODES:
        raise ValueError(f"unknown init {init!r}; choose one of {INIT_MODES}")
    if time_padding not in TIME_PADDING_MODES:
        raise ValueError(f"unknown time_padding {time_padding!r}; choose one of {TIME_PADDING_MODES}")
    if causal and time_padding == "circular":
        raise ValueError("causal=True cannot use time_padding='circular': it pads the clip's front with its last "
                         "frames, so early outputs would see later frames; use 'replicate' or 'zeros'")
    net = copy.deepcopy(model_2d)
    layers = list_layers(net)
    if not layers:
        raise PolicyError(f"{type(model_2d).__name__} has no Conv2d, MaxPool2d or AvgPool2d layer to inflate")
    policy = resolve_policy(policy, time_kernel, [info for info, _ in layers])
    if source is None:
        source = source_of(model_2d)
    shape = input_shape(model_2d, source) if probe else None
    multipliers = frame_batch_multipliers(net, layers, shape) if shape else {}
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
        if multipliers.get(info.path, 1.0) != 1.0:
            kept_per_frame.append(f"{info.path} (sees a batch of {multipliers[info.path]:g} x the frames)")
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
        warnings.warn("inflate: these layers stay per-frame: " + ", ".join(kept_per_frame), stacklevel=2)
    first_conv = next((m for info, m in layers if info.kind == "conv"), None)
    in_chans = getattr(model_2d, "in_chans", None) or (shape[0] if shape else None) or (
        None if hasattr(model_2d, "pretrained_cfg") else getattr(first_conv, "in_channels", None))
    config = {
        "source": source,
        "policy": policy.to_dict(),
        "init": init,
        "time_padding": time_padding,
        "causal": causal,
        "in_chans": in_chans,
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
