"""Save and load inflated models as safetensors, with their config in the file's metadata."""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_model, save_model

from inflate.atomic import atomic_path
from inflate.engine import inflate
from inflate.sources import build_2d
from inflate.video_model import VideoModel

CONFIG_KEY = "quovadis.inflate.config"


def save(model: VideoModel, path) -> Path:
    """Write ``model``'s weights and config to ``path`` (safetensors), atomically."""
    if not isinstance(model, VideoModel):
        raise TypeError(f"inflate.save takes a VideoModel (from inflate.inflate), got {type(model).__name__}")
    path = Path(path)
    with atomic_path(path) as tmp:
        save_model(model, str(tmp), metadata={CONFIG_KEY: json.dumps(model.config), "format": "pt"})
    return path


def read_config(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such weights file: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        raise ValueError(f"{path} is not a readable safetensors file ({e}); re-save it with inflate.save") from e
    if CONFIG_KEY not in meta:
        raise ValueError(f"{path} holds no quovadis inflation config (metadata key {CONFIG_KEY!r}); it was not "
                         "written by inflate.save. Rebuild the model yourself and use load_state_dict.")
    return json.loads(meta[CONFIG_KEY])


def rebuild(config: dict, model_2d: nn.Module | None = None) -> VideoModel:
    """The video model a config describes (``VideoModel.config``), with fresh weights.

    ``model_2d`` is a 2D skeleton to inflate instead of the recorded source (needed for your own modules)."""
    source = config["source"]
    if model_2d is None:
        if source.get("kind") not in ("timm", "torchvision"):
            raise ValueError(f"the saved model was inflated from your own module {source.get('class', source)!r}, "
                             "which cannot be rebuilt by name: pass a 2D skeleton, "
                             f"inflate.load(path, model_2d={source.get('class', 'MyModel').rpartition('.')[2]}(...)), "
                             "built with the same arguments (its weights are not used)")
        model_2d = build_2d(source)
        if config.get("num_classes") is not None and hasattr(model_2d, "reset_classifier") \
                and getattr(model_2d, "num_classes", None) != config["num_classes"]:
            model_2d.reset_classifier(config["num_classes"])
    return inflate(model_2d, policy=config["policy"], init=config["init"], time_padding=config["time_padding"],
                   causal=config["causal"], source=source)


def load(path, map_location="cpu", model_2d: nn.Module | None = None) -> VideoModel:
    """Rebuild the video model recorded in ``path`` and load its weights (strict).

    timm and torchvision models are rebuilt from the recorded source. For a model inflated from your own
    ``nn.Module``, pass a 2D skeleton built the same way: ``inflate.load(path, model_2d=MyNet())``."""
    model = rebuild(read_config(path), model_2d)
    try:
        load_model(model, str(path), strict=True, device=str(torch.device(map_location)))
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights do not fit the rebuilt model: {_mismatch(model, path) or e}. "
                         "Pass the 2D model it was inflated from, built with the same arguments, as "
                         "inflate.load(path, model_2d=...)") from e
    return model.eval()


def _mismatch(model: nn.Module, path) -> str:
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    with safe_open(str(path), framework="pt") as f:
        have = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    problems = [f"tensor {k}: file {have[k]} vs model {want[k]}" for k in want if k in have and have[k] != want[k]]
    problems += [f"tensor {k} missing from the file" for k in want if k not in have]
    problems += [f"unexpected tensor {k} in the file" for k in have if k not in want]
    return "; ".join(problems[:4]) + (f" (and {len(problems) - 4} more)" if len(problems) > 4 else "")
