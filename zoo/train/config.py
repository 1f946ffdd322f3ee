"""Training configuration: a dataclass tree, read from YAML or TOML, with ``key=value`` overrides.

    quovadis train --config ucf101_flow.yaml optim.lr=0.01 data.clip_len=32 epochs=20
    quovadis train --config ucf101_flow.yaml protocol=i3d           # DeepMind's I3D data protocol

PRESETS. ``protocol: i3d`` fills in the data protocol behind the I3D paper's numbers (``PROTOCOLS["i3d"]``):
videos resampled to 25 fps before anything else (flow too: extract it with ``quovadis flow --fps 25``),
short side 256, a random 224 crop (no multi-scale), horizontal flips, 64-frame training snippets, and at
test time the whole video as ``ceil(T / 64)`` clips with their logits averaged; two-stream fusion sums the
logits (``quovadis evaluate --fuse``, weights 1,1). Values layer as: defaults < preset < config file and
``key=value`` overrides, so anything set explicitly wins over the preset.

DEFAULTS THAT DEPART FROM THE I3D PROTOCOL (without ``protocol: i3d``), each marked "I3D:" below:
``data.fps=None`` (clips on the video's own frames; I3D: 25), ``data.multiscale=True`` (TSN's multi-scale
crops; I3D: a plain random crop) and ``data.test_clips=1`` (one centred clip; I3D: the whole video).

``data.modality`` is ``rgb`` or ``flow``: the two streams train as two runs and are fused at evaluation
(``both`` is refused when the config is loaded, with that recipe).
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
    modality: str = "rgb"  # rgb or flow (train the two streams as two runs, fuse at evaluation; "both" refused)
    classes: str | list | None = None  # class map (a file, one name per line, or a list); None: the training
    # split's classes. The run's config.json records the list used, and evaluation numbers the test split by it.
    val_fraction: float = 0.0  # hold this fraction of each class of the training list out for validation
    val_list: str | None = None  # or a validation list: a CSV "path,label" (paths under root, label a class name)
    # With neither, validation runs on the TEST split for monitoring only and no best checkpoint is chosen.
    clip_len: int = 64
    stride: int = 1
    size: int = 224
    short_side: int = 256
    test_clips: int | str = 1  # clips per test video, or "all": ceil(T / clip span) covering it. I3D: "all"
    test_crops: int = 1  # 1 (centre) or 3 (three-crop)
    fps: float | None = None  # retime videos by timestamps before anything else; flow must match. I3D: 25
    flip: bool = True  # random horizontal flips (negating flow x); off when left/right is the label
    multiscale: bool = True  # MultiScaleCrop (TSN) instead of a plain random crop. I3D: False
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
    protocol: str | None = None  # a preset of PROTOCOLS ("i3d"), applied under the explicit settings
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 10
    finetune: str = "full"  # "full" or "fixed" (only the head trains)
    freeze_bn: bool = False  # BatchNorm in eval mode with frozen statistics (small batches)
    precise_bn: int = 0  # before each validation, recompute BatchNorm statistics on N training batches (0: off)
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


PROTOCOLS: dict[str, dict] = {
    "i3d": {"data": {"fps": 25.0, "short_side": 256, "size": 224, "multiscale": False, "flip": True,
                     "clip_len": 64, "stride": 1, "test_clips": "all", "test_crops": 1}},
}
TWO_RUN_RECIPE = ("train the two streams as two runs, e.g. `quovadis train --config c.yaml data.modality=rgb "
                  "out=runs/rgb` and `... data.modality=flow data.flow_root=FLOW out=runs/flow`, then fuse them "
                  "at evaluation: `quovadis evaluate --run runs/rgb --fuse runs/flow` (logits summed)")


def validate(cfg: "TrainConfig") -> "TrainConfig":
    """Refuse settings that would train something else than asked, naming the key and the fix."""
    d = cfg.data
    if d.modality == "both":
        raise ValueError(f"data.modality='both' does not train both streams in one run; {TWO_RUN_RECIPE}")
    if d.modality not in ("rgb", "flow"):
        raise ValueError(f"data.modality must be 'rgb' or 'flow', got {d.modality!r}")
    if cfg.protocol is not None and cfg.protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {cfg.protocol!r}; known: {sorted(PROTOCOLS)} (or leave it unset)")
    if not (d.test_clips == "all" or isinstance(d.test_clips, int) and d.test_clips >= 1):
        raise ValueError(f"data.test_clips must be a positive integer or 'all', got {d.test_clips!r}")
    if not 0 <= d.val_fraction < 1:
        raise ValueError(f"data.val_fraction must be in [0, 1), got {d.val_fraction}")
    if d.val_fraction and d.val_list:
        raise ValueError("set data.val_fraction or data.val_list, not both")
    if cfg.precise_bn < 0:
        raise ValueError(f"precise_bn is a number of training batches (0: off), got {cfg.precise_bn}")
    return cfg


def _merge(base: dict, top: dict) -> dict:
    """``top`` over ``base``, one level into the sections."""
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return base


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
    return validate(TrainConfig(**kwargs))


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
    """Defaults, then the ``protocol`` preset if one is named, then the file, then the overrides."""
    loaded = {}
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
    user = apply_overrides(loaded, list(overrides))
    data = TrainConfig().to_dict()
    protocol = user.get("protocol")
    if protocol is not None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; known: {sorted(PROTOCOLS)} (or leave it unset)")
        _merge(data, PROTOCOLS[protocol])
    return from_dict(_merge(data, user))
