"""Build what a run trains: the model (head replaced for the dataset), optimizer, schedule, frozen parts."""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from zoo.train.config import TrainConfig


def build_model(cfg: TrainConfig, num_classes: int) -> nn.Module:
    """A zoo model or an inflated timm/torchvision model, with a fresh head for ``num_classes``."""
    m = cfg.model
    in_ch = m.in_channels or (2 if cfg.data.modality == "flow" else 3)
    if m.name.startswith(("timm:", "tv:")):
        import inflate
        kind, name = m.name.split(":", 1)
        policy = m.policy
        if kind == "timm":
            model = inflate.from_timm(name, time_kernel=m.time_kernel, pretrained=m.pretrained, policy=policy,
                                      num_classes=num_classes, in_chans=in_ch, drop_rate=m.dropout, **m.kwargs)
        else:
            model = inflate.from_torchvision(name, time_kernel=m.time_kernel, policy=policy,
                                             weights="DEFAULT" if m.pretrained else None, **m.kwargs)
            model.reset_classifier(num_classes)
        return model
    import zoo
    entry = zoo.info(m.name)
    if entry.arch == "two_stream_i3d":
        raise ValueError(f"{m.name} is two-stream: train each stream as its own run ({', '.join(entry.components)}"
                         f" with data.modality=rgb and flow) and fuse them with quovadis evaluate --fuse")
    if entry.in_channels != in_ch:
        raise ValueError(f"model {m.name} takes {entry.in_channels} input channels but data.modality="
                         f"{cfg.data.modality!r} gives {in_ch}; use a {cfg.data.modality} model")
    model = zoo.load(m.name, weights=m.weights, pretrained=m.pretrained)
    return replace_head(model, num_classes, m.dropout)


def replace_head(model: nn.Module, num_classes: int, dropout: float | None) -> nn.Module:
    """A fresh ``num_classes`` head: I3D's ``replace_logits``, or an inflated model's ``reset_classifier``
    (timm's dropout before the head set to ``dropout`` where the 2D network has one)."""
    if hasattr(model, "replace_logits"):
        return model.replace_logits(num_classes, dropout=dropout)
    if not hasattr(model, "reset_classifier"):
        raise TypeError(f"{type(model).__name__} has neither replace_logits nor reset_classifier; cannot give it "
                        f"a {num_classes}-class head")
    model.reset_classifier(num_classes)
    net = getattr(model, "net", model)
    drop_auxiliary_heads(net)
    if dropout is not None and hasattr(net, "drop_rate"):
        net.drop_rate = dropout
    model.train()
    return model


def drop_auxiliary_heads(net: nn.Module) -> None:
    """torchvision's GoogLeNet and Inception-v3 return (logits, aux...) in train mode; fine-tuning uses the
    main head only, so their auxiliary classifiers are removed (no unused parameters under DDP)."""
    if getattr(net, "aux_logits", False):
        net.aux_logits = False
        for name in ("aux1", "aux2", "AuxLogits"):
            if getattr(net, name, None) is not None:
                setattr(net, name, None)


def head_modules(model: nn.Module) -> list[nn.Module]:
    """The classification head: I3D's ``Logits``, timm's classifier, or the last Linear."""
    if hasattr(model, "Logits"):
        return [model.Logits]
    net = getattr(model, "net", model)
    if hasattr(net, "get_classifier"):
        head = net.get_classifier()
        if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
            return [head]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"cannot find the classification head of {type(model).__name__}")
    return [linears[-1]]


def apply_finetune_mode(model: nn.Module, mode: str) -> list[nn.Parameter]:
    """``full``: everything trains. ``fixed``: only the head trains (the paper's "Fixed" features)."""
    if mode not in ("full", "fixed"):
        raise ValueError(f"finetune must be 'full' or 'fixed', got {mode!r}")
    if mode == "fixed":
        for p in model.parameters():
            p.requires_grad_(False)
        for head in head_modules(model):
            for p in head.parameters():
                p.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def is_norm(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.batchnorm._BatchNorm) or type(m).__name__ == "BatchNormNoScale"


def frozen_norms(model: nn.Module, freeze_bn: bool, fixed: bool) -> list[nn.Module]:
    """BatchNorm layers that must not update: all with ``freeze_bn``, those outside the head when ``fixed``.
    Their parameters stop requiring grad (call before building the optimizer and DDP)."""
    heads = {id(m) for h in head_modules(model) for m in h.modules()} if fixed else set()
    frozen = [m for m in model.modules() if is_norm(m) and (freeze_bn or (fixed and id(m) not in heads))]
    for m in frozen:
        for p in m.parameters(recurse=False):
            p.requires_grad_(False)
    return frozen


def set_train_mode(model: nn.Module, training: bool, frozen: list[nn.Module]) -> None:
    """``model.train(training)``, with the frozen BatchNorm layers kept in eval mode (fixed statistics)."""
    model.train(training)
    for m in frozen if training else ():
        m.eval()


def build_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    raise ValueError(f"optim.name must be sgd or adamw, got {o.name!r}")


def build_scheduler(cfg: TrainConfig, optimizer, steps_per_epoch: int):
    """Per-step LambdaLR: linear warmup, then cosine, step or constant."""
    o = cfg.optim
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = int(o.warmup_epochs * steps_per_epoch)
    if o.schedule not in ("cosine", "step", "constant"):
        raise ValueError(f"optim.schedule must be cosine, step or constant, got {o.schedule!r}")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if o.schedule == "cosine":
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if o.schedule == "step":
            epoch = step // max(1, steps_per_epoch)
            return o.gamma ** sum(epoch >= e for e in o.step_epochs)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
