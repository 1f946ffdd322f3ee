"""Training configuration: a dataclass tree, read from YAML or TOML, with ``key=value`` overrides.

    quovadis train --config ucf101_flow.yaml optim.lr=0.01 data.clip_len=32 epochs=20
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ModelConfig:
    name: str = "i3d_inception_k400_rgb_imagenet"  # a zoo name, "timm:NAME" or "tv:NAME" (inflated)
    weights: str | None = None  # a zoo weights file; None resolves through the zoo (cache/Hub)
    pretrained: bool = True
    policy: str | None = None  # inflation policy for timm/tv models
    time_kernel: int = 3
    in_channels: int | None = None  # default: 3 for rgb, 2 for flow
    dropout: float = 0.5
    kwargs: dict = field(default_factory=dict)  # extra timm/torchvision constructor arguments


@dataclass
class DataConfig:
    format: str = "ucf101"  # ucf101, hmdb51, kinetics, csv, folders
    root: str = ""
    annotations: str | None = None  # split files / CSV; default: format's usual place under root
    split: int = 1
    flow_root: str | None = None
    modality: str = "rgb"  # rgb or flow (train the two streams as two runs, fuse at evaluation)
    clip_len: int = 64
    stride: int = 1
    size: int = 224
    short_side: int = 256
    test_clips: int = 1
    test_crops: int = 1  # 1 (centre) or 3 (three-crop)
    fps: float | None = None  # retime videos before sampling (DeepMind's I3D: 25)
    flip: bool = True  # random horizontal flips (negating flow x); off when left/right is the label
    multiscale: bool = True  # MultiScaleCrop (TSN) instead of a plain random crop
    batch_size: int = 8
    workers: int | None = None  # loader processes per rank; None: this node's free cores / its ranks (max 16)


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd or adamw
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-7
    schedule: str = "cosine"  # cosine, step or constant
    step_epochs: list = field(default_factory=lambda: [10, 20])
    gamma: float = 0.1
    warmup_epochs: float = 0.0


@dataclass
class TrainConfig:
    out: str = "runs/train"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 10
    finetune: str = "full"  # "full" or "fixed" (only the head trains)
    freeze_bn: bool = False  # BatchNorm in eval mode with frozen statistics (small batches)
    precision: str = "fp32"  # fp32, bf16 or fp16 (autocast; fp16 uses a GradScaler)
    channels_last: bool = False
    accumulate: int = 1
    checkpoint_every: int = 0  # also checkpoint every N optimizer steps (0: once per epoch)
    log_every: int = 20  # host sync every N micro-batches: non-finite loss check, progress bar (and epoch end)
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"  # auto, cpu, cuda
    eval_every: int = 1
    progress: bool = True
    tensorboard: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def _section_types():
    return {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def from_dict(data: dict) -> TrainConfig:
    sections = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig}
    kwargs = {}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"unknown config key {key!r}; known: {sorted(known)}")
        if key in sections:
            cls = sections[key]
            fields = {f.name for f in dataclasses.fields(cls)}
            bad = set(value) - fields
            if bad:
                raise ValueError(f"unknown key(s) {sorted(bad)} in [{key}]; known: {sorted(fields)}")
            kwargs[key] = cls(**value)
        else:
            kwargs[key] = value
    return TrainConfig(**kwargs)


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["optim.lr=0.1", "epochs=3"]`` applied to a nested dict (values parsed as JSON when they can be)."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not KEY=VALUE (for example optim.lr=0.01)")
        key, value = item.split("=", 1)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_value(value)
    return data


def load_config(path: str | None = None, overrides: list[str] = ()) -> TrainConfig:
    data = TrainConfig().to_dict()
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {p} does not exist")
        if p.suffix == ".toml":
            loaded = tomllib.loads(p.read_text())
        elif p.suffix in (".yaml", ".yml"):
            import yaml
            loaded = yaml.safe_load(p.read_text()) or {}
        elif p.suffix == ".json":
            loaded = json.loads(p.read_text())
        else:
            raise ValueError(f"config {p}: use .yaml, .toml or .json")
        for k, v in loaded.items():
            if isinstance(v, dict) and isinstance(data.get(k), dict):
                data[k].update(v)
            else:
                data[k] = v
    return from_dict(apply_overrides(data, list(overrides)))
