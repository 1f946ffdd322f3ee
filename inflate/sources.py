"""Where a 2D model came from, recorded so that :func:`inflate.load` can rebuild it without its weights.

A timm model names its architecture in ``pretrained_cfg``; a torchvision model is matched to the builder in its
class's module that gives the same parameter names and shapes (built on the ``meta`` device, so nothing is
allocated). Anything else is recorded by class, and :func:`inflate.load` then needs a 2D skeleton
(``model_2d=``) to rebuild it.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from inflate.builders import timm_source, torchvision_source


def source_of(model: nn.Module) -> dict:
    """The ``source`` record for ``model``: timm, torchvision, or ``{"kind": "module", "class": ...}``."""
    return _timm_record(model) or _torchvision_record(model) or {
        "kind": "module", "class": f"{type(model).__module__}.{type(model).__qualname__}"}


def _timm_record(model: nn.Module) -> dict | None:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if not isinstance(cfg, dict) or not cfg.get("architecture") or not type(model).__module__.startswith("timm."):
        return None
    kwargs = {}
    num_classes = getattr(model, "num_classes", None)
    if isinstance(num_classes, int) and num_classes != cfg.get("num_classes", 1000):
        kwargs["num_classes"] = num_classes
    first = _first_conv(model, cfg.get("first_conv"))
    if first is not None and first.in_channels != 3:
        kwargs["in_chans"] = first.in_channels
    return timm_source(cfg["architecture"], model, kwargs)


def _first_conv(model: nn.Module, name) -> nn.Conv2d | None:
    names = name if isinstance(name, (list, tuple)) else [name]
    for n in names:
        try:
            m = model.get_submodule(n) if n else None
        except AttributeError:
            continue
        if isinstance(m, nn.Conv2d):
            return m
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)


def _shapes(model: nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _torchvision_record(model: nn.Module) -> dict | None:
    module = type(model).__module__
    if not module.startswith("torchvision.models."):
        return None
    import torchvision

    want = _shapes(model)
    params = list(model.named_parameters())
    classes = {1000}
    if params:
        classes.add(params[-1][1].shape[0])
    names = [n for n in torchvision.models.list_models(module=torchvision.models)
             if torchvision.models.get_model_builder(n).__module__ == module]
    for name in names:
        builder = torchvision.models.get_model_builder(name)
        for n in sorted(classes, key=lambda c: c != 1000):
            kwargs = {} if n == 1000 else {"num_classes": n}
            try:
                with warnings.catch_warnings(), torch.device("meta"):
                    warnings.simplefilter("ignore")
                    candidate = builder(weights=None, **kwargs)
            except Exception:  # a builder that cannot run on meta (regnet) or takes no num_classes
                continue
            if type(candidate) is type(model) and _shapes(candidate) == want:
                return torchvision_source(name, kwargs)
    return None
