"""2D models by name (timm, torchvision) and where a 2D model came from, recorded so that :func:`inflate.load` can rebuild it without its weights.

A timm model names its architecture in ``pretrained_cfg``; a torchvision model is matched to the builder in its
class's module that gives the same parameter names and shapes (built on the ``meta`` device, so nothing is
allocated). Anything else is recorded by class, and :func:`inflate.load` then needs a 2D skeleton
(``model_2d=``) to rebuild it.
"""
from __future__ import annotations

import difflib
import warnings

import torch
import torch.nn as nn


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


# Creating 2D models by name, and the records that rebuild them.
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
