"""Weight files on disk: our cache's paths, file digests (sha256, git blob id), safetensors metadata and
strict loading into a model with errors that name the file and tensors."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file


class WeightsError(RuntimeError):
    """Weights that cannot be found, read or trusted; the message says what to do."""


def quovadis_cache(cache_dir=None) -> Path:
    """Our cache of locally converted weights: ``$QUOVADIS_HOME`` or ``$HF_HOME/quovadis``."""
    if cache_dir is not None:
        return Path(cache_dir) / "quovadis"
    if os.environ.get("QUOVADIS_HOME"):
        return Path(os.environ["QUOVADIS_HOME"])
    from huggingface_hub.constants import HF_HOME
    return Path(HF_HOME) / "quovadis"


def _stream_digest(h, path) -> str:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of(path) -> str:
    """The sha256 of a file, read in 1 MiB chunks."""
    return _stream_digest(hashlib.sha256(), path)


def git_blob_sha1(data: bytes) -> str:
    """Git's object id for a file with these bytes: ``sha1(b"blob <size>\\0" + data)``."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def git_blob_sha1_of(path) -> str:
    """:func:`git_blob_sha1` of a file, read in 1 MiB chunks."""
    return _stream_digest(hashlib.sha1(b"blob %d\0" % Path(path).stat().st_size), path)


def cached_path(entry, cache_dir=None) -> Path:
    """Where our cache keeps ``entry``'s converted weights."""
    return quovadis_cache(cache_dir) / f"{entry.name}.safetensors"


def read_metadata(path: Path) -> dict:
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as e:
        raise WeightsError(f"{path} is not a readable safetensors file ({e}); convert or download it again") from e


def load_into(model: torch.nn.Module, path, *, expect_variant: str | None = None) -> torch.nn.Module:
    """Load ``path`` (safetensors) into ``model`` strictly, with errors that name the file and tensors."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    meta = read_metadata(path)
    variant = meta.get("quovadis.variant")
    if expect_variant and variant and variant != expect_variant:
        raise WeightsError(f"{path} holds DeepMind variant {variant!r}, but this model is {expect_variant!r}; "
                           "these are different checkpoints: pick the zoo name that matches the file")
    state = load_file(str(path))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
             for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[:3]})")
        if wrong:
            parts.append(f"{len(wrong)} with the wrong shape (e.g. {wrong[:2]})")
        raise WeightsError(f"{path} does not fit {type(model).__name__}: " + "; ".join(parts)
                           + ". Check that the file is for this model (config: "
                           + json.dumps(getattr(model, 'config', {})) + ").")
    model.load_state_dict(state, strict=True)
    return model
