"""Where a zoo model's weights come from, in order: an explicit file, the local cache (what
``quovadis zoo build`` converted), the Hugging Face cache, then a download from the Hub.

Honours ``HF_HUB_OFFLINE``, ``HF_HOME`` and ``cache_dir=``. Files with a sha256 in the registry are
checked; a corrupt cached file is named, and fetched again when online.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from .registry import ModelEntry


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


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def offline() -> bool:
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE)


def how_to_get(entry: ModelEntry) -> str:
    if entry.variant:
        return (f"Convert DeepMind's checkpoint yourself: `quovadis convert deepmind "
                f"kinetics-i3d/data/checkpoints/{entry.variant} -o {entry.name}.safetensors` and pass "
                f"weights='{entry.name}.safetensors', or run `quovadis zoo build path/to/kinetics-i3d` once to "
                f"fill the cache at {quovadis_cache()}.")
    return "Pass weights='path/to/model.safetensors', or connect to the Hub once so the file is cached."


def resolve(entry: ModelEntry, *, cache_dir=None, force_download: bool = False) -> Path:
    """The path of ``entry``'s weights, downloading them if needed (see the module docstring)."""
    local = quovadis_cache(cache_dir) / f"{entry.name}.safetensors"
    if local.is_file() and not force_download:
        return local
    if entry.hf_repo is None:
        raise WeightsError(f"{entry.name}: no local weights at {local} and no Hub repo. {how_to_get(entry)}")
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    hf_cache = None if cache_dir is None else str(cache_dir)
    if not force_download:
        cached = try_to_load_from_cache(entry.hf_repo, entry.filename, cache_dir=hf_cache)
        if isinstance(cached, str):
            path = Path(cached)
            if entry.sha256 is None or sha256_of(path) == entry.sha256:
                return path
            if offline():
                raise WeightsError(
                    f"{entry.name}: the cached file {path} is corrupt (sha256 {sha256_of(path)[:12]}..., "
                    f"expected {entry.sha256[:12]}...) and HF_HUB_OFFLINE is set, so it cannot be fetched again. "
                    f"Delete it and go online, or pass weights=. {how_to_get(entry)}")
            force_download = True
    if offline():
        raise WeightsError(f"{entry.name}: weights are not cached and HF_HUB_OFFLINE is set. {how_to_get(entry)}")
    try:
        path = Path(hf_hub_download(entry.hf_repo, entry.filename, cache_dir=hf_cache, force_download=force_download))
    except LocalEntryNotFoundError as e:
        raise WeightsError(f"{entry.name}: could not download {entry.hf_repo}/{entry.filename} and it is not "
                           f"cached ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                           f"{how_to_get(entry)}") from e
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as e:
        raise WeightsError(f"{entry.name}: the Hub has no {entry.filename} in repo {entry.hf_repo} "
                           f"({type(e).__name__}). {how_to_get(entry)}") from e
    except OSError as e:
        raise WeightsError(f"{entry.name}: could not download {entry.hf_repo}/{entry.filename} and it is not "
                           f"cached ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                           f"{how_to_get(entry)}") from e
    if entry.sha256 is not None:
        got = sha256_of(path)
        if got != entry.sha256:
            raise WeightsError(f"{entry.name}: downloaded {path} has sha256 {got}, but the registry records "
                               f"{entry.sha256}; the Hub file is not the one we published. Do not use it.")
    return path


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
