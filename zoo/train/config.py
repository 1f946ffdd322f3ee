"""Training configuration: typed dataclasses (OmegaConf structured configs), read from YAML, TOML or JSON, with
``key=value`` overrides.

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

TYPES. Every value is checked against the type declared below, whichever layer it comes from: ``False``,
``false``, ``no`` and ``0`` are false for a ``bool``; ``1e-3`` is a float (YAML files are read with OmegaConf's
loader, which reads it as YAML 1.2 does, not as PyYAML's string); ``epochs=ten`` and ``data=null`` are refused.
An unknown key or a wrong type raises :class:`ConfigError` with one line naming the key, the type it expects
and the value given. A run's ``config.json`` holds the typed values.
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, InterpolationResolutionError, OmegaConfBaseException


class ConfigError(ValueError):
    """A training config that names an unknown key, gives a value of the wrong type, or asks for a refused
    setting; the message is one line naming the key."""


@dataclass
class ModelConfig:
    name: str = "i3d_inception_k400_rgb_imagenet"  # a zoo name, "timm:NAME" or "tv:NAME" (inflated)
    weights: str | None = None  # a zoo weights file; None resolves through the zoo (cache/Hub)
    pretrained: bool = True
    policy: str | None = None  # inflation policy for timm/tv models
    time_kernel: int = 3
    in_channels: int | None = None  # default: 3 for rgb, 2 for flow
    dropout: float = 0.5
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra timm/torchvision constructor arguments


@dataclass
class DataConfig:
    format: str = "ucf101"  # ucf101, hmdb51, kinetics, csv, folders
    root: str = ""
    annotations: str | None = None  # split files / CSV; default: format's usual place under root
    split: int = 1
    flow_root: str | None = None
    modality: str = "rgb"  # rgb or flow (train the two streams as two runs, fuse at evaluation; "both" refused)
    classes: str | list[str] | None = None  # class map (a file, one name per line, or a list); None: the training
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
    step_epochs: list[int] = field(default_factory=lambda: [10, 20])
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


CHOICES = {"finetune": ("full", "fixed"), "precision": ("fp32", "bf16", "fp16"), "optim.name": ("sgd", "adamw"),
           "optim.schedule": ("cosine", "step", "constant"),
           "data.format": ("ucf101", "hmdb51", "kinetics", "csv", "folders"), "data.test_crops": (1, 3)}


def validate(cfg: "TrainConfig") -> "TrainConfig":
    """Refuse settings that would train something else than asked, naming the key and the fix."""
    for key, allowed in CHOICES.items():
        node, name = (cfg, key) if "." not in key else (getattr(cfg, key.split(".")[0]), key.split(".")[1])
        if getattr(node, name) not in allowed:
            raise ConfigError(f"config key {key!r} expects one of {', '.join(map(str, allowed))}, got "
                              f"{getattr(node, name)!r}")
    d = cfg.data
    if d.modality == "both":
        raise ConfigError(f"data.modality='both' does not train both streams in one run; {TWO_RUN_RECIPE}")
    if not (d.classes is None or isinstance(d.classes, str) or all(isinstance(c, str) for c in d.classes)):
        raise ConfigError(f"config key 'data.classes' expects str | list[str] | None (a class map file or the "
                          f"class names), got {d.classes!r}")
    if d.modality not in ("rgb", "flow"):
        raise ConfigError(f"data.modality must be 'rgb' or 'flow', got {d.modality!r}")
    if cfg.protocol is not None and cfg.protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {cfg.protocol!r}; known: {sorted(PROTOCOLS)} (or leave it unset)")
    if not (d.test_clips == "all" or isinstance(d.test_clips, int) and d.test_clips >= 1):
        raise ConfigError(f"data.test_clips must be a positive integer or 'all', got {d.test_clips!r}")
    if not 0 <= d.val_fraction < 1:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {d.val_fraction}")
    if d.val_fraction and d.val_list:
        raise ConfigError("set data.val_fraction or data.val_list, not both")
    if cfg.precise_bn < 0:
        raise ConfigError(f"precise_bn is a number of training batches (0: off), got {cfg.precise_bn}")
    return cfg


def from_dict(data: dict) -> TrainConfig:
    """A typed, validated config from a plain mapping (a run's ``config.json``); no preset is applied."""
    return _typed(_as_config(data, "the config"))


def load_config(path: str | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Defaults, then the ``protocol`` preset if one is named, then the file, then the ``key=value`` overrides;
    every value checked against its declared type (:class:`ConfigError` names the key otherwise)."""
    user = OmegaConf.merge(read_config_file(path) if path else OmegaConf.create({}), parse_overrides(overrides))
    protocol = user.get("protocol")
    if protocol is not None and (not isinstance(protocol, str) or protocol not in PROTOCOLS):
        raise ConfigError(f"unknown protocol {protocol!r}; known: {sorted(PROTOCOLS)} (or leave it unset)")
    return _typed(user, PROTOCOLS[protocol] if protocol else {})


def read_config_file(path: str | Path) -> DictConfig:
    """A YAML, TOML or JSON config file as an (untyped) OmegaConf mapping."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {p} does not exist")
    try:
        if p.suffix == ".toml":
            return _as_config(tomllib.loads(p.read_text()), f"config {p}")
        if p.suffix in (".yaml", ".yml"):
            return _as_config(OmegaConf.load(p), f"config {p}")  # YAML 1.2 floats: 1e-3 is a float
        if p.suffix == ".json":
            return _as_config(json.loads(p.read_text()), f"config {p}")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"config {p} is not valid {p.suffix[1:].upper()}: {' '.join(str(e).split())}") from e
    except OmegaConfBaseException as e:  # a YAML key OmegaConf cannot hold (null)
        where = f" (at key {e.full_key!r})" if e.full_key else ""
        raise ConfigError(f"config {p}: {_one_line(e)}{where}") from e
    raise ConfigError(f"config {p}: use .yaml, .toml or .json")


def parse_overrides(overrides) -> DictConfig:
    """``["optim.lr=0.1", "epochs=3"]`` as an OmegaConf mapping; each value read as YAML (``false`` a bool,
    ``1e-3`` a float, ``[10, 20]`` a list, anything else a string)."""
    overrides = list(overrides)
    for item in overrides:
        if "=" not in item or not item.split("=", 1)[0]:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (for example optim.lr=0.01)")
        key = item.split("=", 1)[0]
        if "" in key.split("."):
            raise ConfigError(f"override {item!r}: key {key!r} has an empty part; write SECTION.KEY=VALUE "
                              "(for example optim.lr=0.01)")
    try:
        return OmegaConf.from_dotlist(overrides)
    except yaml.YAMLError as e:
        raise ConfigError(f"an override is not valid YAML ({' '.join(str(e).split())}); quote the value, "
                          "e.g. 'data.root=\"a[1\"'") from e
    except OmegaConfBaseException as e:
        raise ConfigError(f"override: {_one_line(e)}") from e


def _as_config(data, source: str) -> DictConfig:
    if isinstance(data, DictConfig):
        return data
    if data is None:
        return OmegaConf.create({})
    if not isinstance(data, dict):
        kind = "list" if isinstance(data, ListConfig) else type(data).__name__
        raise ConfigError(f"{source} must be a mapping of keys (out, model, data, optim, ...), got {kind}")
    try:
        return OmegaConf.create(data)
    except OmegaConfBaseException as e:
        raise _config_error(e, None) from e


def _typed(user: DictConfig, preset: dict | None = None) -> TrainConfig:
    """``user`` over ``preset`` over the defaults, checked against the dataclasses' types, then validated."""
    _check_containers(user)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), preset or {}, user)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise _config_error(e, user) from e
    return validate(cfg)


def _check_containers(node: DictConfig, prefix: str = "") -> None:
    """Refuse a section given a scalar ("data=3"), a mapping given a list ("model.kwargs=[1]") or a list given
    a mapping ("optim.step_epochs.x=1"): OmegaConf's merge errors for these name no key."""
    for k in node.keys():
        if OmegaConf.is_interpolation(node, k):  # resolved (or named, if it dangles) by the merge below
            continue
        key = f"{prefix}{k}"
        if OmegaConf.is_missing(node, k):  # "???" would merge as "not given" and keep the default silently
            raise ConfigError(f"config key {key!r} is ??? (OmegaConf's missing value): give it a value, or leave "
                              "the key out for its default")
        t, value = declared_type(key), node.get(k)
        if is_dataclass(t):
            if not isinstance(value, DictConfig):
                raise _section_error(key, value)
            _check_containers(value, key + ".")
        elif t is not None and isinstance(value, (DictConfig, ListConfig)):
            kinds = {get_origin(a) or a for a in (t, *get_args(t))}
            if (dict if isinstance(value, DictConfig) else list) not in kinds:
                raise ConfigError(f"config key {key!r} expects {type_name(t)}, got "
                                  f"{_show(OmegaConf.to_container(value))}")


def _config_error(e: OmegaConfBaseException, given) -> ConfigError:
    """One line from an OmegaConf error: the key, the type it expects (or the known keys) and the value given."""
    key = e.full_key or ""
    value = _given(e, given)
    if isinstance(e, ConfigKeyError) and key:
        parent, _, _ = key.rpartition(".")
        section = declared_type(parent) if parent else TrainConfig
        if not is_dataclass(section):  # a dot inside one name (a YAML float key, 1.5): no section to list
            return ConfigError(f"unknown config key {key!r}")
        known = ", ".join(f.name for f in fields(section))
        return ConfigError(f"unknown config key {key!r} (given {_show(value)}); the keys of "
                           f"{parent or 'the top level'} are: {known}")
    if isinstance(e, InterpolationResolutionError):  # ${...} naming no key: its own message, not the type
        return ConfigError(f"config key {key!r}: {_one_line(e)}")
    expected = declared_type(key) if key else None
    if expected is None:
        return ConfigError(f"config{' key ' + repr(key) if key else ''}: {_one_line(e)}")
    if is_dataclass(expected):
        return _section_error(key, value)
    return ConfigError(f"config key {key!r} expects {type_name(expected)}, got {_show(value)}")


def _section_error(key: str, value) -> ConfigError:
    names = [f.name for f in fields(declared_type(key))]
    return ConfigError(f"config key {key!r} expects a section of keys ({', '.join(names[:4])}, ...), got "
                       f"{_show(value)}; set its keys instead, e.g. {key}.{names[0]}=...")


def declared_type(key: str):
    """The type :class:`TrainConfig` declares for a dotted key (``optim.lr``, ``optim.step_epochs[1]``), or None."""
    t: Any = TrainConfig
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", key):
        if part.startswith("["):  # an item of a list (of a list[...] or of a union holding one)
            lists = [a for a in (t, *get_args(t)) if get_origin(a) is list]
            t = get_args(lists[0])[0] if lists and get_args(lists[0]) else None
        elif is_dataclass(t) and part in get_type_hints(t):
            t = get_type_hints(t)[part]
        else:
            return None
        if t is None:
            return None
    return t


def _given(e: OmegaConfBaseException, given):
    """The value the user gave at the key an error names (from the user's layer; else the error's own)."""
    if given is not None and e.full_key:
        try:
            return OmegaConf.select(given, e.full_key, default=None, throw_on_missing=False)
        except OmegaConfBaseException:
            pass
    return getattr(e, "value", None)


def type_name(t) -> str:
    return t.__name__ if isinstance(t, type) and not get_args(t) else str(t).replace("typing.", "")


def _show(value) -> str:
    return "null" if value is None else repr(value)


def _one_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
