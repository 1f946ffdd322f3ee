"""Save and load inflated models as safetensors, with their config in the file's metadata."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model

from .atomic import atomic_path
from .builders import build_2d
from .engine import inflate
from .video_model import VideoModel

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


def rebuild(config: dict) -> VideoModel:
    """The video model a config describes (``VideoModel.config``), with fresh weights."""
    base = build_2d(config["source"])
    if config.get("num_classes") is not None and hasattr(base, "reset_classifier") \
            and getattr(base, "num_classes", None) != config["num_classes"]:
        base.reset_classifier(config["num_classes"])
    return inflate(base, policy=config["policy"], init=config["init"], time_padding=config["time_padding"],
                   causal=config["causal"], source=config["source"])


def load(path, map_location="cpu") -> VideoModel:
    """Rebuild the video model recorded in ``path`` and load its weights (strict)."""
    model = rebuild(read_config(path))
    load_model(model, str(path), strict=True, device=str(torch.device(map_location)))
    return model.eval()
