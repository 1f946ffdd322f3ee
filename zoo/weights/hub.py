"""Publish models to the Hugging Face Hub and load them back, with ``huggingface_hub``'s own API.

A pushed repo holds ``model.safetensors``, a ``config.json`` that is enough to rebuild the model
(inflation policy included) and a model card ``README.md``. ``zoo.load("hf-hub:ORG/REPO")`` loads it:
from the Hugging Face cache when offline (``HF_HUB_OFFLINE=1``), else checking the Hub for a newer file.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch.nn as nn
from safetensors.torch import load_model, save_model

import inflate.io
from inflate.video_model import VideoModel

from zoo.models.i3d import InceptionI3d
from zoo.registry import ModelEntry
from zoo.models.two_stream import TwoStreamI3D
from zoo.weights.resolve import offline
from zoo.weights.files import WeightsError

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
FORMAT = "quovadis/1"


def model_spec(model: nn.Module) -> dict:
    """What ``config.json`` holds for ``model``: enough to rebuild it, plus labels and preprocessing."""
    entry: ModelEntry | None = getattr(model, "zoo_entry", None)
    spec = {"format": FORMAT}
    if isinstance(model, TwoStreamI3D):
        spec.update(arch="two_stream_i3d", config={"rgb": model.rgb.config, "flow": model.flow.config,
                                                    "fusion_weights": list(model.fusion_weights)},
                    num_classes=model.rgb.num_classes, modality="rgb+flow")
    elif isinstance(model, InceptionI3d):
        spec.update(arch="inception_i3d", config=dict(model.config), num_classes=model.num_classes,
                    modality="rgb" if model.in_channels == 3 else "flow")
    elif isinstance(model, VideoModel):
        spec.update(arch="inflated", config=model.config, num_classes=model.config.get("num_classes"),
                    modality="rgb")
    else:
        raise TypeError(f"cannot publish a {type(model).__name__}: push a zoo model, an inflated VideoModel "
                        "or a TwoStreamI3D")
    if entry is not None:
        spec.update(zoo_name=entry.name, labels=entry.labels, label_names=list(entry.label_names),
                    preprocessing=entry.preprocessing, modality=entry.modality, entry=entry.to_dict())
    return spec


def build_from_spec(spec: dict) -> nn.Module:
    if spec.get("format") != FORMAT:
        raise WeightsError(f"config.json has format {spec.get('format')!r}; this quovadis reads {FORMAT!r}")
    arch, config = spec["arch"], spec["config"]
    if arch == "inception_i3d":
        return InceptionI3d(**config)
    if arch == "two_stream_i3d":
        return TwoStreamI3D(InceptionI3d(**config["rgb"]), InceptionI3d(**config["flow"]), config["fusion_weights"])
    if arch == "inflated":
        return inflate.io.rebuild(config)
    raise WeightsError(f"config.json names an unknown architecture {arch!r}")


def save_pretrained(model: nn.Module, folder, repo_id: str = "local/model") -> Path:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = model_spec(model)
    save_model(model, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "quovadis.format": FORMAT})
    (folder / CONFIG_NAME).write_text(json.dumps(spec, indent=2))
    from zoo.weights.model_card import render_card  # huggingface_hub's ModelCard (jinja2): only when pushing

    render_card(repo_id, spec).save(folder / "README.md")
    return folder


def push_to_hub(model_or_name, repo_id: str, *, weights=None, private: bool = False, token=None,
                commit_message: str = "Upload quovadis model", revision: str | None = None) -> str:
    """Upload a model (or a zoo name, loaded with ``weights=``) to ``repo_id``; returns the commit url."""
    from huggingface_hub import HfApi

    from zoo.api import load
    model = load(model_or_name, weights=weights) if isinstance(model_or_name, str) else model_or_name
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp, repo_id)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message,
                                 revision=revision)
    return str(info)


def load_from_hub(repo_id: str, *, revision: str | None = None, cache_dir=None, force_download: bool = False):
    """Rebuild and load a model pushed with :func:`push_to_hub` (eval mode)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    def fetch(filename):
        try:
            return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir,
                                        force_download=force_download))
        except LocalEntryNotFoundError as e:
            why = "HF_HUB_OFFLINE is set" if offline() else "the Hub could not be reached"
            raise WeightsError(f"hf-hub:{repo_id}: {filename} is not in the cache and {why}. Download it once "
                               "while online, or save the model locally and use its files.") from e
        except RepositoryNotFoundError as e:
            raise WeightsError(f"hf-hub:{repo_id}: no such repo on the Hub (or it is private: log in with "
                               "`hf auth login` or pass a token)") from e
        except EntryNotFoundError as e:
            raise WeightsError(f"hf-hub:{repo_id}: the repo has no {filename}; was it pushed with "
                               "zoo.push_to_hub?") from e

    spec = json.loads(fetch(CONFIG_NAME).read_text())
    path = fetch(WEIGHTS_NAME)
    model = build_from_spec(spec)
    try:
        load_model(model, str(path), strict=True)
    except Exception as e:
        raise WeightsError(f"hf-hub:{repo_id}: {path} does not load into the model its config.json describes "
                           f"({e}); the download may be corrupt: retry with force_download=True") from e
    model.hub_spec = spec
    return model.eval()
