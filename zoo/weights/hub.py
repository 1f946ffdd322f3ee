"""Publish models to the Hugging Face Hub and load them back, with ``huggingface_hub``'s own API.

A pushed repo holds ``model.safetensors``, a ``config.json`` that is enough to rebuild the model
(inflation policy included) and a model card ``README.md``. ``zoo.load("hf-hub:ORG/REPO")`` loads it:
from the Hugging Face cache when offline (``HF_HUB_OFFLINE=1``), else checking the Hub for a newer file.

Every file read from the Hub goes through :func:`fetch_file`, and every ``huggingface_hub`` error is put into
words by :func:`hub_error` (the one translation, also for registry entries with a Hub repo).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import torch.nn as nn
from safetensors.torch import load_model, save_model

from inflate.video_model import VideoModel

from zoo.models.build import SPEC_FORMAT, build_from_spec
from zoo.models.i3d import InceptionI3d
from zoo.models.two_stream import TwoStreamI3D
from zoo.registry import ModelEntry
from zoo.weights.download import offline, unreachable
from zoo.weights.files import WeightsError

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"


def model_spec(model: nn.Module) -> dict:
    """What ``config.json`` holds for ``model``: enough to rebuild it, plus labels and preprocessing."""
    entry: ModelEntry | None = getattr(model, "zoo_entry", None)
    spec = {"format": SPEC_FORMAT}
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


def save_pretrained(model: nn.Module, folder, repo_id: str = "local/model") -> Path:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` to ``folder``."""
    spec = model_spec(model)  # a model we cannot publish fails before anything is written
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "quovadis.format": SPEC_FORMAT})
    (folder / CONFIG_NAME).write_text(json.dumps(spec, indent=2))
    from zoo.weights.model_card import render_card  # huggingface_hub's ModelCard (jinja2): only when pushing

    render_card(repo_id, spec).save(folder / "README.md")
    return folder


def push_to_hub(model: nn.Module, repo_id: str, *, private: bool = False, token=None,
                commit_message: str = "Upload quovadis model", revision: str | None = None) -> str:
    """Upload ``model`` (``model.safetensors``, ``config.json``, ``README.md``) to ``repo_id``; returns the commit
    url. ``zoo.push_to_hub`` also takes a zoo name."""
    from huggingface_hub import HfApi

    if not isinstance(model, nn.Module):
        raise TypeError(f"push_to_hub takes a model, not a {type(model).__name__}: zoo.push_to_hub(name, ...) "
                        "loads a zoo name first")
    model_spec(model)  # a model we cannot publish fails before anything is created on the Hub
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp, repo_id)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message,
                                 revision=revision)
    return str(info)


def hub_error(error: BaseException, repo_id: str, filename: str, revision: str | None = None) -> WeightsError | None:
    """The one translation of a ``huggingface_hub`` (or network) error met while fetching ``repo_id/filename`` into
    a :class:`WeightsError` that says what went wrong; None for an error that is not about the Hub (a bug)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    where = f"Hub repo {repo_id}"
    host = urlsplit(constants.ENDPOINT).netloc or constants.ENDPOINT

    def cause(e: BaseException) -> str:
        while e.__cause__ is not None or e.__context__ is not None:  # the root: what the network said
            e = e.__cause__ or e.__context__
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"

    if unreachable(error):
        return WeightsError(f"{where}: {filename} is not cached and the Hub ({host}) cannot be reached "
                            f"({cause(error)})")
    if isinstance(error, LocalEntryNotFoundError):
        if offline():
            return WeightsError(f"{where}: {filename} is not in the Hugging Face cache and offline mode is on "
                                "(HF_HUB_OFFLINE is set)")
        return WeightsError(f"{where}: {filename} is not cached and the Hub ({host}) could not be reached "
                            f"({cause(error)})")
    if isinstance(error, GatedRepoError):
        return WeightsError(f"{where} is gated: accept its conditions on the Hub and log in (`hf auth login`)")
    if isinstance(error, RepositoryNotFoundError):
        return WeightsError(f"{where}: no such repo on the Hub (or it is private: log in with `hf auth login` "
                            "or pass a token)")
    if isinstance(error, RevisionNotFoundError):
        return WeightsError(f"{where} has no revision {revision or 'main'!r}")
    if isinstance(error, EntryNotFoundError):
        return WeightsError(f"{where} has no {filename}")
    if isinstance(error, HfHubHTTPError):
        status = getattr(error.response, "status_code", "?")
        return WeightsError(f"{where}: downloading {filename} failed with HTTP {status} ({cause(error)})")
    if isinstance(error, OSError) or type(error).__module__.split(".")[0].startswith("httpx"):
        return WeightsError(f"{where}: could not download {filename} ({cause(error)})")
    return None


def fetch_file(repo_id: str, filename: str, *, revision: str | None = None, cache_dir=None,
               force_download: bool = False) -> Path:
    """``hf_hub_download`` (the Hugging Face cache, then the Hub), with errors from :func:`hub_error`.

    A Hub that cannot be reached at all (:func:`zoo.weights.download.unreachable`) fails at once: when nothing is
    cached, ``huggingface_hub`` would retry its first request 5 times with backoff (about 23 s), so one request
    without retries is made first.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
        if not offline() and (force_download or not isinstance(cached, str)):
            try:
                get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision))  # one HEAD, no retries
            except Exception as e:
                if unreachable(e):
                    raise
                # anything else (a timeout, a 5xx, no such file): hf_hub_download asks again and reports it
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir,
                                    force_download=force_download))
    except Exception as e:
        translated = hub_error(e, repo_id, filename, revision)
        if translated is None:
            raise
        raise translated from e


def load_from_hub(repo_id: str, *, revision: str | None = None, cache_dir=None, force_download: bool = False):
    """Rebuild and load a model pushed with :func:`push_to_hub` (eval mode)."""
    def fetch(filename):
        try:
            return fetch_file(repo_id, filename, revision=revision, cache_dir=cache_dir, force_download=force_download)
        except WeightsError as e:
            fix = ("Download it once while online, or save the model locally and use its files."
                   if offline() or unreachable(e) else
                   "A repo pushed with zoo.push_to_hub holds config.json and model.safetensors.")
            raise WeightsError(f"hf-hub:{repo_id}: {e}. {fix}") from e

    spec = json.loads(fetch(CONFIG_NAME).read_text())
    path = fetch(WEIGHTS_NAME)
    try:
        model = build_from_spec(spec)
    except ValueError as e:
        raise WeightsError(f"hf-hub:{repo_id}: {e}") from e
    try:
        load_model(model, str(path), strict=True)
    except Exception as e:
        raise WeightsError(f"hf-hub:{repo_id}: {path} does not load into the model its config.json describes "
                           f"({e}); the download may be corrupt: retry with force_download=True") from e
    model.hub_spec = spec
    return model.eval()
