"""``zoo.info``, ``zoo.load`` and ``zoo.push_to_hub``: the zoo by name (``zoo.build`` is
:func:`zoo.models.build.build_entry`)."""
from __future__ import annotations

from pathlib import Path

from zoo.models.build import build_entry
from zoo.registry import ModelEntry, get_entry
from zoo.weights import hub
from zoo.weights.files import load_into
from zoo.weights.resolve import resolve


def info(name: str) -> ModelEntry:
    """The registry entry of ``name``: config, modality, labels, preprocessing, source, license, accuracy."""
    return get_entry(name)


def load(name: str, *, weights=None, pretrained: bool = True, cache_dir=None, force_download: bool = False,
         source: str = "auto", progress: bool = True):
    """A zoo model, in eval mode, with its weights.

        >>> model = zoo.load("i3d_inception_k400_rgb")   # downloads DeepMind's release once, verified, cached

    Args:
        name: a registry name (see :func:`list`), or ``"hf-hub:ORG/REPO"`` for a model pushed with
            :func:`zoo.push_to_hub`.
        weights: a local safetensors file to load instead of resolving. For two-stream models, a dict
            ``{"rgb": path, "flow": path}``.
        pretrained: False builds the architecture with fresh random weights (train mode).
        cache_dir: where cached weights live (default: ``$QUOVADIS_HOME`` / the Hugging Face cache).
        source: where weights may come from: ``"auto"`` (our cache, DeepMind's release, then the Hub),
            ``"cache"``, ``"release"`` or ``"hub"``; see :mod:`zoo.weights.resolve`.
        progress: show download progress bars (on a terminal).
    """
    if name.startswith("hf-hub:"):
        return hub.load_from_hub(name[len("hf-hub:"):], cache_dir=cache_dir, force_download=force_download)
    entry = get_entry(name)
    from_2d = entry.arch == "inflated" and weights is None and entry.hf_repo is None  # bootstrap, no video weights
    model = build_entry(entry, pretrained_2d=pretrained and from_2d)
    model.zoo_entry = entry
    if not pretrained:
        return model
    if entry.arch == "two_stream_i3d":
        files = weights or {}
        if not isinstance(files, dict):
            raise TypeError(f"{name}: weights= must be a dict {{'rgb': path, 'flow': path}} for a two-stream model")
        for stream, component in zip(("rgb", "flow"), entry.components):
            sub = load(component, weights=files.get(stream), cache_dir=cache_dir, force_download=force_download,
                       source=source, progress=progress)
            setattr(model, stream, sub)
        return model.eval()
    if from_2d:
        return model.eval()  # bootstrapped from the 2D weights
    path = Path(weights) if weights is not None else resolve(entry, cache_dir=cache_dir, force_download=force_download,
                                                             source=source, quiet=not progress)
    load_into(model, path, expect_variant=entry.variant)
    return model.eval()


def push_to_hub(model_or_name, repo_id: str, *, weights=None, private: bool = False, token=None,
                commit_message: str = "Upload quovadis model", revision: str | None = None) -> str:
    """Upload a model, or a zoo name loaded with ``weights=`` (see :func:`load`), to the Hub repo ``repo_id``
    (:func:`zoo.weights.hub.push_to_hub`); returns the commit url."""
    model = load(model_or_name, weights=weights) if isinstance(model_or_name, str) else model_or_name
    return hub.push_to_hub(model, repo_id, private=private, token=token, commit_message=commit_message,
                           revision=revision)
