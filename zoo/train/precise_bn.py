"""Precise BatchNorm: recompute BatchNorm statistics on training batches before evaluation (PySlowFast).

WHEN TO USE IT. I3D's BatchNorm keeps its running statistics with momentum 0.001 (Sonnet's decay 0.999):
each training step moves them 0.1% of the way, so after a short fine-tune (a few thousand steps or less)
they still describe the pre-training data and the model validates worse than it trains. ``precise_bn: N``
recomputes them before every validation from N training batches, as PySlowFast's ``PRECISE_BN`` does: the
mean of the batch means and the mean of the batch variances (unbiased), the network in training mode
without gradients, with training-time augmentation. Use it for fine-tunes shorter than ~1/momentum steps
(I3D: 1000s of steps) or when ``freeze_bn`` is off with small batches; leave it off (0) when BatchNorm is
frozen (``freeze_bn``, ``finetune: fixed``): frozen statistics are then the point. Cost: N forward passes.
Under torch.distributed each rank's statistics are averaged over the ranks.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn as nn


def _is_bn(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.batchnorm._BatchNorm) or (
        hasattr(m, "running_mean") and hasattr(m, "running_var") and hasattr(m, "momentum"))


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """BatchNorm layers that track running statistics (torch's and zoo.models.i3d's BatchNormNoScale)."""
    return [m for m in model.modules() if _is_bn(m) and getattr(m, "running_mean", None) is not None]


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Iterable, to_input: str | Callable, num_batches: int,
                       world=None, exclude: Iterable[nn.Module] = ()) -> int:
    """Reset and recompute the running statistics of every BatchNorm layer of ``model`` from the first
    ``num_batches`` of ``batches`` (equally weighted). ``to_input``: the batch key holding the network
    input (e.g. "rgb"), or a function batch -> input tensor (None to skip a batch). Momentum and each
    module's own train/eval mode are restored. ``exclude``: frozen layers (``freeze_bn``), left untouched
    (in eval mode, statistics unchanged). Returns the number of batches used."""
    skip = {id(m) for m in exclude}
    layers = [m for m in batchnorm_layers(model) if id(m) not in skip]
    if not layers or num_batches <= 0:
        return 0
    saved = [(m.momentum, m.running_mean.clone(), m.running_var.clone()) for m in layers]
    modes = [(m, m.training) for m in model.modules()]  # each its own: frozen BatchNorm stays in eval mode
    for m in layers:
        m.running_mean.zero_()
        m.running_var.fill_(1)
        m.momentum = None                     # cumulative moving average: every batch weighs the same
        if hasattr(m, "num_batches_tracked") and m.num_batches_tracked is not None:
            m.num_batches_tracked.zero_()
    count = [0] * len(layers)                 # BatchNormNoScale has no num_batches_tracked: count ourselves
    hooks = [m.register_forward_pre_hook(_counting(m, count, k)) for k, m in enumerate(layers)]
    model.train()
    for m in exclude:
        m.eval()
    used = 0
    try:
        for batch in batches:
            if used >= num_batches:
                break
            x = batch[to_input] if isinstance(to_input, str) else to_input(batch)
            if x is None:
                continue
            model(x)
            used += 1
    finally:
        for h in hooks:
            h.remove()
        for m, (momentum, mean, var) in zip(layers, saved):
            m.momentum = momentum
            if used == 0:
                m.running_mean.copy_(mean), m.running_var.copy_(var)
        for m, training in modes:
            m.training = training
    if used and world is not None and getattr(world, "distributed", False):
        import torch.distributed as dist
        for m in layers:
            for buf in (m.running_mean, m.running_var):
                dist.all_reduce(buf)
                buf.div_(world.world_size)
    return used


def _counting(m: nn.Module, count: list, k: int):
    def hook(module, args):
        # torch's F.batch_norm with momentum=None averages by num_batches_tracked, which BatchNorm3d updates
        # itself; layers without that counter (BatchNormNoScale) pass momentum explicitly, so set the
        # cumulative factor 1/(n+1) as their momentum for this call.
        if getattr(module, "num_batches_tracked", None) is None:
            module.momentum = 1.0 / (count[k] + 1)
        count[k] += 1
    return hook
